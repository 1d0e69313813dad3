/* The math-function table: for each function the VM computes through a loop and each
 * dtype, the inner loop that computes it.  A loop has numpy's ufunc inner-loop signature,
 * and by default it *is* numpy's: fastad.loops binds each entry at import to the loop
 * numpy itself runs for that ufunc and dtype on this CPU (numpy picks the instruction
 * set at run time), so native results equal numpy's bit for bit on every CPU.  Where
 * numpy has only a scalar loop, fastad.loops may install fastad's own (vmath.h) instead.
 *
 * X(NAME, NARGS) -- NAME is the numpy ufunc (lower case), NARGS inputs + outputs. */
#ifndef FASTAD_LOOPS_H
#define FASTAD_LOOPS_H

#include <stdint.h>

#define FA_LOOPS(X) \
    X(EXP, 2)       \
    X(LOG, 2)       \
    X(TANH, 2)      \
    X(SIN, 2)       \
    X(COS, 2)       \
    X(LOG1P, 2)     \
    X(EXPM1, 2)     \
    X(POWER, 3)     \
    X(LOGADDEXP, 3) \
    X(MAXIMUM, 3)   \
    X(MINIMUM, 3)   \
    X(CLIP, 4)

enum fa_loop_id {
#define FA_LOOP_ENUM(name, nargs) FA_LOOP_##name,
    FA_LOOPS(FA_LOOP_ENUM)
#undef FA_LOOP_ENUM
    FA_NUM_LOOPS
};

/* numpy's PyUFuncGenericFunction (npy_intp is intptr_t on every platform numpy supports) */
typedef void (*fa_loop_fn)(char **args, const intptr_t *dimensions, const intptr_t *steps,
                           void *data);
typedef struct {
    fa_loop_fn fn;
    void *data;
} fa_loop;

/* [function][dtype]; written only at import (fa_bind_numpy_loop, fa_use_own_loop), before
 * any program runs, and read-only afterwards. */
extern fa_loop fa_loops[FA_NUM_LOOPS][2];
extern const char *const fa_loop_names[];
extern const int fa_num_loops;

/* Installs numpy's inner loop for `loop` in `dtype` (0 float32, 1 float64), read from the
 * ufunc object at address `ufunc` (its id() in CPython), which must be the ufunc of that
 * name.  Returns 0, or -1 when the object is not that ufunc or has no such loop. */
int fa_bind_numpy_loop(int loop, int dtype, uintptr_t ufunc);
/* Installs fastad's own loop (vmath.h) where it has one; returns 0, or -1. */
int fa_use_own_loop(int loop, int dtype);
/* 1 when the entry holds numpy's loop, 0 for fastad's own, -1 when unbound. */
int fa_loop_origin(int loop, int dtype);

/* One call of a unary loop over n contiguous elements of `item` bytes (y may be x). */
static inline void fa_call_unary(const fa_loop *l, const void *x, void *y, int64_t n,
                                 int64_t item)
{
    char *args[2] = {(char *)x, (char *)y};
    const intptr_t dims[1] = {(intptr_t)n}, steps[2] = {(intptr_t)item, (intptr_t)item};
    l->fn(args, dims, steps, l->data);
}

/* One call of a binary loop over n elements with these element strides (0: broadcast). */
static inline void fa_call_binary(const fa_loop *l, const void *a, int64_t sa, const void *b,
                                  int64_t sb, void *y, int64_t so, int64_t n, int64_t item)
{
    char *args[3] = {(char *)a, (char *)b, (char *)y};
    const intptr_t dims[1] = {(intptr_t)n};
    const intptr_t steps[3] = {(intptr_t)(sa * item), (intptr_t)(sb * item), (intptr_t)(so * item)};
    l->fn(args, dims, steps, l->data);
}

/* y[i] = loop(x[i], *c) over n contiguous elements: a binary loop with a broadcast scalar. */
static inline void fa_call_by_scalar(const fa_loop *l, const void *x, const void *c, void *y,
                                     int64_t n, int64_t item)
{
    char *args[3] = {(char *)x, (char *)c, (char *)y};
    const intptr_t dims[1] = {(intptr_t)n};
    const intptr_t steps[3] = {(intptr_t)item, 0, (intptr_t)item};
    l->fn(args, dims, steps, l->data);
}

/* y[i] = loop(x[i], *lo, *hi) over n contiguous elements (np.clip's loop). */
static inline void fa_call_clip(const fa_loop *l, const void *x, const void *lo, const void *hi,
                                void *y, int64_t n, int64_t item)
{
    char *args[4] = {(char *)x, (char *)lo, (char *)hi, (char *)y};
    const intptr_t dims[1] = {(intptr_t)n};
    const intptr_t steps[4] = {(intptr_t)item, 0, 0, (intptr_t)item};
    l->fn(args, dims, steps, l->data);
}

#endif
