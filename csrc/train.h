/* fastad's training loop (train.c): runs many steps of a step program in one call. */
#ifndef FASTAD_TRAIN_H
#define FASTAD_TRAIN_H

#include <stdint.h>

#include "vm.h"

/* How a stream feeds one placeholder at each step, from an array of rows of `stride`
 * bytes at `base`: */
enum {
    FA_STREAM_POINT = 0,   /* the feed's slot points at row i (the step's rows are contiguous) */
    FA_STREAM_CELL = 1,    /* a 0-d feed: `bytes` of row i are copied into its cell */
    FA_STREAM_GATHER = 2,  /* `batch` rows of `bytes`, i = order[k*batch + j], copied into
                            * the feed's buffer, one after another */
};

typedef struct {
    int32_t slot;          /* the placeholder's slot */
    int32_t kind;          /* FA_STREAM_* */
    int32_t by_step;       /* row i is the step's number in the call (a schedule's table
                            * for the call's steps), not its sample */
    int64_t stride, bytes;
    const char *base;
} fa_stream;

typedef struct {
    const fa_instr *prog;  /* a validated step program */
    int64_t n_instr;
    char **slots;          /* its slot table (streams rewrite their slots) */
    int32_t n_streams;
    const fa_stream *streams;
    const int64_t *order;  /* the epoch's sample order; NULL: 0, 1, 2, ... */
    int64_t batch;         /* samples a step */
    int64_t epoch_steps;   /* > 0: steps of an epoch, and step k reads the samples of step
                            * k % epoch_steps (epochs in one call; then order is NULL) */
    int32_t loss_slot;     /* the loss: a 0-d value of the program */
    int32_t loss_f64;      /* its dtype is float64 (else float32) */
    int32_t interruptible; /* stop between steps after a SIGINT (fa_sigint_begin) */
    fa_opts run_opts;      /* how each step runs */
} fa_train_job;

/* Runs steps [first, first + count) of an epoch (or of epochs, with epoch_steps): step k
 * reads samples k*batch .. k*batch + batch - 1 (through `order`) and row k - first of
 * by_step streams; its loss goes to history[k - first].  Returns the steps run: fewer
 * than `count` when a SIGINT stopped it between two steps. */
int64_t fa_train(const fa_train_job *job, int64_t first, int64_t count, double *history);

#endif
