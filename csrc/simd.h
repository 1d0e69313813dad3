/* fastad's own SIMD kernels, for float64 and float32, built for AVX-512 and for AVX2 with
 * FMA and picked at run time: the direct convolution (conv_direct.h; per instruction,
 * conv_direct_isa, where it pays over im2col and a gemm), 2 x 2 max pooling
 * (maxpool2.h) and, AVX-512 float64 only, the end of sigmoid (a division's bits without
 * the division).  Where the CPU has neither instruction set or the compiler can't target
 * them, kernels.h's portable code runs instead.  Included by run.c before kernels.h. */
/* Kernel taps (C*KH*KW): up to FEW_TAPS (few input channels, where im2col's copies cost
 * about as much as the gemm) the direct convolution beats im2col and a gemm with either
 * instruction set; with AVX-512, up to MAX_TAPS as well (measured on a Xeon: 64 images
 * of 8x8, 32 -> 64 channels 3x3 in 2.3 ms against 3.1 ms), where its vectors are mostly
 * full.  Past MAX_TAPS (4 KB of tap offsets on the stack) im2col and a gemm again. */
#define FA_DIRECT_FEW_TAPS 32
#define FA_DIRECT_MAX_TAPS 512

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* The kernels' parameters for each instruction set and dtype (conv_direct.h and
 * maxpool2.h say what each is; simd_kernels.h includes both, then undefines them) */

/* AVX-512, float64 */
#define T double
#define NAME(f) f##_f64_avx512
#define TARGET "avx512f"
#define V __m512d
#define VW 8
#define ZERO _mm512_setzero_pd()
#define SET1(a) _mm512_set1_pd(a)
#define LOAD(p) _mm512_loadu_pd(p)
#define STORE(p, v) _mm512_storeu_pd(p, v)
#define FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define MASK_T __mmask8
#define MASK(cnt) ((__mmask8)((1u << (cnt)) - 1))
#define MLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define M __mmask8
#define M_OR(a, b) ((__mmask8)((a) | (b)))
#define M_AND(a, b) ((__mmask8)((a) & (b)))
#define M_ANDNOT(a, b) ((__mmask8)(~(a) & (b)))
#define M_ALL ((__mmask8)0xff)
#define GT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define ISNAN(a) _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q)
#define SEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define EVEN(a, b) _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b)
#define ODD(a, b) _mm512_permutex2var_pd(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b)
#define LO(e, o) _mm512_permutex2var_pd(e, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), o)
#define HI(e, o) _mm512_permutex2var_pd(e, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), o)
#include "simd_kernels.h"

/* AVX-512, float32 */
#define T float
#define NAME(f) f##_f32_avx512
#define TARGET "avx512f"
#define V __m512
#define VW 16
#define ZERO _mm512_setzero_ps()
#define SET1(a) _mm512_set1_ps(a)
#define LOAD(p) _mm512_loadu_ps(p)
#define STORE(p, v) _mm512_storeu_ps(p, v)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MASK_T __mmask16
#define MASK(cnt) ((__mmask16)((1u << (cnt)) - 1))
#define MLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define M __mmask16
#define M_OR(a, b) ((__mmask16)((a) | (b)))
#define M_AND(a, b) ((__mmask16)((a) & (b)))
#define M_ANDNOT(a, b) ((__mmask16)(~(a) & (b)))
#define M_ALL ((__mmask16)0xffff)
#define GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ)
#define ISNAN(a) _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q)
#define SEL(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define EVEN(a, b) _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, \
    18, 20, 22, 24, 26, 28, 30), b)
#define ODD(a, b) _mm512_permutex2var_ps(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, \
    19, 21, 23, 25, 27, 29, 31), b)
#define LO(e, o) _mm512_permutex2var_ps(e, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, \
    20, 5, 21, 6, 22, 7, 23), o)
#define HI(e, o) _mm512_permutex2var_ps(e, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, \
    28, 13, 29, 14, 30, 15, 31), o)
#include "simd_kernels.h"

/* AVX2, float64 (masks are vectors of all-ones lanes; 0xd8 orders the four 64-bit units
 * 0, 2, 1, 3) */
#define T double
#define NAME(f) f##_f64_avx2
#define TARGET "avx2,fma"
#define V __m256d
#define VW 4
#define ZERO _mm256_setzero_pd()
#define SET1(a) _mm256_set1_pd(a)
#define LOAD(p) _mm256_loadu_pd(p)
#define STORE(p, v) _mm256_storeu_pd(p, v)
#define FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define MASK_T __m256i
#define MASK(cnt) _mm256_cmpgt_epi64(_mm256_set1_epi64x(cnt), _mm256_setr_epi64x(0, 1, 2, 3))
#define MLOAD(p, m) _mm256_maskload_pd(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define M __m256d
#define M_OR(a, b) _mm256_or_pd(a, b)
#define M_AND(a, b) _mm256_and_pd(a, b)
#define M_ANDNOT(a, b) _mm256_andnot_pd(a, b)
#define M_ALL _mm256_castsi256_pd(_mm256_set1_epi64x(-1))
#define GT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define ISNAN(a) _mm256_cmp_pd(a, a, _CMP_UNORD_Q)
#define SEL(m, a, b) _mm256_blendv_pd(b, a, m)
#define EVEN(a, b) _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), 0xd8)
#define ODD(a, b) _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), 0xd8)
#define LO(e, o) _mm256_unpacklo_pd(_mm256_permute4x64_pd(e, 0xd8), _mm256_permute4x64_pd(o, 0xd8))
#define HI(e, o) _mm256_unpackhi_pd(_mm256_permute4x64_pd(e, 0xd8), _mm256_permute4x64_pd(o, 0xd8))
#include "simd_kernels.h"

/* AVX2, float32 */
#define T float
#define NAME(f) f##_f32_avx2
#define TARGET "avx2,fma"
#define V __m256
#define VW 8
#define ZERO _mm256_setzero_ps()
#define SET1(a) _mm256_set1_ps(a)
#define LOAD(p) _mm256_loadu_ps(p)
#define STORE(p, v) _mm256_storeu_ps(p, v)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MASK_T __m256i
#define MASK(cnt) _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), \
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define MLOAD(p, m) _mm256_maskload_ps(p, m)
#define MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define M __m256
#define M_OR(a, b) _mm256_or_ps(a, b)
#define M_AND(a, b) _mm256_and_ps(a, b)
#define M_ANDNOT(a, b) _mm256_andnot_ps(a, b)
#define M_ALL _mm256_castsi256_ps(_mm256_set1_epi32(-1))
#define GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define ISNAN(a) _mm256_cmp_ps(a, a, _CMP_UNORD_Q)
#define SEL(m, a, b) _mm256_blendv_ps(b, a, m)
#define UNITS(v) _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8))
#define EVEN(a, b) UNITS(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)))
#define ODD(a, b) UNITS(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)))
#define LO(e, o) _mm256_unpacklo_ps(UNITS(e), UNITS(o))
#define HI(e, o) _mm256_unpackhi_ps(UNITS(e), UNITS(o))
#include "simd_kernels.h"

/* The SIMD kernels' instruction set: 2 AVX-512, 1 AVX2 with FMA, 0 none (kernels.h's
 * portable code); the best this CPU has unless fa_simd_isa chose another (tests run
 * every path on one machine that way). */
static int simd_isa = -1;

static int best_isa(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2
        : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

int fa_simd_isa(int want)  /* atomics: runs on other threads may read it meanwhile */
{
    int isa = __atomic_load_n(&simd_isa, __ATOMIC_RELAXED);
    if (want >= 0 || isa < 0) {
        const int best = best_isa();
        isa = want >= 0 && want < best ? want : best;
        __atomic_store_n(&simd_isa, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

/* The instruction set the direct convolution runs `ins` with (stride-1 CONV2D where it
 * pays: see FA_DIRECT_FEW_TAPS, and an output plane fills at least 3/4 of the vectors it
 * takes), or 0: im2col and a gemm.  Its scratch (the weights by blocks of 8 channels,
 * KW copies of a padded image OW wide) must fit in the instruction's, (C*KH*KW + O) *
 * N*OH*OW elements (validated sizes: each below 2**31). */
static int conv_direct_isa(const fa_instr *ins)
{
    const int64_t *g = ins->geom;  /* N, C, H, W, O, KH, KW, stride, padding */
    if (ins->op != FA_CONV2D || g[7] != 1)  /* (only a CONV2D's geometry is validated) */
        return 0;
    const int isa = fa_simd_isa(-1);
    const int64_t taps = g[1] * g[5] * g[6], hp = g[2] + 2 * g[8];
    if (!isa || taps > FA_DIRECT_MAX_TAPS || (taps > FA_DIRECT_FEW_TAPS && isa != 2))
        return 0;
    const int64_t oh = hp - g[5] + 1, ow = g[3] + 2 * g[8] - g[6] + 1;
    const int64_t lanes = (ins->dtype == FA_F64 ? 8 : 16) / (isa == 2 ? 1 : 2);
    int64_t plane, copy, copies, need, np, room;
    if (__builtin_mul_overflow(oh, ow, &plane) || plane > INT32_MAX ||
        __builtin_mul_overflow(hp, ow, &copy) || __builtin_mul_overflow(copy, g[1] * g[6], &copies) ||
        __builtin_add_overflow((g[4] + 7) / 8 * 8 * taps, copies, &need) ||
        __builtin_mul_overflow(g[0], plane, &np) || __builtin_mul_overflow(taps + g[4], np, &room))
        return 0;
    const int64_t vectors = (plane + lanes - 1) / lanes;
    return 4 * plane >= 3 * vectors * lanes && need <= room ? isa : 0;
}

int fa_conv_path(const fa_instr *ins) { return conv_direct_isa(ins); }

#define DIRECT(T, SFX)                                                                    \
    static void conv_direct_##SFX(int isa, const int64_t *g, const T *x, const T *w,       \
                                  T *scratch, T *out)                                     \
    {                                                                                     \
        if (isa == 2)                                                                     \
            conv_direct_##SFX##_avx512(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[8], x, w, \
                                       scratch, out);                                     \
        else                                                                              \
            conv_direct_##SFX##_avx2(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[8], x, w,   \
                                     scratch, out);                                       \
    }
DIRECT(double, f64)
DIRECT(float, f32)
#undef DIRECT

/* pool2_f64 / _f32: 2 x 2 max pooling or its scatter (maxpool2.h) of what the SIMD
 * kernels take of `rows` output rows; *rows_done and *cols say what they left (all rows'
 * windows from *cols on, and the rows from *rows_done on) */
#define POOL2(T, SFX)                                                                     \
    static void pool2_##SFX(int op, const T *x, const T *g, T *o, int64_t rows, int64_t W,  \
                            int64_t *rows_done, int64_t *cols)                            \
    {                                                                                     \
        switch (fa_simd_isa(-1)) {                                                        \
        case 2: pool2_##SFX##_avx512(op, x, g, o, rows, W, rows_done, cols); break;       \
        case 1: pool2_##SFX##_avx2(op, x, g, o, rows, W, rows_done, cols); break;         \
        default: *rows_done = *cols = 0;                                                  \
        }                                                                                 \
    }
POOL2(double, f64)
POOL2(float, f32)
#undef POOL2

/* sigmoid_tail_f64: the end of sigmoid for the first of n elements that it takes (what
 * it returns): y = x >= 0 ? r : e r with r = 1/(1 + e), 0 <= e = exp(-|x|) <= 1 (or nan).
 * With AVX-512, r without a division (vdivpd: ~16 cycles per vector on a Xeon; this,
 * ~30 % less for the whole tail), yet the division's bits: b = 1 + e is in [1, 2], so
 * rcp14 (relative error < 2^-14) and two Newton steps (a cubic one: 2^-42, then 2^-84,
 * plus the last rounding) leave r within one ulp (2^-53) of 1/b; then 1 - b r is exact
 * (a multiple of 2^-105 below 2^-52) and says on which side of r +- 2^-54 the true 1/b
 * lies (never on it: 1/b is no midpoint), which picks RN(1/b) of r - 2^-53, r, r + 2^-53
 * (the last Newton step comes from below: r - 2^-53 guards only against t's roundings).
 * Elsewhere, and for float32 (whose division is cheap), it takes none. */
__attribute__((target("avx512f"))) static int64_t sigmoid_tail_f64_avx512(const double *x,
                                                                        const double *e,
                                                                        double *y, int64_t n)
{
    const __m512d one = _mm512_set1_pd(1), half = _mm512_set1_pd(0x1p-54);
    const __m512d ulp = _mm512_set1_pd(0x1p-53), zero = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d ei = _mm512_loadu_pd(e + i), b = one + ei;
        __m512d r = _mm512_rcp14_pd(b);
        __m512d t = _mm512_fnmadd_pd(b, r, one);
        r = _mm512_fmadd_pd(r, _mm512_fmadd_pd(t, t, t), r);
        t = _mm512_fnmadd_pd(b, r, one);
        r = _mm512_fmadd_pd(r, t, r);
        const __m512d res = _mm512_fnmadd_pd(b, r, one), h = b * half;
        r = _mm512_mask_add_pd(r, _mm512_cmp_pd_mask(res, h, _CMP_GT_OQ), r, ulp);
        r = _mm512_mask_sub_pd(r, _mm512_cmp_pd_mask(res, zero - h, _CMP_LT_OQ), r, ulp);
        const __mmask8 ge = _mm512_cmp_pd_mask(_mm512_loadu_pd(x + i), zero, _CMP_GE_OQ);
        _mm512_storeu_pd(y + i, _mm512_mask_blend_pd(ge, ei * r, r));
    }
    return i;
}

static int64_t sigmoid_tail_f64(const double *x, const double *e, double *y, int64_t n)
{
    return fa_simd_isa(-1) == 2 ? sigmoid_tail_f64_avx512(x, e, y, n) : 0;
}

static int64_t sigmoid_tail_f32(const float *x, const float *e, float *y, int64_t n)
{
    return 0;
}

#else
int fa_simd_isa(int want) { return 0; }
int fa_conv_path(const fa_instr *ins) { return 0; }
static int conv_direct_isa(const fa_instr *ins) { return 0; }
static void conv_direct_f64(int isa, const int64_t *g, const double *x, const double *w,
                            double *scratch, double *out) {}
static void conv_direct_f32(int isa, const int64_t *g, const float *x, const float *w,
                            float *scratch, float *out) {}
static void pool2_f64(int op, const double *x, const double *g, double *o, int64_t rows,
                      int64_t W, int64_t *rows_done, int64_t *cols) { *rows_done = *cols = 0; }
static void pool2_f32(int op, const float *x, const float *g, float *o, int64_t rows,
                      int64_t W, int64_t *rows_done, int64_t *cols) { *rows_done = *cols = 0; }
static int64_t sigmoid_tail_f64(const double *x, const double *e, double *y, int64_t n)
{
    return 0;
}
static int64_t sigmoid_tail_f32(const float *x, const float *e, float *y, int64_t n)
{
    return 0;
}
#endif
