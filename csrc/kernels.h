/* The kernels of one dtype.  run.c includes this file twice, with T = double and
 * T = float; SFX(name) gives each function its dtype suffix, MATH(f) picks the libm
 * function of that precision (sqrt or sqrtf) and DTYPE is its enum fa_dtype.
 * FA_CLONES kernels are built for AVX-512, AVX2 and the baseline and picked at run time:
 * with no FMA contraction (-ffp-contract=off) and no reassociation, every build gives
 * the same bits.  Element loops have no `restrict`: an output may be the same buffer as
 * a same-shaped input (in-place). */

/* numpy's pairwise summation (8 accumulators, blocks of 128), so sums round like np.sum. */
FA_CLONES static T SFX(pairwise)(const T *a, int64_t n)
{
    if (n < 8) {
        T res = 0;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        T r[8];
        int64_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return SFX(pairwise)(a, half) + SFX(pairwise)(a + half, n - half);
}

/* numpy's (or fastad's own) inner loop for math function `id` in this dtype (loops.h) */
#define LOOP(id) (&fa_loops[FA_LOOP_##id][DTYPE])

/* sigmoid by the reference's formula, e = exp(-|x|); r = 1/(1+e); x >= 0 ? r : e*r,
 * block by block through the exp loop: the same bits as fastad.ops.stable_sigmoid (the
 * SIMD tail of simd.h too, where it runs) */
FA_CLONES static void SFX(sigmoid)(const T *a, T *o, int64_t n)
{
    T e[FA_BLOCK];
    for (int64_t at = 0; at < n; at += FA_BLOCK) {
        const int64_t len = n - at < FA_BLOCK ? n - at : FA_BLOCK;
        const T *x = a + at;
        for (int64_t i = 0; i < len; i++)
            e[i] = -MATH(fabs)(x[i]);
        fa_call_unary(LOOP(EXP), e, e, len, sizeof(T));
        T *y = o + at;
        for (int64_t i = SFX(sigmoid_tail)(x, e, y, len); i < len; i++) {
            const T r = 1 / (1 + e[i]), er = e[i] * r;
            y[i] = x[i] >= 0 ? r : er;
        }
    }
}

/* -np.logaddexp(0, -x), block by block */
static void SFX(log_sigmoid)(const T *a, T *o, int64_t n)
{
    T t[FA_BLOCK];
    const T zero = 0;
    for (int64_t at = 0; at < n; at += FA_BLOCK) {
        const int64_t len = n - at < FA_BLOCK ? n - at : FA_BLOCK;
        for (int64_t i = 0; i < len; i++)
            t[i] = -a[at + i];
        fa_call_binary(LOOP(LOGADDEXP), &zero, 0, t, 1, t, 1, len, sizeof(T));
        for (int64_t i = 0; i < len; i++)
            o[at + i] = -t[i];
    }
}

FA_CLONES static void SFX(unary)(int op, const T *a, T *o, int64_t n)
{
    switch (op) {
    case FA_NEG:     for (int64_t i = 0; i < n; i++) o[i] = -a[i]; break;
    case FA_SQRT:    for (int64_t i = 0; i < n; i++) o[i] = MATH(sqrt)(a[i]); break;
    case FA_RELU:    for (int64_t i = 0; i < n; i++) o[i] = a[i] > 0 || a[i] != a[i] ? a[i] : 0; break;
    case FA_EXP:     fa_call_unary(LOOP(EXP), a, o, n, sizeof(T)); break;
    case FA_LN:      fa_call_unary(LOOP(LOG), a, o, n, sizeof(T)); break;
    case FA_TANH:    fa_call_unary(LOOP(TANH), a, o, n, sizeof(T)); break;
    case FA_SIN:     fa_call_unary(LOOP(SIN), a, o, n, sizeof(T)); break;
    case FA_COS:     fa_call_unary(LOOP(COS), a, o, n, sizeof(T)); break;
    case FA_ABS:     for (int64_t i = 0; i < n; i++) o[i] = MATH(fabs)(a[i]); break;
    case FA_SIGN:    for (int64_t i = 0; i < n; i++) o[i] = a[i] > 0 ? 1 : a[i] < 0 ? -1 : a[i] == 0 ? 0 : a[i]; break;
    case FA_SIGMOID: SFX(sigmoid)(a, o, n); break;
    case FA_SQUARE:  for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i]; break;
    case FA_LOG1P:   fa_call_unary(LOOP(LOG1P), a, o, n, sizeof(T)); break;
    case FA_EXPM1:   fa_call_unary(LOOP(EXPM1), a, o, n, sizeof(T)); break;
    case FA_SOFTPLUS: {  /* np.logaddexp(0, x) */
        const T zero = 0;
        fa_call_binary(LOOP(LOGADDEXP), &zero, 0, a, 1, o, 1, n, sizeof(T));
        break;
    }
    case FA_LOG_SIGMOID: SFX(log_sigmoid)(a, o, n); break;
    }
}

FA_CLONES static void SFX(byconst)(int op, const T *a, T c, T c2, T *o, int64_t n)
{
    switch (op) {
    case FA_CLIP:         fa_call_clip(LOOP(CLIP), a, &c, &c2, o, n, sizeof(T)); break;
    case FA_ADD_BYCONST:  for (int64_t i = 0; i < n; i++) o[i] = a[i] + c; break;
    case FA_SUB_BYCONST:  for (int64_t i = 0; i < n; i++) o[i] = a[i] - c; break;
    case FA_RSUB_BYCONST: for (int64_t i = 0; i < n; i++) o[i] = c - a[i]; break;
    case FA_MUL_BYCONST:  for (int64_t i = 0; i < n; i++) o[i] = a[i] * c; break;
    case FA_DIV_BYCONST:  for (int64_t i = 0; i < n; i++) o[i] = a[i] / c; break;
    case FA_RDIV_BYCONST: for (int64_t i = 0; i < n; i++) o[i] = c / a[i]; break;
    case FA_POW_BYCONST:  fa_call_by_scalar(LOOP(POWER), a, &c, o, n, sizeof(T)); break;
    }
}

/* One element of a UNARY or CONST op that needs no loop (kinds.h: FAST_UNS), as the
 * loops above compute it. */
static inline T SFX(elem1)(int op, T x, T c)
{
    switch (op) {
    case FA_NEG:          return -x;
    case FA_SQRT:         return MATH(sqrt)(x);
    case FA_RELU:         return x > 0 || x != x ? x : 0;
    case FA_ABS:          return MATH(fabs)(x);
    case FA_SIGN:         return x > 0 ? 1 : x < 0 ? -1 : x == 0 ? 0 : x;
    case FA_SQUARE:       return x * x;
    case FA_ADD_BYCONST:  return x + c;
    case FA_SUB_BYCONST:  return x - c;
    case FA_RSUB_BYCONST: return c - x;
    case FA_MUL_BYCONST:  return x * c;
    case FA_DIV_BYCONST:  return x / c;
    default:              return c / x;  /* FA_RDIV_BYCONST */
    }
}

/* One row of a broadcasting binary op: x = a[i*sa], y = b[i*sb], out[i*so] = EXPR.
 * The stride-1 and broadcast-scalar cases get loops the compiler vectorises (they read
 * the scalar first: len >= 1). */
#define BINARY_ROW(EXPR)                                                          \
    do {                                                                          \
        if (sa == 1 && sb == 1 && so == 1)                                        \
            for (int64_t i = 0; i < len; i++) { T x = a[i], y = b[i]; o[i] = (EXPR); } \
        else if (sa == 1 && sb == 0 && so == 1) {                                 \
            const T y = b[0];                                                     \
            for (int64_t i = 0; i < len; i++) { T x = a[i]; o[i] = (EXPR); }      \
        } else if (sa == 0 && sb == 1 && so == 1) {                               \
            const T x = a[0];                                                     \
            for (int64_t i = 0; i < len; i++) { T y = b[i]; o[i] = (EXPR); }      \
        } else                                                                    \
            for (int64_t i = 0; i < len; i++) {                                   \
                T x = a[i * sa], y = b[i * sb]; o[i * so] = (EXPR);               \
            }                                                                     \
    } while (0)

FA_CLONES static void SFX(binary_row)(int op, const T *a, int64_t sa, const T *b, int64_t sb,
                            T *o, int64_t so, int64_t len)
{
    switch (op) {
    case FA_ADD:       BINARY_ROW(x + y); break;
    case FA_SUB:       BINARY_ROW(x - y); break;
    case FA_MUL:       BINARY_ROW(x * y); break;
    case FA_DIV:       BINARY_ROW(x / y); break;
    case FA_RELU_GRAD: BINARY_ROW(x > 0 ? y : 0); break;
    case FA_LESS:          BINARY_ROW(x < y ? 1 : 0); break;
    case FA_LESS_EQUAL:    BINARY_ROW(x <= y ? 1 : 0); break;
    case FA_GREATER:       BINARY_ROW(x > y ? 1 : 0); break;
    case FA_GREATER_EQUAL: BINARY_ROW(x >= y ? 1 : 0); break;
    case FA_EQUAL:         BINARY_ROW(x == y ? 1 : 0); break;
    case FA_MAXIMUM: fa_call_binary(LOOP(MAXIMUM), a, sa, b, sb, o, so, len, sizeof(T)); break;
    case FA_MINIMUM: fa_call_binary(LOOP(MINIMUM), a, sa, b, sb, o, so, len, sizeof(T)); break;
    case FA_POWER:   fa_call_binary(LOOP(POWER), a, sa, b, sb, o, so, len, sizeof(T)); break;
    }
}

/* One element, as binary_row computes it (small programs are mostly these). */
static inline T SFX(binary1)(int op, T x, T y)
{
    switch (op) {
    case FA_ADD:  return x + y;
    case FA_SUB:  return x - y;
    case FA_MUL:  return x * y;
    case FA_DIV:  return x / y;
    case FA_LESS:          return x < y ? 1 : 0;
    case FA_LESS_EQUAL:    return x <= y ? 1 : 0;
    case FA_GREATER:       return x > y ? 1 : 0;
    case FA_GREATER_EQUAL: return x >= y ? 1 : 0;
    case FA_EQUAL:         return x == y ? 1 : 0;
    default:      return x > 0 ? y : 0;  /* FA_RELU_GRAD */
    }
}

/* FAST_UNS and FAST_BINS (kinds.h): a few elements, inline, as the kernels compute them.
 * An output may be its same-shaped input (in place): element i is read before written. */
FA_INLINE void SFX(unary_few)(const fa_instr *ins, char *const *slots)
{
    const T *a = (const T *)slots[ins->a];
    T *o = (T *)slots[ins->out];
    const T c = (T)ins->c;
    for (int64_t i = 0; i < ins->n; i++)
        o[i] = SFX(elem1)(ins->op, a[i], c);
}

FA_INLINE void SFX(binary_few)(const fa_instr *ins, char *const *slots)
{
    const T *a = (const T *)slots[ins->a], *b = (const T *)slots[ins->b];
    T *o = (T *)slots[ins->out];
    if (ins->ndim != 1) {  /* one element: every operand at offset 0 */
        o[0] = SFX(binary1)(ins->op, a[0], b[0]);
        return;
    }
    const int64_t sa = ins->sa[0], sb = ins->sb[0], so = ins->so[0];
    for (int64_t i = 0; i < ins->shape[0]; i++)
        o[i * so] = SFX(binary1)(ins->op, a[i * sa], b[i * sb]);
}

static void SFX(binary)(const fa_instr *ins, const T *a, const T *b, T *o)
{
    const int nd = ins->ndim;
    if (nd == 0) {
        if (binary_uses_loop(ins->op))
            SFX(binary_row)(ins->op, a, 0, b, 0, o, 0, 1);
        else
            o[0] = SFX(binary1)(ins->op, a[0], b[0]);
        return;
    }
    const int64_t sa = ins->sa[nd - 1], sb = ins->sb[nd - 1], so = ins->so[nd - 1];
    if (nd == 1) {
        if (ins->shape[0] > 0)  /* an empty loop reads no operand */
            SFX(binary_row)(ins->op, a, sa, b, sb, o, so, ins->shape[0]);
        return;
    }
    FOR_EACH_ROW(ins, SFX(binary_row)(ins->op, a + ia, sa, b + ib, sb, o + io, so, len));
}

FA_CLONES static void SFX(copy)(const fa_instr *ins, const T *a, T *o)
{
    const int nd = ins->ndim;
    const int64_t sa = nd ? ins->sa[nd - 1] : 0, so = nd ? ins->so[nd - 1] : 0;
    FOR_EACH_ROW(ins, {
        const T *x = a + ia;
        T *y = o + io;
        if (sa == 1 && so == 1)
            memmove(y, x, (size_t)len * sizeof(T));
        else if (sa == 0 && so == 1)
            for (int64_t i = 0; i < len; i++) y[i] = x[0];
        else
            for (int64_t i = 0; i < len; i++) y[i * so] = x[i * sa];
    });
}

/* CAST_*: the broadcasting copy from the other precision to T. */
FA_CLONES static void SFX(cast)(const fa_instr *ins, const char *a, T *o)
{
    const OTHER *src = (const OTHER *)a;
    const int nd = ins->ndim;
    const int64_t sa = nd ? ins->sa[nd - 1] : 0, so = nd ? ins->so[nd - 1] : 0;
    FOR_EACH_ROW(ins, {
        for (int64_t i = 0; i < len; i++) o[io + i * so] = (T)src[ia + i * sa];
    });
}

/* The value a reduction starts from: 0 for SUM, -inf (+inf) for REDUCE_MAX (MIN). */
static T SFX(reduce_start)(int op)
{
    return op == FA_SUM ? 0 : op == FA_REDUCE_MAX ? -INFINITY : INFINITY;
}

static void SFX(reduce_init)(const fa_instr *ins, T *o)
{
    const T v = SFX(reduce_start)(ins->op);
    for (int64_t i = 0; i < ins->n; i++)
        o[i] = v;
}

/* max (min) of acc and v, a nan winning: numpy's order for ties of 0 and -0 */
static inline T SFX(extreme)(int op, T acc, T v)
{
    if (op == FA_REDUCE_MAX)
        return v > acc || v != v ? v : acc;
    return v < acc || v != v ? v : acc;
}

/* out[io] (+)= a[ia] over the loop, summed axes having out stride 0; the n outputs start
 * from reduce_start.  A summed innermost axis is added pairwise, as numpy does. */
FA_CLONES static void SFX(sum)(const fa_instr *ins, const T *a, T *o)
{
    const int nd = ins->ndim, op = ins->op;
    const int64_t sa = nd ? ins->sa[nd - 1] : 0, so = nd ? ins->so[nd - 1] : 0;
    SFX(reduce_init)(ins, o);
    if (op != FA_SUM) {
        FOR_EACH_ROW(ins, {
            const T *x = a + ia;
            T *y = o + io;
            for (int64_t i = 0; i < len; i++)
                y[i * so] = SFX(extreme)(op, y[i * so], x[i * sa]);
        });
        return;
    }
    FOR_EACH_ROW(ins, {
        const T *x = a + ia;
        T *y = o + io;
        if (so == 0 && sa == 1)
            y[0] += SFX(pairwise)(x, len);
        else if (so == 1 && sa == 1)  /* a row added to a row of sums: vectorises */
            for (int64_t i = 0; i < len; i++) y[i] += x[i];
        else
            for (int64_t i = 0; i < len; i++) y[i * so] += x[i * sa];
    });
}

/* GATHER: out(m, K, n) = a(m, k, n) at the K int64 indices of idx along the middle
 * axis; SCATTER_ADD: out(m, k, n) = 0, then the rows of a(m, K, n) added there, in
 * order.  An index out of [0, k) (never from fastad.lowering) reads zeros, writes none. */
static void SFX(index)(const fa_instr *ins, const T *a, const int64_t *idx, T *o)
{
    const int64_t P = ins->m, Q = ins->n, L = ins->k, K = ins->shape[0];
    if (ins->op == FA_SCATTER_ADD)
        memset(o, 0, (size_t)(P * L * Q) * sizeof(T));
    for (int64_t p = 0; p < P; p++)
        for (int64_t kk = 0; kk < K; kk++) {
            const int64_t j = idx[kk];
            const int ok = j >= 0 && j < L;
            if (ins->op == FA_GATHER) {
                T *dst = o + (p * K + kk) * Q;
                if (ok)
                    memcpy(dst, a + (p * L + j) * Q, (size_t)Q * sizeof(T));
                else
                    memset(dst, 0, (size_t)Q * sizeof(T));
            } else if (ok) {
                const T *src = a + (p * K + kk) * Q;
                T *dst = o + (p * L + j) * Q;
                for (int64_t q = 0; q < Q; q++)
                    dst[q] += src[q];
            }
        }
}

/* Rows [r0, r1) of a product's output by gemm (run.c cuts a long one into such blocks). */
static void SFX(gemm_rows)(const fa_instr *ins, const T *a, const T *b, T *o, int64_t r0,
                           int64_t r1)
{
    const int64_t m = ins->m, n = ins->n, k = ins->k;
    const blasint lda = (blasint)(ins->trans_a ? m : k), ldb = (blasint)(ins->trans_b ? k : n);
    GEMM(CblasRowMajor, ins->trans_a ? CblasTrans : CblasNoTrans,
         ins->trans_b ? CblasTrans : CblasNoTrans, (blasint)(r1 - r0), (blasint)n, (blasint)k,
         1, ins->trans_a ? a + r0 : a + r0 * k, lda, b, ldb, 0, o + r0 * n, (blasint)n);
}

static void SFX(matmul)(const fa_instr *ins, const T *a, const T *b, T *o)
{
    const int64_t m = ins->m, n = ins->n, k = ins->k;
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        memset(o, 0, (size_t)(m * n) * sizeof(T));
        return;
    }
    if (m == 1 && n == 1) {  /* a row times a column: a dot product, as numpy's matmul */
        *o = DOT((blasint)k, a, 1, b, 1);
        return;
    }
    const blasint lda = (blasint)(ins->trans_a ? m : k), ldb = (blasint)(ins->trans_b ? k : n);
    /* matrix-vector products go to gemv, as numpy's matmul does: gemm with one unit
     * dimension packs the whole matrix and runs several times slower */
    if (n == 1) {  /* out(m) = op(A) b */
        GEMV(CblasRowMajor, ins->trans_a ? CblasTrans : CblasNoTrans,
             (blasint)(ins->trans_a ? k : m), (blasint)(ins->trans_a ? m : k), 1, a, lda, b, 1, 0, o, 1);
        return;
    }
    if (m == 1) {  /* out(n) = op(B)^T a */
        GEMV(CblasRowMajor, ins->trans_b ? CblasNoTrans : CblasTrans,
             (blasint)(ins->trans_b ? n : k), (blasint)(ins->trans_b ? k : n), 1, b, ldb, a, 1, 0, o, 1);
        return;
    }
    SFX(gemm_rows)(ins, a, b, o, 0, m);
}

/* A stack of matmuls: one per element of the batch loop over ins->shape (a single one
 * for ndim 0), the batch strides counting elements. */
static void SFX(matmul_stack)(const fa_instr *ins, const T *a, const T *b, T *o)
{
    const int nd = ins->ndim;
    if (nd == 0) {
        SFX(matmul)(ins, a, b, o);
        return;
    }
    const int64_t sa = ins->sa[nd - 1], sb = ins->sb[nd - 1], so = ins->so[nd - 1];
    FOR_EACH_ROW(ins, {
        for (int64_t i = 0; i < len; i++)
            SFX(matmul)(ins, a + ia + i * sa, b + ib + i * sb, o + io + i * so);
    });
}

/* ---- convolution: im2col and gemm.  cols(C*KH*KW, N*OH*OW): row (c, i, j), column
 * (n, oh, ow) holds x[n, c, oh*s + i - p, ow*s + j - p] (0 outside).  Row (c, i, j)
 * is a block of Q = OH*OW entries per image: the part of the (n, c) plane that kernel
 * offset (i, j) sees, with zeros where it falls in the padding. ---- */
typedef struct {
    int64_t n, c, h, w, o, kh, kw, s, p, oh, ow;
} SFX(geometry);

static SFX(geometry) SFX(conv_geometry)(const fa_instr *ins)
{
    const int64_t *g = ins->geom;
    SFX(geometry) G = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], 0, 0};
    G.oh = window_count(G.h, G.kh, G.s, G.p);
    G.ow = window_count(G.w, G.kw, G.s, G.p);
    return G;
}

/* What kernel offset (i, j) sees: the outputs whose input row oh*s + dy and column
 * ow*s + dx fall inside the image are those with oh in [oh0, oh1), ow in [ow0, ow1).
 * `shifted` (stride 1, OW == W): output d = oh*W + ow reads input d + shift of its
 * plane, so that a block is one masked copy. */
typedef struct {
    int64_t dy, dx, oh0, oh1, ow0, ow1, shift;
    int shifted;
} SFX(window);

/* [first, end) of the o in [0, count) with 0 <= o*s + off < len (first == end if none) */
static void SFX(valid_span)(int64_t off, int64_t s, int64_t len, int64_t count, int64_t *first,
                            int64_t *end)
{
    int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s, hi = len - off <= 0 ? 0 : (len - off + s - 1) / s;
    lo = lo < count ? lo : count;
    hi = hi < count ? hi : count;
    *first = lo;
    *end = hi > lo ? hi : lo;
}

static SFX(window) SFX(window_of)(const SFX(geometry) *g, int64_t i, int64_t j)
{
    SFX(window) r = {.dy = i - g->p, .dx = j - g->p};
    SFX(valid_span)(r.dy, g->s, g->h, g->oh, &r.oh0, &r.oh1);
    SFX(valid_span)(r.dx, g->s, g->w, g->ow, &r.ow0, &r.ow1);
    r.shifted = g->s == 1 && g->ow == g->w;
    r.shift = r.dy * g->w + r.dx;
    return r;
}

/* mask (Q entries): 1 where window r sees the image, 0 in the padding */
static void SFX(window_mask)(const SFX(geometry) *g, const SFX(window) *r, T *mask)
{
    for (int64_t oh = 0; oh < g->oh; oh++)
        for (int64_t ow = 0; ow < g->ow; ow++)
            mask[oh * g->ow + ow] = oh >= r->oh0 && oh < r->oh1 && ow >= r->ow0 && ow < r->ow1;
}

/* `count` shifted blocks, one per image: block t is dst[t*q + d] = mask[d] ? x[at + d] : 0
 * for d < q, with at = first + t*step, x having `size` elements.  Where the mask is 1,
 * x[at + d] is in the block's plane; elsewhere it may be in a neighbouring plane (read,
 * not used): only the blocks at the ends of x are cut.  (One call per kernel offset and
 * channel, not per image: a clone's call is indirect.) */
FA_CLONES static void SFX(im2col_shifted)(const T *x, int64_t size, int64_t first, int64_t step,
                                          int64_t count, const T *mask, int64_t q, T *dst)
{
    for (int64_t t = 0; t < count; t++, dst += q) {
        const int64_t at = first + t * step;
        if (at >= 0 && at + q <= size) {
            const T *src = x + at;
            for (int64_t d = 0; d < q; d++)
                dst[d] = mask[d] != 0 ? src[d] : 0;
            continue;
        }
        for (int64_t d = 0; d < q; d++)
            dst[d] = at + d >= 0 && at + d < size && mask[d] != 0 ? x[at + d] : 0;
    }
}

/* x[at + d] += src[t*q + d] where the mask is 1, for the blocks of im2col_shifted (the
 * adjoint).  Elsewhere x keeps its value, -0 included, but a neighbouring plane's
 * element is written back: blocks of one x must not run in parallel. */
FA_CLONES static void SFX(col2im_shifted)(const T *src, const T *mask, int64_t q, T *x,
                                          int64_t size, int64_t first, int64_t step,
                                          int64_t count)
{
    for (int64_t t = 0; t < count; t++, src += q) {
        const int64_t at = first + t * step;
        if (at >= 0 && at + q <= size) {
            T *dst = x + at;
            for (int64_t d = 0; d < q; d++)
                dst[d] = mask[d] != 0 ? dst[d] + src[d] : dst[d];
            continue;
        }
        for (int64_t d = 0; d < q; d++)
            if (at + d >= 0 && at + d < size && mask[d] != 0)
                x[at + d] += src[d];
    }
}

/* dst (Q entries) = what window r sees of plane (H*W), row by row (any stride) */
static void SFX(im2col_rows)(const SFX(geometry) *g, const SFX(window) *r, const T *plane,
                             T *dst)
{
    const int64_t OW = g->ow, s = g->s;
    memset(dst, 0, (size_t)(g->oh * OW) * sizeof(T));
    for (int64_t oh = r->oh0; oh < r->oh1; oh++) {
        T *row = dst + oh * OW;
        const int64_t from = (oh * s + r->dy) * g->w + r->dx;  /* + ow * s: in the plane */
        for (int64_t ow = r->ow0; ow < r->ow1; ow++)
            row[ow] = plane[from + ow * s];
    }
}

/* plane += the entries of block src where window r took them (the adjoint) */
static void SFX(col2im_rows)(const SFX(geometry) *g, const SFX(window) *r, const T *src,
                             T *plane)
{
    const int64_t OW = g->ow, s = g->s;
    for (int64_t oh = r->oh0; oh < r->oh1; oh++) {
        const T *row = src + oh * OW;
        const int64_t to = (oh * s + r->dy) * g->w + r->dx;
        for (int64_t ow = r->ow0; ow < r->ow1; ow++)
            plane[to + ow * s] += row[ow];
    }
}

/* cols from x; mask: Q elements of scratch */
static void SFX(im2col)(const SFX(geometry) *g, const T *x, T *cols, T *mask)
{
    const int64_t q = g->oh * g->ow, np = g->n * q, hw = g->h * g->w, size = g->n * g->c * hw;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            const SFX(window) r = SFX(window_of)(g, i, j);
            if (r.shifted)
                SFX(window_mask)(g, &r, mask);
            for (int64_t c = 0; c < g->c; c++) {
                T *row = cols + ((c * g->kh + i) * g->kw + j) * np;
                if (r.shifted) {
                    SFX(im2col_shifted)(x, size, c * hw + r.shift, g->c * hw, g->n, mask, q, row);
                    continue;
                }
                for (int64_t n = 0; n < g->n; n++)
                    SFX(im2col_rows)(g, &r, x + (n * g->c + c) * hw, row + n * q);
            }
        }
}

/* x (zeroed here) += cols put back where im2col took them, kernel offset by offset in
 * order; mask: Q elements of scratch */
static void SFX(col2im)(const SFX(geometry) *g, const T *cols, T *x, T *mask)
{
    const int64_t q = g->oh * g->ow, np = g->n * q, hw = g->h * g->w, size = g->n * g->c * hw;
    memset(x, 0, (size_t)size * sizeof(T));
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            const SFX(window) r = SFX(window_of)(g, i, j);
            if (r.shifted)
                SFX(window_mask)(g, &r, mask);
            for (int64_t c = 0; c < g->c; c++) {
                const T *row = cols + ((c * g->kh + i) * g->kw + j) * np;
                if (r.shifted) {
                    SFX(col2im_shifted)(row, mask, q, x, size, c * hw + r.shift, g->c * hw, g->n);
                    continue;
                }
                for (int64_t n = 0; n < g->n; n++)
                    SFX(col2im_rows)(g, &r, row + n * q, x + (n * g->c + c) * hw);
            }
        }
}

/* (N, O, OH*OW) <-> (O, N*OH*OW) */
static void SFX(to_channels)(const SFX(geometry) *g, const T *nchw, T *cn, int to)
{
    const int64_t q = g->oh * g->ow;
    for (int64_t n = 0; n < g->n; n++)
        for (int64_t o = 0; o < g->o; o++) {
            T *a = cn + (o * g->n + n) * q;
            T *b = (T *)nchw + (n * g->o + o) * q;
            if (to)
                memcpy(a, b, (size_t)q * sizeof(T));
            else
                memcpy(b, a, (size_t)q * sizeof(T));
        }
}

/* o (m x n, rows ldc apart) = beta * o + op(a) @ op(b), row-major, beta 0 or 1 */
static void SFX(gemm)(int ta, int tb, int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
                      const T *b, int64_t ldb, T beta, T *o, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        if (beta == 0)
            for (int64_t i = 0; i < m; i++)
                memset(o + i * ldc, 0, (size_t)n * sizeof(T));
        return;
    }
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
         (blasint)m, (blasint)n, (blasint)k, 1, a, (blasint)lda, b, (blasint)ldb, beta, o,
         (blasint)ldc);
}

/* One gemm per image (its Q columns of cols, its (O, Q) block of the NCHW data) instead
 * of one over the batch: as fast where the per-image products are small enough for
 * OpenBLAS's small-matrix kernels and not too thin (measured on AVX-512 with
 * scipy-openblas, W8's layers among them), and it spares the copies between NCHW and
 * the batch gemm's (O, N*Q) layout. */
static int SFX(per_image)(const SFX(geometry) *g)
{
    const double q = (double)(g->oh * g->ow);  /* in double: the product may pass 2^63 */
    return q >= 16 && (double)g->o * (double)(g->c * g->kh * g->kw) * q <= 1 << 20;
}

/* CONV2D: out = conv(a = X, b = W); CONV2D_GRAD_INPUT: out = dX from a = G, b = W;
 * CONV2D_GRAD_FILTER: out = dW from a = G, b = X.  scratch: cols (C*KH*KW * N*OH*OW),
 * then chan (O * N*OH*OW): G or the output by channel for a gemm over the batch, and
 * im2col's and col2im's mask while it is free. */
static void SFX(conv)(const fa_instr *ins, const T *a, const T *b, T *scratch, T *o)
{
    const SFX(geometry) g = SFX(conv_geometry)(ins);
    const int64_t ckk = g.c * g.kh * g.kw, q = g.oh * g.ow, np = g.n * q, oq = g.o * q;
    T *cols = scratch, *chan = scratch + ckk * np;
    if (np == 0 || g.o == 0) {  /* no room for the mask, nothing to add up: zeros */
        const int64_t size = ins->op == FA_CONV2D ? 0 : ins->op == FA_CONV2D_GRAD_INPUT
            ? g.n * g.c * g.h * g.w : g.o * ckk;
        memset(o, 0, (size_t)size * sizeof(T));
        return;
    }
    const int per_image = SFX(per_image)(&g);
    switch (ins->op) {
    case FA_CONV2D: {                                       /* W(O, CKK) @ cols */
        const int isa = conv_direct_isa(ins);               /* simd.h */
        if (isa) {
            SFX(conv_direct)(isa, ins->geom, a, b, scratch, o);
            break;
        }
        SFX(im2col)(&g, a, cols, chan);
        if (per_image)
            for (int64_t n = 0; n < g.n; n++)
                SFX(gemm)(0, 0, g.o, q, ckk, b, ckk, cols + n * q, np, 0, o + n * oq, q);
        else {
            SFX(gemm)(0, 0, g.o, np, ckk, b, ckk, cols, np, 0, chan, np);
            SFX(to_channels)(&g, o, chan, 0);
        }
        break;
    }
    case FA_CONV2D_GRAD_INPUT:                              /* W^T @ G(O, NP) */
        if (per_image)
            for (int64_t n = 0; n < g.n; n++)
                SFX(gemm)(1, 0, ckk, q, g.o, b, ckk, a + n * oq, q, 0, cols + n * q, np);
        else {
            SFX(to_channels)(&g, a, chan, 1);
            SFX(gemm)(1, 0, ckk, np, g.o, b, ckk, chan, np, 0, cols, np);
        }
        SFX(col2im)(&g, cols, o, chan);
        break;
    default:  /* FA_CONV2D_GRAD_FILTER */                  /* G(O, NP) @ cols^T */
        SFX(im2col)(&g, b, cols, chan);
        if (per_image)
            for (int64_t n = 0; n < g.n; n++)
                SFX(gemm)(0, 1, g.o, ckk, q, a + n * oq, q, cols + n * q, np, n ? 1 : 0, o, ckk);
        else {
            SFX(to_channels)(&g, a, chan, 1);
            SFX(gemm)(0, 1, g.o, ckk, np, chan, np, cols, np, 0, o, ckk);
        }
    }
}

/* ---- pooling over k x k windows moved by s, NCHW, no padding ---- */

/* The largest element of the window at `top` of a plane W wide, the first of equals;
 * *nan tells whether the window holds a nan (which the result then is not). */
FA_INLINE T SFX(window_max)(const T *plane, int64_t top, int64_t W, int64_t k, int *nan)
{
    T m = plane[top];
    int seen = 0;
    for (int64_t u = 0; u < k; u++)
        for (int64_t w = 0; w < k; w++) {
            const T cur = plane[top + u * W + w];
            m = cur > m ? cur : m;
            seen |= cur != cur;
        }
    *nan = seen;
    return m;
}

/* The position of the window's first largest element (its first nan if it has one, as
 * np.argmax has it).  Without branches on the data, as where the largest is is random:
 * the largest, then the first place that holds it, searched backwards. */
FA_INLINE int64_t SFX(first_max)(const T *plane, int64_t top, int64_t W, int64_t k)
{
    int nan;
    const T m = SFX(window_max)(plane, top, W, k, &nan);
    int64_t best = top;
    for (int64_t u = k - 1; u >= 0; u--)
        for (int64_t w = k - 1; w >= 0; w--) {
            const int64_t at = top + u * W + w;
            const T cur = plane[at];
            best = (nan ? cur != cur : cur == m) ? at : best;
        }
    return best;
}

/* Max pooling's window at `top` of `plane` (W wide): POOL_MAX puts its value at o[out],
 * GATHER a's element at its largest (a x-shaped), SCATTER g = a's [out] there in the
 * x-shaped o (`tiled`: and 0 at its other elements). */
FA_INLINE void SFX(max_window)(int op, const T *plane, const T *a, T *o, int64_t top,
                               int64_t out, int64_t W, int64_t k, int tiled)
{
    if (op == FA_POOL_MAX) {
        int nan;
        const T m = SFX(window_max)(plane, top, W, k, &nan);
        o[out] = nan ? plane[SFX(first_max)(plane, top, W, k)] : m;
    } else if (op == FA_POOL_MAX_GATHER) {
        o[out] = a[SFX(first_max)(plane, top, W, k)];
    } else if (tiled) {  /* SCATTER: the window's own elements: 0, and g at the largest */
        const int64_t best = SFX(first_max)(plane, top, W, k);
        for (int64_t u = 0; u < k; u++)
            for (int64_t w = 0; w < k; w++)
                o[top + u * W + w] = 0;
        o[best] = 0 + a[out];  /* as += does it: 0 + -0 is 0 */
    } else {
        o[SFX(first_max)(plane, top, W, k)] += a[out];
    }
}

/* The pooling of planes (N*C of them, H x W) by k x k windows moved by s: x the data,
 * a the gradient (SCATTER, AVG_GRAD) or GATHER's t.  `tiled`: the windows cover each
 * plane once, so that SCATTER writes every element once (else o starts at 0 and SCATTER
 * adds).  Inlined where k is a constant. */
FA_INLINE void SFX(pool_planes)(int op, const T *x, const T *a, T *o, int64_t planes, int64_t H,
                                int64_t W, int64_t k, int64_t s, int tiled)
{
    const int64_t OH = window_count(H, k, s, 0), OW = window_count(W, k, s, 0);
    const T kk = (T)(k * k);
    for (int64_t nc = 0; nc < planes; nc++) {
        const T *plane = x + nc * H * W;
        T *big = o + nc * H * W;                         /* SCATTER, AVG_GRAD: out is x-shaped */
        const T *g = a + nc * OH * OW, *t = a + nc * H * W;  /* the gradient; GATHER's t */
        T *small = o + nc * OH * OW;
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                const int64_t top = i * s * W + j * s, out = i * OW + j;
                switch (op) {
                case FA_POOL_MAX:
                case FA_POOL_MAX_GATHER:
                    SFX(max_window)(op, plane, t, small, top, out, W, k, tiled);
                    break;
                case FA_POOL_MAX_SCATTER:
                    SFX(max_window)(op, plane, g, big, top, out, W, k, tiled);
                    break;
                case FA_POOL_AVG: {
                    T sum = 0;
                    for (int64_t u = 0; u < k; u++)
                        for (int64_t w = 0; w < k; w++)
                            sum += plane[top + u * W + w];
                    small[out] = sum / kk;
                    break;
                }
                default: {  /* FA_POOL_AVG_GRAD */
                    const T share = g[out] / kk;
                    for (int64_t u = 0; u < k; u++)
                        for (int64_t w = 0; w < k; w++)
                            big[top + u * W + w] += share;
                }
                }
            }
    }
}

static void SFX(pool)(const fa_instr *ins, const T *a, const T *b, T *o)
{
    const int64_t N = ins->geom[0], C = ins->geom[1], H = ins->geom[2], W = ins->geom[3];
    const int64_t k = ins->geom[4], s = ins->geom[5];
    const int op = ins->op, tiled = s == k && H % k == 0 && W % k == 0;
    if ((op == FA_POOL_MAX_SCATTER && !tiled) || op == FA_POOL_AVG_GRAD)
        memset(o, 0, (size_t)(N * C * H * W) * sizeof(T));
    const T *x = op == FA_POOL_MAX_SCATTER || op == FA_POOL_MAX_GATHER ? b : a;
    if (k == 2 && s == 2 && tiled && (op == FA_POOL_MAX || op == FA_POOL_MAX_SCATTER)) {
        /* the commonest: planes follow each other, so windows go by rows of OW over all
         * N*C*H/2 of them; the SIMD kernels' (simd.h), and the windows they leave here */
        const int64_t rows = N * C * H / 2, OW = W / 2;
        int64_t rows_done, cols;
        SFX(pool2)(op, x, a, o, rows, W, &rows_done, &cols);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = i < rows_done ? cols : 0; j < OW; j++)
                SFX(max_window)(op, x, a, o, 2 * i * W + 2 * j, i * OW + j, W, 2, 1);
        return;
    }
    if (k == 2)  /* the usual window: its loops unrolled */
        SFX(pool_planes)(op, x, a, o, N * C, H, W, 2, s, tiled);
    else
        SFX(pool_planes)(op, x, a, o, N * C, H, W, k, s, tiled);
}

/* softmax / log_softmax of each of the m rows of n elements, in passes over all rows:
 * x - (row max), one exp loop call, then per row the pairwise sum and a division
 * (softmax), or the log of the row sums in one loop call and a subtraction
 * (log_softmax, which puts exp into b: m*n elements, and the sums at its start).  The
 * formulas, loops and summation order of fastad.ops.softmax / log_softmax: their bits. */
FA_CLONES static void SFX(rows)(const fa_instr *ins, const T *a, T *scratch, T *o)
{
    const int64_t n = ins->n, m = ins->m;
    for (int64_t r = 0; r < m; r++) {
        const T *x = a + r * n;
        T *y = o + r * n;
        T top = x[0];
        for (int64_t j = 1; j < n; j++)
            if (x[j] > top || x[j] != x[j])  /* a nan wins and stays, as in np.max */
                top = x[j];
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j] - top;
    }
    if (ins->op == FA_SOFTMAX) {
        fa_call_unary(LOOP(EXP), o, o, m * n, sizeof(T));
        for (int64_t r = 0; r < m; r++) {
            T *y = o + r * n;
            const T total = SFX(pairwise)(y, n);
            for (int64_t j = 0; j < n; j++)
                y[j] = y[j] / total;
        }
        return;
    }
    fa_call_unary(LOOP(EXP), o, scratch, m * n, sizeof(T));
    for (int64_t r = 0; r < m; r++)  /* row r's sum goes where rows <= r were */
        scratch[r] = SFX(pairwise)(scratch + r * n, n);
    fa_call_unary(LOOP(LOG), scratch, scratch, m, sizeof(T));
    for (int64_t r = 0; r < m; r++) {
        T *y = o + r * n;
        const T log_total = scratch[r];
        for (int64_t j = 0; j < n; j++)
            y[j] = y[j] - log_total;
    }
}

/* SELECT: out = cond != 0 ? a : b over the broadcasting loop (np.where's truth: a nan
 * condition picks a). */
FA_CLONES static void SFX(select)(const fa_instr *ins, const T *cond, const T *a, const T *b,
                                  T *o)
{
    const int nd = ins->ndim;
    const int64_t sa = nd ? ins->sa[nd - 1] : 0, sb = nd ? ins->sb[nd - 1] : 0;
    const int64_t sx = nd ? ins->sx[nd - 1] : 0, so = nd ? ins->so[nd - 1] : 0;
    FOR_EACH_ROW(ins, {
        for (int64_t i = 0; i < len; i++)
            o[io + i * so] = cond[ix + i * sx] != 0 ? a[ia + i * sa] : b[ib + i * sb];
    });
}

static void SFX(execute)(const fa_instr *ins, const char *a, const char *b, const char *c,
                         char *o)
{
    const T *x = (const T *)a, *y = (const T *)b;
    T *out = (T *)o;
    switch (kind_of[ins->op]) {
    case K_UNARY:  SFX(unary)(ins->op, x, out, ins->n); break;
    case K_CONST:  SFX(byconst)(ins->op, x, (T)ins->c, (T)ins->c2, out, ins->n); break;
    case K_BINARY: SFX(binary)(ins, x, y, out); break;
    case K_TERNARY: SFX(select)(ins, (const T *)c, x, y, out); break;
    case K_FILL:   for (int64_t i = 0; i < ins->n; i++) out[i] = (T)ins->c; break;
    case K_SUM:    SFX(sum)(ins, x, out); break;
    case K_MATMUL: SFX(matmul_stack)(ins, x, y, out); break;
    case K_ROWS:   SFX(rows)(ins, x, (T *)b, out); break;
    case K_INDEX:  SFX(index)(ins, x, (const int64_t *)c, out); break;
    case K_CONV:   SFX(conv)(ins, x, y, (T *)c, out); break;
    case K_POOL:   SFX(pool)(ins, x, y, out); break;
    case K_COPY:
        if (ins->op == FA_COPY)
            SFX(copy)(ins, x, out);
        else
            SFX(cast)(ins, a, out);
        break;
    }
}

/* A validated group: first->group elementwise instructions over the same n elements
 * (the last may be a SUM of them all: group_sum), run block by block: every member on
 * one block, then every member on the next.  Here elements [at, at + len) of the
 * `count` elementwise members from `first`: whole-array operands advance with the
 * block; broadcast single elements stay put. */
static void SFX(group_block)(const fa_instr *first, int32_t count, char *const *slots,
                             int64_t at, int64_t len)
{
    for (const fa_instr *ins = first; ins < first + count; ins++) {
        T *out = (T *)slots[ins->out] + at;
        const T *x = (const T *)slots[ins->a];
        switch (kind_of[ins->op]) {
        case K_UNARY:
            SFX(unary)(ins->op, x + at, out, len);
            break;
        case K_CONST:
            SFX(byconst)(ins->op, x + at, (T)ins->c, (T)ins->c2, out, len);
            break;
        default: {  /* K_BINARY, strides 0 or 1 */
            const T *y = (const T *)slots[ins->b];
            SFX(binary_row)(ins->op, x + at * ins->sa[0], ins->sa[0], y + at * ins->sb[0],
                            ins->sb[0], out, 1, len);
        }
        }
    }
}

/* Elements [from, to) of a group's elementwise members, blocks of FA_BLOCK from `from`
 * (a multiple of it); a SUM that ends the group is group_sum's */
static void SFX(run_group)(const fa_instr *first, char *const *slots, int64_t from, int64_t to)
{
    const int32_t count = first->group - (group_sum_tail(first) != NULL);
    for (int64_t at = from; at < to; at += FA_BLOCK)
        SFX(group_block)(first, count, slots, at, to - at < FA_BLOCK ? to - at : FA_BLOCK);
}

/* A group whose last member is a SUM of all its n elements (group_sum_tail): the
 * members run block by block, each block a subtree of the pairwise sum's recursion of at
 * most FA_BLOCK elements, summed as it is made; returns the pairwise sum of elements
 * [from, from + n), a subtree's, combined as SFX(pairwise) combines halves: np.sum's
 * bits, without a pass of its own over the summed array. */
static T SFX(group_sum)(const fa_instr *first, char *const *slots, int64_t from, int64_t n)
{
    if (n > FA_BLOCK) {
        int64_t half = n / 2;
        half -= half % 8;
        const T left = SFX(group_sum)(first, slots, from, half);
        return left + SFX(group_sum)(first, slots, from + half, n - half);
    }
    const fa_instr *sum = first + first->group - 1;
    SFX(group_block)(first, first->group - 1, slots, from, n);
    return SFX(pairwise)((const T *)slots[sum->a] + from, n);
}

/* The pairwise sum over n elements from the sums of the leaves of its recursion cut at
 * `leaf` (pairwise_leaves in run.c), combined as SFX(pairwise) combines its halves: the
 * same bits.  *next walks through `sums` in leaf order. */
static T SFX(pairwise_combine)(int64_t n, int64_t leaf, const T *sums, int64_t *next)
{
    if (n <= leaf)
        return sums[(*next)++];
    int64_t half = n / 2;
    half -= half % 8;
    const T left = SFX(pairwise_combine)(half, leaf, sums, next);
    return left + SFX(pairwise_combine)(n - half, leaf, sums, next);
}
