/* Binding fed arrays by reading numpy's array struct through its public accessors
 * (PyArray_DATA & co. are inline field reads: no numpy C-API table is needed). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define NO_IMPORT_ARRAY
#include <numpy/ndarraytypes.h>

#include "feeds.h"

int fa_feed_bind(fa_feed *f, uintptr_t array, char **slot)
{
    PyArrayObject *a = (PyArrayObject *)array;
    const int nd = PyArray_NDIM(a);
    if (!PyArray_CHKFLAGS(a, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED) || nd > FA_FEED_MAXDIM)
        return -1;
    *slot = PyArray_BYTES(a);
    f->array = array;
    f->data = PyArray_BYTES(a);
    f->descr = (uintptr_t)PyArray_DESCR(a);
    f->nd = nd;
    for (int d = 0; d < nd; d++) {
        f->dims[d] = PyArray_DIM(a, d);
        f->strides[d] = PyArray_STRIDE(a, d);
    }
    return 0;
}

int32_t fa_feeds_changed(const fa_feed *f, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        if (!f[i].array)
            continue;
        PyArrayObject *a = (PyArrayObject *)f[i].array;
        int same = PyArray_BYTES(a) == f[i].data && (uintptr_t)PyArray_DESCR(a) == f[i].descr
                   && PyArray_NDIM(a) == f[i].nd;
        for (int d = 0; same && d < f[i].nd; d++)
            same = PyArray_DIM(a, d) == f[i].dims[d] && PyArray_STRIDE(a, d) == f[i].strides[d];
        if (!same)
            return i;
    }
    return -1;
}
