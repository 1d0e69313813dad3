/* The opcode table: the single source of truth for the VM's switch and, through
 * fa_opcode_names[], for the Python lowering (fastad/lowering.py looks opcodes up by name).
 *
 * X(NAME, KIND) -- KIND says how an instruction's operands are read:
 *   UNARY   out[i] = f(a[i])                    a, out: n contiguous elements
 *   CONST   out[i] = f(a[i], c)                 a, out: n contiguous elements
 *   BINARY  out[i] = f(a[ia], b[ib])            broadcasting loop over `shape` with strides
 *   TERNARY out[i] = x[ix] != 0 ? a[ia] : b[ib] the same loop, with a third operand x
 *   COPY    out[i] = a[ia]                      broadcasting copy (CAST_*: also converts)
 *   FILL    out[i] = c
 *   SUM     out[io] += a[i]                     a contiguous; `so` strides are 0 on summed axes
 *                                               (REDUCE_MAX/MIN: out[io] = max/min(out[io], a[i]))
 *   INDEX   GATHER: out(m, K, n) = a(m, k, n) at x's K int64 indices along the middle axis;
 *           SCATTER_ADD: out(m, k, n) = 0, then += a(m, K, n) there (K = shape[0])
 *   CONV    NCHW convolution by im2col and gemm (geom), x a scratch buffer
 *   POOL    NCHW pooling (geom)
 *   MATMUL  out(m,n) = op(a)(m,k) @ op(b)(k,n)  BLAS gemm, row major
 *   ROWS    per row of `n` elements, `m` rows   softmax family over the last axis
 */
#ifndef FASTAD_OPCODES_H
#define FASTAD_OPCODES_H

#define FA_OPCODES(X)         \
    X(NEG, UNARY)             \
    X(EXP, UNARY)             \
    X(LN, UNARY)              \
    X(SQRT, UNARY)            \
    X(TANH, UNARY)            \
    X(SIGMOID, UNARY)         \
    X(RELU, UNARY)            \
    X(SIN, UNARY)             \
    X(COS, UNARY)             \
    X(ABS, UNARY)             \
    X(SIGN, UNARY)            \
    X(SQUARE, UNARY)          \
    X(LOG1P, UNARY)           \
    X(EXPM1, UNARY)           \
    X(SOFTPLUS, UNARY)        \
    X(LOG_SIGMOID, UNARY)     \
    X(ADD_BYCONST, CONST)     \
    X(SUB_BYCONST, CONST)     \
    X(RSUB_BYCONST, CONST)    \
    X(MUL_BYCONST, CONST)     \
    X(DIV_BYCONST, CONST)     \
    X(RDIV_BYCONST, CONST)    \
    X(POW_BYCONST, CONST)     \
    X(CLIP, CONST)            \
    X(ADD, BINARY)            \
    X(SUB, BINARY)            \
    X(MUL, BINARY)            \
    X(DIV, BINARY)            \
    X(RELU_GRAD, BINARY)      \
    X(MAXIMUM, BINARY)        \
    X(MINIMUM, BINARY)        \
    X(POWER, BINARY)          \
    X(LESS, BINARY)           \
    X(LESS_EQUAL, BINARY)     \
    X(GREATER, BINARY)        \
    X(GREATER_EQUAL, BINARY)  \
    X(EQUAL, BINARY)          \
    X(SELECT, TERNARY)        \
    X(COPY, COPY)             \
    X(CAST_F32_F64, COPY)     \
    X(CAST_F64_F32, COPY)     \
    X(FILL, FILL)             \
    X(SUM, SUM)               \
    X(REDUCE_MAX, SUM)        \
    X(REDUCE_MIN, SUM)        \
    X(GATHER, INDEX)          \
    X(SCATTER_ADD, INDEX)     \
    X(CONV2D, CONV)           \
    X(CONV2D_GRAD_INPUT, CONV)  \
    X(CONV2D_GRAD_FILTER, CONV) \
    X(POOL_MAX, POOL)         \
    X(POOL_AVG, POOL)         \
    X(POOL_MAX_SCATTER, POOL) \
    X(POOL_MAX_GATHER, POOL)  \
    X(POOL_AVG_GRAD, POOL)    \
    X(MATMUL, MATMUL)         \
    X(SOFTMAX, ROWS)          \
    X(LOG_SOFTMAX, ROWS)

#endif
