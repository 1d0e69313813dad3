/* Direct convolution, stride 1, for one dtype and one instruction set: simd.h includes
 * this file (by simd_kernels.h) four times (float64 and float32, AVX-512 and AVX2 with
 * FMA), with
 *   T, NAME(f)            the element type and the function's name
 *   TARGET                the instruction set the function is compiled for
 *   V, VW                 the vector type and its number of lanes
 *   ZERO, SET1, LOAD, STORE, FMA(a, b, c) = a*b + c rounded once
 *   MASK_T, MASK(cnt)     a mask of the first cnt lanes; MLOAD(p, m), MSTORE(p, m, v)
 *                         load (zeros elsewhere) and store those lanes only
 * (simd_kernels.h undefines them).
 *
 * out[n, o, y, x] = sum over c, i, j of w[o, c, i, j] * xp[c, y + i, x + j], xp being
 * image n with p zeros around it.  Why not im2col and a gemm, as for the other
 * convolutions: with few input channels (the first layer of a CNN: C*KH*KW = 9) the
 * gemm's inner dimension is tiny, and copying the image KH*KW times costs about as
 * much as the gemm.  Here the padded image is copied KW times, copy j holding columns
 * j .. j + OW - 1 of each padded row, OW wide: then output element y*OW + x of a plane
 * reads element (y + i)*OW + x of copy j for tap (i, j), so a vector of VW consecutive
 * outputs, across rows, is one load per tap.  Each such vector is made for 8 output
 * channels at a time, in registers: per tap one load and 8 FMAs with broadcast weights.
 * The sum over (c, i, j) runs in that order with one rounding per tap (an FMA): the same
 * bits on every CPU that runs it, though not a gemm's (whose order is the BLAS's).
 * scratch: the weights by blocks of 8 channels, then the KW copies (simd.h sizes it). */

__attribute__((target(TARGET))) static void NAME(conv_direct)(
    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t p,
    const T *x, const T *w, T *scratch, T *out)
{
    const int64_t Hp = H + 2 * p, OH = Hp - KH + 1, OW = W + 2 * p - KW + 1, P = OH * OW;
    const int64_t taps = C * KH * KW, blocks = (O + 7) / 8, plane = Hp * OW;
    T *wp = scratch;                      /* [b][tap][8] */
    T *xs = scratch + blocks * taps * 8;  /* [j][c][Hp][OW] */
    int64_t at[FA_DIRECT_MAX_TAPS];       /* where tap (c, i, j) reads, from the output's place */
    for (int64_t c = 0, t = 0; c < C; c++)
        for (int64_t i = 0; i < KH; i++)
            for (int64_t j = 0; j < KW; j++)
                at[t++] = (j * C + c) * plane + i * OW;
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t k = 0; k < 8; k++)
                wp[(b * taps + t) * 8 + k] = b * 8 + k < O ? w[(b * 8 + k) * taps + t] : 0;
    memset(xs, 0, (size_t)(KW * C * plane) * sizeof(T));  /* the padding stays zero */
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < KW; j++) {  /* copy j: column x reads image column x + j - p */
            const int64_t lo = p - j > 0 ? p - j : 0, hi = W + p - j < OW ? W + p - j : OW;
            for (int64_t c = 0; c < C; c++)
                for (int64_t h = 0; h < H; h++) {  /* rows are short: vectors, not memcpy */
                    T *dst = xs + (j * C + c) * plane + (h + p) * OW;
                    const T *row = x + ((n * C + c) * H + h) * W + j - p;
                    for (int64_t at = lo; at < hi; at += VW) {
                        const MASK_T m = MASK(hi - at < VW ? hi - at : VW);
                        MSTORE(dst + at, m, MLOAD(row + at, m));
                    }
                }
        }
        for (int64_t b = 0; b < blocks; b++) {
            const T *wb = wp + b * taps * 8;
            const int64_t kept = O - b * 8 < 8 ? O - b * 8 : 8;
            for (int64_t q = 0; q < P; q += VW) {
                const int64_t cnt = P - q < VW ? P - q : VW;
                const MASK_T m = MASK(cnt);
                const T *src = xs + q;
                V a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO, a4 = ZERO, a5 = ZERO, a6 = ZERO,
                  a7 = ZERO;
#define TAP(v, wt)                                                                          \
    a0 = FMA(SET1((wt)[0]), v, a0), a1 = FMA(SET1((wt)[1]), v, a1),                          \
    a2 = FMA(SET1((wt)[2]), v, a2), a3 = FMA(SET1((wt)[3]), v, a3),                          \
    a4 = FMA(SET1((wt)[4]), v, a4), a5 = FMA(SET1((wt)[5]), v, a5),                          \
    a6 = FMA(SET1((wt)[6]), v, a6), a7 = FMA(SET1((wt)[7]), v, a7)
                if (cnt == VW)
                    for (int64_t t = 0; t < taps; t++) {
                        const V v = LOAD(src + at[t]);
                        TAP(v, wb + t * 8);
                    }
                else
                    for (int64_t t = 0; t < taps; t++) {
                        const V v = MLOAD(src + at[t], m);
                        TAP(v, wb + t * 8);
                    }
#undef TAP
                const V acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
                T *dst = out + (n * O + b * 8) * P + q;
                for (int k = 0; k < kept; k++, dst += P) {
                    if (cnt == VW)
                        STORE(dst, acc[k]);
                    else
                        MSTORE(dst, m, acc[k]);
                }
            }
        }
    }
}
