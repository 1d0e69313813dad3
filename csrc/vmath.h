/*
 * vmath.h - fastad's own math array kernels: tanh (float64 / float32), sin and cos
 * (float64).
 *
 * The VM computes exp, log, powers and float32 sin and cos with numpy's own
 * inner loops (loops.h); tanh too where numpy runs a SIMD loop for it.  These
 * kernels are for what numpy computes with scalar libm loops (fastad.loops
 * says which one a machine uses): tanh on CPUs without AVX-512, float64 sin
 * and cos on every CPU; there they are several times faster.
 *
 * Header-only; every function is `static`.  Depends on <math.h> and <stdint.h>
 * only.  Written so that gcc -O3 (without -ffast-math, with
 * -ffp-contract=off) auto-vectorises the loops: the per-element functions are
 * branch-free (range reduction, polynomial, exponent bit manipulation, table
 * lookups that become gathers); special inputs are handled with selects.
 *
 *   void fa_vtanh_f64(const double *x, double *y, int64_t n);
 *   void fa_vtanh_f32(const float *x, float *y, int64_t n);
 *   void fa_vsin_f64(const double *x, double *y, int64_t n);   (and fa_vcos_f64)
 *
 * y may equal x (in place): y[i] depends on x[i] only, nothing is `restrict`.
 * Accuracy (measured by tests/test_vmath.py against long double): within 1 ulp
 * of the truth; tanh nearly always correctly rounded, in both precisions (the
 * float32 kernel evaluates in double with short polynomials and rounds once),
 * sin and cos in ~97 % of cases (worst seen 0.77 ulp).
 *
 * The table and constants sit between BEGIN/END GENERATED markers: made by
 * tools/vmath_tables.py (mpmath at 60 digits; the float32 exp polynomial is a
 * numpy Chebyshev fit), rewritten by `python tools/vmath_tables.py --write`
 * and compared by `--check` (run by tests/test_vmath_tables.py): exactly,
 * except the fit, whose last bits depend on numpy's BLAS.  The polynomial
 * coefficients are plain Taylor coefficients, Chebyshev fits or (sin, cos)
 * weighted least-squares fits in mpmath (errors are noted next to each).
 *
 * Results do not depend on the instruction set: no FMA is used (compile with
 * -ffp-contract=off, never -ffast-math), so vector, scalar and the clones
 * give identical bits.  Define FA_VMATH_NO_CLONES to disable the runtime
 * dispatch between the AVX2 build (and for sin and cos an AVX-512 one) and the
 * baseline (SSE2) build of each loop.
 */
#ifndef FA_VMATH_H
#define FA_VMATH_H

#include <math.h>
#include <stdint.h>

#if !defined(FA_VMATH_NO_CLONES) && defined(__GNUC__) && !defined(__clang__) \
    && defined(__x86_64__) && defined(__linux__)
#define FA_VMATH_CLONES __attribute__((target_clones("avx2", "default")))
#define FA_VMATH_CLONES_512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FA_VMATH_CLONES
#define FA_VMATH_CLONES_512
#endif
#if defined(__GNUC__)
#define FA__UNUSED __attribute__((unused)) /* no warning for kernels not called */
#else
#define FA__UNUSED
#endif

/* ---- bit casts.  Through a union (defined behaviour in C99 TC3 and C11, and
 * documented by gcc) rather than memcpy, so that they stay plain register
 * moves even when a build uses -fno-builtin. */
typedef union { double f; uint64_t u; } fa__bits64;
static inline uint64_t fa__asu64(double x) { fa__bits64 b; b.f = x; return b.u; }
static inline double fa__asf64(uint64_t u) { fa__bits64 b; b.u = u; return b.f; }

/* Selects.  All selects are bit blends with masks made by integer arithmetic
 * (sign bit of a difference), never `?:` or comparisons: without
 * -fno-trapping-math gcc turns `?:` back into branches (it specialises the
 * code after a clamp to a constant and will not if-convert the "possibly
 * trapping" copy), and SSE2 has no 64-bit compare; either way the loop would
 * not vectorise.  A mask is all ones or all zeros. */
static inline uint64_t fa__mask_top(uint64_t v) { return (uint64_t)0 - (v >> 63); }
/* all ones iff the sign bit of s is set, i.e. s < 0 or s == -0 (or a nan
 * with the sign bit set: callers make sure that case does not matter) */
static inline uint64_t fa__mask_neg(double s) { return fa__mask_top(fa__asu64(s)); }
/* m ? a : b */
static inline double fa__blend(uint64_t m, double a, double b)
{
    return fa__asf64((fa__asu64(a) & m) | (fa__asu64(b) & ~m));
}
#define FA__ABS_MASK UINT64_C(0x7fffffffffffffff)
#define FA__INF_BITS UINT64_C(0x7ff0000000000000)
/* all ones iff x is a nan */
static inline uint64_t fa__mask_nan(double x)
{
    return fa__mask_top(FA__INF_BITS - (fa__asu64(x) & FA__ABS_MASK));
}
static inline double fa__abs(double x) { return fa__asf64(fa__asu64(x) & FA__ABS_MASK); }

/* Error-free transformations (Dekker/Knuth; exact in round-to-nearest
 * without FMA).  fa__split: a = hi + lo with hi holding 26 bits. */
static inline void fa__split(double a, double *hi, double *lo)
{
    double c = 134217729.0 * a; /* 2^27 + 1 */
    *hi = c - (c - a);
    *lo = a - *hi;
}
/* p + e == a * b exactly (no overflow for |a*b| < 2^995). */
static inline void fa__two_prod(double a, double b, double *p, double *e)
{
    double ah, al, bh, bl;
    *p = a * b;
    fa__split(a, &ah, &al);
    fa__split(b, &bh, &bl);
    *e = ((ah * bh - *p) + ah * bl + al * bh) + al * bl;
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */
/* ------------------------------------------------------------------------ */
/* BEGIN GENERATED exp_tab by tools/vmath_tables.py */
/* entry j = 0..127: hi = RN(2^(j/128)), lo = RN(2^(j/128) - hi) */
static const double fa__exp_tab[2 * 128] = {
    0x1.0000000000000p+0, 0x0.0p+0, 0x1.0163da9fb3335p+0, 0x1.b61299ab8cdb7p-54,
    0x1.02c9a3e778061p+0, -0x1.19083535b085dp-56, 0x1.04315e86e7f85p+0, -0x1.0a31c1977c96ep-54,
    0x1.059b0d3158574p+0, 0x1.d73e2a475b465p-55, 0x1.0706b29ddf6dep+0, -0x1.c91dfe2b13c27p-55,
    0x1.0874518759bc8p+0, 0x1.186be4bb284ffp-57, 0x1.09e3ecac6f383p+0, 0x1.1487818316136p-54,
    0x1.0b5586cf9890fp+0, 0x1.8a62e4adc610bp-54, 0x1.0cc922b7247f7p+0, 0x1.01edc16e24f71p-54,
    0x1.0e3ec32d3d1a2p+0, 0x1.03a1727c57b53p-59, 0x1.0fb66affed31bp+0, -0x1.b9bedc44ebd7bp-57,
    0x1.11301d0125b51p+0, -0x1.6c51039449b3ap-54, 0x1.12abdc06c31ccp+0, -0x1.1b514b36ca5c7p-58,
    0x1.1429aaea92de0p+0, -0x1.32fbf9af1369ep-54, 0x1.15a98c8a58e51p+0, 0x1.2406ab9eeab0ap-55,
    0x1.172b83c7d517bp+0, -0x1.19041b9d78a76p-55, 0x1.18af9388c8deap+0, -0x1.11023d1970f6cp-54,
    0x1.1a35beb6fcb75p+0, 0x1.e5b4c7b4968e4p-55, 0x1.1bbe084045cd4p+0, -0x1.95386352ef607p-54,
    0x1.1d4873168b9aap+0, 0x1.e016e00a2643cp-54, 0x1.1ed5022fcd91dp+0, -0x1.1df98027bb78cp-54,
    0x1.2063b88628cd6p+0, 0x1.dc775814a8495p-55, 0x1.21f49917ddc96p+0, 0x1.2a97e9494a5eep-55,
    0x1.2387a6e756238p+0, 0x1.9b07eb6c70573p-54, 0x1.251ce4fb2a63fp+0, 0x1.ac155bef4f4a4p-55,
    0x1.26b4565e27cddp+0, 0x1.2bd339940e9d9p-55, 0x1.284dfe1f56381p+0, -0x1.a4c3a8c3f0d7ep-54,
    0x1.29e9df51fdee1p+0, 0x1.612e8afad1255p-55, 0x1.2b87fd0dad990p+0, -0x1.10adcd6381aa4p-59,
    0x1.2d285a6e4030bp+0, 0x1.0024754db41d5p-54, 0x1.2ecafa93e2f56p+0, 0x1.1ca0f45d52383p-56,
    0x1.306fe0a31b715p+0, 0x1.6f46ad23182e4p-55, 0x1.32170fc4cd831p+0, 0x1.a9ce78e18047cp-55,
    0x1.33c08b26416ffp+0, 0x1.32721843659a6p-54, 0x1.356c55f929ff1p+0, -0x1.b5cee5c4e4628p-55,
    0x1.371a7373aa9cbp+0, -0x1.63aeabf42eae2p-54, 0x1.38cae6d05d866p+0, -0x1.e958d3c9904bdp-54,
    0x1.3a7db34e59ff7p+0, -0x1.5e436d661f5e3p-56, 0x1.3c32dc313a8e5p+0, -0x1.efff8375d29c3p-54,
    0x1.3dea64c123422p+0, 0x1.ada0911f09ebcp-55, 0x1.3fa4504ac801cp+0, -0x1.7d023f956f9f3p-54,
    0x1.4160a21f72e2ap+0, -0x1.ef3691c309278p-58, 0x1.431f5d950a897p+0, -0x1.1c7dde35f7999p-55,
    0x1.44e086061892dp+0, 0x1.89b7a04ef80d0p-59, 0x1.46a41ed1d0057p+0, 0x1.c944bd1648a76p-54,
    0x1.486a2b5c13cd0p+0, 0x1.3c1a3b69062f0p-56, 0x1.4a32af0d7d3dep+0, 0x1.9cb62f3d1be56p-54,
    0x1.4bfdad5362a27p+0, 0x1.d4397afec42e2p-56, 0x1.4dcb299fddd0dp+0, 0x1.8ecdbbc6a7833p-54,
    0x1.4f9b2769d2ca7p+0, -0x1.4b309d25957e3p-54, 0x1.516daa2cf6642p+0, -0x1.f768569bd93efp-55,
    0x1.5342b569d4f82p+0, -0x1.07abe1db13cadp-55, 0x1.551a4ca5d920fp+0, -0x1.d689cefede59bp-55,
    0x1.56f4736b527dap+0, 0x1.9bb2c011d93adp-54, 0x1.58d12d497c7fdp+0, 0x1.295e15b9a1de8p-55,
    0x1.5ab07dd485429p+0, 0x1.6324c054647adp-54, 0x1.5c9268a5946b7p+0, 0x1.c4b1b816986a2p-60,
    0x1.5e76f15ad2148p+0, 0x1.ba6f93080e65ep-54, 0x1.605e1b976dc09p+0, -0x1.3e2429b56de47p-54,
    0x1.6247eb03a5585p+0, -0x1.383c17e40b497p-54, 0x1.6434634ccc320p+0, -0x1.c483c759d8933p-55,
    0x1.6623882552225p+0, -0x1.bb60987591c34p-54, 0x1.68155d44ca973p+0, 0x1.038ae44f73e65p-57,
    0x1.6a09e667f3bcdp+0, -0x1.bdd3413b26456p-54, 0x1.6c012750bdabfp+0, -0x1.2895667ff0b0dp-56,
    0x1.6dfb23c651a2fp+0, -0x1.bbe3a683c88abp-57, 0x1.6ff7df9519484p+0, -0x1.83c0f25860ef6p-55,
    0x1.71f75e8ec5f74p+0, -0x1.16e4786887a99p-55, 0x1.73f9a48a58174p+0, -0x1.0a8d96c65d53cp-54,
    0x1.75feb564267c9p+0, -0x1.0245957316dd3p-54, 0x1.780694fde5d3fp+0, 0x1.866b80a02162dp-54,
    0x1.7a11473eb0187p+0, -0x1.41577ee04992fp-55, 0x1.7c1ed0130c132p+0, 0x1.f124cd1164dd6p-54,
    0x1.7e2f336cf4e62p+0, 0x1.05d02ba15797ep-56, 0x1.80427543e1a12p+0, -0x1.27c86626d972bp-54,
    0x1.82589994cce13p+0, -0x1.d4c1dd41532d8p-54, 0x1.8471a4623c7adp+0, -0x1.8d684a341cdfbp-55,
    0x1.868d99b4492edp+0, -0x1.fc6f89bd4f6bap-54, 0x1.88ac7d98a6699p+0, 0x1.994c2f37cb53ap-54,
    0x1.8ace5422aa0dbp+0, 0x1.6e9f156864b27p-54, 0x1.8cf3216b5448cp+0, -0x1.0d55e32e9e3aap-56,
    0x1.8f1ae99157736p+0, 0x1.5cc13a2e3976cp-55, 0x1.9145b0b91ffc6p+0, -0x1.dd6792e582524p-54,
    0x1.93737b0cdc5e5p+0, -0x1.75fc781b57ebcp-57, 0x1.95a44cbc8520fp+0, -0x1.64b7c96a5f039p-56,
    0x1.97d829fde4e50p+0, -0x1.d185b7c1b85d1p-54, 0x1.9a0f170ca07bap+0, -0x1.173bd91cee632p-54,
    0x1.9c49182a3f090p+0, 0x1.c7c46b071f2bep-56, 0x1.9e86319e32323p+0, 0x1.824ca78e64c6ep-56,
    0x1.a0c667b5de565p+0, -0x1.359495d1cd533p-54, 0x1.a309bec4a2d33p+0, 0x1.6305c7ddc36abp-54,
    0x1.a5503b23e255dp+0, -0x1.d2f6edb8d41e1p-54, 0x1.a799e1330b358p+0, 0x1.bcb7ecac563c7p-54,
    0x1.a9e6b5579fdbfp+0, 0x1.0fac90ef7fd31p-54, 0x1.ac36bbfd3f37ap+0, -0x1.f9234cae76cd0p-55,
    0x1.ae89f995ad3adp+0, 0x1.7a1cd345dcc81p-54, 0x1.b0e07298db666p+0, -0x1.bdef54c80e425p-54,
    0x1.b33a2b84f15fbp+0, -0x1.2805e3084d708p-57, 0x1.b59728de5593ap+0, -0x1.c71dfbbba6de3p-54,
    0x1.b7f76f2fb5e47p+0, -0x1.5584f7e54ac3bp-56, 0x1.ba5b030a1064ap+0, -0x1.efcd30e54292ep-54,
    0x1.bcc1e904bc1d2p+0, 0x1.23dd07a2d9e84p-55, 0x1.bf2c25bd71e09p+0, -0x1.efdca3f6b9c73p-54,
    0x1.c199bdd85529cp+0, 0x1.11065895048ddp-55, 0x1.c40ab5fffd07ap+0, 0x1.b4537e083c60ap-54,
    0x1.c67f12e57d14bp+0, 0x1.2884dff483cadp-54, 0x1.c8f6d9406e7b5p+0, 0x1.1acbc48805c44p-56,
    0x1.cb720dcef9069p+0, 0x1.503cbd1e949dbp-56, 0x1.cdf0b555dc3fap+0, -0x1.dd83b53829d72p-55,
    0x1.d072d4a07897cp+0, -0x1.cbc3743797a9cp-54, 0x1.d2f87080d89f2p+0, -0x1.d487b719d8578p-54,
    0x1.d5818dcfba487p+0, 0x1.2ed02d75b3707p-55, 0x1.d80e316c98398p+0, -0x1.11ec18beddfe8p-54,
    0x1.da9e603db3285p+0, 0x1.c2300696db532p-54, 0x1.dd321f301b460p+0, 0x1.2da5778f018c3p-54,
    0x1.dfc97337b9b5fp+0, -0x1.1a5cd4f184b5cp-54, 0x1.e264614f5a129p+0, -0x1.7b627817a1496p-54,
    0x1.e502ee78b3ff6p+0, 0x1.39e8980a9cc8fp-55, 0x1.e7a51fbc74c83p+0, 0x1.2d522ca0c8de2p-54,
    0x1.ea4afa2a490dap+0, -0x1.e9c23179c2893p-54, 0x1.ecf482d8e67f1p+0, -0x1.c93f3b411ad8cp-54,
    0x1.efa1bee615a27p+0, 0x1.dc7f486a4b6b0p-54, 0x1.f252b376bba97p+0, 0x1.3a1a5bf0d8e43p-54,
    0x1.f50765b6e4540p+0, 0x1.9d3e12dd8a18bp-54, 0x1.f7bfdad9cbe14p+0, -0x1.dbb12d006350ap-54,
    0x1.fa7c1819e90d8p+0, 0x1.74853f3a5931ep-55, 0x1.fd3c22b8f71f1p+0, 0x1.2eb74966579e7p-57,
};
/* END GENERATED exp_tab */

/* ------------------------------------------------------------------------ */
/* exp core (used by tanh)                                                  */
/* ------------------------------------------------------------------------ */
/* Tang's method with N = 128:  x = k ln2/128 + r,  k = 128 m + j,
 *   exp(x) = 2^m * 2^(j/128) * exp(r),  |r| <= ln2/256 (+ rounding).
 * k is obtained by the "shifter" trick (adding 1.5*2^52 rounds x*128/ln2 to an
 * integer that then sits in the low mantissa bits): no float->int conversion,
 * no UB for nan/inf.  ln2/128 = LN2HI_N + LN2LO_N with LN2HI_N having 35
 * significant bits, so k*LN2HI_N is exact for |k| < 2^18 and x - k*LN2HI_N is
 * exact (Sterbenz).  */
/* BEGIN GENERATED exp_consts by tools/vmath_tables.py */
#define FA__EXP_INVLN2N 0x1.71547652b82fep+7   /* RN(128/ln2) */
#define FA__EXP_LN2HI_N 0x1.62e42fefc0000p-8   /* ln2/128 rounded to 35 bits */
#define FA__EXP_LN2LO_N -0x1.c610ca86c3899p-44 /* RN(ln2/128 - LN2HI_N) */
/* END GENERATED exp_consts */
#define FA__EXP_SHIFT 0x1.8p52
/* kd bits minus the shifter's bits = k; adding 2048*128 makes it >= 0 so
 * that m + 2048 = kb >> 7 can be extracted with unsigned (SSE2) shifts. */
#define FA__EXP_KBIAS (UINT64_C(0x4338000000000000) - (UINT64_C(2048) << 7))

/* Core: for |x| <= 746 returns hi with exp(x) ~= (hi + *lo) * 2^m, where
 * hi = 2^(j/128) (1 <= hi < 2), |*lo| < 0.003*hi (not normalised), relative
 * error of hi + lo about 2^-61, and *kb = 128*(m + 2048) + j. */
static inline double fa__exp_core(double x, double *lo, uint64_t *kb)
{
    double kd = x * FA__EXP_INVLN2N + FA__EXP_SHIFT;
    uint64_t ki = fa__asu64(kd);
    kd -= FA__EXP_SHIFT;
    double r = (x - kd * FA__EXP_LN2HI_N) - kd * FA__EXP_LN2LO_N;
    *kb = ki - FA__EXP_KBIAS;
    uint64_t j = *kb & 127;
    /* expm1(r) ~= r + r^2/2 + r^3/6 + r^4/24 + r^5/120: Taylor; the neglected
     * terms are < |r|^6/700 < 6e-19 relative, i.e. below 0.01 ulp. */
    double r2 = r * r;
    double p = r + r2 * (0.5 + r * (1.0 / 6)) + (r2 * r2) * (1.0 / 24 + r * (1.0 / 120));
    double thi = fa__exp_tab[2 * j], tlo = fa__exp_tab[2 * j + 1];
    *lo = tlo + thi * p;
    return thi;
}

/* The double with exponent field `field` and zero mantissa: 2^(field-1023)
 * for 1 <= field <= 2046 (garbage, but harmless, when out of range). */
static inline double fa__pow2_field(uint64_t field) { return fa__asf64(field << 52); }

/* ln2 split for the float32 kernel's range reduction: LN2HI is a multiple of
 * 2^-42, so k*LN2HI is exact for |k| < 2^11 */
/* BEGIN GENERATED ln2_consts by tools/vmath_tables.py */
#define FA__LOG_LN2HI 0x1.62e42fefa3800p-1  /* ln2 rounded to a multiple of 2^-42 */
#define FA__LOG_LN2LO 0x1.ef35793c76730p-45 /* RN(ln2 - LN2HI) */
/* END GENERATED ln2_consts */

/* ------------------------------------------------------------------------ */
/* tanh                                                                     */
/* ------------------------------------------------------------------------ */
/* |x| < 1/16: odd Taylor polynomial x + x^3*Q(x^2) up to x^13; the first
 * neglected term is < 1.5e-3 x^15, relative < 2^-65.
 * |x| >= 1/16: tanh|x| = 1 - q, q = 2/(E + 1), E = exp(2|x|) kept as hi + lo
 * from fa__exp_core; E + 1 and the division are done in double-double (Dekker
 * product for the residual), so the final 1 - q rounds once.  |x| is clamped
 * at 22 where tanh rounds to 1.  The sign is copied from x at the end (so
 * tanh(-0) = -0 and tanh(nan) = nan). */
/* BEGIN GENERATED tanh_coefs by tools/vmath_tables.py */
#define FA__TANH_C3 -0x1.5555555555555p-2  /* -1/3 */
#define FA__TANH_C5 0x1.1111111111111p-3   /* 2/15 */
#define FA__TANH_C7 -0x1.ba1ba1ba1ba1cp-5  /* -17/315 */
#define FA__TANH_C9 0x1.664f4882c10fap-6   /* 62/2835 */
#define FA__TANH_C11 -0x1.226e355e6c23dp-7 /* -1382/155925 */
#define FA__TANH_C13 0x1.d6d3d0e157de0p-9  /* 21844/6081075 */
/* END GENERATED tanh_coefs */

static inline double fa__tanh1(double x)
{
    double ax = fa__abs(x);
    /* small |x| */
    double t = ax * ax, t2 = t * t;
    double q = (FA__TANH_C3 + t * FA__TANH_C5) + t2 * (FA__TANH_C7 + t * FA__TANH_C9)
             + (t2 * t2) * (FA__TANH_C11 + t * FA__TANH_C13);
    double ys = ax + ax * (t * q);

    /* larger |x| */
    double axc = fa__blend(fa__mask_neg(22.0 - ax), 22.0, ax); /* nan stays */
    double elo;
    uint64_t kb;
    double ehi = fa__exp_core(2.0 * axc, &elo, &kb);
    double sc = fa__pow2_field((kb >> 7) - 1025);   /* 2^m, 0 <= m <= 64 */
    double e0 = ehi * sc, e1 = elo * sc;            /* exact scaling */
    ehi = e0 + e1;                                  /* normalise: E = ehi + elo */
    elo = (e0 - ehi) + e1;
    double dhi = ehi + 1.0;                         /* D = E + 1 = dhi + dlo */
    double dlo = ((ehi - dhi) + 1.0) + elo;
    double q0 = 2.0 / dhi;                          /* q = 2/D = q0 + qlo */
    double pp, pe;
    fa__two_prod(q0, dhi, &pp, &pe);
    double qlo = (((2.0 - pp) - pe) - q0 * dlo) / dhi;
    double s = 1.0 - q0;                            /* 1 - q, rounded once */
    double se = (1.0 - s) - q0;
    double yb = s + (se - qlo);

    double y = fa__blend(fa__mask_neg(ax - 0.0625), ys, yb); /* nan: yb, nan */
    /* y >= 0: put the sign of x on it */
    return fa__asf64(fa__asu64(y) | (fa__asu64(x) & ~FA__ABS_MASK));
}

/* ------------------------------------------------------------------------ */
/* float32                                                                  */
/* ------------------------------------------------------------------------ */
/* tanh is evaluated in double (the float input converted exactly) with short
 * polynomials and rounded once: relative error before that rounding ~2^-47. */

/* BEGIN GENERATED expf_consts by tools/vmath_tables.py */
#define FA__EXPF_INVLN2 0x1.71547652b82fep+0 /* RN(1/ln2) */
/* exp(r) ~= sum of FA__EXPF_Ci r^i: least-squares fit at 2000 Chebyshev nodes on
 * |r| <= 1.0001 ln2/2 */
#define FA__EXPF_C0 0x1.000000000003cp+0
#define FA__EXPF_C1 0x1.ffffffffd3801p-1
#define FA__EXPF_C2 0x1.ffffffffe7381p-2
#define FA__EXPF_C3 0x1.555555a27d8afp-3
#define FA__EXPF_C4 0x1.55555588cf98cp-5
#define FA__EXPF_C5 0x1.1110809b2b56cp-7
#define FA__EXPF_C6 0x1.6c162b951aa1dp-10
#define FA__EXPF_C7 0x1.a1aa987847a5ap-13
#define FA__EXPF_C8 0x1.a17e136e20846p-16
/* END GENERATED expf_consts */

/* exp(x) in double for -110 <= x <= 89 (no nan): k = round(x/ln2) by the
 * shifter, x - k*LN2HI exact (|k| < 2^9), exp(r) for |r| < 0.347 by a
 * degree-8 Chebyshev fit (relative error 2^-39.7), 2^k put in the exponent
 * field. */
static inline double fa__expf_core(double x)
{
    double kd = x * FA__EXPF_INVLN2 + FA__EXP_SHIFT;
    uint64_t ki = fa__asu64(kd);
    kd -= FA__EXP_SHIFT;
    double r = (x - kd * FA__LOG_LN2HI) - kd * FA__LOG_LN2LO; /* kd*LN2HI exact */
    double r2 = r * r, r4 = r2 * r2;
    double p = ((FA__EXPF_C0 + r * FA__EXPF_C1) + r2 * (FA__EXPF_C2 + r * FA__EXPF_C3))
             + r4 * ((FA__EXPF_C4 + r * FA__EXPF_C5) + r2 * (FA__EXPF_C6 + r * FA__EXPF_C7)
                     + r4 * FA__EXPF_C8);
    /* 2^k, -160 < k < 130: ki minus the shifter's bits is k */
    double s = fa__asf64((ki + 1023 - (UINT64_C(0x4338000000000000))) << 52);
    return p * s;
}

/* tanh: |x| < 1/16: x + x^3*Q(x^2) to x^9 (truncation < 2^-47 relative);
 * else 1 - 2/(exp(2|x|) + 1) with |x| clamped at 10 (tanh rounds to 1). */
static inline double fa__tanhf1(double x)
{
    double ax = fa__abs(x);
    double t = ax * ax;
    double q = (FA__TANH_C3 + t * FA__TANH_C5) + (t * t) * (FA__TANH_C7 + t * FA__TANH_C9);
    double ys = ax + ax * (t * q);
    double axc = fa__blend(fa__mask_neg(10.0 - ax), 10.0, ax);
    double yb = 1.0 - 2.0 / (fa__expf_core(2.0 * axc) + 1.0);
    double y = fa__blend(fa__mask_neg(ax - 0.0625), ys, yb);
    y = fa__asf64(fa__asu64(y) | (fa__asu64(x) & ~FA__ABS_MASK));
    return fa__blend(fa__mask_nan(x), x, y);
}


/* ------------------------------------------------------------------------ */
/* sin and cos, float64                                                     */
/* ------------------------------------------------------------------------ */
/* BEGIN GENERATED trig_consts by tools/vmath_tables.py */
#define FA__TRIG_2OPI 0x1.45f306dc9c883p-1      /* RN(2/pi) */
#define FA__TRIG_PIO2_1 0x1.921fb54400000p+0    /* pi/2 rounded to 33 bits */
#define FA__TRIG_PIO2_2 0x1.0b4611a600000p-34   /* the next 33 bits */
#define FA__TRIG_PIO2_3 0x1.3198a2e000000p-69   /* the next 33 bits */
#define FA__TRIG_PIO2_3T 0x1.b839a252049c1p-104 /* RN(the rest) */
/* sin r ~= r + r^3 (S0 + S1 r^2 + ... + S5 r^10), relative error 2^-57.6;
 * cos r ~= 1 - r^2/2 + r^4 (C0 + ... + C5 r^10), 2^-60.6: least squares at
 * 400 Chebyshev nodes of r^2, |r| <= 1.0001 pi/4 */
#define FA__SIN_S0 -0x1.5555555555548p-3
#define FA__SIN_S1 0x1.111111110f74fp-7
#define FA__SIN_S2 -0x1.a01a019bf0b7ap-13
#define FA__SIN_S3 0x1.71de355df681ep-19
#define FA__SIN_S4 -0x1.ae5e53b84fd94p-26
#define FA__SIN_S5 0x1.5d8e055663cfep-33
#define FA__COS_C0 0x1.555555555554ap-5
#define FA__COS_C1 -0x1.6c16c16c14e8bp-10
#define FA__COS_C2 0x1.a01a019c6e111p-16
#define FA__COS_C3 -0x1.27e4f7dc753d5p-22
#define FA__COS_C4 0x1.1ee9cee3ba3b5p-29
#define FA__COS_C5 -0x1.8fa06870c91c6p-37
/* END GENERATED trig_consts */
#define FA__TRIG_MAX 0x1.8p20 /* |x| above: libm's sin and cos (n below stays < 2^20) */

/* sin x (odd = 0) or cos x = sin(x + pi/2) (odd = 1) for |x| <= FA__TRIG_MAX (others
 * give garbage: the array kernel redoes them with libm).
 * n = round(x 2/pi) by the shifter, whose low bits are n mod 4 (two's complement).
 * x - n pi/2 = rh + rl (double-double): x - n P1 is exact (n P1 is, and Sterbenz),
 * n P2 and n P3 are exact products (33-bit parts, n < 2^20), subtracted by two_sum; the
 * rest n P3T is rounded, ~2^-84 absolute at most: far below the ulp of any r (the
 * closest a double comes to a multiple of pi/2 is ~2^-61).
 * Then sin(r) or cos(r) by quadrant, |r| <= pi/4: x - ((z (rl/2 - v S) - rl) - v S0)
 * and w + (((1 - w) - hz) + (z r - rh rl)), w = 1 - hz, the way fdlibm's kernels
 * fold in rl and keep 1 - z/2 exact to the last bit; sign by quadrant.  sin x = x for
 * |x| < 2^-27 (keeps -0 and subnormals).  Error within 1 ulp (tests/test_vmath.py). */
static inline double fa__two_sum(double a, double b, double *e)
{
    double s = a + b, bb = s - a;
    *e = (a - (s - bb)) + (b - bb);
    return s;
}

static inline double fa__sincos1(double x, uint64_t odd)
{
    double kd = x * FA__TRIG_2OPI + FA__EXP_SHIFT;
    uint64_t q = fa__asu64(kd) + odd;
    double n = kd - FA__EXP_SHIFT;
    double e2, e3;
    double s1 = x - n * FA__TRIG_PIO2_1;
    double s2 = fa__two_sum(s1, -(n * FA__TRIG_PIO2_2), &e2);
    double s3 = fa__two_sum(s2, -(n * FA__TRIG_PIO2_3), &e3);
    double t = (e2 + e3) - n * FA__TRIG_PIO2_3T;
    double rh = s3 + t, rl = (s3 - rh) + t;
    double z = rh * rh, v = z * rh, z2 = z * z;
    double ps = (FA__SIN_S1 + z * FA__SIN_S2) + z2 * ((FA__SIN_S3 + z * FA__SIN_S4)
                                                      + z2 * FA__SIN_S5);
    double sr = rh - ((z * (0.5 * rl - v * ps) - rl) - v * FA__SIN_S0);
    double pc = (FA__COS_C0 + z * FA__COS_C1) + z2 * ((FA__COS_C2 + z * FA__COS_C3)
                                                      + z2 * (FA__COS_C4 + z * FA__COS_C5));
    double hz = 0.5 * z, w = 1.0 - hz;
    double cr = w + (((1.0 - w) - hz) + (z * (z * pc) - rh * rl));
    double y = fa__blend((uint64_t)0 - (q & 1), cr, sr);
    y = fa__asf64(fa__asu64(y) ^ ((q & 2) << 62));
    /* sin of a tiny x: x itself (odd - 1: all ones for sin, none for cos) */
    uint64_t tiny = fa__mask_neg(fa__abs(x) - 0x1p-27) & (odd - 1);
    return fa__blend(tiny, x, y);
}

/* ------------------------------------------------------------------------ */
/* Array kernels                                                            */
/* ------------------------------------------------------------------------ */
#define FA__VMATH_DEFINE(name, elem, T, sfx)                                  \
    FA_VMATH_CLONES FA__UNUSED static void fa_v##name##_##sfx(const T *x, T *y, int64_t n) \
    {                                                                          \
        for (int64_t i = 0; i < n; i++)                                        \
            y[i] = (T)elem((double)x[i]);                                      \
    }
FA__VMATH_DEFINE(tanh, fa__tanh1, double, f64)
FA__VMATH_DEFINE(tanh, fa__tanhf1, float, f32)

#undef FA__VMATH_DEFINE

/* sin and cos by blocks: the vector loop over a block (into `t`, so that y may be x),
 * then libm for its elements beyond FA__TRIG_MAX (and inf, nan) if it has any. */
#define FA__TRIG_BLOCK 256
#define FA__TRIG_DEFINE(name, odd, libm)                                      \
    FA_VMATH_CLONES_512 FA__UNUSED static void fa_v##name##_f64(const double *x, double *y, \
                                                               int64_t n)    \
    {                                                                          \
        double t[FA__TRIG_BLOCK];                                              \
        for (int64_t at = 0; at < n; at += FA__TRIG_BLOCK) {                   \
            const int64_t m = n - at < FA__TRIG_BLOCK ? n - at : FA__TRIG_BLOCK; \
            uint64_t big = 0;                                                  \
            for (int64_t i = 0; i < m; i++) {                                  \
                t[i] = fa__sincos1(x[at + i], odd);                            \
                big |= fa__asu64(FA__TRIG_MAX) - (fa__asu64(x[at + i]) & FA__ABS_MASK); \
            }                                                                  \
            if (big >> 63)                                                     \
                for (int64_t i = 0; i < m; i++)                                \
                    if (!(fabs(x[at + i]) <= FA__TRIG_MAX))                    \
                        t[i] = libm(x[at + i]);                                \
            for (int64_t i = 0; i < m; i++)                                    \
                y[at + i] = t[i];                                              \
        }                                                                      \
    }
FA__TRIG_DEFINE(sin, 0, sin)
FA__TRIG_DEFINE(cos, 1, cos)

#undef FA__TRIG_DEFINE

#endif /* FA_VMATH_H */
