/* The math-function table (loops.h): binding numpy's inner loops, and fastad's own.
 * The only file that sees Python's and numpy's headers; it reads a ufunc object's loop
 * table (PyUFuncObject: ntypes, types, functions, data) and calls nothing of numpy's
 * C-API, so no import_array() is needed. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define NO_IMPORT_ARRAY
#define NO_IMPORT_UFUNC
#include <numpy/ndarraytypes.h>
#include <numpy/ufuncobject.h>

#include <string.h>

#include "loops.h"
#include "vmath.h"

fa_loop fa_loops[FA_NUM_LOOPS][2];

static const int loop_nargs[] = {
#define FA_LOOP_NARGS(name, nargs) nargs,
    FA_LOOPS(FA_LOOP_NARGS)
#undef FA_LOOP_NARGS
};
const char *const fa_loop_names[] = {
#define FA_LOOP_NAME(name, nargs) #name,
    FA_LOOPS(FA_LOOP_NAME)
#undef FA_LOOP_NAME
};
const int fa_num_loops = FA_NUM_LOOPS;

static int valid(int loop, int dtype)
{
    return loop >= 0 && loop < FA_NUM_LOOPS && (dtype == 0 || dtype == 1);
}

int fa_bind_numpy_loop(int loop, int dtype, uintptr_t ufunc)
{
    if (!valid(loop, dtype) || !ufunc)
        return -1;
    const PyUFuncObject *uf = (const PyUFuncObject *)ufunc;
    const int nargs = loop_nargs[loop];
    const char want = dtype ? NPY_DOUBLE : NPY_FLOAT;
    /* the name check guards against an id that is not the ufunc asked for */
    char lower[16] = {0};
    for (int i = 0; fa_loop_names[loop][i] && i < 15; i++) {
        const char c = fa_loop_names[loop][i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    if (!uf->name || strcmp(uf->name, lower) != 0 || uf->nargs != nargs || uf->nout != 1)
        return -1;
    for (int t = 0; t < uf->ntypes; t++) {
        int match = 1;
        for (int j = 0; j < nargs; j++)
            match &= uf->types[t * nargs + j] == want;
        if (match && uf->functions[t]) {
            fa_loops[loop][dtype].fn = (fa_loop_fn)uf->functions[t];
            fa_loops[loop][dtype].data = uf->data ? uf->data[t] : NULL;
            return 0;
        }
    }
    return -1;
}

/* fastad's own loops, in the ufunc signature; the VM calls them with unit steps only */
static void own_tanh_f64(char **args, const intptr_t *dims, const intptr_t *steps, void *data)
{
    fa_vtanh_f64((const double *)args[0], (double *)args[1], dims[0]);
}

static void own_tanh_f32(char **args, const intptr_t *dims, const intptr_t *steps, void *data)
{
    fa_vtanh_f32((const float *)args[0], (float *)args[1], dims[0]);
}

static void own_sin_f64(char **args, const intptr_t *dims, const intptr_t *steps, void *data)
{
    fa_vsin_f64((const double *)args[0], (double *)args[1], dims[0]);
}

static void own_cos_f64(char **args, const intptr_t *dims, const intptr_t *steps, void *data)
{
    fa_vcos_f64((const double *)args[0], (double *)args[1], dims[0]);
}

static const fa_loop_fn own_loops[FA_NUM_LOOPS][2] = {
    [FA_LOOP_TANH] = {own_tanh_f32, own_tanh_f64},
    [FA_LOOP_SIN] = {NULL, own_sin_f64},
    [FA_LOOP_COS] = {NULL, own_cos_f64},
};

int fa_use_own_loop(int loop, int dtype)
{
    if (!valid(loop, dtype) || !own_loops[loop][dtype])
        return -1;
    fa_loops[loop][dtype].fn = own_loops[loop][dtype];
    fa_loops[loop][dtype].data = NULL;
    return 0;
}

int fa_loop_origin(int loop, int dtype)
{
    if (!valid(loop, dtype) || !fa_loops[loop][dtype].fn)
        return -1;
    return fa_loops[loop][dtype].fn != own_loops[loop][dtype];
}
