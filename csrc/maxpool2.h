/* VW windows of a max pooling by 2 x 2 windows moved by 2, or of its gradient's scatter,
 * for one dtype and one instruction set: simd.h includes this file (by simd_kernels.h) four times with
 *   T, NAME(f), TARGET, V, VW, ZERO, LOAD, STORE       as for conv_direct.h
 *   M, M_OR, M_AND, M_ANDNOT(a, b) = ~a & b, M_ALL      lane masks and their logic
 *   GT, EQ (ordered: false at a nan), ISNAN             comparisons giving masks
 *   SEL(m, a, b)                                        a where m is set, else b
 *   EVEN(a, b), ODD(a, b)   the even and the odd elements of the 2 VW elements a, b
 *   LO(e, o), HI(e, o)      e and o interleaved (e0 o0 e1 o1 ...): its first, second VW
 * (simd_kernels.h undefines them).
 *
 * Window w's elements p, q (one row) and r, t (the next) are x[at + 2w], x[at + 2w + 1],
 * x[at + W + 2w], x[at + W + 2w + 1] for the first VW/2 windows and the same from `at +
 * gap` for the others (gap = VW: one row of windows; 2W: two rows of W = VW elements).
 * Its value is the first element equal to the largest, or its first nan when it holds
 * one: kernels.h's window_max / first_max, computed with selects — the same bits. */

#define WINDOWS                                                                           \
    const V p = EVEN(LOAD(x + at), LOAD(x + at + gap));                                   \
    const V q = ODD(LOAD(x + at), LOAD(x + at + gap));                                    \
    const V r = EVEN(LOAD(x + at + W), LOAD(x + at + gap + W));                           \
    const V t = ODD(LOAD(x + at + W), LOAD(x + at + gap + W));                            \
    V m = p;                                                                              \
    m = SEL(GT(q, m), q, m);                                                              \
    m = SEL(GT(r, m), r, m);                                                              \
    m = SEL(GT(t, m), t, m);                                                              \
    const M np = ISNAN(p), nq = ISNAN(q), nr = ISNAN(r), nt = ISNAN(t);                   \
    const M nan = M_OR(M_OR(np, nq), M_OR(nr, nt))

/* POOL_MAX: the windows' values into o[out .. out + VW) */
__attribute__((target(TARGET))) static inline void NAME(max2)(const T *x, T *o, int64_t at,
                                                              int64_t gap, int64_t W,
                                                              int64_t out)
{
    WINDOWS;
    STORE(o + out, SEL(nan, SEL(np, p, SEL(nq, q, SEL(nr, r, t))), m));
}

/* POOL_MAX_SCATTER over tiling windows: o (x-shaped) holds 0 + g (as += gives it: -0
 * is 0) at each window's element and 0 at its others */
__attribute__((target(TARGET))) static inline void NAME(scatter2)(const T *x, const T *g, T *o,
                                                                  int64_t at, int64_t gap,
                                                                  int64_t W, int64_t out)
{
    WINDOWS;
    const M keep = M_ANDNOT(nan, M_ALL);  /* no nan: the first equal to the largest */
    const M hp = M_OR(M_AND(nan, np), M_AND(keep, EQ(p, m)));
    const M hq = M_ANDNOT(hp, M_OR(M_AND(nan, nq), M_AND(keep, EQ(q, m))));
    const M hr = M_ANDNOT(M_OR(hp, hq), M_OR(M_AND(nan, nr), M_AND(keep, EQ(r, m))));
    const M ht = M_ANDNOT(M_OR(M_OR(hp, hq), hr), M_ALL);
    const V v = ZERO + LOAD(g + out), z = ZERO;
    const V vp = SEL(hp, v, z), vq = SEL(hq, v, z), vr = SEL(hr, v, z), vt = SEL(ht, v, z);
    STORE(o + at, LO(vp, vq));
    STORE(o + at + gap, HI(vp, vq));
    STORE(o + at + W, LO(vr, vt));
    STORE(o + at + gap + W, HI(vr, vt));
}

/* Windows of `rows` rows of OW = W/2 each (input rows 2i, 2i + 1), VW at a time: every
 * row's first `*cols` windows, or with OW = VW/2 the first `*rows_done` rows whole (two
 * rows a vector).  What it leaves is the caller's. */
__attribute__((target(TARGET))) static void NAME(pool2)(int op, const T *x, const T *g, T *o,
                                                        int64_t rows, int64_t W,
                                                        int64_t *rows_done, int64_t *cols)
{
    const int64_t OW = W / 2;
    *rows_done = *cols = 0;
    if (OW >= VW) {
        *rows_done = rows;
        *cols = OW - OW % VW;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < *cols; j += VW) {
                if (op == FA_POOL_MAX)
                    NAME(max2)(x, o, 2 * i * W + 2 * j, VW, W, i * OW + j);
                else
                    NAME(scatter2)(x, g, o, 2 * i * W + 2 * j, VW, W, i * OW + j);
            }
    } else if (2 * OW == VW) {
        *rows_done = rows - rows % 2;
        *cols = OW;
        for (int64_t i = 0; i < *rows_done; i += 2) {
            if (op == FA_POOL_MAX)
                NAME(max2)(x, o, 2 * i * W, 2 * W, W, i * OW);
            else
                NAME(scatter2)(x, g, o, 2 * i * W, 2 * W, W, i * OW);
        }
    }
}
#undef WINDOWS
