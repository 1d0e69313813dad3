/* fastad's thread pool: a parallel for over chunks, run by the calling thread and up to
 * `threads - 1` workers started once and kept for the life of the process.
 *
 * Work is split into chunks the caller defines (never by thread count), so results do
 * not depend on how many threads took part.  One parallel region runs at a time: a
 * caller that finds the pool busy (another thread's region) runs its chunks alone.
 * Idle workers spin briefly, then sleep on a condition variable: they never compete
 * with BLAS or other work while there is nothing to do. */
#ifndef FASTAD_POOL_H
#define FASTAD_POOL_H

#include <stdint.h>

#define FA_MAX_THREADS 64

typedef void (*fa_chunk_fn)(void *ctx, int64_t chunk);

/* Runs fn(ctx, c) for c in [0, n_chunks), on up to `threads` threads (the caller's
 * included); returns when all chunks are done. */
void fa_parallel(int threads, fa_chunk_fn fn, void *ctx, int64_t n_chunks);

/* Workers alive (0 before the first parallel region that needs them). */
int fa_pool_workers(void);

#endif
