/* Fed numpy arrays bound to slots without the buffer protocol.  A workspace points a
 * slot at a fed array's data and records the array's layout (fa_feed_bind); a later run
 * that feeds the same objects checks all their layouts in one call (fa_feeds_changed)
 * instead of re-binding each: `arr.strides = ...`, `arr.shape = ...` or a resize in
 * place between runs is seen there.  Both run without the GIL (cffi releases it), as
 * the run itself reads the arrays: changing a fed array from another thread while a run
 * reads it is a race in the caller's program, as it is with numpy. */
#ifndef FASTAD_FEEDS_H
#define FASTAD_FEEDS_H

#include <stdint.h>

#define FA_FEED_MAXDIM 64  /* numpy's NPY_MAXDIMS */

typedef struct {
    uintptr_t array;  /* the PyArrayObject recorded (kept alive by the caller); 0: none */
    char *data;
    uintptr_t descr;
    int32_t nd;
    int64_t dims[FA_FEED_MAXDIM];
    int64_t strides[FA_FEED_MAXDIM];
} fa_feed;

/* `array` must be the address of a live numpy.ndarray (the caller checks its type).
 * Points *slot at its data and records its layout in *f.  Returns 0, or -1 when it is
 * not C-contiguous and aligned (nothing changed: the caller copies it first). */
int fa_feed_bind(fa_feed *f, uintptr_t array, char **slot);

/* The index of the first of n recorded feeds whose array's data pointer, dtype, shape
 * or strides differ from the recorded ones; -1 when none does. */
int32_t fa_feeds_changed(const fa_feed *f, int32_t n);

#endif
