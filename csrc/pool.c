/* fastad's thread pool (pool.h). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Iterations an idle worker (or a caller waiting for the last chunk) spins before it
 * sleeps: some tens of microseconds. */
#define SPINS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;   /* a new region, for workers */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;   /* no worker in a region */
static atomic_flag busy = ATOMIC_FLAG_INIT;             /* a region is running */
static int n_workers;                                    /* guarded by lock */
static int active;                                       /* workers in a region; lock */

/* The region: written under `lock` while no worker is active, read by workers that
 * joined it (they copy fn, ctx, n_chunks and threads under the lock). */
static fa_chunk_fn job_fn;
static void *job_ctx;
static int64_t job_chunks;
static int job_threads;
static atomic_long generation;     /* bumped for every region */
static atomic_long next_chunk;
static atomic_long chunks_left;

static void run_chunks(fa_chunk_fn fn, void *ctx, int64_t n)
{
    for (;;) {
        const long c = atomic_fetch_add(&next_chunk, 1);
        if (c >= n)
            return;
        fn(ctx, c);
        atomic_fetch_sub(&chunks_left, 1);
    }
}

static void *worker(void *arg)
{
    const int id = (int)(intptr_t)arg;  /* 1 .. n_workers; the caller is thread 0 */
    long seen = 0;
    for (;;) {
        for (int spin = 0; atomic_load(&generation) == seen && spin < SPINS; spin++)
            cpu_relax();
        pthread_mutex_lock(&lock);
        while (atomic_load(&generation) == seen)
            pthread_cond_wait(&wake, &lock);
        seen = atomic_load(&generation);
        const int join = id < job_threads;
        fa_chunk_fn fn = job_fn;
        void *ctx = job_ctx;
        const int64_t n = job_chunks;
        active += join;
        pthread_mutex_unlock(&lock);
        if (!join)
            continue;
        run_chunks(fn, ctx, n);
        pthread_mutex_lock(&lock);
        if (--active == 0)
            pthread_cond_signal(&idle);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* After fork() the child has no workers (threads don't survive a fork). */
static void forget_workers(void)
{
    n_workers = 0;
    active = 0;
    atomic_flag_clear(&busy);
}

static void start_workers(int want)  /* under lock */
{
    static int registered;
    if (!registered) {
        pthread_atfork(NULL, NULL, forget_workers);
        registered = 1;
    }
    while (n_workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int err = pthread_create(&t, &attr, worker, (void *)(intptr_t)(n_workers + 1));
        pthread_attr_destroy(&attr);
        if (err)
            return;  /* run with the workers there are */
        n_workers++;
    }
}

void fa_parallel(int threads, fa_chunk_fn fn, void *ctx, int64_t n_chunks)
{
    if (threads > FA_MAX_THREADS)
        threads = FA_MAX_THREADS;
    if (threads <= 1 || n_chunks <= 1 || atomic_flag_test_and_set(&busy)) {
        for (int64_t c = 0; c < n_chunks; c++)
            fn(ctx, c);
        return;
    }
    pthread_mutex_lock(&lock);
    start_workers(threads - 1);
    while (active > 0)  /* stragglers of the previous region still hold its fields */
        pthread_cond_wait(&idle, &lock);
    job_fn = fn;
    job_ctx = ctx;
    job_chunks = n_chunks;
    job_threads = threads;
    atomic_store(&next_chunk, 0);
    atomic_store(&chunks_left, n_chunks);
    atomic_fetch_add(&generation, 1);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    run_chunks(fn, ctx, n_chunks);
    for (int spin = 0; atomic_load(&chunks_left) > 0; spin++)
        if (spin < SPINS)
            cpu_relax();
        else
            sched_yield();
    atomic_flag_clear(&busy);
}

int fa_pool_workers(void)
{
    pthread_mutex_lock(&lock);
    const int n = n_workers;
    pthread_mutex_unlock(&lock);
    return n;
}
