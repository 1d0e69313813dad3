/* fastad's VM, part 1: the opcode tables exported to Python, and the validation of a
 * program (run once per program, so that the run loop in run.c needs no checks). */
#include <stddef.h>
#include <stdint.h>

#include "kinds.h"
#include "loops.h"

const char *const fa_opcode_names[] = {
#define FA_NAME(name, kind) #name,
    FA_OPCODES(FA_NAME)
#undef FA_NAME
};
const char *const fa_opcode_kinds[] = {
#define FA_KIND_NAME(name, kind) #kind,
    FA_OPCODES(FA_KIND_NAME)
#undef FA_KIND_NAME
};
const int fa_num_opcodes = FA_NUM_OPCODES;
const int fa_maxdim = FA_MAXDIM;
const int fa_block = FA_BLOCK;

/* ---- validation ---- */

enum { E_OK, E_OPCODE, E_DTYPE, E_SLOT, E_RANK, E_SIZE, E_BOUNDS, E_GROUP, E_LOOP };

static const char *const error_messages[] = {
    "ok", "opcode out of range", "bad dtype", "slot index out of range",
    "loop rank out of range", "negative or overflowing size", "operand exceeds its slot",
    "bad elementwise group", "math loop not bound",
};

const char *fa_error_message(int code)
{
    return code >= 0 && code <= E_LOOP ? error_messages[code] : "unknown error";
}

/* Whether run.c's int64 index arithmetic over the loop of a strided (or batched) kind
 * cannot overflow: the product of its whole shape (which overflows, if at all, before a
 * 0 extent makes it 0), and for a loop that runs, the offsets the row loop passes
 * through in each of the four stride arrays (used by the kind or not) as it steps along
 * an axis and back, up to shape[d] * |stride[d]| elements per axis, 8 bytes each. */
static int loop_fits(const fa_instr *ins)
{
    int64_t size = 1, reach, t;
    for (int d = 0; d < ins->ndim && size != 0; d++)
        if (__builtin_mul_overflow(size, ins->shape[d], &size))
            return 0;
    if (size == 0)
        return 1;
    const int64_t *const strides[4] = {ins->sa, ins->sb, ins->sx, ins->so};
    for (int i = 0; i < 4; i++) {
        reach = 0;
        for (int d = 0; d < ins->ndim; d++) {
            const int64_t s = strides[i][d];
            if (s == INT64_MIN || __builtin_mul_overflow(ins->shape[d], s < 0 ? -s : s, &t) ||
                __builtin_add_overflow(reach, t, &reach))
                return 0;
        }
        if (__builtin_mul_overflow(reach, 8, &t))
            return 0;
    }
    return 1;
}

/* Bytes a strided operand spans, from its lowest element to its highest: 0 for an empty
 * loop, -1 for negative sizes and for overflow.  With `low`, strides may be negative and
 * *low gets the lowest element's offset (<= 0); without it, a negative stride is -1. */
static int64_t strided_bytes(int ndim, const int64_t *shape, const int64_t *stride, int64_t item,
                             int64_t *low)
{
    int64_t lo = 0, hi = 0, t;
    if (low)
        *low = 0;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || (stride[d] < 0 && !low))
            return -1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0)
            return 0;
    for (int d = 0; d < ndim; d++) {
        if (__builtin_mul_overflow(shape[d] - 1, stride[d], &t) ||
            __builtin_add_overflow(t < 0 ? lo : hi, t, t < 0 ? &lo : &hi))
            return -1;
    }
    if (__builtin_sub_overflow(hi, lo, &hi) || __builtin_add_overflow(hi, 1, &hi) ||
        __builtin_mul_overflow(hi, item, &t))
        return -1;
    if (low)
        *low = lo;
    return t;
}

static int64_t dense_bytes(int64_t rows, int64_t cols, int64_t item)
{
    int64_t n, bytes;
    if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) ||
        __builtin_mul_overflow(n, item, &bytes))
        return -1;
    return bytes;
}

/* The product of n sizes times item, -1 for a negative size or overflow. */
static int64_t product_bytes(const int64_t *sizes, int n, int64_t item)
{
    int64_t total = item;
    for (int i = 0; i < n; i++)
        if (sizes[i] < 0 || __builtin_mul_overflow(total, sizes[i], &total))
            return -1;
    return total;
}

/* Bytes a stack of matrices of `matrix` bytes spans: one per element of the batch loop
 * over ins->shape, at these element strides; -1 for bad sizes. */
static int64_t stack_bytes(const fa_instr *ins, const int64_t *stride, int64_t matrix,
                           int64_t item)
{
    if (matrix < 0)
        return -1;
    const int64_t span = strided_bytes(ins->ndim, ins->shape, stride, item, NULL);
    if (span <= 0 || matrix == 0)
        return span < 0 ? -1 : 0;
    int64_t bytes;  /* the last matrix starts (span - item) bytes in */
    return __builtin_add_overflow(span - item, matrix, &bytes) ? -1 : bytes;
}

/* The operand `slot` must exist and hold `bytes` (>= 0) from element `offset + low` on,
 * elements being `item` bytes; `offset` >= 0 is where the loop starts and `low` <= 0 the
 * lowest element it reaches from there (an empty operand may have any offset: nothing is
 * read). */
static int check_operand(int32_t slot, int64_t bytes, int64_t offset, int64_t low, int64_t item,
                         const int64_t *slot_bytes, int32_t n_slots)
{
    if (slot < 0 || slot >= n_slots)
        return E_SLOT;
    if (bytes < 0 || offset < 0)
        return E_SIZE;
    if (bytes == 0)
        return E_OK;
    int64_t start, end;
    if (__builtin_add_overflow(offset, low, &start) || start < 0)
        return E_BOUNDS;
    if (__builtin_mul_overflow(start, item, &end) || __builtin_add_overflow(end, bytes, &end))
        return E_SIZE;
    return end <= slot_bytes[slot] ? E_OK : E_BOUNDS;
}

/* Whether the math loops (loops.h) an instruction calls are bound for its dtype. */
static int loops_bound(const fa_instr *ins)
{
    const fa_loop *l = NULL, *l2 = NULL;
    switch (ins->op) {
    case FA_EXP: case FA_SIGMOID: case FA_SOFTMAX: l = fa_loops[FA_LOOP_EXP]; break;
    case FA_LOG_SOFTMAX: l = fa_loops[FA_LOOP_EXP]; l2 = fa_loops[FA_LOOP_LOG]; break;
    case FA_LN:  l = fa_loops[FA_LOOP_LOG]; break;
    case FA_TANH: l = fa_loops[FA_LOOP_TANH]; break;
    case FA_SIN: l = fa_loops[FA_LOOP_SIN]; break;
    case FA_COS: l = fa_loops[FA_LOOP_COS]; break;
    case FA_POW_BYCONST: case FA_POWER: l = fa_loops[FA_LOOP_POWER]; break;
    case FA_LOG1P: l = fa_loops[FA_LOOP_LOG1P]; break;
    case FA_EXPM1: l = fa_loops[FA_LOOP_EXPM1]; break;
    case FA_SOFTPLUS: case FA_LOG_SIGMOID: l = fa_loops[FA_LOOP_LOGADDEXP]; break;
    case FA_MAXIMUM: l = fa_loops[FA_LOOP_MAXIMUM]; break;
    case FA_MINIMUM: l = fa_loops[FA_LOOP_MINIMUM]; break;
    case FA_CLIP: l = fa_loops[FA_LOOP_CLIP]; break;
    default: return 1;
    }
    return l[ins->dtype].fn && (!l2 || l2[ins->dtype].fn);
}

static int validate_one(const fa_instr *ins, const int64_t *slot_bytes, int32_t n_slots)
{
    if (ins->op < 0 || ins->op >= FA_NUM_OPCODES)
        return E_OPCODE;
    if (ins->dtype != FA_F32 && ins->dtype != FA_F64)
        return E_DTYPE;
    if (ins->ndim < 0 || ins->ndim > FA_MAXDIM)
        return E_RANK;
    const int64_t item = ins->dtype == FA_F64 ? 8 : 4;
    int64_t a_bytes = -1, b_bytes = -1, x_bytes = -1, out_bytes = -1, a_item = item, x_item = item;
    int64_t a_low = 0, b_low = 0, x_low = 0, out_low = 0;  /* strided loops' lowest elements */
    int uses_a = 1, uses_b = 0, uses_x = 0, strided = 0;
    switch (kind_of[ins->op]) {
    case K_UNARY:
    case K_CONST:
        a_bytes = out_bytes = dense_bytes(1, ins->n, item);
        break;
    case K_FILL:
        uses_a = 0;
        out_bytes = dense_bytes(1, ins->n, item);
        break;
    case K_TERNARY:
        uses_x = 1;
        x_bytes = strided_bytes(ins->ndim, ins->shape, ins->sx, item, &x_low);
        /* fall through: and a and b as a BINARY's */
    case K_BINARY:
        uses_b = strided = 1;
        a_bytes = strided_bytes(ins->ndim, ins->shape, ins->sa, item, &a_low);
        b_bytes = strided_bytes(ins->ndim, ins->shape, ins->sb, item, &b_low);
        out_bytes = strided_bytes(ins->ndim, ins->shape, ins->so, item, &out_low);
        break;
    case K_COPY: {
        int64_t in_item = item;
        if (ins->op == FA_CAST_F32_F64)
            in_item = ins->dtype == FA_F64 ? 4 : -1;
        if (ins->op == FA_CAST_F64_F32)
            in_item = ins->dtype == FA_F32 ? 8 : -1;
        if (in_item < 0)
            return E_DTYPE;
        strided = 1;
        a_item = in_item;
        a_bytes = strided_bytes(ins->ndim, ins->shape, ins->sa, in_item, &a_low);
        out_bytes = strided_bytes(ins->ndim, ins->shape, ins->so, item, &out_low);
        break;
    }
    case K_SUM:
        strided = 1;
        a_bytes = strided_bytes(ins->ndim, ins->shape, ins->sa, item, NULL);
        out_bytes = strided_bytes(ins->ndim, ins->shape, ins->so, item, NULL);
        if (out_bytes >= 0) {  /* the zeroed n elements and the loop's writes must both fit */
            const int64_t zeroed = dense_bytes(1, ins->n, item);
            out_bytes = zeroed < 0 ? -1 : zeroed > out_bytes ? zeroed : out_bytes;
        }
        break;
    case K_MATMUL:
        uses_b = 1;
        if (ins->m > INT32_MAX || ins->n > INT32_MAX || ins->k > INT32_MAX)
            return E_SIZE;  /* BLAS takes 32-bit sizes */
        a_bytes = stack_bytes(ins, ins->sa, dense_bytes(ins->m, ins->k, item), item);
        b_bytes = stack_bytes(ins, ins->sb, dense_bytes(ins->k, ins->n, item), item);
        out_bytes = stack_bytes(ins, ins->so, dense_bytes(ins->m, ins->n, item), item);
        break;
    case K_INDEX: {
        if (ins->ndim != 1)
            return E_RANK;
        uses_x = 1;
        const int64_t many[3] = {ins->m, ins->k, ins->n}, picked[3] = {ins->m, ins->shape[0], ins->n};
        const int64_t whole = product_bytes(many, 3, item), part = product_bytes(picked, 3, item);
        a_bytes = ins->op == FA_GATHER ? whole : part;
        out_bytes = ins->op == FA_GATHER ? part : whole;
        x_bytes = product_bytes(ins->shape, 1, 8);  /* int64 indices */
        x_item = 8;
        break;
    }
    case K_CONV: {
        const int64_t *g = ins->geom;  /* N, C, H, W, O, KH, KW, stride, padding */
        for (int i = 0; i < 9; i++)
            if (g[i] < 0 || g[i] > INT32_MAX)  /* so that what follows cannot overflow */
                return E_SIZE;
        if (g[5] < 1 || g[6] < 1 || g[7] < 1 || g[5] > g[2] + 2 * g[8] || g[6] > g[3] + 2 * g[8])
            return E_SIZE;
        const int64_t oh = window_count(g[2], g[5], g[7], g[8]);
        const int64_t ow = window_count(g[3], g[6], g[7], g[8]);
        int64_t plane, np;
        if (g[1] > INT32_MAX / (g[5] * g[6]) || __builtin_mul_overflow(oh, ow, &plane) ||
            __builtin_mul_overflow(g[0], plane, &np) || np > INT32_MAX)
            return E_SIZE;  /* BLAS takes 32-bit sizes */
        const int64_t xs[4] = {g[0], g[1], g[2], g[3]}, ws[4] = {g[4], g[1], g[5], g[6]};
        const int64_t gs[4] = {g[0], g[4], oh, ow}, cols[2] = {g[1] * g[5] * g[6] + g[4], np};
        const int64_t x_b = product_bytes(xs, 4, item), w_b = product_bytes(ws, 4, item);
        const int64_t g_b = product_bytes(gs, 4, item);
        uses_b = uses_x = 1;
        x_bytes = product_bytes(cols, 2, item);
        a_bytes = ins->op == FA_CONV2D ? x_b : g_b;
        b_bytes = ins->op == FA_CONV2D_GRAD_FILTER ? x_b : w_b;
        out_bytes = ins->op == FA_CONV2D ? g_b : ins->op == FA_CONV2D_GRAD_INPUT ? x_b : w_b;
        break;
    }
    case K_POOL: {
        const int64_t *g = ins->geom;  /* N, C, H, W, kernel, stride */
        for (int i = 0; i < 6; i++)
            if (g[i] < 0 || g[i] > INT32_MAX)
                return E_SIZE;
        if (g[4] < 1 || g[5] < 1 || g[4] > g[2] || g[4] > g[3])
            return E_SIZE;
        const int64_t xs[4] = {g[0], g[1], g[2], g[3]};
        const int64_t ps[4] = {g[0], g[1], window_count(g[2], g[4], g[5], 0),
                               window_count(g[3], g[4], g[5], 0)};
        const int64_t x_b = product_bytes(xs, 4, item), p_b = product_bytes(ps, 4, item);
        const int op = ins->op;
        uses_b = op == FA_POOL_MAX_SCATTER || op == FA_POOL_MAX_GATHER;
        b_bytes = x_b;
        a_bytes = op == FA_POOL_MAX || op == FA_POOL_AVG || op == FA_POOL_MAX_GATHER ? x_b : p_b;
        out_bytes = op == FA_POOL_MAX_SCATTER || op == FA_POOL_AVG_GRAD ? x_b : p_b;
        break;
    }
    case K_ROWS:
        if (ins->n < 1)
            return E_SIZE;
        uses_b = ins->op == FA_LOG_SOFTMAX;
        a_bytes = out_bytes = b_bytes = dense_bytes(ins->m, ins->n, item);
        break;
    }
    if ((strided || kind_of[ins->op] == K_MATMUL) && !loop_fits(ins))
        return E_SIZE;
    if ((!uses_a && ins->a != -1) || (!uses_b && ins->b != -1) || (!uses_x && ins->x != -1))
        return E_SLOT;  /* fa_run looks up every operand that is not -1 */
    if (!strided && (ins->oa || ins->ob || ins->ox || ins->oo))
        return E_SIZE;  /* only strided loops read at an offset */
    if (!loops_bound(ins))
        return E_LOOP;
    int err = check_operand(ins->out, out_bytes, ins->oo, out_low, item, slot_bytes, n_slots);
    if (!err && uses_a)
        err = check_operand(ins->a, a_bytes, ins->oa, a_low, a_item, slot_bytes, n_slots);
    if (!err && uses_b)
        err = check_operand(ins->b, b_bytes, ins->ob, b_low, item, slot_bytes, n_slots);
    if (!err && uses_x)
        err = check_operand(ins->x, x_bytes, ins->ox, x_low, x_item, slot_bytes, n_slots);
    return err;
}

/* A group member (already validated on its own) is elementwise over group_n elements
 * of the group's dtype: UNARY or CONST over n, or a BINARY whose operands are whole
 * contiguous arrays or single broadcast elements, written contiguously; the last may
 * be the SUM of a whole contiguous array into one element (fused: run.c). */
static int is_group_member(const fa_instr *ins, int32_t dtype, int64_t group_n, int last)
{
    if (ins->dtype != dtype || ins->oa || ins->ob || ins->oo)
        return 0;
    if (last && ins->op == FA_SUM)
        return ins->ndim == 1 && ins->shape[0] == group_n && ins->sa[0] == 1 &&
               ins->so[0] == 0 && ins->n == 1;
    switch (kind_of[ins->op]) {
    case K_UNARY:
    case K_CONST:
        return ins->n == group_n;
    case K_BINARY:
        return ins->ndim == 1 && ins->shape[0] == group_n && ins->so[0] == 1 &&
               (ins->sa[0] == 0 || ins->sa[0] == 1) && (ins->sb[0] == 0 || ins->sb[0] == 1);
    default:
        return 0;
    }
}

/* Elements one validated instruction processes; a matmul or a convolution counts its
 * multiply-adds / 8.  In double: a program's total may pass 2**63. */
static double work_of(const fa_instr *ins)
{
    const int64_t *g = ins->geom;
    double shape = 1;
    for (int d = 0; d < ins->ndim; d++)
        shape *= (double)ins->shape[d];
    switch (kind_of[ins->op]) {
    case K_UNARY: case K_CONST: case K_FILL:
        return (double)ins->n;
    case K_TERNARY: case K_BINARY: case K_COPY: case K_SUM:
        return shape;
    case K_MATMUL:  /* shape: the stack's batch axes */
        return shape * (double)ins->m * (double)ins->n * (double)ins->k / 8;
    case K_INDEX:
        return (double)ins->m * (double)ins->shape[0] * (double)ins->n;
    case K_CONV:    /* N, C, H, W, O, KH, KW, stride, padding */
        return (double)g[0] * g[4] * window_count(g[2], g[5], g[7], g[8]) *
               window_count(g[3], g[6], g[7], g[8]) * g[1] * g[5] * g[6] / 8;
    case K_POOL:    /* N, C, H, W */
        return (double)g[0] * g[1] * g[2] * g[3];
    case K_ROWS:
        return (double)ins->m * (double)ins->n;
    }
    return 0;
}

double fa_work(const fa_instr *prog, int64_t n_instr)
{
    double total = 0;
    for (int64_t i = 0; i < n_instr; i++)
        total += work_of(&prog[i]);
    return total;
}

int fa_validate(fa_instr *prog, int64_t n_instr, const int64_t *slot_bytes,
                int32_t n_slots, int64_t *bad)
{
    for (int32_t s = 0; s < n_slots; s++)
        if (slot_bytes[s] < 0) {
            *bad = -1;
            return E_SIZE;
        }
    for (int64_t i = 0; i < n_instr; i++) {
        int err = validate_one(&prog[i], slot_bytes, n_slots);
        if (err) {
            *bad = i;
            return err;
        }
    }
    for (int64_t i = 0; i < n_instr; i++) {
        const int32_t len = prog[i].group;
        if (len == 0 || len == 1)
            continue;
        const int64_t n = group_elements(&prog[i]);
        int ok = len > 1 && len <= n_instr - i;
        for (int32_t j = 0; ok && j < len; j++)
            ok = is_group_member(&prog[i + j], prog[i].dtype, n, j > 0 && j == len - 1) &&
                 (j == 0 || prog[i + j].group == 0);
        if (!ok) {
            *bad = i;
            return E_GROUP;
        }
    }
    for (int64_t i = 0; i < n_instr; i++)
        prog[i].fast = fast_kind(&prog[i]);
    *bad = -1;
    return E_OK;
}
