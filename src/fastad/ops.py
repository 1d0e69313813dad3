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
        pass
    ndim = max(map(len, shapes))
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    dims = [{n for n in column if n != 1} for column in zip(*padded)]
    if any(len(d) > 1 for d in dims):
        raise shape_error(op, node, shapes, "shapes do not broadcast")
    shape = tuple(d.pop() if d else 1 for d in dims)  # they do: numpy refused the size
    raise shape_error(op, node, shapes, f"the broadcast shape {shape} has {math.prod(shape)} "
                      "elements: its size overflows")


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
    """The sum of `rule(*inputs, node, t)` over the inputs whose tangent `t` is not zero
    (None when all are)."""
    terms = [rule(*inputs, node, t) for rule, t in zip(rules, tangents) if t is not None]
    return functools.reduce(add_op, terms) if terms else None


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

    # whether an output of the first input's shape is that input unchanged (a broadcast,
    # sum or reshape to the same shape); an op whose output can be moved or scattered
    # data of the same shape (untranspose, index_add) answers in `keeps`
    same_shape_is_identity = False

    def keeps(self, node, shapes):
        """Whether the output is the first input unchanged, for inputs of these shapes
        (simplify drops the node when, besides, the shape and dtype stay)."""
        return self.same_shape_is_identity

    def like(self, node, x):
        """This op of `x` in the place of node's first input, with node's attributes."""
        inputs = [x, *node.inputs[1:]]
        return Node(self, inputs, f"{self.name.capitalize()}({','.join(map(str, inputs))})",
                    attrs=dict(node.attrs))


class BroadcastToOp(ShapedOp):
    """`A` broadcast to the shape of `B`."""
    same_shape_is_identity = True
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
    same_shape_is_identity = True
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


class AxisOp(Op):
    """A reduction over `axis` (None: all axes) of its input, numpy style: the reduced
    axes are dropped, or kept as 1s with keepdims."""

    def __call__(self, A, axis=None, keepdims=False, reduction_indices=None, keep_dims=None):
        """reduction_indices and keep_dims: TensorFlow 1's names of axis and keepdims."""
        if reduction_indices is not None:
            if axis is not None:
                raise TypeError(f"{self.name}: give axis or reduction_indices, not both")
            axis = reduction_indices
        if keep_dims is not None:
            if keepdims:
                raise TypeError(f"{self.name}: give keepdims or keep_dims, not both")
            keepdims = keep_dims
        if isinstance(axis, list):
            axis = tuple(axis)
        return Node(self, [A], f"{self.name.capitalize()}({A})",
                    attrs={"axis": axis, "keepdims": bool(keepdims)})

    def infer(self, node, shapes, dtypes):
        shape = shapes[0]
        axes = reduce_axes(self, node, shape, node.attrs["axis"])
        if node.attrs["keepdims"]:
            return tuple(1 if i in axes else n for i, n in enumerate(shape)), dtypes[0]
        return tuple(n for i, n in enumerate(shape) if i not in axes), dtypes[0]


class ReduceOp(AxisOp):
    """Sum or mean over `axis`."""

    def __init__(self, name, mean, native=None):
        self.name, self.mean, self.native = name, mean, native

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


reduce_sum_op = ReduceOp("reduce_sum", mean=False, native="reduce")
reduce_mean_op = ReduceOp("reduce_mean", mean=True, native="reduce")


class ExtremeOp(AxisOp):
    """The largest (np.max) or smallest (np.min) element over `axis`; nan wins.  The
    gradient is shared equally among tied extremes."""

    def __init__(self, name, fn, native=None):
        self.name, self.fn, self.native = name, fn, native

    def compute(self, node, vals):
        x = vals[0]
        axes = reduce_axes(self, node, x.shape, node.attrs["axis"])
        return self.fn(x, axis=axes, keepdims=node.attrs["keepdims"])

    def share(self, node):
        """1 / (number of ties) where the input is the extreme, else 0, in the input's shape."""
        x = node.inputs[0]
        hit = equal_op(x, unreduce_op(node, x, node.attrs, False))
        ties = reduce_sum_op(hit, axis=node.attrs["axis"], keepdims=node.attrs["keepdims"])
        return hit / unreduce_op(ties, x, node.attrs, False)

    def gradient(self, node, g):
        x = node.inputs[0]
        return [unreduce_op(g, x, node.attrs, False) * self.share(node)]

    def jvp(self, node, tangents):
        return reduce_sum_op(tangents[0] * self.share(node), axis=node.attrs["axis"],
                             keepdims=node.attrs["keepdims"])

    def infer(self, node, shapes, dtypes):
        shape = shapes[0]
        axes = reduce_axes(self, node, shape, node.attrs["axis"])
        if any(shape[a] == 0 for a in axes):
            raise shape_error(self, node, shapes, "the reduced axes are empty: no "
                                                  f"{self.name.split('_')[1]} there")
        return super().infer(node, shapes, dtypes)


reduce_max_op = ExtremeOp("reduce_max", np.max, native="extreme")
reduce_min_op = ExtremeOp("reduce_min", np.min, native="extreme")


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over `axis`, shifted by the maximum (0 where it is not finite)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


class LogSumExpOp(AxisOp):
    """log(sum(exp(A))) over `axis`, stable for large |A|; its gradient is the softmax
    over those axes."""
    name = "logsumexp"

    def compute(self, node, vals):
        x = vals[0]
        return logsumexp(x, reduce_axes(self, node, x.shape, node.attrs["axis"]),
                         node.attrs["keepdims"])

    def softmax(self, node):
        x = node.inputs[0]
        return exp_op(x - unreduce_op(node, x, node.attrs, False))

    def gradient(self, node, g):
        return [unreduce_op(g, node.inputs[0], node.attrs, False) * self.softmax(node)]

    def jvp(self, node, tangents):
        return reduce_sum_op(tangents[0] * self.softmax(node), axis=node.attrs["axis"],
                             keepdims=node.attrs["keepdims"])


logsumexp_op = LogSumExpOp(native="logsumexp")


class UnreduceOp(ShapedOp):
    """The gradient of a reduction: `G` spread back over the reduced axes of `A`'s shape
    (divided by the count for a mean)."""
    same_shape_is_identity = True
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
    same_shape_is_identity = True
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
    same_shape_is_identity = True
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


# --- shapes and indexing ---------------------------------------------------------------------

def axis_of(op, node, shape, axis, extra=0):
    """`axis` as a non-negative axis of `shape` (of a result one longer with extra=1)."""
    ndim = len(shape) + extra
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise shape_error(op, node, [shape], f"axis {axis!r} is out of range")
    return int(axis) % ndim


class ReshapeOp(Op):
    """`A` reshaped to `shape` (one entry may be -1), numpy's element order."""
    name = "reshape"

    def __call__(self, A, shape):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
        return Node(self, [A], f"Reshape({A},{shape})", attrs={"shape": shape})

    def compute(self, node, vals):
        return np.reshape(vals[0], node.attrs["shape"])

    def gradient(self, node, g):
        return [reshape_like_op(g, node.inputs[0])]

    def jvp(self, node, tangents):
        return reshape_op(tangents[0], node.attrs["shape"])

    def infer(self, node, shapes, dtypes):
        want, size = node.attrs["shape"], math.prod(shapes[0])
        if want.count(-1) > 1 or any(n < -1 for n in want):
            raise shape_error(self, node, shapes, f"bad target shape {want} (one -1 at most)")
        known = math.prod(n for n in want if n != -1)
        if -1 in want:
            if known == 0 or size % known:
                raise shape_error(self, node, shapes, f"cannot reshape {size} elements to {want}")
            want = tuple(size // known if n == -1 else n for n in want)
        if math.prod(want) != size:
            raise shape_error(self, node, shapes, f"cannot reshape {size} elements to {want}")
        return want, dtypes[0]


reshape_op = ReshapeOp(native="alias")


class TransposeOp(Op):
    """`A` with its axes permuted (`axes`; None reverses them), np.transpose."""
    name = "transpose"

    def __call__(self, A, axes=None):
        axes = None if axes is None else tuple(int(a) for a in axes)
        return Node(self, [A], f"Transpose({A})", attrs={"axes": axes})

    def perm(self, node, shape):
        axes = node.attrs["axes"]
        ndim = len(shape)
        if axes is None:
            return tuple(range(ndim))[::-1]
        norm = tuple(a % ndim if -ndim <= a < ndim else None for a in axes)
        if len(axes) != ndim or None in norm or sorted(norm) != list(range(ndim)):
            raise shape_error(self, node, [shape], f"axes {axes} are not a permutation of {ndim} axes")
        return norm

    def compute(self, node, vals):
        return np.transpose(vals[0], node.attrs["axes"])

    def gradient(self, node, g):
        return [untranspose_op(g, node)]

    def jvp(self, node, tangents):
        return transpose_op(tangents[0], node.attrs["axes"])

    def infer(self, node, shapes, dtypes):
        return tuple(shapes[0][a] for a in self.perm(node, shapes[0])), dtypes[0]


transpose_op = TransposeOp(native="transpose")


class UntransposeOp(ShapedOp):
    """The gradient of a transpose node T: `G` transposed back (T lends its axes)."""
    name = "untranspose"

    def compute(self, node, vals):
        return np.transpose(vals[0], np.argsort(self.perm(node, vals[1].ndim)))

    def perm(self, node, ndim):
        axes = node.inputs[1].attrs["axes"]
        return tuple(range(ndim))[::-1] if axes is None else tuple(a % ndim for a in axes)

    def keeps(self, node, shapes):
        return self.perm(node, len(shapes[0])) == tuple(range(len(shapes[0])))

    def adjoint(self, node, g):
        return transpose_op(g, node.inputs[1].attrs["axes"])

    def infer(self, node, shapes, dtypes):
        if tuple(shapes[0]) != tuple(shapes[1]):
            raise shape_error(self, node, shapes, "the gradient's shape is not the transpose's")
        perm = np.argsort(self.perm(node, len(shapes[0])))
        return tuple(shapes[0][a] for a in perm), dtypes[0]


untranspose_op = UntransposeOp(native="untranspose")


def index_key(key, of):
    """A __getitem__ key of node `of` as a tuple; lists and arrays of integers become
    int64 arrays."""
    key = key if isinstance(key, tuple) else (key,)
    where = f"getitem of node '{of.name}'"
    out = []
    for k in key:
        if isinstance(k, (list, np.ndarray)):
            arr = np.asarray(k)
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{where}: fastad indexing takes integer arrays, not {arr.dtype} "
                                f"(boolean masks: use where_op)")
            out.append(arr.astype(np.int64))
        elif k is None or k is Ellipsis:
            out.append(k)
        elif isinstance(k, slice):
            if not all(v is None or isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in (k.start, k.stop, k.step)):
                raise TypeError(f"{where}: slice {k} has a bound or step that is not an integer")
            if k.step == 0:
                raise ValueError(f"{where}: slice {k} has step 0")
            out.append(k)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            out.append(int(k))
        else:
            raise TypeError(f"{where}: fastad indexing takes ints, slices, None, ... and one "
                            f"integer array, not {type(k).__name__}")
    if sum(isinstance(k, np.ndarray) for k in out) > 1:
        raise TypeError(f"{where}: fastad indexing takes one integer array at most")
    if sum(k is Ellipsis for k in out) > 1:
        raise IndexError(f"{where}: an index can only have a single ellipsis ('...')")
    return tuple(out)


class IndexPlan:
    """Where `x[key]` reads from a contiguous x of `shape`: `offset` and, per axis of the
    basic part (the key with its array replaced by a whole slice), `dims` and element
    `strides`; the array's axis `at` (in those dims), its length and its values (made
    non-negative), or at None."""

    def __init__(self, op, node, shape, key):
        n_used = sum(k is not None and k is not Ellipsis for k in key)
        if n_used > len(shape):
            raise IndexError(f"{op.name} node '{node.name}': too many indices for an array "
                             f"of shape {tuple(shape)}")
        full = []
        for k in key:
            full += [slice(None)] * (len(shape) - n_used) if k is Ellipsis else [k]
        full += [slice(None)] * (len(shape) - sum(k is not None for k in full))
        strides = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1):
            strides[i] = strides[i + 1] * shape[i + 1]
        self.offset, self.dims, self.strides, self.at, self.index = 0, [], [], None, None
        axis = 0
        for k in full:
            if k is None:
                self.dims.append(1)
                self.strides.append(0)
                continue
            n, st = shape[axis], strides[axis]
            if isinstance(k, int):
                if not -n <= k < n:
                    raise IndexError(f"{op.name} node '{node.name}': index {k} is out of range "
                                     f"for axis {axis} of size {n} (shape {tuple(shape)})")
                self.offset += (k % n) * st
            elif isinstance(k, slice):
                start, stop, step = k.indices(n)
                self.dims.append(len(range(start, stop, step)))
                self.strides.append(step * st)
                if self.dims[-1]:
                    self.offset += start * st
            else:
                bad = (k < -n) | (k >= n)
                if bad.any():
                    raise IndexError(f"{op.name} node '{node.name}': index {int(k[bad][0])} is "
                                     f"out of range for axis {axis} of size {n} "
                                     f"(shape {tuple(shape)})")
                self.at, self.length, self.index = len(self.dims), n, np.where(k < 0, k + n, k)
                self.dims.append(n)
                self.strides.append(st)
            axis += 1

    @property
    def basic_shape(self):
        return tuple(self.dims)

    @property
    def shape(self):
        if self.at is None:
            return tuple(self.dims)
        return tuple(self.dims[:self.at]) + self.index.shape + tuple(self.dims[self.at + 1:])


class GetItemOp(Op):
    """`A[key]`: numpy's basic indexing (ints, slices with steps, negative indices, None,
    ...) and at most one integer array, along one axis: a gather.  Its gradient is a
    scatter-add, so repeated indices add up."""
    name = "getitem"

    def __call__(self, A, key):
        key = index_key(key, A)
        return Node(self, [A], f"{A}[{_key_text(key)}]", attrs={"key": key})

    def compute(self, node, vals):
        return vals[0][node.attrs["key"]]

    def gradient(self, node, g):
        return [index_add_op(g, node.inputs[0], node.attrs["key"])]

    def jvp(self, node, tangents):
        return getitem_op(tangents[0], node.attrs["key"])

    def infer(self, node, shapes, dtypes):
        return IndexPlan(self, node, shapes[0], node.attrs["key"]).shape, dtypes[0]


def _key_text(key):
    def one(k):
        if isinstance(k, slice):
            return ":".join("" if v is None else str(v) for v in (k.start, k.stop, k.step)).rstrip(":") or ":"
        return "..." if k is Ellipsis else "None" if k is None else (
            f"array{list(k.shape)}" if isinstance(k, np.ndarray) else str(k))
    return ",".join(one(k) for k in key)


getitem_op = GetItemOp(native="getitem")


class IndexAddOp(ShapedOp):
    """Zeros of `X`'s shape with `G` added at `X[key]` (np.add.at): the gradient of
    `X[key]`; repeated indices add up, in order."""
    name = "index_add"

    def __call__(self, G, X, key):
        return Node(self, [G, X], f"IndexAdd({G},{X})", attrs={"key": key})

    def compute(self, node, vals):
        g, x = vals
        out = np.zeros(x.shape, g.dtype)
        np.add.at(out, node.attrs["key"], g)
        return out

    def adjoint(self, node, g):
        return getitem_op(g, node.attrs["key"])

    def infer(self, node, shapes, dtypes):
        want = IndexPlan(self, node, shapes[1], node.attrs["key"]).shape
        if tuple(shapes[0]) != want:
            raise shape_error(self, node, shapes, f"the gradient's shape is not {want}")
        return tuple(shapes[1]), dtypes[0]


index_add_op = IndexAddOp(native="index_add")


def _join_shapes(op, node, shapes, axis, stack):
    """The shape of concatenating (stacking) arrays of `shapes` along `axis`."""
    if not shapes:
        raise shape_error(op, node, shapes, "needs at least one input")
    first = tuple(shapes[0])
    if stack:
        if any(tuple(s) != first for s in shapes):
            raise shape_error(op, node, shapes, "stacked arrays must have one shape")
        a = axis_of(op, node, first, axis, extra=1)
        return first[:a] + (len(shapes),) + first[a:], a
    if not first:
        raise shape_error(op, node, shapes, "cannot concatenate 0-d arrays")
    a = axis_of(op, node, first, axis)
    for s in shapes:
        if len(s) != len(first) or any(n != m for i, (n, m) in enumerate(zip(s, first)) if i != a):
            raise shape_error(op, node, shapes, f"shapes differ off axis {a}")
    return first[:a] + (sum(s[a] for s in shapes),) + first[a + 1:], a


class JoinOp(Op):
    """np.concatenate (stack=False) or np.stack (stack=True) of its inputs along `axis`."""

    def __init__(self, name, stack, native=None):
        self.name, self.stack, self.native = name, stack, native

    def __call__(self, nodes, axis=0):
        nodes = list(nodes)
        return Node(self, nodes, f"{self.name.capitalize()}({','.join(map(str, nodes))})",
                    attrs={"axis": int(axis)})

    def compute(self, node, vals):
        return (np.stack if self.stack else np.concatenate)(vals, axis=node.attrs["axis"])

    def gradient(self, node, g):
        return [join_part_op(g, node, i) for i in range(len(node.inputs))]

    def jvp(self, node, tangents):
        return self([zeroslike_op(x) if t is None else t for x, t in zip(node.inputs, tangents)],
                    node.attrs["axis"])

    def infer(self, node, shapes, dtypes):
        return _join_shapes(self, node, shapes, node.attrs["axis"], self.stack)[0], \
            np.result_type(*dtypes)


concat_op = JoinOp("concat", stack=False, native="join")
stack_op = JoinOp("stack", stack=True, native="join")


class JoinPartOp(ShapedOp):
    """Input i's part of `G`, the gradient of a concat or stack node J (J lends the
    shapes and the axis)."""
    name = "join_part"

    def __call__(self, G, J, i):
        return Node(self, [G, J, *J.inputs], f"JoinPart({G},{i})", attrs={"i": int(i)})

    def part(self, node, shapes):
        J = node.inputs[1]
        _, axis = _join_shapes(J.op, J, shapes[2:], J.attrs["axis"], J.op.stack)
        i = node.attrs["i"]
        if J.op.stack:
            return (slice(None),) * axis + (i,)
        start = sum(s[axis] for s in shapes[2:2 + i])
        return (slice(None),) * axis + (slice(start, start + shapes[2 + i][axis]),)

    def compute(self, node, vals):
        return vals[0][self.part(node, [v.shape for v in vals])]

    def adjoint(self, node, g):
        J, i = node.inputs[1], node.attrs["i"]
        return J.op([g if j == i else zeroslike_op(x) for j, x in enumerate(J.inputs)],
                    J.attrs["axis"])

    def like(self, node, x):
        return join_part_op(x, node.inputs[1], node.attrs["i"])

    def infer(self, node, shapes, dtypes):
        if tuple(shapes[0]) != tuple(shapes[1]):
            raise shape_error(self, node, shapes[:2], "the gradient's shape is not the join's")
        return tuple(shapes[2 + node.attrs["i"]]), dtypes[0]


join_part_op = JoinPartOp(native="join_part")


def pad_widths(op, node, shape, pad_width):
    """np.pad's pad_width as ((before, after), ...) per axis."""
    try:
        pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(shape), 2))
    except ValueError:
        raise shape_error(op, node, [shape], f"pad_width {pad_width!r} does not fit "
                                             f"{len(shape)} axes") from None
    if (pw < 0).any():
        raise shape_error(op, node, [shape], f"pad_width {pad_width!r} is negative")
    return tuple((int(b), int(a)) for b, a in pw)


class PadOp(Op):
    """`A` padded with zeros (np.pad, constant mode): pad_width as np.pad takes it."""
    name = "pad"

    def __call__(self, A, pad_width):
        pw = np.asarray(pad_width).tolist()
        return Node(self, [A], f"Pad({A},{pw})", attrs={"pad_width": pw})

    def compute(self, node, vals):
        x = vals[0]
        return np.pad(x, pad_widths(self, node, x.shape, node.attrs["pad_width"]))

    def gradient(self, node, g):
        return [unpad_op(g, node.inputs[0], node.attrs["pad_width"])]

    def jvp(self, node, tangents):
        return pad_op(tangents[0], node.attrs["pad_width"])

    def infer(self, node, shapes, dtypes):
        pw = pad_widths(self, node, shapes[0], node.attrs["pad_width"])
        return tuple(n + b + a for n, (b, a) in zip(shapes[0], pw)), dtypes[0]


pad_op = PadOp(native="pad")


class UnpadOp(ShapedOp):
    """`G` with the padding of pad(X, pad_width) cut off: the gradient of a pad."""
    same_shape_is_identity = True
    name = "unpad"

    def __call__(self, G, X, pad_width):
        return Node(self, [G, X], f"Unpad({G},{X})", attrs={"pad_width": pad_width})

    def crop(self, node, shape):
        pw = pad_widths(self, node, shape, node.attrs["pad_width"])
        return tuple(slice(b, b + n) for n, (b, _) in zip(shape, pw))

    def compute(self, node, vals):
        return vals[0][self.crop(node, vals[1].shape)]

    def adjoint(self, node, g):
        return pad_op(g, node.attrs["pad_width"])

    def infer(self, node, shapes, dtypes):
        want, _ = pad_op.infer(node, shapes[1:], dtypes[1:])
        if tuple(shapes[0]) != want:
            raise shape_error(self, node, shapes, f"the gradient's shape is not {want}")
        return tuple(shapes[1]), dtypes[0]


unpad_op = UnpadOp(native="unpad")


# --- convolution and pooling (NCHW data, OIHW weights) ----------------------------------------

def _pair_int(op, node, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{op.name} node '{node.name}': {name} must be a non-negative integer, "
                         f"not {value!r}")
    return int(value)


def conv_geometry(op, node, xs, ws, stride, padding):
    """(N, C, H, W, O, KH, KW, OH, OW) of a convolution, checked."""
    if len(xs) != 4 or len(ws) != 4:
        raise shape_error(op, node, [xs, ws], "takes NCHW data and OIHW weights (4-d both)")
    n, c, h, w = xs
    o, c2, kh, kw = ws
    if c != c2:
        raise shape_error(op, node, [xs, ws], f"data have {c} channels, weights {c2}")
    if kh > h + 2 * padding or kw > w + 2 * padding or kh == 0 or kw == 0:
        raise shape_error(op, node, [xs, ws], f"the {kh}x{kw} kernel does not fit the "
                                              f"{h}x{w} input padded by {padding}")
    return n, c, h, w, o, kh, kw, (h + 2 * padding - kh) // stride + 1, \
        (w + 2 * padding - kw) // stride + 1


def im2col(x, kh, kw, stride, padding):
    """Windows of x (N, C, H, W): (N, C, OH, OW, KH, KW), zero padding around."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def conv2d(x, w, stride, padding):
    cols = im2col(x, w.shape[2], w.shape[3], stride, padding)
    return np.ascontiguousarray(np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2))


def conv2d_grad_input(g, w, x_shape, stride, padding):
    """The adjoint of conv2d in x: windows of zeros of x_shape given g."""
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    dcols = np.tensordot(g, w, axes=([1], [0]))  # (N, OH, OW, C, KH, KW)
    out = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), dtype=np.result_type(g, w))
    oh, ow = g.shape[2:]
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += \
                dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, padding:padding + h, padding:padding + wd]


def conv2d_grad_filter(g, x, w_shape, stride, padding):
    cols = im2col(x, w_shape[2], w_shape[3], stride, padding)  # (N, C, OH, OW, KH, KW)
    return np.tensordot(g, cols, axes=([0, 2, 3], [0, 2, 3]))


class ConvOp(Op):
    """conv2d_op(X, W, stride, padding) and its two gradients: the one in the data
    (`conv2d_grad_input_op(G, W, X)`) and the one in the weights
    (`conv2d_grad_filter_op(G, X, W)`; the last input of each only lends its shape).
    All three are bilinear, so their gradients and tangents are one another."""

    def __init__(self, name, role, native=None):
        self.name, self.role, self.native = name, role, native

    def __call__(self, A, B, C=None, stride=1, padding=0):
        inputs = [A, B] if C is None else [A, B, C]
        node = Node(self, inputs, f"{self.name.capitalize()}({A},{B})",
                    attrs={"stride": stride, "padding": padding})
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"{self.name} node '{node.name}': stride must be a positive "
                             f"integer, not {stride!r}")
        _pair_int(self, node, "padding", padding)
        return node

    def geometry(self, node, shapes):
        """(x shape, w shape, g shape) of the convolution behind the node."""
        s, p = node.attrs["stride"], node.attrs["padding"]
        xs, ws = {"conv": lambda: (shapes[0], shapes[1]), "input": lambda: (shapes[2], shapes[1]),
                  "filter": lambda: (shapes[1], shapes[2])}[self.role]()
        geo = conv_geometry(self, node, tuple(xs), tuple(ws), s, p)
        n, c, h, w, o, kh, kw, oh, ow = geo
        if self.role != "conv" and tuple(shapes[0]) != (n, o, oh, ow):
            raise shape_error(self, node, shapes, f"the gradient's shape is not {(n, o, oh, ow)}")
        return tuple(xs), tuple(ws), (n, o, oh, ow)

    def compute(self, node, vals):
        s, p = node.attrs["stride"], node.attrs["padding"]
        if self.role == "conv":
            return conv2d(vals[0], vals[1], s, p)
        if self.role == "input":
            return conv2d_grad_input(vals[0], vals[1], vals[2].shape, s, p)
        return conv2d_grad_filter(vals[0], vals[1], vals[2].shape, s, p)

    def bilinear(self, node, a, b):
        """This op of (a, b) in place of the node's first two inputs."""
        s, p = node.attrs["stride"], node.attrs["padding"]
        return self(a, b, *node.inputs[2:], stride=s, padding=p)

    def gradient(self, node, h):
        s, p = node.attrs["stride"], node.attrs["padding"]
        A, B = node.inputs[:2]
        if self.role == "conv":      # Y = conv(X, W)
            return [conv2d_grad_input_op(h, B, A, stride=s, padding=p),
                    conv2d_grad_filter_op(h, A, B, stride=s, padding=p)]
        if self.role == "input":     # Z = convT(G, W): <H, Z> = <conv(H, W), G>
            return [conv2d_op(h, B, stride=s, padding=p),
                    conv2d_grad_filter_op(A, h, B, stride=s, padding=p), None]
        # Z = gradfilter(G, X): <H, Z> = <conv(X, H), G>
        return [conv2d_op(B, h, stride=s, padding=p),
                conv2d_grad_input_op(A, h, B, stride=s, padding=p), None]

    def jvp(self, node, tangents):
        # the third input only lends its shape: its tangent is ignored
        rules = [lambda a, b, node, t: self.bilinear(node, t, b),
                 lambda a, b, node, t: self.bilinear(node, a, t)]
        return tangent_terms(rules, node.inputs[:2], node, tangents[:2])

    def infer(self, node, shapes, dtypes):
        xs, ws, gs = self.geometry(node, shapes)
        out = {"conv": gs, "input": xs, "filter": ws}[self.role]
        return out, np.result_type(*dtypes[:2])


conv2d_op = ConvOp("conv2d", "conv", native="conv")
conv2d_grad_input_op = ConvOp("conv2d_grad_input", "input", native="conv")
conv2d_grad_filter_op = ConvOp("conv2d_grad_filter", "filter", native="conv")


def pool_geometry(op, node, xs, kernel, stride):
    if len(xs) != 4:
        raise shape_error(op, node, [xs], "takes NCHW data (4-d)")
    n, c, h, w = xs
    if kernel > h or kernel > w:
        raise shape_error(op, node, [xs], f"the {kernel}x{kernel} window does not fit {h}x{w}")
    return n, c, h, w, (h - kernel) // stride + 1, (w - kernel) // stride + 1


def pool_windows(x, kernel, stride):
    return np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))[
        :, :, ::stride, ::stride]


def max_positions(x, kernel, stride):
    """Per window, the flat index into x (N*C*H*W) of its first largest element (a nan
    counts as the largest, as np.argmax has it)."""
    n, c, h, w = x.shape
    win = pool_windows(x, kernel, stride)
    oh, ow = win.shape[2:4]
    flat = win.reshape(n, c, oh, ow, kernel * kernel)
    k = np.argmax(flat, axis=-1)
    i, j = np.divmod(k, kernel)
    rows = np.arange(oh)[:, None] * stride + i
    cols = np.arange(ow)[None, :] * stride + j
    base = (np.arange(n)[:, None, None, None] * c + np.arange(c)[None, :, None, None]) * h * w
    return base + rows * w + cols


class PoolOp(Op):
    """Pooling over kernel x kernel windows moved by `stride` (default: the kernel), no
    padding, NCHW: max_pool2d_op and avg_pool2d_op, and the ops their gradients are made
    of.  A max window's gradient goes to its first largest element (row by row)."""

    def __init__(self, name, role, native=None):
        self.name, self.role, self.native = name, role, native

    def __call__(self, *args, kernel=None, stride=None):
        """op(X, kernel, stride=None); the gradient ops take (G, X, kernel, stride)."""
        inputs = [a for a in args if isinstance(a, Node)]
        rest = list(args[len(inputs):])
        kernel = rest.pop(0) if rest and kernel is None else kernel
        stride = rest.pop(0) if rest and stride is None else stride
        if kernel is None or rest or len(inputs) != (1 if self.role in ("max", "avg") else 2):
            raise TypeError(f"{self.name}: takes the input node(s), a kernel and a stride")
        stride = kernel if stride is None else stride
        node = Node(self, inputs, f"{self.name.capitalize()}({','.join(map(str, inputs))})",
                    attrs={"kernel": kernel, "stride": stride})
        for name, v in (("kernel", kernel), ("stride", stride)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{self.name} node '{node.name}': {name} must be a positive "
                                 f"integer, not {v!r}")
        return node

    def compute(self, node, vals):
        k, s = node.attrs["kernel"], node.attrs["stride"]
        if self.role == "max":
            return pool_windows(vals[0], k, s).max(axis=(-2, -1))
        if self.role == "avg":
            return pool_windows(vals[0], k, s).mean(axis=(-2, -1))
        if self.role == "avg_grad":  # g spread over each window's elements / k^2
            g, x = vals
            out = np.zeros(x.shape, g.dtype)
            oh, ow = g.shape[2:]
            for i in range(k):
                for j in range(k):
                    out[:, :, i:i + s * oh:s, j:j + s * ow:s] += g / (k * k)
            return out
        pos = max_positions(vals[1], k, s)
        if self.role == "max_gather":  # t at each window's largest element
            return vals[0].reshape(-1)[pos]
        g, x = vals  # max_scatter: g added at each window's largest element
        out = np.zeros(x.size, g.dtype)
        np.add.at(out, pos.reshape(-1), g.reshape(-1))
        return out.reshape(x.shape)

    def again(self, op, node, *inputs):
        return op(*inputs, kernel=node.attrs["kernel"], stride=node.attrs["stride"])

    def gradient(self, node, g):
        x = node.inputs[-1]
        if self.role == "max":
            return [self.again(max_pool2d_scatter_op, node, g, x)]
        if self.role == "avg":
            return [self.again(avg_pool2d_grad_op, node, g, x)]
        if self.role == "avg_grad":
            return [self.again(avg_pool2d_op, node, g), None]
        other = max_pool2d_scatter_op if self.role == "max_gather" else max_pool2d_gather_op
        return [self.again(other, node, g, x), None]

    def jvp(self, node, tangents):
        t, x = tangents[0], node.inputs[-1]
        if t is None:
            return None
        if self.role == "max":
            return self.again(max_pool2d_gather_op, node, t, x)
        if self.role == "avg":
            return self.again(avg_pool2d_op, node, t)
        return self.again(self, node, t, x)

    def infer(self, node, shapes, dtypes):
        k, s = node.attrs["kernel"], node.attrs["stride"]
        n, c, h, w, oh, ow = pool_geometry(self, node, tuple(shapes[-1]), k, s)
        if self.role in ("max", "avg"):
            return (n, c, oh, ow), dtypes[0]
        if tuple(shapes[0]) != ((n, c, h, w) if self.role == "max_gather" else (n, c, oh, ow)):
            raise shape_error(self, node, shapes, "the first input's shape does not fit the pool")
        return ((n, c, oh, ow) if self.role == "max_gather" else (n, c, h, w)), dtypes[0]


max_pool2d_op = PoolOp("max_pool2d", "max", native="pool")
avg_pool2d_op = PoolOp("avg_pool2d", "avg", native="pool")
max_pool2d_scatter_op = PoolOp("max_pool2d_scatter", "max_scatter", native="pool")
max_pool2d_gather_op = PoolOp("max_pool2d_gather", "max_gather", native="pool")
avg_pool2d_grad_op = PoolOp("avg_pool2d_grad", "avg_grad", native="pool")


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
        arity = (len(self.jvp_terms),) if self.jvp_terms else (1, 2)  # a tangent rule each
        if len(inputs) not in arity:
            raise TypeError(f"{self.name}_op takes {' or '.join(map(str, arity))} input "
                            f"node(s), not {len(inputs)}")
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


def sigmoid_cross_entropy(z, t):
    """mean(max(z, 0) - z t + log1p(exp(-|z|))): binary cross-entropy from logits, with
    no overflow for large |z|."""
    return np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))


class SigmoidCrossEntropyOp(Op):
    """The mean binary cross-entropy of `labels` (in [0, 1]) against sigmoid(`logits`),
    stable for |logits| >> 1; labels must have the logits' shape."""
    name = "sigmoid_cross_entropy"

    def __call__(self, logits, labels):
        return Node(self, [logits, labels], f"SigmoidCrossEntropy({logits},{labels})")

    def compute(self, node, vals):
        return sigmoid_cross_entropy(*vals)

    def per_element(self, node, g):
        """g / (number of elements), spread over the logits' shape."""
        z = node.inputs[0]
        return unreduce_op(g, z, {"axis": None, "keepdims": False}, True)

    def gradient(self, node, g):
        z, t = node.inputs
        share = self.per_element(node, g)
        return [(sigmoid_op(z) - t) * share, -(z * share)]

    def jvp(self, node, tangents):
        rules = [lambda z, t, node, tz: reduce_mean_op((sigmoid_op(z) - t) * tz),
                 lambda z, t, node, tt: -reduce_mean_op(z * tt)]
        return tangent_terms(rules, node.inputs, node, tangents)

    def infer(self, node, shapes, dtypes):
        if tuple(shapes[0]) != tuple(shapes[1]):
            raise shape_error(self, node, shapes, "labels must have the logits' shape")
        return (), np.result_type(*dtypes)


sigmoid_cross_entropy_op = SigmoidCrossEntropyOp(native="sigmoid_cross_entropy")


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

__all__ = []  # the table's rows: every module-level *_op
for _name, _op in list(globals().items()):
    if isinstance(_op, Op) and _name.endswith("_op"):
        _op.builtin, _op.key = True, f"{__name__}:{_name}"
        __all__.append(_name)
del _name, _op

graph.OPERATORS.update(
    add=(add_op, add_byconst_op), sub=(sub_op, sub_byconst_op), mul=(mul_op, mul_byconst_op),
    div=(div_op, div_byconst_op), rsub=rsub_byconst_op, rdiv=rdiv_byconst_op, neg=neg_op,
    pow=(pow_op, pow_byconst_op), matmul=matmul_op, full_like=full_like_op,
    lt=less_op, le=less_equal_op, gt=greater_op, ge=greater_equal_op, getitem=getitem_op)
