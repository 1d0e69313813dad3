/* Opcode kinds as a C table, shared by the validator (vm.c) and the run loop (run.c). */
#ifndef FASTAD_KINDS_H
#define FASTAD_KINDS_H

#include "vm.h"

enum fa_kind {
    K_UNARY, K_CONST, K_BINARY, K_TERNARY, K_COPY, K_FILL, K_SUM, K_MATMUL, K_ROWS, K_INDEX,
    K_CONV, K_POOL
};

static const unsigned char kind_of[] = {
#define FA_KIND(name, kind) K_##kind,
    FA_OPCODES(FA_KIND)
#undef FA_KIND
};

/* Elements per chunk; an instruction or group is cut into chunks (csrc/run.c) when it
 * has at least two chunks' worth. */
#define FA_CHUNK (1 << 14)

/* A long matmul is cut into chunks of about MATMUL_WORK multiply-adds (a few ms), so
 * that Ctrl-C stops it soon: whole matrices of a stack, or blocks of at least
 * MATMUL_ROWS output rows of one gemm (each block packs B anew, which costs more the
 * fewer its rows).  The cut is fixed by the shapes, not by the thread count. */
#define MATMUL_WORK ((int64_t)1 << 28)
#define MATMUL_ROWS 256

/* How fa_run runs a validated instruction (fa_instr.fast, set by fa_validate). */
enum fa_fast {
    FAST_GENERAL = 0,  /* a group, or big enough to be cut into chunks */
    FAST_SMALL,        /* straight to its kernel */
    FAST_BINS,         /* a BINARY over at most FA_FEW elements, one row */
    FAST_UNS,          /* a UNARY or CONST over at most FA_FEW elements, no math loop */
};

/* Elements an instruction may have to run inline in fa_run's loop, element by element
 * with the kernels' own expressions, instead of through its kernel (whose call is
 * indirect): small programs (a per-sample training step) are mostly such. */
#define FA_FEW 8

/* BINARY opcodes computed by numpy's inner loops (loops.h), not by a C expression. */
static inline int binary_uses_loop(int op)
{
    return op == FA_MAXIMUM || op == FA_MINIMUM || op == FA_POWER;
}

/* Whether an instruction (not a group) is too small to cut into chunks. */
static inline int small_instr(const fa_instr *ins)
{
    switch (kind_of[ins->op]) {
    case K_UNARY: case K_CONST: case K_FILL:
        return ins->n < 2 * FA_CHUNK;
    case K_ROWS:
        return ins->m * ins->n < 2 * FA_CHUNK;
    case K_MATMUL: {
        double work = (double)ins->m * (double)ins->n * (double)ins->k;
        for (int d = 0; d < ins->ndim; d++)
            work *= (double)ins->shape[d];
        return work < 2.0 * (double)MATMUL_WORK;
    }
    case K_INDEX: case K_CONV: case K_POOL:
        return 1;
    default: {
        int64_t size = 1;
        for (int d = 0; d < ins->ndim; d++)
            size *= ins->shape[d];
        return size < 2 * FA_CHUNK;
    }
    }
}

static inline int32_t fast_kind(const fa_instr *ins)
{
    if (ins->group > 1 || !small_instr(ins))
        return FAST_GENERAL;
    if (ins->oa || ins->ob || ins->ox || ins->oo)
        return FAST_SMALL;  /* the inline paths read operands at offset 0 */
    if ((kind_of[ins->op] == K_UNARY || kind_of[ins->op] == K_CONST) && ins->n >= 1
        && ins->n <= FA_FEW) {
        switch (ins->op) {
        case FA_NEG: case FA_SQRT: case FA_RELU: case FA_ABS: case FA_SIGN:
        case FA_ADD_BYCONST: case FA_SUB_BYCONST: case FA_RSUB_BYCONST:
        case FA_MUL_BYCONST: case FA_DIV_BYCONST: case FA_RDIV_BYCONST:
            return FAST_UNS;
        }
    }
    if (kind_of[ins->op] == K_BINARY && !binary_uses_loop(ins->op)) {
        int64_t size = 1;
        for (int d = 0; d < ins->ndim; d++)
            size *= ins->shape[d];
        /* one element (at offset 0, whatever the rank), or one short row */
        if (size == 1 || (ins->ndim == 1 && size >= 1 && size <= FA_FEW))
            return FAST_BINS;
    }
    return FAST_SMALL;
}

/* Output rows and columns of a convolution or a pool over `len` with a window of `k`,
 * moved by `stride`, padded by `pad` on both sides (the window fits: validated). */
static inline int64_t window_count(int64_t len, int64_t k, int64_t stride, int64_t pad)
{
    return (len + 2 * pad - k) / stride + 1;
}

/* The number of elements a (validated) group member computes. */
static inline int64_t group_elements(const fa_instr *ins)
{
    return kind_of[ins->op] == K_BINARY ? ins->shape[0] : ins->n;
}

/* The SUM that ends a group starting at `first`, or NULL (vm.c: only a last member may
 * be one) */
static inline const fa_instr *group_sum_tail(const fa_instr *first)
{
    const fa_instr *last = first + first->group - 1;
    return first->group > 1 && last->op == FA_SUM ? last : NULL;
}

#endif
