/*
 * vmath.h - array kernels for exp, log, tanh and sigmoid (float64 / float32).
 *
 * Header-only; every function is `static`.  Depends on <math.h> and <stdint.h>
 * only.  Written so that gcc -O3 (without -ffast-math, with
 * -ffp-contract=off) auto-vectorises the loops: the per-element functions are
 * branch-free (range reduction, polynomial, exponent bit manipulation, table
 * lookups that become gathers); special inputs are handled with selects.
 *
 *   void fa_vexp_f64    (const double *x, double *y, int64_t n);
 *   void fa_vlog_f64    (const double *x, double *y, int64_t n);
 *   void fa_vtanh_f64   (const double *x, double *y, int64_t n);
 *   void fa_vsigmoid_f64(const double *x, double *y, int64_t n);
 *   ... and the same four with _f32 / float.
 *
 * y may equal x (in place): y[i] depends on x[i] only, nothing is `restrict`.
 * The float32 kernels have their own element functions (see "float32 element
 * functions" below): exp and log in float arithmetic, tanh and sigmoid in
 * double with short polynomials; all within 1 ulp of the truth and nearly
 * always correctly rounded.
 *
 * Accuracy (float64, measured by tests/test_vmath.py against long double):
 * exp and log ~0.5 ulp (nearly correctly rounded), tanh and sigmoid <= 1 ulp.
 * sigmoid is defined by the formula  e = exp(-|x|); r = 1/(1+e);
 * s = x >= 0 ? r : e*r  and returns exactly that value unless it is more than
 * one ulp-spacing away from the true value (see fa__sigmoid1).
 *
 * Tables and constants were generated with mpmath at 60 digits (the script is
 * reproduced at the end of this file); the polynomial coefficients are plain
 * Taylor coefficients (the reduced ranges are small enough that no minimax
 * fit is needed; truncation errors are noted next to each polynomial).
 *
 * Results do not depend on the instruction set: no FMA is used (compile with
 * -ffp-contract=off, never -ffast-math), so vector, scalar and the avx2 clone
 * give identical bits.  Define FA_VMATH_NO_CLONES to disable the runtime
 * dispatch between an AVX2 build and the baseline (SSE2) build of each loop.
 */
#ifndef FA_VMATH_H
#define FA_VMATH_H

#include <math.h>
#include <stdint.h>

#if !defined(FA_VMATH_NO_CLONES) && defined(__GNUC__) && !defined(__clang__) \
    && defined(__x86_64__) && defined(__linux__)
#define FA_VMATH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FA_VMATH_CLONES
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
static const double fa__log_invc[128] = {
    0x1.734f100000000p+0, 0x1.7137800000000p+0, 0x1.6f26000000000p+0, 0x1.6d1a600000000p+0,
    0x1.6b14900000000p+0, 0x1.6914700000000p+0, 0x1.6719f00000000p+0, 0x1.6525000000000p+0,
    0x1.6335700000000p+0, 0x1.614b300000000p+0, 0x1.5f66400000000p+0, 0x1.5d86800000000p+0,
    0x1.5babd00000000p+0, 0x1.59d6200000000p+0, 0x1.5805600000000p+0, 0x1.5639800000000p+0,
    0x1.5472600000000p+0, 0x1.52aff00000000p+0, 0x1.50f2300000000p+0, 0x1.4f38f00000000p+0,
    0x1.4d84400000000p+0, 0x1.4bd3f00000000p+0, 0x1.4a28000000000p+0, 0x1.4880500000000p+0,
    0x1.46dce00000000p+0, 0x1.453da00000000p+0, 0x1.43a2700000000p+0, 0x1.420b500000000p+0,
    0x1.4078300000000p+0, 0x1.3ee8f00000000p+0, 0x1.3d5da00000000p+0, 0x1.3bd6100000000p+0,
    0x1.3a52400000000p+0, 0x1.38d2300000000p+0, 0x1.3755c00000000p+0, 0x1.35dce00000000p+0,
    0x1.3467a00000000p+0, 0x1.32f5d00000000p+0, 0x1.3187700000000p+0, 0x1.301c800000000p+0,
    0x1.2eb4f00000000p+0, 0x1.2d50a00000000p+0, 0x1.2befa00000000p+0, 0x1.2a91d00000000p+0,
    0x1.2937200000000p+0, 0x1.27dfa00000000p+0, 0x1.268b300000000p+0, 0x1.2539d00000000p+0,
    0x1.23eb800000000p+0, 0x1.22a0100000000p+0, 0x1.2157a00000000p+0, 0x1.2012000000000p+0,
    0x1.1ecf400000000p+0, 0x1.1d8f500000000p+0, 0x1.1c52300000000p+0, 0x1.1b17c00000000p+0,
    0x1.19e0100000000p+0, 0x1.18ab100000000p+0, 0x1.1778a00000000p+0, 0x1.1648d00000000p+0,
    0x1.151ba00000000p+0, 0x1.13f0f00000000p+0, 0x1.12c8c00000000p+0, 0x1.11a3000000000p+0,
    0x1.107fc00000000p+0, 0x1.0f5ee00000000p+0, 0x1.0e40600000000p+0, 0x1.0d24400000000p+0,
    0x1.0c0a800000000p+0, 0x1.0af2f00000000p+0, 0x1.09ddc00000000p+0, 0x1.08cac00000000p+0,
    0x1.07b9f00000000p+0, 0x1.06ab600000000p+0, 0x1.059ef00000000p+0, 0x1.0494a00000000p+0,
    0x1.038c700000000p+0, 0x1.0286500000000p+0, 0x1.0182400000000p+0, 0x1.0000000000000p+0,
    0x1.0000000000000p+0, 0x1.fa11d00000000p-1, 0x1.f631100000000p-1, 0x1.f25f600000000p-1,
    0x1.ee9c800000000p-1, 0x1.eae8000000000p-1, 0x1.e741b00000000p-1, 0x1.e3a9100000000p-1,
    0x1.e01e000000000p-1, 0x1.dca0200000000p-1, 0x1.d92f200000000p-1, 0x1.d5cad00000000p-1,
    0x1.d272d00000000p-1, 0x1.cf26e00000000p-1, 0x1.cbe6e00000000p-1, 0x1.c8b2600000000p-1,
    0x1.c589500000000p-1, 0x1.c26b500000000p-1, 0x1.bf58400000000p-1, 0x1.bc4fd00000000p-1,
    0x1.b951e00000000p-1, 0x1.b65e300000000p-1, 0x1.b374800000000p-1, 0x1.b094b00000000p-1,
    0x1.adbe800000000p-1, 0x1.aaf1d00000000p-1, 0x1.a82e600000000p-1, 0x1.a574100000000p-1,
    0x1.a2c2b00000000p-1, 0x1.a01a000000000p-1, 0x1.9d79f00000000p-1, 0x1.9ae2500000000p-1,
    0x1.9852f00000000p-1, 0x1.95cbb00000000p-1, 0x1.934c600000000p-1, 0x1.90d4f00000000p-1,
    0x1.8e65200000000p-1, 0x1.8bfcf00000000p-1, 0x1.899c100000000p-1, 0x1.8742800000000p-1,
    0x1.84f0100000000p-1, 0x1.82a4a00000000p-1, 0x1.8060200000000p-1, 0x1.7e22500000000p-1,
    0x1.7beb400000000p-1, 0x1.79baa00000000p-1, 0x1.7790800000000p-1, 0x1.756cb00000000p-1,
};
static const double fa__log_logc_hi[128] = {
    -0x1.7cc801fb47000p-2, -0x1.76fed9b947000p-2, -0x1.713e2fa46a000p-2, -0x1.6b85ae0ffa000p-2,
    -0x1.65d556f4ce000p-2, -0x1.602cfe4f09000p-2, -0x1.5a8ca41bee000p-2, -0x1.54f447b7be000p-2,
    -0x1.4f638b9ba9000p-2, -0x1.49da6c5bcc000p-2, -0x1.445914853a000p-2, -0x1.3edf513c16000p-2,
    -0x1.396cedf9bc000p-2, -0x1.3401e3eaed000p-2, -0x1.2e9e2b8e12000p-2, -0x1.2941bcb187000p-2,
    -0x1.23ec5e51ec000p-2, -0x1.1e9e061889000p-2, -0x1.1956d999bc000p-2, -0x1.14166c1367000p-2,
    -0x1.0edd128b78000p-2, -0x1.09aa5dce6c000p-2, -0x1.047e70cde8000p-2, -0x1.feb215fea0000p-3,
    -0x1.f4749cb4e0000p-3, -0x1.ea4455704a000p-3, -0x1.e020b92236000p-3, -0x1.d60a08b904000p-3,
    -0x1.cc001f5db4000p-3, -0x1.c2026ff180000p-3, -0x1.b8119f8b82000p-3, -0x1.ae2cb6b672000p-3,
    -0x1.a453f12e6a000p-3, -0x1.9a878b1eba000p-3, -0x1.90c6ee9fcc000p-3, -0x1.8711ebf50e000p-3,
    -0x1.7d69264af6000p-3, -0x1.73cb9834fe000p-3, -0x1.6a39786bbc000p-3, -0x1.60b2fe0b0a000p-3,
    -0x1.5737f45018000p-3, -0x1.4dc7b817bc000p-3, -0x1.4462ea5c9a000p-3, -0x1.3b08e5357e000p-3,
    -0x1.31b96d53a4000p-3, -0x1.287523411a000p-3, -0x1.1f3b5c1f26000p-3, -0x1.160c48e4b2000p-3,
    -0x1.0ce81adccc000p-3, -0x1.03cdb1651e000p-3, -0x1.f57c38d900000p-4, -0x1.e3706ee304000p-4,
    -0x1.d179428218000p-4, -0x1.bf962ae9fc000p-4, -0x1.adc78265b0000p-4, -0x1.9c0bd4d4d0000p-4,
    -0x1.8a6460291c000p-4, -0x1.78d093e3d8000p-4, -0x1.674ef19364000p-4, -0x1.55e0b5d0e0000p-4,
    -0x1.4486353dbc000p-4, -0x1.333dea0184000p-4, -0x1.220823c784000p-4, -0x1.10e4433cb0000p-4,
    -0x1.ffa70d1ab8000p-5, -0x1.dda8b7c680000p-5, -0x1.bbce1dc690000p-5, -0x1.9a17d75740000p-5,
    -0x1.78867da358000p-5, -0x1.5714e9c038000p-5, -0x1.35c96baa10000p-5, -0x1.149ed24008000p-5,
    -0x1.e72b508140000p-6, -0x1.a560d88c50000p-6, -0x1.63d78d8690000p-6, -0x1.22907dfea0000p-6,
    -0x1.c319744c80000p-7, -0x1.4192bb9680000p-7, -0x1.811dc14580000p-8, 0x0.0p+0,
    0x0.0p+0, 0x1.7dc319f820000p-7, 0x1.3ce99a3470000p-6, 0x1.b9fc8e7b00000p-6,
    0x1.1b0d909240000p-5, 0x1.58a63afc90000p-5, 0x1.95c7d1ec90000p-5, 0x1.d27739adb0000p-5,
    0x1.0759935990000p-4, 0x1.253f4ff0a0000p-4, 0x1.42eddeea64000p-4, 0x1.6065451374000p-4,
    0x1.7da73457b0000p-4, 0x1.9ab4576204000p-4, 0x1.b78c47bb10000p-4, 0x1.d4317066cc000p-4,
    0x1.f0a2f18118000p-4, 0x1.0671616ca6000p-3, 0x1.1478534674000p-3, 0x1.22670ed0a6000p-3,
    0x1.303d7e0e48000p-3, 0x1.3dfc22cecc000p-3, 0x1.4ba38539a6000p-3, 0x1.59339c5982000p-3,
    0x1.66acfa272c000p-3, 0x1.740f9d9404000p-3, 0x1.815c229436000p-3, 0x1.8e92902886000p-3,
    0x1.9bb33e27e0000p-3, 0x1.a8bed7c882000p-3, 0x1.b5b52128fc000p-3, 0x1.c2967e98c2000p-3,
    0x1.cf6359209c000p-3, 0x1.dc1bcdcabe000p-3, 0x1.e8c04daaa6000p-3, 0x1.f550ab24b8000p-3,
    0x1.00e6d81ad5000p-2, 0x1.071b715cd6000p-2, 0x1.0d46b3d9ab000p-2, 0x1.136865293b000p-2,
    0x1.1980c8bd42000p-2, 0x1.1f8ffa248a000p-2, 0x1.2595ebcdf8000p-2, 0x1.2b93114b8a000p-2,
    0x1.31870a1544000p-2, 0x1.3772786bfe000p-2, 0x1.3d54fd5c1f000p-2, 0x1.432ee8004f000p-2,
};
static const double fa__log_logc_lo[128] = {
    0x1.afda4329a46e7p-44, 0x1.5d446c5602afbp-46, -0x1.5b9b260293f1bp-46, -0x1.d0d750a0304ffp-45,
    -0x1.cd3f4a582f6f9p-53, -0x1.14a115f9b21e2p-46, 0x1.18666d55188b5p-46, 0x1.0fb5530ccd276p-45,
    -0x1.b10873fec7fd7p-44, -0x1.5644caaa519ccp-46, 0x1.6bcac5b25c98ep-46, -0x1.d3183dd6f7e5dp-44,
    0x1.8de4e123490a6p-46, 0x1.1b8f355526e72p-44, -0x1.42f0c128d1317p-45, 0x1.758c2abbf8d51p-44,
    0x1.790644813ffcdp-44, -0x1.f70311558e206p-44, -0x1.5aab73cee68bdp-45, -0x1.2e9e75f47a5cfp-44,
    0x1.6f64a811a7574p-47, -0x1.9f181e2f6f696p-44, -0x1.b7be26fc852cep-46, -0x1.c75d8daf92cddp-45,
    0x1.ef6c9f77b5613p-44, -0x1.4e0966470a4e0p-44, 0x1.af540b702dadfp-45, 0x1.7a800721125e7p-44,
    0x1.434ec2616940cp-45, 0x1.22e277f2474d7p-44, 0x1.f5196dee7c1abp-46, -0x1.5b8b5b0e01f4dp-44,
    -0x1.1e877c0339c0ap-44, -0x1.1d6da42f3d434p-44, 0x1.23efab29e16a0p-45, -0x1.be1ac6b68262dp-46,
    0x1.3acb571259142p-44, 0x1.ddec90cb270fcp-44, -0x1.c2faaf7ef768fp-44, 0x1.99c56cd54f81ap-44,
    -0x1.ac50f9f38e2bbp-45, -0x1.c75b60ae1d464p-47, -0x1.55727a33453a2p-44, -0x1.43ef74ff20a8cp-44,
    -0x1.2d90ebb856226p-44, -0x1.298ce2bfffd7bp-44, 0x1.c7bf40eb44048p-44, 0x1.0ef6e32996cdfp-45,
    0x1.6dd68ab4302aap-45, -0x1.6497cef1ae3aep-44, 0x1.315e462e97bb0p-44, -0x1.fed09cb978024p-46,
    -0x1.b6467523e7d9ap-45, 0x1.a9567e69decacp-46, 0x1.579d209c2345ap-44, -0x1.4063f1de4a319p-44,
    -0x1.b14a0ae8d7789p-44, 0x1.655b4966c072dp-44, -0x1.971194b9fb856p-44, 0x1.d4dc6806feb94p-46,
    -0x1.190c71accaf45p-44, 0x1.6dbb552f3402dp-44, 0x1.82394bcf07e29p-47, 0x1.8ef69296a3466p-44,
    -0x1.fe465f8137b9fp-48, 0x1.1caac64d4aed9p-45, 0x1.2c061ce4c0fafp-44, 0x1.de42e7ba3af0fp-44,
    0x1.e6ac2c308269bp-44, -0x1.00c51b562c5b4p-44, -0x1.386fb257a2a1fp-45, 0x1.d6b8a79473ec5p-44,
    0x1.f3f915447395bp-45, -0x1.eaf47faaf821fp-44, 0x1.c3b42989f4fa1p-45, -0x1.9d5c67bc16395p-46,
    0x1.e1b53df309b0cp-44, -0x1.95f4755d3a613p-46, -0x1.0340d3d54fa95p-48, 0x0.0p+0,
    0x0.0p+0, -0x1.aff0462107be7p-44, -0x1.31ba43915eca9p-44, -0x1.9358107695779p-44,
    -0x1.3381e9ae9df10p-44, -0x1.656e6d58c041cp-46, -0x1.34442a9377d3cp-45, 0x1.b92520f71dedcp-45,
    -0x1.b0ecfe4604432p-44, 0x1.4cb78fadac1acp-44, 0x1.e92eeecb83024p-46, 0x1.a32d1c397f8a6p-44,
    0x1.7c7a43a05b55ep-44, -0x1.cfa9021c2a05bp-46, -0x1.724ef99e084c6p-45, -0x1.e3886c6f86dc0p-46,
    -0x1.bfa7e84ba41e5p-44, -0x1.627179745b38ap-45, 0x1.62b450fd471fbp-46, -0x1.dcf2a5eacae73p-47,
    0x1.bcfa541914558p-49, 0x1.9b76a61fd9540p-45, -0x1.06d4bad036f2cp-44, 0x1.5f6346c616967p-47,
    -0x1.a16421c7fe2a6p-44, -0x1.e40992e3e893dp-45, -0x1.6f3a5df1a2efap-45, 0x1.a8b74b13f58d5p-44,
    0x1.93cb8ec8c6714p-48, 0x1.eb185cf770f25p-44, -0x1.44e02ebc19bdbp-44, -0x1.c4733df4a0e3fp-45,
    0x1.7b9639a216c06p-45, 0x1.916e1a63196c6p-44, 0x1.90526acb3d24ap-48, -0x1.29fa3a052a454p-45,
    0x1.94734bad64c64p-45, -0x1.d00d7a324aec0p-45, 0x1.d41a1f63b293bp-44, -0x1.97684a0c51bbfp-44,
    0x1.0f1bd37b31857p-44, 0x1.7956c040cc921p-45, -0x1.8fbc40faba0acp-44, -0x1.681a578cd7e19p-46,
    0x1.0c5eac43989bep-44, -0x1.42bb68cab2a61p-44, 0x1.c861cd9c795e3p-44, -0x1.c2a0999565e4bp-44,
};

/* ------------------------------------------------------------------------ */
/* exp                                                                      */
/* ------------------------------------------------------------------------ */
/* Tang's method with N = 128:  x = k ln2/128 + r,  k = 128 m + j,
 *   exp(x) = 2^m * 2^(j/128) * exp(r),  |r| <= ln2/256 (+ rounding).
 * k is obtained by the "shifter" trick (adding 1.5*2^52 rounds x*128/ln2 to an
 * integer that then sits in the low mantissa bits): no float->int conversion,
 * no UB for nan/inf.  ln2/128 = LN2HI_N + LN2LO_N with LN2HI_N having 35
 * significant bits, so k*LN2HI_N is exact for |k| < 2^18 and x - k*LN2HI_N is
 * exact (Sterbenz).  */
#define FA__EXP_INVLN2N 0x1.71547652b82fep+7   /* RN(128/ln2) */
#define FA__EXP_LN2HI_N 0x1.62e42fefc0000p-8   /* ln2/128 rounded to 35 bits */
#define FA__EXP_LN2LO_N -0x1.c610ca86c3899p-44 /* RN(ln2/128 - LN2HI_N) */
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

/* From fa__exp_core's output to exp(x) (xc: the clamped x).  The result is
 * 2^m * (hi + lo), with 2^m applied as 2^m1 * 2^m2, m1 = floor(m/2),
 * m2 = m - m1, both in the normal range for -1077 <= m <= 1024: the first
 * product is exact, the second is exact too for normal results and overflows
 * to inf when it should.  Subnormal results would be rounded twice (hi + lo to
 * 53 bits, then to the subnormal grid: ~1 % of them end up 1 ulp off), so with
 * exact_sub (a compile-time constant after inlining) they are redone with one
 * rounding: for u = (hi + lo) * 2^(m+1022) < 1 (exact scaling), 1 + u has
 * its last bit at 2^-52, i.e. at 2^-1074 once scaled back by 2^-1022; so
 * (1 + u) is rounded from a double-double, 1 subtracted (exact) and the
 * result scaled (exact).  That costs ~40 % more, so the kernels use it only
 * for blocks that contain an x < -708. */
static inline double fa__exp_scale(double hi, double lo, uint64_t kb, double xc,
                                   int exact_sub)
{
    uint64_t mb = kb >> 7;      /* m + 2048 */
    uint64_t m1b = mb >> 1;     /* floor(m/2) + 1024 */
    double s1 = fa__pow2_field(m1b - 1);       /* 2^m1 */
    double s2 = fa__pow2_field(mb - m1b - 1);  /* 2^m2 */
    double y = ((hi + lo) * s1) * s2;
    if (exact_sub) {
        /* 2^(m+1022) where x < -708 (m <= -1021); 1.0 elsewhere, so that no
         * lane computes with subnormals (very slow on x86) */
        uint64_t is_sub = fa__mask_neg(xc + 708.0);
        double sc = fa__pow2_field((is_sub & (mb - 3)) | (~is_sub & 1023));
        double a = hi * sc, b = lo * sc;
        double u = a + b, ue = (a - u) + b;       /* u + ue == a + b */
        double h = 1.0 + u, he = ((1.0 - h) + u) + ue;
        double ysub = ((h + he) - 1.0) * 0x1p-1022;
        y = fa__blend(is_sub & fa__mask_neg(u - 1.0), ysub, y);
    }
    return y;
}

static inline double fa__exp1(double x, int exact_sub)
{
    /* exp(x) = inf for x > 709.79 and 0 for x < -745.14: clamping keeps the
     * exponent arithmetic in range (a nan may get clamped; fixed at the end) */
    double xc = fa__blend(fa__mask_neg(710.0 - x), 710.0, x);
    xc = fa__blend(fa__mask_neg(xc + 746.0), -746.0, xc);
    double lo;
    uint64_t kb;
    double hi = fa__exp_core(xc, &lo, &kb);
    double y = fa__exp_scale(hi, lo, kb, xc, exact_sub);
    return fa__blend(fa__mask_nan(x), x, y);
}

/* ------------------------------------------------------------------------ */
/* log                                                                      */
/* ------------------------------------------------------------------------ */
/* x = 2^e * z with z in [0.6875, 1.375); the top 7 mantissa bits of z pick an
 * interval i (width 1/256 below 1, 1/128 above) with table values
 *   invc ~ 1/center (21 significant bits), logc = -log(invc) = hi + lo,
 * hi a multiple of 2^-42 so that  w = e*LN2HI + logc_hi  is exact.  The two
 * intervals next to 1 use invc = 1, logc = 0 so that log(x) ~ x - 1 near 1 has
 * no cancellation.  r = z*invc - 1 is computed exactly as rhi + rlo by
 * splitting z = zhi + zlo (zhi: 21 bits, so zhi*invc is exact), then
 *   log(x) = (w + r) + (e*LN2LO + logc_lo) + log1p(r) - r,
 * with error-free sums; |r| < 2^-7.  */
#define FA__LOG_LN2HI 0x1.62e42fefa3800p-1 /* ln2 rounded to a multiple of 2^-42 */
#define FA__LOG_LN2LO 0x1.ef35793c76730p-45 /* RN(ln2 - LN2HI) */
#define FA__LOG_OFF UINT64_C(0x3fe6000000000000) /* bits of 0.6875 */

static inline double fa__log1(double x)
{
    /* subnormals: scale to normal (exact) and remember the 52 */
    uint64_t sub = fa__mask_neg(x - 0x1p-1022); /* also x <= 0: fixed below */
    double xs = fa__blend(sub, x * 0x1p52, x);
    double eadj = fa__blend(sub, 52.0, 0.0);
    uint64_t ix = fa__asu64(xs);
    uint64_t tmp = ix + (UINT64_C(0x3ff0000000000000) - FA__LOG_OFF);
    uint64_t ebits = tmp >> 52;                 /* e + 1023 */
    uint64_t i = (tmp >> 45) & 127;
    double z = fa__asf64(ix + (UINT64_C(1023) << 52) - (ebits << 52));
    /* (double)ebits without int64->double conversion (not in SSE2) */
    double e = (fa__asf64(ebits | UINT64_C(0x4330000000000000)) - 0x1p52) - 1023.0 - eadj;

    double invc = fa__log_invc[i], lhi = fa__log_logc_hi[i], llo = fa__log_logc_lo[i];
    double zhi = fa__asf64(fa__asu64(z) & UINT64_C(0xffffffff00000000));
    double zlo = z - zhi;
    double rhi = zhi * invc - 1.0;  /* exact */
    double rlo = zlo * invc;        /* |rlo| < 2^-19, error < 2^-72 */
    double r = rhi + rlo;           /* two-sum: r + rl == rhi + rlo */
    double bb = r - rhi;
    double rl = (rhi - (r - bb)) + (rlo - bb);

    double w = e * FA__LOG_LN2HI + lhi; /* exact */
    double hi = w + r;                  /* fast two-sum: |w| >= |r| or w == 0 */
    double err = (w - hi) + r;

    /* log1p(r) - r ~= r^2 * P(r), P from the Taylor series
     * -1/2 + r/3 - r^2/4 + ... + r^7/9; truncation < |r|^10/10 < 2^-73. */
    double r2 = r * r, r4 = r2 * r2;
    double p = (-0.5 + r * (1.0 / 3)) + r2 * (-0.25 + r * 0.2)
             + r4 * (((-1.0 / 6) + r * (1.0 / 7)) + r2 * (-0.125 + r * (1.0 / 9)));
    double lo = err + rl + (e * FA__LOG_LN2LO + llo) + r2 * p;
    double y = hi + lo;

    uint64_t ax = fa__asu64(x) & FA__ABS_MASK;
    y = fa__blend(fa__mask_top(UINT64_C(0x7fefffffffffffff) - ax), x, y); /* inf, nan */
    y = fa__blend(fa__mask_top(fa__asu64(x)), NAN, y);   /* sign bit set */
    y = fa__blend(fa__mask_top(ax - 1), -INFINITY, y);   /* +-0 */
    return y;
}

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
#define FA__TANH_C3 -0x1.5555555555555p-2   /* -1/3 */
#define FA__TANH_C5 0x1.1111111111111p-3    /* 2/15 */
#define FA__TANH_C7 -0x1.ba1ba1ba1ba1cp-5   /* -17/315 */
#define FA__TANH_C9 0x1.664f4882c10fap-6    /* 62/2835 */
#define FA__TANH_C11 -0x1.226e355e6c23dp-7  /* -1382/155925 */
#define FA__TANH_C13 0x1.d6d3d0e157de0p-9   /* 21844/6081075 */

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
/* sigmoid                                                                  */
/* ------------------------------------------------------------------------ */
/* Defined as the stable formula  e = exp(-|x|); r = 1/(1+e);
 * F = x >= 0 ? r : e*r.  That formula alone is off by up to 3 ulp (the
 * rounding of 1+e is amplified), so an accurate value A = N/D is computed as
 * well (N = 1 or E, D = 1 + E, all double-double, E from fa__exp_core), and F
 * is returned whenever A shows that F is within 1 ulp of the correctly
 * rounded value; otherwise A rounded is returned.  For |x| >= 700 F is used as
 * is (F = 1 or F = exp(x) to within 1e-300). */
static inline double fa__sigmoid1(double x, int exact_sub)
{
    double ax = fa__abs(x);
    double nx = -ax;
    nx = fa__blend(fa__mask_neg(nx + 746.0), -746.0, nx);
    double lo;
    uint64_t kb;
    double hi = fa__exp_core(nx, &lo, &kb);
    double e = fa__exp_scale(hi, lo, kb, nx, exact_sub);   /* exp(-|x|) */
    uint64_t mb = kb >> 7;                                 /* m + 2048 */
    double r = 1.0 / (1.0 + e);
    uint64_t neg = fa__mask_top(fa__asu64(x));      /* !(x >= 0) but for -0 */
    double f = fa__blend(neg, e * r, r);            /* -0: e*r == r == 0.5 */

    /* accurate A, used for |x| < 700 only (2^m normal there; elsewhere 1.0 so
     * that no lane computes with subnormals, which are very slow on x86) */
    uint64_t small = fa__mask_neg(ax - 700.0);
    double sc = fa__pow2_field((small & (mb - 1025)) | (~small & 1023)); /* 2^m */
    double e0 = hi * sc, e1 = lo * sc;
    double ehi = e0 + e1, elo = (e0 - ehi) + e1;    /* E = ehi + elo, normalised */
    double dhi = 1.0 + ehi;                         /* D = 1 + E */
    double dlo = ((1.0 - dhi) + ehi) + elo;
    double nhi = fa__blend(neg, ehi, 1.0);
    double nlo = fa__blend(neg, elo, 0.0);
    double q0 = nhi / dhi;
    double pp, pe;
    fa__two_prod(q0, dhi, &pp, &pe);
    double qlo = (((nhi - pp) - pe) + (nlo - q0 * dlo)) / dhi;
    /* F is one of the two doubles nearest the true value if that lies
     * strictly between the midpoints (prev(prev F) + prev F)/2 and
     * (next F + next(next F))/2, i.e. if |F - A| < sb + sbb/2 with sb, sbb the
     * two spacings below F (the spacings above are at least sb).  A is within
     * ~0.01 of those spacings of the truth, so use 15/16 of that bound. */
    uint64_t fb = fa__asu64(f);
    double p1 = fa__asf64(fb - 1), p2 = fa__asf64(fb - 2);
    double bound = ((f - p1) + 0.5 * (p1 - p2)) * 0.9375;
    double d = fa__abs((f - q0) - qlo);             /* |F - A| */
    /* use A iff d > bound and |x| < 700 */
    uint64_t use_a = fa__mask_neg(bound - d) & small;
    double y = fa__blend(use_a, q0 + qlo, f);
    return fa__blend(fa__mask_nan(x), x, y);
}

/* ------------------------------------------------------------------------ */
/* float32 element functions                                                */
/* ------------------------------------------------------------------------ */
/* float32 needs far less than the double-double machinery above.
 * - exp and log work in float arithmetic (twice the lanes of double): range
 *   reduction with exact steps and error-free sums, so that the last
 *   addition is the only large rounding (<= 1 ulp, ~0.5 ulp typically;
 *   measured exhaustively, see tests/test_vmath.py).
 * - tanh and sigmoid (whose formulas amplify rounding errors) are evaluated
 *   in double (the float input converted exactly) with short polynomials and
 *   rounded once: relative error before that rounding ~2^-47.
 * No block needs a careful path: every intermediate of the double code is a
 * normal double, and subnormal float results come from one rounding (exp:
 * the final scaling by 2^k2 rounds once too). */

/* exp(x) in double for -110 <= x <= 89 (no nan): k = round(x/ln2) by the
 * shifter, x - k*LN2HI exact (|k| < 2^9), exp(r) for |r| < 0.347 by a
 * degree-8 Chebyshev fit (relative error 2^-39.7), 2^k put in the exponent
 * field. */
static inline double fa__expf_core(double x)
{
    double kd = x * 0x1.71547652b82fep+0 + FA__EXP_SHIFT;   /* RN(1/ln2) */
    uint64_t ki = fa__asu64(kd);
    kd -= FA__EXP_SHIFT;
    double r = (x - kd * FA__LOG_LN2HI) - kd * FA__LOG_LN2LO; /* kd*LN2HI exact */
    double r2 = r * r, r4 = r2 * r2;
    double p = ((0x1.000000000003cp+0 + r * 0x1.ffffffffd3801p-1)
                + r2 * (0x1.ffffffffe7381p-2 + r * 0x1.555555a27d8afp-3))
             + r4 * ((0x1.55555588cf98cp-5 + r * 0x1.1110809b2b56cp-7)
                     + r2 * (0x1.6c162b951aa1dp-10 + r * 0x1.a1aa987847a5ap-13)
                     + r4 * 0x1.a17e136e20846p-16);
    /* 2^k, -160 < k < 130: ki minus the shifter's bits is k */
    double s = fa__asf64((ki + 1023 - (UINT64_C(0x4338000000000000))) << 52);
    return p * s;
}

/* ---- float-arithmetic helpers (the same conventions with 32-bit words) */
typedef union { float f; uint32_t u; } fa__bits32;
static inline uint32_t fa__asu32(float x) { fa__bits32 b; b.f = x; return b.u; }
static inline float fa__asf32(uint32_t u) { fa__bits32 b; b.u = u; return b.f; }
static inline uint32_t fa__mask_top32(uint32_t v) { return (uint32_t)0 - (v >> 31); }
static inline uint32_t fa__mask_neg32(float s) { return fa__mask_top32(fa__asu32(s)); }
static inline float fa__blend32(uint32_t m, float a, float b)
{
    return fa__asf32((fa__asu32(a) & m) | (fa__asu32(b) & ~m));
}
static inline uint32_t fa__mask_nan32(float x)
{
    return fa__mask_top32(UINT32_C(0x7f800000) - (fa__asu32(x) & UINT32_C(0x7fffffff)));
}

#define FA__LOGF_LN2HI 0x1.62e4p-1f       /* ln2 rounded to a multiple of 2^-16 */
#define FA__LOGF_LN2LO 0x1.7f7d1cp-20f    /* RN(ln2 - LN2HI) */

/* exp in float arithmetic: x = k ln2 + r (k by the shifter trick, ln2 =
 * LN2HI + LN2LO with LN2HI having 16 bits: k*LN2HI and x - k*LN2HI exact),
 * |r| < 0.3467, exp(r) = 1 + r + r^2 P(r) (P: degree-5 Chebyshev fit of
 * (expm1(r) - r)/r^2 with float coefficients, relative error 2^-29.7), the
 * rounding errors of r and of 1 + r carried separately; result
 * (1 + p) * 2^k1 * 2^k2 (k1 = floor(k/2): the first product is exact, the
 * second rounds once to a subnormal or overflows to inf).  x is clamped to
 * [-104, 89] (exp rounds to 0 / inf beyond). */
static inline float fa__expf1f(float x)
{
    float xc = fa__blend32(fa__mask_neg32(89.0f - x), 89.0f, x);
    xc = fa__blend32(fa__mask_neg32(xc + 104.0f), -104.0f, xc);
    float kf = xc * 0x1.715476p+0f + 0x1.8p23f;
    uint32_t kb = fa__asu32(kf) - UINT32_C(0x4b400000) + 256;   /* k + 256 */
    kf -= 0x1.8p23f;
    float a = xc - kf * FA__LOGF_LN2HI;                    /* exact */
    float t = kf * FA__LOGF_LN2LO;
    float r = a - t, rerr = (a - r) - t;   /* r + rerr ~ a - t (exact if |a| >= |t|) */
    float r2 = r * r, r4 = r2 * r2;
    float q = (0.5f + r * 0x1.555556p-3f) + r2 * (0x1.5554acp-5f + r * 0x1.1110a6p-7f)
            + r4 * (0x1.6d759p-10f + r * 0x1.a17e52p-13f);
    float hi = 1.0f + r, err = (1.0f - hi) + r;            /* fast two-sum */
    float y = hi + ((err + rerr) + r2 * q);
    uint32_t k1b = kb >> 1;                                /* floor(k/2) + 128 */
    float s1 = fa__asf32((k1b - 1) << 23);                 /* 2^floor(k/2) */
    float s2 = fa__asf32((kb - k1b - 1) << 23);            /* 2^(k - floor(k/2)) */
    y = (y * s1) * s2;
    return fa__blend32(fa__mask_nan32(x), x, y);
}

/* log in float arithmetic: x = 2^e z with z in [sqrt(1/2), sqrt(2)) (float
 * subnormals scaled by 2^23 first), s = (z - 1)/(z + 1), |s| < 0.1716,
 *   log z = 2 atanh(s) = 2s + 2s (s^2/3 + s^4/5 + ... + s^10/11)
 * (truncation < 2^-34 relative).  No table (gathers cost more than the
 * arithmetic here).  z - 1 is exact, z + 1 = d + dl exactly, and s is kept
 * as sh + sl (sh = (z-1)/d rounded, sl from the exact residual
 * (z - 1) - sh*(d + dl), Dekker product, no FMA); then
 *   log(x) = (e*LN2HI + 2sh) + (2sl + e*LN2LO + 2sh*q)
 * with an error-free first sum, so the final addition is the only large
 * rounding. */
static inline float fa__logf1f(float x)
{
    uint32_t sub = fa__mask_neg32(x - 0x1p-126f);    /* also x <= 0: fixed below */
    float xs = fa__blend32(sub, x * 0x1p23f, x);
    float eadj = fa__blend32(sub, 23.0f, 0.0f);
    uint32_t ix = fa__asu32(xs);
    uint32_t tmp = ix + (UINT32_C(0x3f800000) - UINT32_C(0x3f3504f3));
    uint32_t ebits = tmp >> 23;                     /* e + 127 */
    float z = fa__asf32(ix + (UINT32_C(127) << 23) - (ebits << 23));
    float e = (float)((int32_t)ebits - 127) - eadj;
    float f = z - 1.0f;                             /* exact */
    float d = z + 1.0f, dl = (1.0f - d) + z;        /* d + dl == z + 1 */
    float inv = 1.0f / d;
    float sh = f * inv;
    /* sh*d exactly (Dekker) */
    float c1 = 4097.0f * sh, shh = c1 - (c1 - sh), shl = sh - shh;
    float c2 = 4097.0f * d, dh = c2 - (c2 - d), dlo = d - dh;
    float pp = sh * d;
    float pe = ((shh * dh - pp) + shh * dlo + shl * dh) + shl * dlo;
    float sl = (((f - pp) - pe) - sh * dl) * inv;   /* s = sh + sl */
    float t = sh * sh;
    float q = t * ((1.0f / 3 + t * (1.0f / 5))
                   + (t * t) * ((1.0f / 7 + t * (1.0f / 9)) + (t * t) * (1.0f / 11)));
    float w = e * FA__LOGF_LN2HI;                   /* exact */
    float s2 = 2.0f * sh;
    float hi = w + s2;                              /* |w| >= |s2| or w == 0 */
    float err = (w - hi) + s2;
    float lo = err + ((2.0f * sl + e * FA__LOGF_LN2LO) + s2 * q);
    float y = hi + lo;

    uint32_t ax = fa__asu32(x) & UINT32_C(0x7fffffff);
    y = fa__blend32(fa__mask_top32(UINT32_C(0x7f7fffff) - ax), x, y); /* inf, nan */
    y = fa__blend32(fa__mask_top32(fa__asu32(x)), NAN, y);           /* sign bit set */
    y = fa__blend32(fa__mask_top32(ax - 1), -INFINITY, y);           /* +-0 */
    return y;
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

/* sigmoid: the reference formula e = exp(-|x|); r = 1/(1+e);
 * x >= 0 ? r : e*r, evaluated in double and rounded once. */
static inline double fa__sigmoidf1(double x)
{
    double nx = -fa__abs(x);
    nx = fa__blend(fa__mask_neg(nx + 110.0), -110.0, nx);
    double e = fa__expf_core(nx);
    double r = 1.0 / (1.0 + e);
    double y = fa__blend(fa__mask_top(fa__asu64(x)), e * r, r); /* -0: 0.5 */
    return fa__blend(fa__mask_nan(x), x, y);
}

/* ------------------------------------------------------------------------ */
/* Array kernels                                                            */
/* ------------------------------------------------------------------------ */
/* Blocks of FA__BLOCK elements: exp and sigmoid first check (vectorised OR
 * of sign bits) whether the block has an input whose result is subnormal, and
 * only then use the slower exactly rounding element function. */
#define FA__BLOCK 256

#define FA__VMATH_DEFINE(name, elem, T, sfx)                                  \
    FA_VMATH_CLONES FA__UNUSED static void fa_v##name##_##sfx(const T *x, T *y, int64_t n) \
    {                                                                          \
        for (int64_t i = 0; i < n; i++)                                        \
            y[i] = (T)elem((double)x[i]);                                      \
    }
/* risky(x): a double whose sign bit is set when x needs the careful path */
#define FA__VMATH_DEFINE2(name, elem, risky, T, sfx)                          \
    FA_VMATH_CLONES FA__UNUSED static void fa_v##name##_##sfx(const T *x, T *y, int64_t n) \
    {                                                                          \
        for (int64_t i0 = 0; i0 < n; i0 += FA__BLOCK) {                        \
            int64_t len = n - i0 < FA__BLOCK ? n - i0 : FA__BLOCK;             \
            const T *xb = x + i0;                                              \
            T *yb = y + i0;                                                    \
            uint64_t acc = 0;                                                  \
            for (int64_t i = 0; i < len; i++)                                  \
                acc |= fa__asu64(risky((double)xb[i]));                        \
            if (acc >> 63) {                                                   \
                for (int64_t i = 0; i < len; i++)                              \
                    yb[i] = (T)elem((double)xb[i], 1);                         \
            } else {                                                           \
                for (int64_t i = 0; i < len; i++)                              \
                    yb[i] = (T)elem((double)xb[i], 0);                         \
            }                                                                  \
        }                                                                      \
    }

#define FA__EXP_RISKY(x) ((x) + 708.0)                 /* x < -708 */
#define FA__SIGMOID_RISKY(x) (708.0 - fa__abs(x))      /* |x| > 708 */

FA__VMATH_DEFINE2(exp, fa__exp1, FA__EXP_RISKY, double, f64)
FA_VMATH_CLONES FA__UNUSED static void fa_vexp_f32(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fa__expf1f(x[i]);
}
FA__VMATH_DEFINE(log, fa__log1, double, f64)
FA_VMATH_CLONES FA__UNUSED static void fa_vlog_f32(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = fa__logf1f(x[i]);
}
FA__VMATH_DEFINE(tanh, fa__tanh1, double, f64)
FA__VMATH_DEFINE(tanh, fa__tanhf1, float, f32)
FA__VMATH_DEFINE2(sigmoid, fa__sigmoid1, FA__SIGMOID_RISKY, double, f64)
FA__VMATH_DEFINE(sigmoid, fa__sigmoidf1, float, f32)

#undef FA__VMATH_DEFINE
#undef FA__VMATH_DEFINE2
#undef FA__EXP_RISKY
#undef FA__SIGMOID_RISKY

/* ------------------------------------------------------------------------ */
/* How the tables and constants were made (Python + mpmath, 60 digits):     */
/*
import struct, mpmath as mp
mp.mp.dps = 60
d = lambda v: float(mp.mpf(v))                        # round to nearest double
def round_bits(v, k): return float(mp.nint(v * 2**k) / 2**k)     # multiple of 2^-k
def round_sig(v, k):                                 # k significant bits
    e = int(mp.floor(mp.log(abs(v), 2))); return float(mp.nint(v * mp.mpf(2)**(k-1-e)) / mp.mpf(2)**(k-1-e))
ln2 = mp.log(2)
for j in range(128):                                  # fa__exp_tab
    t = mp.mpf(2)**(mp.mpf(j)/128); hi = d(t); print(hi.hex(), d(t - hi).hex())
print(d(128/ln2).hex(), round_sig(ln2/128, 35).hex(), d(ln2/128 - round_sig(ln2/128, 35)).hex())
asd = lambda u: struct.unpack('<d', struct.pack('<Q', u))[0]
for i in range(128):                                  # fa__log_* tables
    a, b = mp.mpf(asd(0x3fe6000000000000 + (i << 45))), mp.mpf(asd(0x3fe6000000000000 + ((i+1) << 45)))
    invc = 1.0 if i in (79, 80) else round_sig(2/(a+b), 21)          # 79, 80: next to 1
    logc = -mp.log(invc); hi = round_bits(logc, 42); print(invc.hex(), hi.hex(), d(logc - hi).hex())
print(round_bits(ln2, 42).hex(), d(ln2 - round_bits(ln2, 42)).hex())
print([d(c).hex() for c in mp.taylor(mp.tanh, 0, 13)[3::2]])   # FA__TANH_C3..C13
*/
/* float32 fits (numpy with x86 long double):
import numpy as np
from numpy.polynomial import chebyshev as C
LD = np.longdouble
a = np.log(2)/2*1.0005; t = np.cos(np.pi*(np.arange(4000)+0.5)/4000)*a
c = C.cheb2poly(C.chebfit(t/a, (np.expm1(t.astype(LD))/t).astype(float), 6))
print([np.float32(c[i]/a**i) for i in range(1, 7)])    # fa__expf1f: 0.5 and P
a = np.log(2)/2*1.0001; t = np.cos(np.pi*(np.arange(2000)+0.5)/2000)*a
c = C.cheb2poly(C.chebfit(t/a, np.exp(t.astype(LD)).astype(float), 8))
print([float(c[i]/a**i).hex() for i in range(9)])      # fa__expf_core
*/

#endif /* FA_VMATH_H */
