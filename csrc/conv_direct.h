/* Direct convolution, stride 1, for one dtype and one instruction set: conv.h includes
 * this file four times (float64 and float32, AVX-512 and AVX2 with FMA), with
 *   T, NAME(f)            the element type and the function's name
 *   TARGET                the instruction set the function is compiled for
 *   V, VW                 the vector type and its number of lanes
 *   ZERO, SET1, LOAD, STORE, FMA(a, b, c) = a*b + c rounded once
 *   MASK_T, MASK(cnt)     a mask of the first cnt lanes; MLOAD(p, m), MSTORE(p, m, v)
 *                         load (zeros elsewhere) and store those lanes only,
 * which it undefines at its end.
 *
 * out[n, o, y, x] = sum over c, i, j of w[o, c, i, j] * xp[c, y + i, x + j], xp being
 * image n with p zeros around it.  Why not im2col and a gemm, as for the other
 * convolutions: with few input channels (the first layer of a CNN: C*KH*KW = 9) the
 * gemm's inner dimension is tiny, and copying the image KH*KW times costs about as
 * much as the gemm.  Here the padded image is copied once, and each output row is made
 * 8 channels by one vector of columns at a time, in registers: per kernel tap one load
 * of the image and 8 FMAs with broadcast weights.  The sum over (c, i, j) runs in that
 * order with one rounding per tap (an FMA): the same bits on every CPU that runs it,
 * though not a gemm's (whose order is the BLAS's). */

__attribute__((target(TARGET))) static void NAME(conv_direct)(
    int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t p,
    const T *x, const T *w, T *scratch, T *out)
{
    const int64_t Hp = H + 2 * p, Wp = W + 2 * p, OH = Hp - KH + 1, OW = Wp - KW + 1;
    const int64_t taps = C * KH * KW, blocks = (O + 7) / 8;
    int64_t at[FA_DIRECT_MAX_TAPS];  /* where tap (c, i, j) reads, from the output's place */
    for (int64_t c = 0, t = 0; c < C; c++)
        for (int64_t i = 0; i < KH; i++)
            for (int64_t j = 0; j < KW; j++)
                at[t++] = (c * Hp + i) * Wp + j;
    T *wp = scratch;                      /* weights by blocks of 8 channels: [b][tap][8] */
    T *xp = scratch + blocks * taps * 8;  /* one padded image: [c][Hp][Wp] */
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t t = 0; t < taps; t++)
            for (int64_t k = 0; k < 8; k++)
                wp[(b * taps + t) * 8 + k] = b * 8 + k < O ? w[(b * 8 + k) * taps + t] : 0;
    memset(xp, 0, (size_t)(C * Hp * Wp) * sizeof(T));  /* the border stays zero */
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                memcpy(xp + (c * Hp + h + p) * Wp + p, x + ((n * C + c) * H + h) * W,
                       (size_t)W * sizeof(T));
        for (int64_t b = 0; b < blocks; b++) {
            const T *wb = wp + b * taps * 8;
            const int64_t kept = O - b * 8 < 8 ? O - b * 8 : 8;
            for (int64_t y = 0; y < OH; y++)
                for (int64_t x0 = 0; x0 < OW; x0 += VW) {
                    const int64_t cnt = OW - x0 < VW ? OW - x0 : VW;
                    const MASK_T m = MASK(cnt);
                    const T *src = xp + y * Wp + x0;
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
                    T *dst = out + ((n * O + b * 8) * OH + y) * OW + x0;
                    for (int k = 0; k < kept; k++, dst += OH * OW) {
                        if (cnt == VW)
                            STORE(dst, acc[k]);
                        else
                            MSTORE(dst, m, acc[k]);
                    }
                }
        }
    }
}

#undef T
#undef NAME
#undef TARGET
#undef V
#undef VW
#undef ZERO
#undef SET1
#undef LOAD
#undef STORE
#undef FMA
#undef MASK_T
#undef MASK
#undef MLOAD
#undef MSTORE
