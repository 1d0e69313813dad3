"""The op table: every built-in op with its numpy forward rule, its shape rule, its
gradient rule (reverse mode, `vjp`), its tangent rule (forward mode, `jvp`) and its native
lowering (`native`: an opcode of csrc/opcodes.h, or the name of a rule in
fastad.lowering.RULES), side by side.

Gradient and tangent rules build nodes, so they are differentiable again.  Elementwise
binary ops follow numpy broadcasting; their gradient rules are written as if shapes
matched and `BinaryOp` sums each partial back to its input's own shape (`sum_to_op`).
Their tangent rules give one term per input (the input's tangent times its partial) and
`BinaryOp` broadcasts the sum of the terms up to the output's shape (`broadcast_to_op`).
A gradient or tangent is None where it is zero, so neither mode builds zero nodes.

Every module-level `*_op` here is a built-in op (`Op.builtin`); it pickles and copies as a
reference to its row.  An op made elsewhere, even of one of these classes, has no
`native` lowering unless it is given one: the native VM runs its `compute`.
"""
import functools
import math

import numpy as np

from . import graph
from .graph import Node, Op


def shape_error(op, node, shapes, why):
    shown = " and ".join(str(tuple(s)) for s in shapes)
    return ValueError(f"{op.name} node '{node.name}': {why} (input shapes {shown})")


def broadcast(op, node, shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise shape_error(op, node, shapes, "shapes do not broadcast") from None


def reduce_axes(op, node, shape, axis):
    """`axis` (None, int or tuple) as a sorted tuple of non-negative axes of `shape`."""
    ndim = len(shape)
    axes = range(ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    norm = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise shape_error(op, node, [shape], f"axis {axis!r} is out of range")
        norm.append(int(a) % ndim)
    if len(set(norm)) != len(norm):
        raise shape_error(op, node, [shape], f"axis {axis!r} repeats an axis")
    return tuple(sorted(norm))


def sum_to(value, shape):
    """Sum `value` down to `shape` (the inverse of broadcasting `shape` up to value's)."""
    if value.shape == shape:
        return value
    lead = value.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and value.shape[lead + i] != 1)
    return np.sum(value, axis=axes, keepdims=True).reshape(shape)


def stable_sigmoid(x):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def log_softmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def rows(shape):
    return math.prod(shape[:-1])


def tangent_terms(rules, inputs, node, tangents):
    """The sum of `rule(*inputs, node, t)` over the inputs whose tangent `t` is not zero."""
    terms = [rule(*inputs, node, t) for rule, t in zip(rules, tangents) if t is not None]
    return functools.reduce(add_op, terms)


# --- elementwise ----------------------------------------------------------------------

class BinaryOp(Op):
    """`a <symbol> b` with numpy broadcasting; `vjp(a, b, y, g)` gives the partials,
    `jvp` is one `(a, b, y, t) -> term` per input.  `neutral` = (l, r): `l <symbol> b`
    is b and `a <symbol> r` is a, bit for bit (None: no such value).  `byconst` = (l, r):
    the ConstOps computing `c <symbol> b` as l(b, c) and `a <symbol> c` as r(a, c)."""

    def __init__(self, name, symbol, fn, vjp, jvp, native=None, commutative=False,
                 neutral=(None, None), byconst=(None, None)):
        self.name, self.symbol, self.fn, self.vjp, self.jvp_terms = name, symbol, fn, vjp, jvp
        self.native, self.commutative, self.neutral = native, commutative, neutral
        self.byconst = byconst

    def __call__(self, a, b):
        return Node(self, [a, b], f"({a}{self.symbol}{b})")

    def compute(self, node, vals):
        return self.fn(vals[0], vals[1])

    def gradient(self, node, g):
        a, b = node.inputs
        return [None if p is None else sum_to_op(p, x)
                for p, x in zip(self.vjp(a, b, node, g), (a, b))]

    def jvp(self, node, tangents):
        # a lone term of add or sub has its input's shape, not the output's
        return broadcast_to_op(tangent_terms(self.jvp_terms, node.inputs, node, tangents), node)

    def infer(self, node, shapes, dtypes):
        return broadcast(self, node, shapes), np.result_type(*dtypes)


class ConstOp(Op):
    """`x` with a scalar constant `c` (`node.const_attr`), elementwise.  `chain(x, c, y, g)`
    is g times the derivative: the gradient rule and, with g a tangent, the tangent rule.
    With c == `neutral` the result is x, bit for bit."""

    def __init__(self, name, label, fn, chain, native=None, neutral=None):
        self.name, self.label, self.fn, self.chain, self.native = name, label, fn, chain, native
        self.neutral = neutral

    def __call__(self, x, c):
        return Node(self, [x], self.label.format(x=x, c=f"{c:g}"), const_attr=float(c))

    def compute(self, node, vals):
        return self.fn(vals[0], node.const_attr)

    def gradient(self, node, g):
        return [self.chain(node.inputs[0], node.const_attr, node, g)]

    def jvp(self, node, tangents):
        return self.chain(node.inputs[0], node.const_attr, node, tangents[0])

    def infer(self, node, shapes, dtypes):
        return shapes[0], dtypes[0]


class UnaryOp(Op):
    """`fn(x)` elementwise.  `chain(x, y, g)` is g times fn'(x): the gradient rule and,
    with g a tangent, the tangent rule.  An `involution` is its own inverse, exactly."""

    def __init__(self, name, fn, chain, native=None, involution=False):
        self.name, self.fn, self.chain, self.native = name, fn, chain, native
        self.involution = involution

    def __call__(self, x):
        return Node(self, [x], f"{self.name.capitalize()}({x})")

    def compute(self, node, vals):
        return self.fn(vals[0])

    def gradient(self, node, g):
        return [self.chain(node.inputs[0], node, g)]

    def jvp(self, node, tangents):
        return self.chain(node.inputs[0], node, tangents[0])

    def infer(self, node, shapes, dtypes):
        return shapes[0], dtypes[0]


def power(x, c):
    """`x ** c` as numpy computes it for a Python float `c`: np.sqrt for 0.5, else np.power."""
    return np.sqrt(x) if c == 0.5 else np.power(x, c)


add_byconst_op = ConstOp("add_byconst", "({x}+{c})", lambda x, c: x + c, lambda x, c, y, g: g,
                         native="ADD_BYCONST", neutral=-0.0)
sub_byconst_op = ConstOp("sub_byconst", "({x}-{c})", lambda x, c: x - c, lambda x, c, y, g: g,
                         native="SUB_BYCONST", neutral=0.0)
rsub_byconst_op = ConstOp("rsub_byconst", "({c}-{x})", lambda x, c: c - x, lambda x, c, y, g: -g,
                          native="RSUB_BYCONST")
mul_byconst_op = ConstOp("mul_byconst", "({x}*{c})", lambda x, c: x * c,
                         lambda x, c, y, g: g * c, native="MUL_BYCONST", neutral=1.0)
div_byconst_op = ConstOp("div_byconst", "({x}/{c})", lambda x, c: x / c,
                         lambda x, c, y, g: g / c, native="DIV_BYCONST", neutral=1.0)
rdiv_byconst_op = ConstOp("rdiv_byconst", "({c}/{x})", lambda x, c: c / x,
                          lambda x, c, y, g: -(g * y / x), native="RDIV_BYCONST")
pow_byconst_op = ConstOp("pow_byconst", "({x}**{c})", power,
                         lambda x, c, y, g: g * (x ** (c - 1) * c), native="pow_byconst")

add_op = BinaryOp("add", "+", np.add, vjp=lambda a, b, y, g: (g, g),
                  jvp=(lambda a, b, y, t: t, lambda a, b, y, t: t), native="ADD", commutative=True,
                  neutral=(-0.0, -0.0), byconst=(add_byconst_op, add_byconst_op))
sub_op = BinaryOp("sub", "-", np.subtract, vjp=lambda a, b, y, g: (g, -g),
                  jvp=(lambda a, b, y, t: t, lambda a, b, y, t: -t), native="SUB",
                  neutral=(None, 0.0), byconst=(rsub_byconst_op, sub_byconst_op))
mul_op = BinaryOp("mul", "*", np.multiply, vjp=lambda a, b, y, g: (g * b, g * a),
                  jvp=(lambda a, b, y, t: t * b, lambda a, b, y, t: a * t), native="MUL",
                  commutative=True, neutral=(1.0, 1.0), byconst=(mul_byconst_op, mul_byconst_op))
div_op = BinaryOp("div", "/", np.true_divide, vjp=lambda a, b, y, g: (g / b, -(g * y / b)),
                  jvp=(lambda a, b, y, t: t / b, lambda a, b, y, t: -(t * y / b)), native="DIV",
                  neutral=(None, 1.0), byconst=(rdiv_byconst_op, div_byconst_op))
# where a and b are equal, the larger (smaller) is a: the gradient goes to a
maximum_op = BinaryOp("maximum", "max", np.maximum,
                      vjp=lambda a, b, y, g: (g * greater_equal_op(a, b), g * less_op(a, b)),
                      jvp=(lambda a, b, y, t: t * greater_equal_op(a, b),
                           lambda a, b, y, t: t * less_op(a, b)), native="MAXIMUM",
                      commutative=False)
minimum_op = BinaryOp("minimum", "min", np.minimum,
                      vjp=lambda a, b, y, g: (g * less_equal_op(a, b), g * greater_op(a, b)),
                      jvp=(lambda a, b, y, t: t * less_equal_op(a, b),
                           lambda a, b, y, t: t * greater_op(a, b)), native="MINIMUM")
# a ** b for b a node: d/da = b a^(b-1), d/db = y log(a) (nan for a <= 0, as the value is)
pow_op = BinaryOp("pow", "**", np.power,
                  vjp=lambda a, b, y, g: (g * (b * pow_op(a, b - 1.0)), g * (y * ln_op(a))),
                  jvp=(lambda a, b, y, t: t * (b * pow_op(a, b - 1.0)),
                       lambda a, b, y, t: t * (y * ln_op(a))), native="POWER")


class CompareOp(BinaryOp):
    """`a <symbol> b` as a 0/1 mask in the inputs' floating dtype; piecewise constant,
    so no gradient or tangent flows through it."""

    def __init__(self, name, symbol, fn, native):
        super().__init__(name, symbol, lambda a, b: fn(a, b).astype(np.result_type(a, b)),
                         vjp=lambda a, b, y, g: (None, None), jvp=None, native=native)

    def jvp(self, node, tangents):
        return None


less_op = CompareOp("less", "<", np.less, native="LESS")
less_equal_op = CompareOp("less_equal", "<=", np.less_equal, native="LESS_EQUAL")
greater_op = CompareOp("greater", ">", np.greater, native="GREATER")
greater_equal_op = CompareOp("greater_equal", ">=", np.greater_equal, native="GREATER_EQUAL")
equal_op = CompareOp("equal", "==", np.equal, native="EQUAL")


neg_op = UnaryOp("neg", np.negative, lambda x, y, g: -g, native="NEG", involution=True)
exp_op = UnaryOp("exp", np.exp, lambda x, y, g: g * y, native="EXP")
ln_op = UnaryOp("ln", np.log, lambda x, y, g: g / x, native="LN")
log_op = ln_op
sqrt_op = UnaryOp("sqrt", np.sqrt, lambda x, y, g: g / (y * 2), native="SQRT")
tanh_op = UnaryOp("tanh", np.tanh, lambda x, y, g: g * (1 - y * y), native="TANH")
sigmoid_op = UnaryOp("sigmoid", stable_sigmoid, lambda x, y, g: g * (y * (1 - y)),
                     native="SIGMOID")
relu_op = UnaryOp("relu", lambda x: np.maximum(x, 0), lambda x, y, g: relu_grad_op(x, g),
                  native="RELU")
sin_op = UnaryOp("sin", np.sin, lambda x, y, g: g * cos_op(x), native="SIN")
cos_op = UnaryOp("cos", np.cos, lambda x, y, g: -(g * sin_op(x)), native="COS")
abs_op = UnaryOp("abs", np.abs, lambda x, y, g: g * sign_op(x), native="ABS")
sign_op = UnaryOp("sign", np.sign, lambda x, y, g: None, native="SIGN")  # piecewise constant
square_op = UnaryOp("square", np.square, lambda x, y, g: g * (x * 2.0), native="SQUARE")
log1p_op = UnaryOp("log1p", np.log1p, lambda x, y, g: g / (x + 1.0), native="LOG1P")
expm1_op = UnaryOp("expm1", np.expm1, lambda x, y, g: g * (y + 1.0), native="EXPM1")
# log(1 + e^x) and log(sigmoid(x)) through logaddexp: no overflow for |x| in the hundreds
softplus_op = UnaryOp("softplus", lambda x: np.logaddexp(0, x),
                      lambda x, y, g: g * sigmoid_op(x), native="SOFTPLUS")
log_sigmoid_op = UnaryOp("log_sigmoid", lambda x: -np.logaddexp(0, -x),
                         lambda x, y, g: g * sigmoid_op(-x), native="LOG_SIGMOID")


class ReluGradOp(Op):
    """`g` where `x > 0`, else 0: the gradient of relu, as a node."""
    name = "relu_grad"

    def compute(self, node, vals):
        x, g = vals
        return np.where(x > 0, g, np.zeros((), g.dtype))

    def gradient(self, node, g):
        # x only places the kink: its gradient and tangent are zero
        return [None, relu_grad_op(node.inputs[0], g)]

    def jvp(self, node, tangents):
        t = tangents[1]
        return None if t is None else relu_grad_op(node.inputs[0], t)

    def infer(self, node, shapes, dtypes):
        if shapes[0] != shapes[1]:
            raise shape_error(self, node, shapes, "shapes differ")
        return shapes[1], dtypes[1]


relu_grad_op = ReluGradOp(native="RELU_GRAD")


class FillLikeOp(Op):
    """An array of `value` with the input's shape and dtype."""

    def __init__(self, name, value, native=None):
        self.name, self.value, self.native = name, value, native

    def fill_value(self, node):
        return self.value

    def compute(self, node, vals):
        return np.full(vals[0].shape, self.fill_value(node), vals[0].dtype)

    def gradient(self, node, g):
        return [None]

    def jvp(self, node, tangents):
        return None  # a constant

    def infer(self, node, shapes, dtypes):
        return shapes[0], dtypes[0]


oneslike_op = FillLikeOp("oneslike", 1.0, native="FILL")
zeroslike_op = FillLikeOp("zeroslike", 0.0, native="FILL")


class FullLikeOp(FillLikeOp):
    """An array of the constant `c` with the input's shape and dtype (how a node is
    compared with a number)."""

    def __call__(self, x, c):
        return Node(self, [x], f"FullLike({x},{c:g})", const_attr=float(c))

    def fill_value(self, node):
        return node.const_attr


full_like_op = FullLikeOp("full_like", None, native="FILL")


class ClipOp(Op):
    """`x` clipped to [lo, hi] (np.clip; constants).  The gradient passes where
    lo <= x <= hi."""
    name = "clip"

    def __call__(self, x, lo, hi):
        return Node(self, [x], f"Clip({x},{lo:g},{hi:g})", attrs={"lo": float(lo), "hi": float(hi)})

    def compute(self, node, vals):
        return np.clip(vals[0], node.attrs["lo"], node.attrs["hi"])

    def inside(self, node, x):
        lo, hi = node.attrs["lo"], node.attrs["hi"]
        return greater_equal_op(x, full_like_op(x, lo)) * less_equal_op(x, full_like_op(x, hi))

    def gradient(self, node, g):
        return [g * self.inside(node, node.inputs[0])]

    def jvp(self, node, tangents):
        return tangents[0] * self.inside(node, node.inputs[0])

    def infer(self, node, shapes, dtypes):
        return shapes[0], dtypes[0]


clip_op = ClipOp(native="clip")


class WhereOp(Op):
    """`a` where `cond` is not 0, else `b` (np.where), numpy broadcasting all three; no
    gradient flows to the condition."""
    name = "where"

    def __call__(self, cond, a, b):
        return Node(self, [cond, a, b], f"Where({cond},{a},{b})")

    def compute(self, node, vals):
        cond, a, b = vals
        return np.where(cond, a, b).astype(np.result_type(a, b), copy=False)

    def gradient(self, node, g):
        cond, a, b = node.inputs
        zero = zeroslike_op(g)
        return [None, sum_to_op(where_op(cond, g, zero), a), sum_to_op(where_op(cond, zero, g), b)]

    def jvp(self, node, tangents):
        cond, ta, tb = node.inputs[0], tangents[1], tangents[2]
        zero = zeroslike_op(node)
        out = where_op(cond, zero if ta is None else broadcast_to_op(ta, node),
                       zero if tb is None else broadcast_to_op(tb, node))
        return out

    def infer(self, node, shapes, dtypes):
        return broadcast(self, node, shapes), np.result_type(dtypes[1], dtypes[2])


where_op = WhereOp(native="where")


# --- shape ops: broadcasting, reductions and reshapes ----------------------------------

class ShapedOp(Op):
    """An op linear in its first input whose other inputs only lend their shapes (and
    attributes): their gradients and tangents are zero, and the tangent is the op itself
    applied to the first input's tangent.  `adjoint(node, g)` is the first input's
    gradient."""

    def gradient(self, node, g):
        return [self.adjoint(node, g)] + [None] * (len(node.inputs) - 1)

    def jvp(self, node, tangents):
        t = tangents[0]
        return None if t is None else self.like(node, t)

    def keeps(self, node, shapes):
        """Whether the output is the first input unchanged, for inputs of these shapes:
        when the shape stays (a broadcast, sum or reshape to the same shape)."""
        return True

    def like(self, node, x):
        """This op of `x` in the place of node's first input, with node's attributes."""
        inputs = [x, *node.inputs[1:]]
        return Node(self, inputs, f"{self.name.capitalize()}({','.join(map(str, inputs))})",
                    attrs=dict(node.attrs))


class BroadcastToOp(ShapedOp):
    """`A` broadcast to the shape of `B`."""
    name = "broadcast_to"

    def compute(self, node, vals):
        return np.broadcast_to(vals[0], vals[1].shape).copy()

    def adjoint(self, node, g):
        return sum_to_op(g, node.inputs[0])

    def infer(self, node, shapes, dtypes):
        if broadcast(self, node, shapes) != tuple(shapes[1]):
            raise shape_error(self, node, shapes, "first shape does not broadcast to the second")
        return shapes[1], dtypes[0]


class SumToOp(ShapedOp):
    """`A` summed down to the shape of `B`: the adjoint of broadcasting."""
    name = "sum_to"

    def compute(self, node, vals):
        return sum_to(vals[0], vals[1].shape)

    def adjoint(self, node, g):
        return broadcast_to_op(g, node.inputs[0])

    def infer(self, node, shapes, dtypes):
        if broadcast(self, node, shapes) != tuple(shapes[0]):
            raise shape_error(self, node, shapes, "second shape does not broadcast to the first")
        return shapes[1], dtypes[0]


broadcast_to_op = BroadcastToOp(native="broadcast_to")
sum_to_op = SumToOp(native="sum_to")


class ReduceOp(Op):
    """Sum or mean over `axis` (None: all axes), numpy style."""

    def __init__(self, name, mean, native=None):
        self.name, self.mean, self.native = name, mean, native

    def __call__(self, A, axis=None, keepdims=False):
        if isinstance(axis, list):
            axis = tuple(axis)
        return Node(self, [A], f"{self.name.capitalize()}({A})",
                    attrs={"axis": axis, "keepdims": bool(keepdims)})

    def compute(self, node, vals):
        x = vals[0]
        axes = reduce_axes(self, node, x.shape, node.attrs["axis"])
        total = np.sum(x, axis=axes, keepdims=node.attrs["keepdims"])
        if self.mean:  # numpy's mean is this sum divided by the count
            total = total / math.prod(x.shape[a] for a in axes)
        return total

    def gradient(self, node, g):
        return [unreduce_op(g, node.inputs[0], node.attrs, self.mean)]

    def jvp(self, node, tangents):
        return self(tangents[0], axis=node.attrs["axis"], keepdims=node.attrs["keepdims"])

    def infer(self, node, shapes, dtypes):
        shape = shapes[0]
        axes = reduce_axes(self, node, shape, node.attrs["axis"])
        if node.attrs["keepdims"]:
            return tuple(1 if i in axes else n for i, n in enumerate(shape)), dtypes[0]
        return tuple(n for i, n in enumerate(shape) if i not in axes), dtypes[0]


reduce_sum_op = ReduceOp("reduce_sum", mean=False, native="reduce")
reduce_mean_op = ReduceOp("reduce_mean", mean=True, native="reduce")


class UnreduceOp(ShapedOp):
    """The gradient of a reduction: `G` spread back over the reduced axes of `A`'s shape
    (divided by the count for a mean)."""
    name = "unreduce"

    def __call__(self, G, A, attrs, mean):
        return Node(self, [G, A], f"Unreduce({G},{A})", attrs=dict(attrs, mean=mean))

    def compute(self, node, vals):
        g, x = vals
        axes = reduce_axes(self, node, x.shape, node.attrs["axis"])
        if not node.attrs["keepdims"]:
            g = np.expand_dims(g, axes)
        if node.attrs["mean"]:
            return np.broadcast_to(g, x.shape) / math.prod(x.shape[a] for a in axes)
        return np.broadcast_to(g, x.shape).copy()

    def adjoint(self, node, g):
        reduce = reduce_mean_op if node.attrs["mean"] else reduce_sum_op
        return reduce(g, axis=node.attrs["axis"], keepdims=node.attrs["keepdims"])

    def infer(self, node, shapes, dtypes):
        reduced, _ = reduce_sum_op.infer(node, shapes[1:], dtypes[1:])
        if tuple(shapes[0]) != reduced:
            raise shape_error(self, node, shapes, f"gradient shape is not {reduced}")
        return shapes[1], dtypes[0]


unreduce_op = UnreduceOp(native="unreduce")


class ReshapeLikeOp(ShapedOp):
    """`X` reshaped to the shape of `Y` (same number of elements)."""
    name = "reshape_like"

    def compute(self, node, vals):
        return np.reshape(vals[0], vals[1].shape)

    def adjoint(self, node, g):
        return reshape_like_op(g, node.inputs[0])

    def infer(self, node, shapes, dtypes):
        if math.prod(shapes[0]) != math.prod(shapes[1]):
            raise shape_error(self, node, shapes, "sizes differ")
        return shapes[1], dtypes[0]


reshape_like_op = ReshapeLikeOp(native="alias")


# --- matmul -------------------------------------------------------------------------------

def _matrix_shape(op, node, shape, role):
    """A matmul operand's shape as a matrix (or a stack of them): a vector becomes a row
    (1, k) or a column (k, 1)."""
    if len(shape) >= 2:
        return tuple(shape)
    if len(shape) == 1:
        return (1, shape[0]) if role == "row" else (shape[0], 1)
    raise shape_error(op, node, [shape], "matmul takes operands of at least 1 dimension")


def _t(x, trans):
    """x with its last two axes swapped when trans (a vector is left as it is)."""
    return np.swapaxes(x, -1, -2) if trans and x.ndim >= 2 else x


class MatMulOp(Op):
    """`op(A) @ op(B)` where op swaps the last two axes of an operand of 2 or more when
    trans_* is set: numpy's matmul, with stacks of matrices broadcast over their batch
    axes (all but the last two), and 1-d operands a row on the left, a column on the
    right."""
    name = "matmul"
    symbol = "@"

    def __call__(self, A, B, trans_A=False, trans_B=False):
        return Node(self, [A, B], f"MatMul({A},{B},{trans_A},{trans_B})",
                    attrs={"trans_A": bool(trans_A), "trans_B": bool(trans_B)})

    def compute(self, node, vals):
        a, b = vals
        return np.matmul(_t(a, node.attrs["trans_A"]), _t(b, node.attrs["trans_B"]))

    def gradient(self, node, g):
        # As matrices: dop(A) = G op(B)^T and dop(B) = op(A)^T G; vectors are lifted to
        # matrices first (`as_matrix_op`), products over broadcast batch axes summed back
        # (`sum_to_op`), and the results reshaped to the operands' shapes.
        A, B = node.inputs
        tA, tB = node.attrs["trans_A"], node.attrs["trans_B"]
        A2 = as_matrix_op(A, "col" if tA else "row")
        B2 = as_matrix_op(B, "row" if tB else "col")
        G2 = as_matrix_op(g, "matmul_out", A, B)
        dA = matmul_op(B2, G2, tB, True) if tA else matmul_op(G2, B2, False, not tB)
        dB = matmul_op(G2, A2, True, tA) if tB else matmul_op(A2, G2, not tA, False)
        return [reshape_like_op(sum_to_op(dA, A2), A), reshape_like_op(sum_to_op(dB, B2), B)]

    def jvp(self, node, tangents):
        # bilinear: d(op(A) op(B)) = op(dA) op(B) + op(A) op(dB)
        flags = node.attrs["trans_A"], node.attrs["trans_B"]
        return tangent_terms((lambda A, B, y, t: matmul_op(t, B, *flags),
                              lambda A, B, y, t: matmul_op(A, t, *flags)),
                             node.inputs, node, tangents)

    def infer(self, node, shapes, dtypes):
        sa, sb = (tuple(s) for s in shapes)
        if not sa or not sb:
            raise shape_error(self, node, shapes, "matmul takes operands of at least 1 dimension")
        a = sa[:-2] + sa[-2:][::-1] if node.attrs["trans_A"] and len(sa) >= 2 else sa
        b = sb[:-2] + sb[-2:][::-1] if node.attrs["trans_B"] and len(sb) >= 2 else sb
        k_a = a[-1]
        k_b = b[-2] if len(b) >= 2 else b[0]
        if k_a != k_b:
            raise shape_error(self, node, shapes, f"inner dimensions differ ({k_a} vs {k_b})")
        try:
            batch = np.broadcast_shapes(a[:-2], b[:-2])
        except ValueError:
            raise shape_error(self, node, shapes, "batch axes do not broadcast") from None
        rows = a[-2:-1] if len(a) >= 2 else ()
        cols = b[-1:] if len(b) >= 2 else ()
        return tuple(batch) + rows + cols, np.result_type(*dtypes)


matmul_op = MatMulOp(native="matmul")


class AsMatrixOp(ShapedOp):
    """A matmul operand or output gradient viewed as matrices (a reshape, no copy).

    role "row"/"col": a vector becomes (1, k)/(k, 1).  role "matmul_out": the output
    gradient of `A @ B` gets back the unit axes that vector operands dropped."""
    name = "as_matrix"

    def __call__(self, X, role, A=None, B=None):
        inputs = [X] if A is None else [X, A, B]
        return Node(self, inputs, f"AsMatrix({X})", attrs={"role": role})

    def compute(self, node, vals):
        shapes = [v.shape for v in vals]
        shape, _ = self.infer(node, shapes, [v.dtype for v in vals])
        return np.reshape(vals[0], shape)

    def adjoint(self, node, g):
        return reshape_like_op(g, node.inputs[0])

    def infer(self, node, shapes, dtypes):
        role = node.attrs["role"]
        if role != "matmul_out":
            return _matrix_shape(self, node, shapes[0], role), dtypes[0]
        g, a, b = (list(s) for s in shapes)
        shape = list(g)
        if len(b) == 1:
            shape.append(1)
        if len(a) == 1:
            shape.insert(len(shape) - 1, 1)
        if len(shape) < 2:
            raise shape_error(self, node, shapes, "not a matmul output gradient")
        return tuple(shape), dtypes[0]


as_matrix_op = AsMatrixOp(native="alias")


# --- softmax family (last axis) -------------------------------------------------------------

class LastAxisOp(Op):
    """An op over the last axis of its first input, which must not be empty;
    `vjp(*inputs, y, g)` gives the partials, `jvp` is one `(*inputs, y, t) -> term` per input.
    The output has the first input's shape, or is 0-d when `reduces`; a second input
    (labels) must have the first's shape."""

    def __init__(self, name, fn, vjp, jvp, native=None, reduces=False):
        self.name, self.fn, self.vjp, self.jvp_terms = name, fn, vjp, jvp
        self.native, self.reduces = native, reduces

    def __call__(self, *inputs):
        return Node(self, inputs, f"{self.name.capitalize()}({','.join(map(str, inputs))})")

    def compute(self, node, vals):
        return self.fn(*vals)

    def gradient(self, node, g):
        return self.vjp(*node.inputs, node, g)

    def jvp(self, node, tangents):
        return tangent_terms(self.jvp_terms, node.inputs, node, tangents)

    def infer(self, node, shapes, dtypes):
        x = shapes[0]
        if len(x) == 0 or x[-1] == 0:
            raise shape_error(self, node, shapes, "needs a non-empty last axis")
        if len(shapes) == 2 and tuple(shapes[1]) != tuple(x):
            raise shape_error(self, node, shapes, "labels must have the logits' shape")
        return () if self.reduces else tuple(x), np.result_type(*dtypes)


def _sum_last(x):
    return reduce_sum_op(x, axis=-1, keepdims=True)


def _softmax_ce(logits, labels):
    return -np.sum(labels * log_softmax(logits)) / rows(logits.shape)


softmax_op = LastAxisOp("softmax", softmax, vjp=lambda x, y, g: [y * (g - _sum_last(g * y))],
                        jvp=(lambda x, y, t: y * (t - _sum_last(t * y)),), native="SOFTMAX")
log_softmax_op = LastAxisOp("log_softmax", log_softmax,
                            vjp=lambda x, y, g: [g - softmax_op(x) * _sum_last(g)],
                            jvp=(lambda x, y, t: t - _sum_last(softmax_op(x) * t),),
                            native="LOG_SOFTMAX")
# The logits' rule is the derivative where label rows sum to 1 (see the op's contract);
# the tangent rule is its transpose, so forward and reverse mode agree for any labels.
def _dce_dlogits(z, labels):
    """d(-sum labels * log_softmax(z)) / dz per row: softmax(z) * sum(labels) - labels,
    which is the familiar softmax - labels when each row of labels sums to 1."""
    return softmax_op(z) * _sum_last(labels) - labels


softmax_cross_entropy_op = LastAxisOp(
    "softmax_cross_entropy", _softmax_ce,
    vjp=lambda z, t, y, g: [_dce_dlogits(z, t) * per_row_op(g, z),
                            -(log_softmax_op(z) * per_row_op(g, z))],
    jvp=(lambda z, labels, y, t: per_row_op(reduce_sum_op(_dce_dlogits(z, labels) * t), z),
         lambda z, labels, y, t: -per_row_op(reduce_sum_op(log_softmax_op(z) * t), z)),
    native="softmax_cross_entropy", reduces=True)


class PerRowOp(ShapedOp):
    """`g / rows(Z)`, rows = the product of all but Z's last axis."""
    name = "per_row"

    def keeps(self, node, shapes):
        return rows(shapes[1]) == 1

    def compute(self, node, vals):
        return vals[0] / rows(vals[1].shape)

    def adjoint(self, node, g):
        return per_row_op(g, node.inputs[1])

    def infer(self, node, shapes, dtypes):
        if len(shapes[1]) == 0:
            raise shape_error(self, node, shapes, "needs a non-0-d second input")
        return shapes[0], dtypes[0]


per_row_op = PerRowOp(native="per_row")


# --- the table's registration: built-in facts, and Node's operators -------------------------

for _name, _op in list(globals().items()):
    if isinstance(_op, Op) and _name.endswith("_op"):
        _op.builtin, _op.key = True, f"{__name__}:{_name}"
del _name, _op

graph.OPERATORS.update(
    add=(add_op, add_byconst_op), sub=(sub_op, sub_byconst_op), mul=(mul_op, mul_byconst_op),
    div=(div_op, div_byconst_op), rsub=rsub_byconst_op, rdiv=rdiv_byconst_op, neg=neg_op,
    pow=(pow_op, pow_byconst_op), matmul=matmul_op, full_like=full_like_op,
    lt=less_op, le=less_equal_op, gt=greater_op, ge=greater_equal_op)
