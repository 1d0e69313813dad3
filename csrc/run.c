/* fastad's VM, part 2: running a validated program (vm.c validated it).
 *
 * The dispatch loop runs instructions in order; elementwise groups run block by block.
 * An instruction or group over many elements is cut into chunks (a fixed partition:
 * the same for every thread count) that the thread pool may run in parallel, and between
 * which a run can stop (Ctrl-C).  Reductions are cut only where their order of additions
 * stays the same: along kept axes, or along the subtrees of the pairwise sum, so results
 * are bit-identical for every thread count.
 *
 * Build: csrc/build_kernel.py (cffi).  Flags: -O3 -ffp-contract=off, never -ffast-math,
 * so that + - * / round exactly as numpy's do.  Math functions go through loops.h. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>  /* scipy-openblas32: every symbol carries the scipy_ prefix */

#include "kinds.h"
#include "loops.h"
#include "pool.h"

void fa_set_blas_threads(int n) { scipy_openblas_set_num_threads(n); }

/* ---- kernels ---- */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(FA_NO_CLONES)
#define FA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FA_CLONES
#endif

/* a function body to specialise where it is called with constant arguments */
#if defined(__GNUC__)
#define FA_INLINE static inline __attribute__((always_inline))
#else
#define FA_INLINE static inline
#endif

/* Runs BODY once per innermost row of the loop over ins->shape; in BODY, ia, ib, ix and
 * io are the element offsets of the row in a, b, x and out, and len is the row length. */
#define FOR_EACH_ROW(ins, BODY)                                                      \
    do {                                                                           \
        const int nd_ = (ins)->ndim;                                                 \
        int64_t idx_[FA_MAXDIM] = {0}, ia = 0, ib = 0, ix = 0, io = 0;             \
        const int64_t len = nd_ ? (ins)->shape[nd_ - 1] : 1;                         \
        int empty_ = 0;                                                            \
        for (int d_ = 0; d_ < nd_; d_++)                                           \
            empty_ |= (ins)->shape[d_] == 0;                                         \
        while (!empty_) {                                                          \
            BODY;                                                                  \
            int d_ = nd_ - 2;                                                      \
            for (; d_ >= 0; d_--) {                                                \
                ia += (ins)->sa[d_], ib += (ins)->sb[d_], io += (ins)->so[d_];           \
                ix += (ins)->sx[d_];                                                 \
                if (++idx_[d_] < (ins)->shape[d_])                                   \
                    break;                                                         \
                ia -= (ins)->sa[d_] * (ins)->shape[d_];                                \
                ib -= (ins)->sb[d_] * (ins)->shape[d_];                                \
                io -= (ins)->so[d_] * (ins)->shape[d_];                                \
                ix -= (ins)->sx[d_] * (ins)->shape[d_];                                \
                idx_[d_] = 0;                                                      \
            }                                                                      \
            if (d_ < 0)                                                            \
                break;                                                             \
        }                                                                          \
    } while (0)

#include "simd.h"

#define T double
#define OTHER float
#define SFX(name) name##_f64
#define MATH(fn) fn
#define DTYPE FA_F64
#define GEMM scipy_cblas_dgemm
#define GEMV scipy_cblas_dgemv
#define DOT scipy_cblas_ddot
#include "kernels.h"
#undef T
#undef OTHER
#undef SFX
#undef MATH
#undef DTYPE
#undef GEMM
#undef GEMV
#undef DOT

#define T float
#define OTHER double
#define SFX(name) name##_f32
#define MATH(fn) fn##f
#define DTYPE FA_F32
#define GEMM scipy_cblas_sgemm
#define GEMV scipy_cblas_sgemv
#define DOT scipy_cblas_sdot
#include "kernels.h"

/* ---- Ctrl-C ---- */

/* Set by our SIGINT handler, installed around long runs (fa_sigint_begin/end). */
static volatile sig_atomic_t sigint_seen;
static struct sigaction saved_sigint;

static void on_sigint(int sig) { sigint_seen = 1; }

int fa_sigint_begin(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigint_seen = 0;
    return sigaction(SIGINT, &sa, &saved_sigint);
}

int fa_sigint_end(void)
{
    sigaction(SIGINT, &saved_sigint, NULL);
    return sigint_seen;
}

int fa_sigint_pending(void) { return sigint_seen; }

static int stopped(const fa_opts *opts) { return opts->interruptible && sigint_seen; }

/* ---- one instruction, in chunks ---- */

static int64_t item_size(int32_t dtype) { return dtype == FA_F64 ? 8 : 4; }

/* The operands' addresses: slot plus element offset (NULL for unused operands). */
typedef struct {
    const char *a, *b, *x;
    char *o;
} operands;

/* slot + offset elements, in unsigned arithmetic: an empty operand's offset (nothing is
 * read there) may be anything, even beyond what int64 bytes or the address space hold. */
static inline char *offset_by(char *slot, int64_t offset, int64_t item)
{
    return (char *)((uintptr_t)slot + (uintptr_t)offset * (uintptr_t)item);
}

static inline operands operands_of(const fa_instr *ins, char *const *slots)
{
    const int64_t item = item_size(ins->dtype);
    const int64_t a_item = ins->op == FA_CAST_F32_F64 ? 4 : ins->op == FA_CAST_F64_F32 ? 8 : item;
    operands p;
    p.a = ins->a >= 0 ? offset_by(slots[ins->a], ins->oa, a_item) : NULL;
    p.b = ins->b >= 0 ? offset_by(slots[ins->b], ins->ob, item) : NULL;
    p.x = ins->x >= 0 ? offset_by(slots[ins->x], ins->ox, item) : NULL;
    p.o = offset_by(slots[ins->out], ins->oo, item);
    return p;
}

/* Inlined, so that `p` stays in registers: passed on the stack, its 8-byte stores read
 * back as 16-byte loads stall store forwarding (a third of a small program's time). */
FA_INLINE void execute(const fa_instr *ins, operands p)
{
    if (ins->dtype == FA_F64)
        execute_f64(ins, p.a, p.b, p.x, p.o);
    else
        execute_f32(ins, p.a, p.b, p.x, p.o);
}

enum { CUT_N, CUT_ROWS, CUT_AXIS, CUT_GROUP, CUT_TREE, CUT_GEMM };

typedef struct {
    const fa_instr *ins;
    char *const *slots;
    const fa_opts *opts;
    int how;            /* CUT_* */
    int axis;           /* CUT_AXIS: the loop axis cut */
    int64_t per, total; /* indices of the cut dimension per chunk, and in all */
    int64_t *leaves;    /* CUT_TREE: (offset, length) pairs */
    void *sums;         /* CUT_TREE: one partial sum per leaf */
} cut_job;


static void run_chunk(void *ctx, int64_t c)
{
    const cut_job *job = ctx;
    if (stopped(job->opts))
        return;
    const fa_instr *ins = job->ins;
    char *const *slots = job->slots;
    const int64_t lo = c * job->per;
    const int64_t len = job->total - lo < job->per ? job->total - lo : job->per;
    const int64_t item = item_size(ins->dtype);
    const operands p = operands_of(ins, slots);
    const char *a = p.a, *b = p.b;
    char *o = p.o;
    fa_instr sub = *ins;
    switch (job->how) {
    case CUT_GROUP:
        if (ins->dtype == FA_F64)
            run_group_f64(ins, slots, lo, lo + len);
        else
            run_group_f32(ins, slots, lo, lo + len);
        return;
    case CUT_GEMM:  /* output rows [lo, lo + len) of one gemm */
        if (ins->dtype == FA_F64)
            gemm_rows_f64(ins, (const double *)a, (const double *)b, (double *)o, lo, lo + len);
        else
            gemm_rows_f32(ins, (const float *)a, (const float *)b, (float *)o, lo, lo + len);
        return;
    case CUT_TREE: {  /* a and o include their offsets; a group's members have none */
        const int64_t off = job->leaves[2 * c], n = job->leaves[2 * c + 1];
        if (ins->group > 1 && ins->dtype == FA_F64)
            ((double *)job->sums)[c] = group_sum_f64(ins, slots, off, n);
        else if (ins->group > 1)
            ((float *)job->sums)[c] = group_sum_f32(ins, slots, off, n);
        else if (ins->dtype == FA_F64)
            ((double *)job->sums)[c] = pairwise_f64((const double *)a + off, n);
        else
            ((float *)job->sums)[c] = pairwise_f32((const float *)a + off, n);
        return;
    }
    case CUT_N:  /* UNARY, CONST, FILL: n contiguous elements */
        sub.n = len;
        execute(&sub, (operands){a ? a + lo * item : NULL, NULL, NULL, o + lo * item});
        return;
    case CUT_ROWS:  /* softmax family: m rows of n; LOG_SOFTMAX's scratch has m rows too */
        sub.m = len;
        execute(&sub, (operands){a + lo * ins->n * item, b ? b + lo * ins->n * item : NULL,
                                 NULL, o + lo * ins->n * item});
        return;
    default: {  /* CUT_AXIS: a strided loop cut along one axis */
        const int d = job->axis;
        const int64_t in_item = ins->op == FA_CAST_F32_F64 ? 4 : ins->op == FA_CAST_F64_F32 ? 8 : item;
        sub.shape[d] = len;
        if (kind_of[ins->op] == K_SUM)
            sub.n = 0;  /* the outputs were started once, before the chunks */
        execute(&sub, (operands){a + lo * ins->sa[d] * in_item,
                                 b ? b + lo * ins->sb[d] * item : NULL,
                                 p.x ? p.x + lo * ins->sx[d] * item : NULL,
                                 o + lo * ins->so[d] * item});
    }
    }
}

/* How to cut `ins` into chunks (job->how, per, total); 0 when it is run whole. */
static int plan_cut(const fa_instr *ins, cut_job *job)
{
    const int kind = kind_of[ins->op];
    if (ins->group > 1) {  /* a group that ends in a SUM is cut as the sum is */
        job->how = group_sum_tail(ins) ? CUT_TREE : CUT_GROUP;
        job->total = group_elements(ins);
        job->per = FA_CHUNK;
        return job->total >= 2 * FA_CHUNK;
    }
    switch (kind) {
    case K_UNARY: case K_CONST: case K_FILL:
        job->how = CUT_N;
        job->total = ins->n;
        job->per = FA_CHUNK;
        return ins->n >= 2 * FA_CHUNK;
    case K_ROWS:
        job->how = CUT_ROWS;
        job->total = ins->m;
        job->per = ins->n >= FA_CHUNK ? 1 : FA_CHUNK / ins->n;
        return ins->m >= 2 && ins->m * ins->n >= 2 * FA_CHUNK;
    case K_MATMUL: {
        const int64_t nk = ins->n * ins->k;  /* < 2**62: both are 32-bit sizes */
        if (ins->ndim == 0) {  /* one product: gemm's output rows (gemv and dot run whole) */
            if (ins->m < 2 || ins->n < 2 || ins->k == 0)
                return 0;
            int64_t per = MATMUL_WORK / nk;
            per = per < MATMUL_ROWS ? MATMUL_ROWS : per;
            job->how = CUT_GEMM;
            job->total = ins->m;
            job->per = per;
            return ins->m > per;
        }
        /* a stack: whole matrices along its outermost batch axis worth cutting */
        const double each = (double)ins->m * (double)nk;
        int64_t size = 1;
        for (int d = 0; d < ins->ndim; d++)
            size *= ins->shape[d];
        if ((double)size * each < 2.0 * (double)MATMUL_WORK)
            return 0;
        for (int d = 0; d < ins->ndim; d++) {
            if (ins->shape[d] < 2)
                continue;
            const double inner = each * (double)(size / ins->shape[d]);
            job->how = CUT_AXIS;
            job->axis = d;
            job->total = ins->shape[d];
            job->per = inner >= (double)MATMUL_WORK ? 1 : (int64_t)((double)MATMUL_WORK / inner);
            return 1;
        }
        return 0;
    }
    case K_BINARY: case K_TERNARY: case K_COPY: case K_SUM: {
        int64_t size = 1;
        for (int d = 0; d < ins->ndim; d++)
            size *= ins->shape[d];
        if (size < 2 * FA_CHUNK)
            return 0;
        /* cut the outermost axis worth cutting; a SUM only along an axis it keeps */
        for (int d = 0; d < ins->ndim; d++) {
            if (ins->shape[d] < 2 || (kind == K_SUM && ins->so[d] == 0))
                continue;
            const int64_t inner = size / ins->shape[d];
            job->how = CUT_AXIS;
            job->axis = d;
            job->total = ins->shape[d];
            job->per = inner >= FA_CHUNK ? 1 : FA_CHUNK / inner;
            return 1;
        }
        /* a SUM of everything (the loop collapses to one contiguous axis): cut along the
         * subtrees of the pairwise sum */
        if (ins->op == FA_SUM && ins->ndim == 1 && ins->sa[0] == 1) {
            job->how = CUT_TREE;
            job->total = ins->shape[0];
            return 1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* The leaves of the pairwise sum's recursion over n elements at offset `off` when it is
 * cut at subtrees of at most `leaf` (> 128) elements, in order: leaves[2k], leaves[2k+1]
 * are a leaf's offset and length.  Returns the count so far (writes at most `cap`). */
static int64_t pairwise_leaves(int64_t off, int64_t n, int64_t leaf, int64_t *leaves,
                               int64_t count, int64_t cap)
{
    if (n <= leaf) {
        if (count < cap) {
            leaves[2 * count] = off;
            leaves[2 * count + 1] = n;
        }
        return count + 1;
    }
    int64_t half = n / 2;
    half -= half % 8;
    count = pairwise_leaves(off, half, leaf, leaves, count, cap);
    return pairwise_leaves(off + half, n - half, leaf, leaves, count, cap);
}

static void run_tree(cut_job *job, int threads)
{
    const fa_instr *ins = job->ins;
    const int64_t n = job->total, leaf = FA_CHUNK * 2;
    const int64_t count = pairwise_leaves(0, n, leaf, NULL, 0, 0);  /* count only */
    job->leaves = malloc((size_t)count * 2 * sizeof(int64_t));
    job->sums = malloc((size_t)count * sizeof(double));
    if (!job->leaves || !job->sums)
        abort();
    pairwise_leaves(0, n, leaf, job->leaves, 0, count);
    fa_parallel(threads, run_chunk, job, count);
    if (!stopped(job->opts)) {  /* added to the start, 0, as the whole sum is: -0.0 sums to 0.0 */
        int64_t next = 0;
        const fa_instr *tail = group_sum_tail(ins);
        char *o = operands_of(tail ? tail : ins, job->slots).o;
        if (ins->dtype == FA_F64)
            *(double *)o = 0 + pairwise_combine_f64(n, leaf, job->sums, &next);
        else
            *(float *)o = 0 + pairwise_combine_f32(n, leaf, job->sums, &next);
    }
    free(job->leaves);
    free(job->sums);
}

static inline void run_whole(const fa_instr *ins, char *const *slots)
{
    execute(ins, operands_of(ins, slots));
}

/* Runs one instruction (or the group it starts). */
static void run_one(const fa_instr *ins, char *const *slots, const fa_opts *opts)
{
    cut_job job = {.ins = ins, .slots = slots, .opts = opts};
    const int threads = opts->threads;
    /* Chunks are for threads and for Ctrl-C's checks; on one thread, uninterruptible,
     * an instruction runs whole (one call of a numpy loop, not one per chunk) unless
     * its chunks round differently: a gemm cut by rows, a sum cut at pairwise subtrees
     * (both cut the same way on every thread count, so that the results are the same). */
    const int cut = plan_cut(ins, &job);
    const fa_instr *tail = group_sum_tail(ins);
    if (!cut || (threads == 1 && !opts->interruptible && job.how != CUT_GEMM &&
                 job.how != CUT_TREE)) {
        const int64_t n = ins->group > 1 ? group_elements(ins) : 0;
        if (tail && ins->dtype == FA_F64)  /* the sum's output starts at 0, as SUM's does */
            *(double *)slots[tail->out] = 0 + group_sum_f64(ins, slots, 0, n);
        else if (tail)
            *(float *)slots[tail->out] = 0 + group_sum_f32(ins, slots, 0, n);
        else if (ins->group > 1 && ins->dtype == FA_F64)
            run_group_f64(ins, slots, 0, n);
        else if (ins->group > 1)
            run_group_f32(ins, slots, 0, n);
        else
            run_whole(ins, slots);
        return;
    }
    /* Each chunk adds to the outputs: start them once.  Not a group's sum (run_tree
     * writes it at the end): its output may share memory with a buffer the members
     * write, whose last use was earlier in the program (memplan). */
    if (kind_of[ins->op] == K_SUM) {
        char *o = operands_of(ins, slots).o;
        if (ins->dtype == FA_F64)
            reduce_init_f64(ins, (double *)o);
        else
            reduce_init_f32(ins, (float *)o);
    }
    if (job.how == CUT_TREE) {
        run_tree(&job, threads);
        return;
    }
    fa_parallel(threads, run_chunk, &job, (job.total + job.per - 1) / job.per);
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static const fa_opts default_opts = {.threads = 1};

int fa_run(const fa_instr *prog, int64_t start, int64_t end, char *const *slots,
           const fa_opts *opts)
{
    if (!opts)
        opts = &default_opts;
    for (int64_t i = start; i < end; i++) {
        if (stopped(opts))
            return 1;
        const fa_instr *ins = &prog[i];
        if (ins->fast && !opts->ns) {  /* small programs: all of them */
            if (ins->fast == FAST_UNS) {
                if (ins->dtype == FA_F64)
                    unary_few_f64(ins, slots);
                else
                    unary_few_f32(ins, slots);
            } else if (ins->fast == FAST_BINS) {
                if (ins->dtype == FA_F64)
                    binary_few_f64(ins, slots);
                else
                    binary_few_f32(ins, slots);
            } else {
                run_whole(ins, slots);
            }
            continue;
        }
        /* a group that starts here but ends past `end` runs one instruction at a time */
        fa_instr single;
        if (ins->group > 1 && ins->group > end - i) {
            single = *ins;
            single.group = 0;
            ins = &single;
        }
        const int64_t t0 = opts->ns ? now_ns() : 0;
        run_one(ins, slots, opts);
        if (opts->ns)
            opts->ns[i] += now_ns() - t0;
        if (ins->group > 1)
            i += ins->group - 1;
    }
    return stopped(opts);
}

/* ---- shards: many programs side by side ---- */

typedef struct {
    const fa_shard *shards;
    const fa_opts *opts;
} shards_job;

static void run_shard(void *ctx, int64_t s)
{
    const shards_job *job = ctx;
    fa_run(job->shards[s].prog, 0, job->shards[s].n_instr, job->shards[s].slots, job->opts);
}

int fa_run_shards(const fa_shard *shards, int64_t n, int32_t threads, int32_t interruptible)
{
    /* one thread inside a shard: the shards are the parallelism (and a nested region
     * would find the pool busy anyway) */
    const fa_opts opts = {.threads = 1, .interruptible = interruptible};
    const shards_job job = {.shards = shards, .opts = &opts};
    const int blas = threads > 1 ? scipy_openblas_get_num_threads() : 1;
    if (blas > 1)
        scipy_openblas_set_num_threads(1);
    fa_parallel(threads, run_shard, (void *)&job, n);
    if (blas > 1)
        scipy_openblas_set_num_threads(blas);
    return stopped(&opts);
}
