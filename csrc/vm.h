/* fastad's VM: runs a validated program of instructions over buffers ("slots").
 * It knows nothing about graphs or gradients; fastad/lowering.py builds the programs.
 * vm.c validates programs, run.c runs them. */
#ifndef FASTAD_VM_H
#define FASTAD_VM_H

#include <stdint.h>
#include "opcodes.h"

#define FA_MAXDIM 6

enum fa_opcode {
#define FA_ENUM(name, kind) FA_##name,
    FA_OPCODES(FA_ENUM)
#undef FA_ENUM
    FA_NUM_OPCODES
};

enum fa_dtype { FA_F32 = 0, FA_F64 = 1 };

typedef struct {
    int32_t op;       /* enum fa_opcode */
    int32_t dtype;    /* enum fa_dtype of the output (and of the inputs, except CAST_*) */
    int32_t out, a, b;            /* slot indices; -1 when the operand is unused */
    int32_t ndim;                 /* rank of the loop over `shape` */
    int64_t shape[FA_MAXDIM];     /* BINARY/COPY: output shape; SUM: input shape */
    int64_t sa[FA_MAXDIM];        /* element strides of a, b and out along `shape` */
    int64_t sb[FA_MAXDIM];
    int64_t so[FA_MAXDIM];
    int64_t n;                    /* UNARY/CONST/FILL: elements; ROWS: row length; MATMUL: cols */
    int64_t m, k;                 /* MATMUL: rows of out, inner size; ROWS: row count */
    int32_t trans_a, trans_b;     /* MATMUL */
    double c;                     /* CONST/FILL */
    int32_t group;                /* > 1 on the first of that many elementwise instructions
                                   * run block by block (see fa_run); else 0 */
    int32_t fast;                 /* how fa_run runs it: set by fa_validate (any value the
                                   * program comes with is replaced) */
    int32_t x;                    /* TERNARY: the condition's slot; -1 when unused */
    int64_t sx[FA_MAXDIM];        /* its element strides along `shape` */
    int64_t oa, ob, ox, oo;       /* element offsets into a, b, x and out: strided kinds
                                   * (BINARY, TERNARY, COPY, SUM) only; else 0 */
    double c2;                    /* CLIP: the upper bound (c is the lower) */
    int64_t geom[10];             /* CONV: N, C, H, W, O, KH, KW, stride, padding;
                                   * POOL: N, C, H, W, kernel, stride */
} fa_instr;

/* Elements per block when a group runs block by block: a group's live blocks stay in
 * cache instead of each instruction streaming whole arrays through memory. */
#define FA_BLOCK 1024

extern const char *const fa_opcode_names[];
extern const char *const fa_opcode_kinds[];
extern const int fa_num_opcodes;
extern const int fa_maxdim;
extern const int fa_block;

/* Checks every instruction against the slot sizes (bytes) and sets its `fast` field.
 * Returns 0 when the program is safe to run, else an error code (fa_error_message) and
 * the instruction in *bad. */
int fa_validate(fa_instr *prog, int64_t n_instr, const int64_t *slot_bytes,
                int32_t n_slots, int64_t *bad);
const char *fa_error_message(int code);

/* Elements a validated program processes (a matmul or convolution: its multiply-adds
 * / 8): how long a run takes, roughly. */
double fa_work(const fa_instr *prog, int64_t n_instr);

/* How a run runs. */
typedef struct {
    int32_t threads;        /* threads it may use, the caller's included (>= 1) */
    int32_t interruptible;  /* stop at the next instruction or chunk after a SIGINT
                             * caught between fa_sigint_begin and fa_sigint_end */
    int64_t *ns;            /* when not NULL: ns[i] += nanoseconds spent in instruction i
                             * (a group's time goes to its first instruction) */
} fa_opts;

/* Runs instructions [start, end) of a validated program; slots[i] points to at least
 * slot_bytes[i] bytes.  A group that starts in the range and ends past `end` runs one
 * instruction at a time.  opts NULL: one thread, not interruptible.  Returns 0, or 1
 * when it stopped for a SIGINT (the outputs are then incomplete). */
int fa_run(const fa_instr *prog, int64_t start, int64_t end, char *const *slots,
           const fa_opts *opts);

/* One program of many run side by side (fa_run_shards): its instructions and its own slot
 * table (workspace), shared with no other shard. */
typedef struct {
    const fa_instr *prog;
    int64_t n_instr;
    char *const *slots;
} fa_shard;

/* Runs the whole program of each of `n` shards, one shard per chunk of the thread pool on
 * up to `threads` threads (the caller's included), each shard on one thread and with
 * BLAS at one thread meanwhile (it is put back after).  interruptible: as fa_opts'.
 * Returns 0, or 1 when a SIGINT stopped it (the shards' results are then incomplete). */
int fa_run_shards(const fa_shard *shards, int64_t n, int32_t threads, int32_t interruptible);

/* Catch SIGINT for interruptible runs (begin returns 0 on success), and stop catching
 * it (end returns 1 when one arrived meanwhile). */
int fa_sigint_begin(void);
int fa_sigint_end(void);
int fa_sigint_pending(void);  /* a SIGINT arrived since fa_sigint_begin */

void fa_set_blas_threads(int n);

/* The instruction set of fastad's own SIMD kernels (csrc/simd.h: the direct convolution,
 * 2 x 2 max pooling): 2 AVX-512, 1 AVX2 with FMA, 0 none (the portable code).  want >= 0
 * chooses it (at most the CPU's best), -1 asks.  Returns the one in use. */
int fa_simd_isa(int want);
/* The direct convolution's instruction set for this instruction (a CONV2D), 0 when it
 * runs as im2col and a gemm. */
int fa_conv_path(const fa_instr *ins);

#endif
