/* fastad's training loop: many steps of one validated step program in one call.
 *
 * A step feeds the next samples of the data (streams), runs the program (which ends by
 * copying the new parameters and optimizer state into their buffers) and records the
 * loss.  fastad/train.py builds the job; the program was validated by fa_validate and
 * the streams checked against the data arrays' sizes when the job was made. */
#include <string.h>

#include "train.h"

/* The row stream `s` reads at step k, the call's step number `call_step`: the sample
 * (its j-th of the step), or the step's row of a schedule. */
static int64_t stream_index(const fa_stream *s, const fa_train_job *job, int64_t k, int64_t j,
                            int64_t call_step)
{
    if (s->by_step)
        return call_step;
    const int64_t i = (job->epoch_steps ? k % job->epoch_steps : k) * job->batch + j;
    return job->order ? job->order[i] : i;
}

static void feed_step(const fa_train_job *job, int64_t k, int64_t call_step)
{
    for (int32_t n = 0; n < job->n_streams; n++) {
        const fa_stream *s = &job->streams[n];
        char **slot = &job->slots[s->slot];
        switch (s->kind) {
        case FA_STREAM_POINT:  /* the slot points at the step's rows, which are contiguous */
            *slot = (char *)s->base + stream_index(s, job, k, 0, call_step) * s->stride;
            break;
        case FA_STREAM_CELL:   /* a 0-d feed: its value is copied into its cell */
            memcpy(*slot, s->base + stream_index(s, job, k, 0, call_step) * s->stride,
                   (size_t)s->bytes);
            break;
        default:               /* FA_STREAM_GATHER: the step's rows, in order, into the slot */
            for (int64_t j = 0; j < job->batch; j++)
                memcpy(*slot + j * s->bytes,
                       s->base + stream_index(s, job, k, j, call_step) * s->stride,
                       (size_t)s->bytes);
        }
    }
}

int64_t fa_train(const fa_train_job *job, int64_t first, int64_t count, double *history)
{
    for (int64_t k = first; k < first + count; k++) {
        if (job->interruptible && fa_sigint_pending())
            return k - first;
        feed_step(job, k, k - first);
        fa_run(job->prog, 0, job->n_instr, job->slots, &job->run_opts);
        const char *loss = job->slots[job->loss_slot];
        history[k - first] = job->loss_f64 ? *(const double *)loss : *(const float *)loss;
    }
    return count;
}
