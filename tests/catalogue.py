"""The op catalogue: every public op of fastad once, with what the op-level tests need,
as a table of rows (`CATALOGUE`, at the end).

An `Entry` is named after its op (`fastad.<name>_op`) and gives
  - `ref(*arrays, *param)`, its numpy reference;
  - `cases`, the variants tested: `Variant(param, shapes, domains)` is the op's extra
    arguments after its input nodes, one shape and one input domain (see helpers.rand)
    per input; `grid` makes most of them;
  - `build(*nodes, *param)` where the op is not simply called so, and `spellings`,
    other ways to build the same node (Node's operators), tested like `build`;
  - tolerances and flags where they differ from the defaults, inputs whose gradient is
    exactly zero, and an extra `check` for properties of its own;
  - `second`, graphs around the op whose second derivatives test_ops checks;
  - `kinds`, the op as a step of the random graphs of helpers.graph_specs.

test_ops.py, test_forward.py, test_catalogue.py and helpers.KINDS are generated from it,
and test_catalogue.py fails while a public `*_op` has no entry: a new op is one new row.
"""
import itertools
import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

import fastad as ad


# --- numpy references --------------------------------------------------------------------

def np_softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def np_log_softmax(x):
    z = x - np.max(x, axis=-1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def np_softmax_cross_entropy(logits, labels):
    rows = math.prod(np.shape(logits)[:-1])
    return np.asarray(-np.sum(labels * np_log_softmax(logits)) / rows)


def np_matmul(a, b, trans_A=False, trans_B=False):
    if trans_A and a.ndim == 2:
        a = a.T
    if trans_B and b.ndim == 2:
        b = b.T
    return np.matmul(a, b)


def np_sum_to(x, shape):
    """`x` summed over its leading axes and over the axes where `shape` has a 1."""
    x = np.sum(x, axis=tuple(range(x.ndim - len(shape))))
    return np.sum(x, axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def np_unreduce(g, x, axis, keepdims, mean):
    """`g` spread over the axes of `x` that `axis` reduces (divided by their count for a
    mean)."""
    kept = np.sum(x, axis=axis, keepdims=True).shape
    spread = np.broadcast_to(np.reshape(g, kept), x.shape)
    return spread / (x.size // math.prod(kept)) if mean else spread


def np_as_matrix(x, *others_and_role):
    """as_matrix_op(x, role) for role "row"/"col", as_matrix_op(g, "matmul_out", a, b);
    the role is the variant's param, so it comes last."""
    *others, role = others_and_role
    if role == "matmul_out":
        a, b = others
        return np.reshape(x, ((1,) if a.ndim == 1 else ()) + x.shape + ((1,) if b.ndim == 1 else ()))
    if x.ndim == 2:
        return x
    return np.reshape(x, (1, -1) if role == "row" else (-1, 1))


def _as_matrix(x, *others_and_role):
    *others, role = others_and_role
    return ad.as_matrix_op(x, role, *others)


def _unreduce(g, x, axis, keepdims, mean):
    return ad.unreduce_op(g, x, {"axis": axis, "keepdims": keepdims}, mean)


def np_perm_back(g, x, axes):
    """untranspose_op(G, transpose_op(X, axes)): G transposed back."""
    perm = tuple(range(x.ndim))[::-1] if axes is None else tuple(a % x.ndim for a in axes)
    return np.transpose(g, np.argsort(perm))


def np_index_add(g, x, key):
    out = np.zeros(x.shape)
    np.add.at(out, key, g)
    return out


def np_join_part(g, a, b, i, axis, stack):
    if stack:
        return np.take(g, i, axis=axis)
    n = a.shape[axis]
    return np.take(g, range(0, n) if i == 0 else range(n, n + b.shape[axis]), axis=axis)


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_conv2d(x, w, stride, padding):
    """A direct loop: out[n, o, i, j] = sum(x_padded[n, :, window] * w[o])."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
    return out


def np_conv2d_grad_input(g, w, x, stride, padding):
    """The adjoint of np_conv2d in x, by its definition: sum_o g * w over the windows."""
    xp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding))
    kh, kw = w.shape[2:]
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += \
                np.tensordot(g[:, :, i, j], w, axes=([1], [0]))
    return xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]


def np_conv2d_grad_filter(g, x, w, stride, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    out = np.zeros(w.shape)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            win = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out += np.tensordot(g[:, :, i, j], win, axes=([0], [0]))
    return out


def _windows(x, k, s):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    for i in range(oh):
        for j in range(ow):
            yield i, j, (slice(None), slice(None), slice(i * s, i * s + k), slice(j * s, j * s + k))


def np_pool(x, k, s=None, how="max"):
    s = k if s is None else s
    n, c, h, w = x.shape
    out = np.zeros((n, c, (h - k) // s + 1, (w - k) // s + 1))
    for i, j, win in _windows(x, k, s):
        out[:, :, i, j] = x[win].max(axis=(2, 3)) if how == "max" else x[win].mean(axis=(2, 3))
    return out


def np_max_scatter(g, x, k, s=None):
    """Each window's gradient to its first largest element."""
    s = k if s is None else s
    out = np.zeros(x.shape)
    for i, j, win in _windows(x, k, s):
        block = x[win].reshape(x.shape[0], x.shape[1], -1)
        first = np.argmax(block, axis=-1)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                u, v = divmod(first[n, c], k)
                out[n, c, i * s + u, j * s + v] += g[n, c, i, j]
    return out


def np_max_gather(t, x, k, s=None):
    s = k if s is None else s
    n, c, h, w = x.shape
    out = np.zeros((n, c, (h - k) // s + 1, (w - k) // s + 1))
    for i, j, win in _windows(x, k, s):
        block = x[win].reshape(n, c, -1)
        first = np.argmax(block, axis=-1)
        tb = t[win].reshape(n, c, -1)
        out[:, :, i, j] = np.take_along_axis(tb, first[..., None], axis=-1)[..., 0]
    return out


def np_avg_grad(g, x, k, s=None):
    s = k if s is None else s
    out = np.zeros(x.shape)
    for i, j, win in _windows(x, k, s):
        out[win] += g[:, :, i:i + 1, j:j + 1] / (k * k)
    return out


def np_sigmoid_cross_entropy(z, t):
    return np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))


def _join(op):
    return lambda *args: op(list(args[:-1]), args[-1])


def _join_ref(fn):
    return lambda *args: fn(list(args[:-1]), axis=args[-1])


def _pool_shape(k, s=None):
    s = k if s is None else s
    return lambda x: (x[0], x[1], (x[2] - k) // s + 1, (x[3] - k) // s + 1)


# --- the row format ------------------------------------------------------------------------

class Variant(NamedTuple):
    param: tuple    # the op's arguments after its input nodes
    shapes: tuple   # one per input
    domains: tuple  # one per input, see helpers.rand


def grid(shapes, *domains, params=((),)):
    """Variants for every param and every shapes (a tuple per input); one domain per input,
    or a list of alternatives, each tested."""
    choices = [[d] if isinstance(d, str) else d for d in domains]
    return [Variant(p, tuple(s), ds) for p in params for s in shapes
            for ds in itertools.product(*choices)]


class Second(NamedTuple):
    """A graph around an op for the second-order test (one shape, one domain per input)."""
    build: object
    shapes: list
    domains: list


class Pre(NamedTuple):
    """A map of a random graph's values (any sign) into an op's domain: node and numpy."""
    node: object
    numpy: object


SQ1 = Pre(lambda x: x * x + 1, lambda v: v * v + 1)  # >= 1: ln, sqrt, powers, division
EXP = Pre(ad.exp_op, np.exp)                         # > 0
TANH = Pre(ad.tanh_op, np.tanh)                      # in (-1, 1): exponents
SOFTMAX = Pre(ad.softmax_op, np_softmax)             # rows summing to 1: labels


# kinks of random-graph steps: where each op's derivative jumps (Kind.kink)
FIRST = lambda v, *p: v[0]                                       # noqa: E731  relu, abs, where's mask
DIFFERENCE = lambda v, *p: np.subtract(v[0], v[1])               # noqa: E731  maximum, minimum


def TOP_GAP(v, axis, keepdims):
    """max/min reductions: how far the two largest (smallest) of a reduced group are apart
    (inf for groups of one)."""
    x = np.asarray(v[0], dtype=np.float64)
    if axis is None:
        x = x.reshape(-1)
    else:  # the reduced axes last, as one
        axes = [a % x.ndim for a in np.atleast_1d(axis)]
        kept = [a for a in range(x.ndim) if a not in axes]
        x = x.transpose(kept + axes).reshape([x.shape[a] for a in kept] + [-1])
    if x.shape[-1] < 2:
        return np.array(np.inf)
    s = np.sort(x, axis=-1)
    return np.minimum(s[..., -1] - s[..., -2], s[..., 1] - s[..., 0])


@dataclass(frozen=True)
class Kind:
    """An op as a step of a random graph: `spelling` (a key of the entry's `builds()`)
    applied to the step's arguments, each first mapped by its `pre` (None: as it is), with
    a param drawn from `params`; or a `build` and `numpy` of its own."""
    shape: object          # (arg shapes, *param) -> output shape, or None where it doesn't apply
    bound: object          # (arg bounds, arg shapes, *param) -> bound on |output|
    params: object = None  # strategy for param, or a function of the arg shapes giving one
    spelling: str = ""
    pre: tuple = ()
    kink: object = None    # (arg values, *param) -> each output's distance from a kink (where
                           # the op's derivative jumps), which finite differences must not cross
    arity: int = None      # default: the entry's
    build: object = None   # (nodes, param) -> node; with `shaped`, (nodes, param, arg shapes)
    shaped: bool = False   # so that a param can fit any arg shapes (tests stretch the shapes)
    numpy: object = None   # (arrays, param) -> array


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue: the op `fastad.<name>_op` and how it is tested (see the
    module's docstring)."""
    name: str
    ref: object
    cases: list
    build: object = None   # default: the op itself
    spellings: dict = field(default_factory=dict)
    rtol: float = 1e-12    # forward vs ref; 0: bit for bit (see EXACT)
    grad_rtol: float = 1e-6  # gradients and tangents vs finite differences
    grad_atol: float = 1e-7
    # which op-level tests apply (all of them, for every op so far)
    grad: bool = True
    tangent: bool = True
    float32: bool = True
    zero_grads: tuple = ()  # inputs (where the variant has them) whose gradient is exactly 0
    check: object = None    # more assertions: (backend, case, inputs, output, gradients)
    second: list = ()
    kinds: dict = field(default_factory=dict)

    @property
    def op(self):
        return getattr(ad, f"{self.name}_op")

    def builds(self):
        """{spelling: build(*nodes, *param)}; "" is the op (or `build`)."""
        return {"": self.build or self.op, **self.spellings}


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "0d"


def _param_id(p):
    return f"{p:g}" if isinstance(p, float) else str(p).replace(" ", "")


@dataclass(frozen=True)
class Case:
    """One op-level test case: a variant of an entry, built one way."""
    entry: Entry
    spelling: str
    variant: Variant

    @property
    def id(self):
        parts = [self.entry.name + (f"_{self.spelling}" if self.spelling else "")]
        if self.variant.param:
            parts.append(",".join(map(_param_id, self.variant.param)))
        parts.append(",".join(map(shape_id, self.variant.shapes)))
        parts.append(",".join(self.variant.domains))
        return "-".join(parts)

    @property
    def shapes(self):
        return self.variant.shapes

    @property
    def domains(self):
        return self.variant.domains

    def build(self, *nodes):
        return self.entry.builds()[self.spelling](*nodes, *self.variant.param)

    def ref(self, *arrays):
        return self.entry.ref(*arrays, *self.variant.param)


def cases(flag=None):
    """Every case of the catalogue; of the entries where `flag` ("grad", "tangent",
    "float32") is set, if given."""
    return [Case(entry, spelling, variant) for entry in CATALOGUE
            if flag is None or getattr(entry, flag)
            for spelling in entry.builds() for variant in entry.cases]


def second_order():
    """[(id, Second)] of every entry."""
    return [(f"{entry.name}-{i}", s) for entry in CATALOGUE for i, s in enumerate(entry.second)]


def graph_kinds():
    """{name: Kind} with `arity`, `build` and `numpy` filled in.  The catalogue lists the
    simple ops first; the richer ones come first here (hypothesis favours the first
    entries of a sampled_from)."""
    kinds = {}
    for entry in reversed(CATALOGUE):
        for name, kind in entry.kinds.items():
            kinds[name] = kind if kind.build else _resolve(kind, entry)
    return kinds


def _resolve(kind, entry):
    arity = len(entry.cases[0].shapes)
    pre = tuple(kind.pre) + (None,) * (arity - len(kind.pre))
    build = entry.builds()[kind.spelling]

    def nodes(ns, param):
        return build(*[p.node(n) if p else n for p, n in zip(pre, ns)], *param)

    def numpy(vs, param):
        return entry.ref(*[p.numpy(v) if p else v for p, v in zip(pre, vs)], *param)

    return replace(kind, arity=arity, build=nodes, numpy=numpy)


# --- random graphs: shape rules, bounds and params ------------------------------------------

def same(shapes, *param):
    return tuple(shapes[0])


def nonscalar(shapes):
    return tuple(shapes[0]) if len(shapes[0]) >= 1 else None


def last_axis_picks(shape, seed):
    """As many indices into the last axis of `shape` as it has, drawn with repeats and
    negative ones by `seed`."""
    n = shape[-1]
    return np.random.default_rng(seed).integers(-n, n, n)


def bcast(shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def bcast_to_shape(shapes):
    out = bcast(shapes)
    return tuple(shapes[1]) if out == tuple(shapes[1]) else None


def reduce_axes(ndim, axis):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -ndim <= a < ndim for a in axes):
        return None
    norm = sorted(a % ndim for a in axes)
    return None if len(set(norm)) != len(norm) else tuple(norm)


def reduce_shape(shapes, axis, keepdims):
    shape = tuple(shapes[0])
    axes = reduce_axes(len(shape), axis)
    if axes is None:
        return None
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def count(shape, axis):
    return math.prod(shape[a] for a in reduce_axes(len(shape), axis))


def sce_shape(shapes):
    a, b = (tuple(s) for s in shapes)
    return () if a == b and len(a) >= 1 else None


def rank_param(shapes):
    """The first argument's rank as the param, for builds that depend on it."""
    return st.just((len(shapes[0]),))


def mm_self_shape(shapes, rank):
    s = tuple(shapes[0])
    return {1: (), 2: s}.get(len(s))


def mm_pair_shape(shapes, rank):
    a, b = (tuple(s) for s in shapes)
    return {1: (), 2: a}.get(len(a)) if a == b else None


def mm_self_bound(b, s, rank):
    # 1-D: |a.a| <= n b^2; 2-D: |(A A^T) A| <= m n b^3
    return b[0] ** 2 * s[0][0] if len(s[0]) == 1 else b[0] ** 3 * math.prod(s[0])


def mm_pair_bound(b, s, rank):
    # 1-D: |a.b| <= n b_a b_b; 2-D: |A (A^T B)| <= m n b_a^2 b_b
    return b[0] * b[1] * s[0][0] if len(s[0]) == 1 else b[0] ** 2 * b[1] * math.prod(s[0])


def mm_self(nodes, param):
    a, = nodes
    # 2-D: (A A^T) A, same shape as A; 1-D: A . A, 0-d.
    return ad.matmul_op(ad.matmul_op(a, a, trans_B=True), a) if param == (2,) else ad.matmul_op(a, a)


def np_mm_self(vals, param):
    a, = vals
    return (a @ a.T) @ a if a.ndim == 2 else np.asarray(a @ a)


def mm_pair(nodes, param):
    a, b = nodes
    return ad.matmul_op(a, ad.matmul_op(a, b, trans_A=True)) if param == (2,) else ad.matmul_op(a, b)


def np_mm_pair(vals, param):
    a, b = vals
    return a @ (a.T @ b) if a.ndim == 2 else np.asarray(a @ b)


CONSTS = st.sampled_from([(-1.5,), (0.5,), (2.0,), (3.0,)])
AXES = st.tuples(st.sampled_from([None, 0, -1, (0, -1), 1]), st.booleans())


# --- checks of single ops ----------------------------------------------------------------------

def rows_sum_to_1(backend, case, inputs, out, grads):
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-14)


def sce_gradients_in_closed_form(backend, case, inputs, out, grads):
    """d/dlogits = (softmax * sum(labels) - labels) / rows, i.e. (softmax - labels) / rows
    where label rows sum to 1; d/dlabels = -log_softmax / rows."""
    logits, t = inputs
    rows = math.prod(logits.shape[:-1])
    x, y = ad.Variable("logits"), ad.Variable("labels")
    gx, gy = ad.gradients(ad.softmax_cross_entropy_op(x, y), [x, y])
    gx_val, gy_val = ad.Executor([gx, gy], backend=backend).run({x: logits, y: t})
    if case.domains[1] in ("prob", "onehot"):
        want_gx = np_softmax(logits) - t
    else:
        want_gx = np_softmax(logits) * np.sum(t, axis=-1, keepdims=True) - t
    np.testing.assert_allclose(gx_val, want_gx / rows, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gy_val, -np_log_softmax(logits) / rows, rtol=1e-12, atol=1e-15)


# --- the variants tested ----------------------------------------------------------------------

SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 4), (2, 0)]
ONE = [(s,) for s in SHAPES]
SAME_PAIRS = [(s, s) for s in SHAPES]
PAIRS = SAME_PAIRS + [((3, 4), (4,)), ((4,), (3, 4)), ((4, 1), (1, 5)), ((), (2, 3)), ((2, 3), ()),
                      ((1,), (3,)), ((3,), (1,)), ((2, 1, 4), (3, 1)), ((3,), (4, 3)),
                      ((4, 3), (3,)), ((2, 3), (2, 3))]
# integer powers >= 1 take any x; the others x > 0
POWERS = (grid(ONE, "any", params=[(2,), (3,), (1,)])
          + grid(ONE, "pos", params=[(0.5,), (1 / 3,), (-1.5,), (2.5,), (0,)]))
REDUCTIONS = [((), None), ((5,), None), ((5,), 0), ((5,), -1), ((3, 4), None), ((3, 4), 0),
              ((3, 4), 1), ((3, 4), -1), ((3, 4), (0, 1)), ((3, 4), (-1, 0)),
              ((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
              ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, -2)), ((1, 3, 1), (0, 2))]
# every (axis, keepdims), and the defaults (all axes, flat)
REDUCE = ([Variant((axis, keepdims), (shape,), ("any",))
           for shape, axis in REDUCTIONS for keepdims in (False, True)]
          + [Variant((), ((2, 3),), ("any",))])
UNREDUCE = [Variant((axis, keepdims, mean),
                    (np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape, shape), ("any", "any"))
            for shape, axis in [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), (0, 2)), ((), None)]
            for keepdims in (False, True) for mean in (False, True)]
BROADCAST_TO = [((4,), (3, 4)), ((), (2, 3)), ((4, 1), (4, 5)), ((1,), (3,)),
                ((3, 1), (2, 3, 4)), ((2, 3), (2, 3)), ((), ())]
MATMUL = [((3, 4), (4, 5), False, False), ((4, 3), (4, 5), True, False),
          ((3, 4), (5, 4), False, True), ((4, 3), (5, 4), True, True),
          ((4,), (4, 5), False, False), ((3, 4), (4,), False, False), ((4,), (4,), False, False),
          ((4,), (5, 4), False, True), ((4, 3), (4,), True, False),
          ((1, 4), (4, 1), False, False), ((3, 1), (1, 5), False, False),
          ((1, 1), (1, 1), True, True), ((3, 4), (4, 2), False, False), ((4, 3), (2, 4), True, True)]
AS_MATRIX = (grid([((4,),), ((3, 4),)], "any", params=[("row",), ("col",)])
             # output gradients of a vector-matrix, a matrix-vector and a vector-vector matmul
             + grid([((3,), (4,), (4, 3)), ((3,), (3, 4), (4,)), ((), (4,), (4,))],
                    "any", "any", "any", params=[("matmul_out",)]))
LAST_AXIS = [(5,), (4, 6), (2, 3, 5), (1,), (3, 1), (2, 3), (4,), (2, 1, 3), (3, 4)]


# --- the catalogue ---------------------------------------------------------------------------

CATALOGUE = [
    # fills and elementwise unary ops
    Entry("oneslike", np.ones_like, grid(ONE, "any"), zero_grads=(0,),
          kinds={"oneslike": Kind(same, lambda b, s: 1.0)}),
    Entry("zeroslike", np.zeros_like, grid(ONE, "any"), zero_grads=(0,),
          kinds={"zeroslike": Kind(same, lambda b, s: 0.0)}),
    Entry("neg", np.negative, grid(ONE, "any"), spellings={"operator": lambda x: -x},
          kinds={"neg": Kind(same, lambda b, s: b[0], spelling="operator")}),
    Entry("exp", np.exp, grid(ONE, "any"), second=[Second(ad.exp_op, [(2, 3)], ["any"])],
          kinds={"exp": Kind(same, lambda b, s: math.exp(b[0]) if b[0] <= 3 else math.inf)}),
    Entry("ln", np.log, grid(ONE, "pos"), second=[Second(ad.ln_op, [(2, 3)], ["pos"])],
          kinds={"ln_sq1": Kind(same, lambda b, s: math.log(b[0] ** 2 + 1), pre=[SQ1])}),
    Entry("log", np.log, grid(ONE, "pos"),  # the course's name of ln_op
          kinds={"log_exp": Kind(same, lambda b, s: b[0] if b[0] <= 3 else math.inf, pre=[EXP])}),
    Entry("sqrt", np.sqrt, grid(ONE, "pos"), second=[Second(ad.sqrt_op, [(2, 3)], ["pos"])],
          kinds={"sqrt_sq1": Kind(same, lambda b, s: math.sqrt(b[0] ** 2 + 1), pre=[SQ1])}),
    Entry("tanh", np.tanh, grid(ONE, "any"), second=[Second(ad.tanh_op, [(2, 3)], ["any"])],
          kinds={"tanh": Kind(same, lambda b, s: 1.0)}),
    Entry("sigmoid", lambda x: 1 / (1 + np.exp(-x)), grid(ONE, "any"),
          second=[Second(ad.sigmoid_op, [(2, 3)], ["any"])],
          kinds={"sigmoid": Kind(same, lambda b, s: 1.0)}),
    Entry("relu", lambda x: np.maximum(x, 0), grid(ONE, "nonzero"),
          second=[Second(lambda a: ad.relu_op(a) * a, [(5,)], ["nonzero"])],
          kinds={"relu": Kind(same, lambda b, s: b[0], kink=FIRST)}),
    Entry("abs", np.abs, grid(ONE, "nonzero"),
          second=[Second(lambda a: ad.abs_op(a) * a, [(5,)], ["nonzero"])],
          kinds={"abs": Kind(same, lambda b, s: b[0], kink=FIRST)}),
    # Not in random graphs: at a jump, the backends' last-bit differences near 0 would show.
    Entry("sign", np.sign, grid(ONE, "nonzero"), zero_grads=(0,),
          second=[Second(lambda a: ad.sign_op(a) * a * a, [(5,)], ["nonzero"])]),
    Entry("sin", np.sin, grid(ONE, "any"), second=[Second(ad.sin_op, [(4,)], ["any"])],
          kinds={"sin": Kind(same, lambda b, s: min(b[0], 1.0))}),
    Entry("cos", np.cos, grid(ONE, "any"), second=[Second(ad.cos_op, [(4,)], ["any"])],
          kinds={"cos": Kind(same, lambda b, s: 1.0)}),

    # with a scalar constant: the ops, their operators (reflected ones, numpy scalars)
    Entry("add_byconst", lambda x, c: x + c, grid(ONE, "any", params=[(1.5,)]),
          spellings={"operator": lambda x, c: x + c, "reflected": lambda x, c: c + x},
          kinds={"add_c": Kind(same, lambda b, s, c: b[0] + abs(c), CONSTS, "operator"),
                 "radd_c": Kind(same, lambda b, s, c: b[0] + abs(c), CONSTS, "reflected")}),
    Entry("sub_byconst", lambda x, c: x - c, grid(ONE, "any", params=[(1.5,)]),
          spellings={"operator": lambda x, c: x - c},
          kinds={"sub_c": Kind(same, lambda b, s, c: b[0] + abs(c), CONSTS, "operator")}),
    Entry("rsub_byconst", lambda x, c: c - x, grid(ONE, "any", params=[(1.5,)]),
          spellings={"operator": lambda x, c: c - x},
          kinds={"rsub_c": Kind(same, lambda b, s, c: b[0] + abs(c), CONSTS, "operator")}),
    Entry("mul_byconst", lambda x, c: x * c, grid(ONE, "any", params=[(-2.5,)]),
          spellings={"operator": lambda x, c: x * c, "reflected": lambda x, c: c * x,
                     "numpy": lambda x, c: np.float64(c) * x},
          kinds={"mul_c": Kind(same, lambda b, s, c: b[0] * abs(c), CONSTS, "operator"),
                 "rmul_np": Kind(same, lambda b, s, c: b[0] * abs(c), CONSTS, "numpy")}),
    Entry("div_byconst", lambda x, c: x / c, grid(ONE, "any", params=[(3.0,)]),
          spellings={"operator": lambda x, c: x / c},
          kinds={"div_c": Kind(same, lambda b, s, c: b[0] / abs(c), CONSTS, "operator")}),
    Entry("rdiv_byconst", lambda x, c: c / x, grid(ONE, "nonzero", params=[(2.0,)]),
          spellings={"operator": lambda x, c: c / x},
          second=[Second(lambda a: 2.0 / a, [(3,)], ["nonzero"])],
          kinds={"rdiv_sq1": Kind(same, lambda b, s, c: abs(c), CONSTS, "operator", pre=[SQ1])}),
    Entry("pow_byconst", lambda x, c: x ** float(c), POWERS,
          spellings={"operator": lambda x, c: x ** c},
          second=[Second(lambda a: a ** 3, [(4,)], ["any"]),
                  Second(lambda a: ad.pow_byconst_op(a, 0.5), [(4,)], ["pos"]),
                  Second(lambda a: ad.pow_byconst_op(a, -1.5), [(4,)], ["pos"])],
          kinds={"pow_int": Kind(same, lambda b, s, c: b[0] ** c, st.sampled_from([(2,), (3,)])),
                 "pow_sq1": Kind(same, lambda b, s, c: (b[0] ** 2 + 1) ** max(c, 0),
                                 st.sampled_from([(0.5,), (-1.5,), (1.5,)]), "operator", pre=[SQ1])}),

    # elementwise binary ops, numpy broadcasting
    Entry("add", np.add, grid(PAIRS, "any", "any"), spellings={"operator": lambda a, b: a + b},
          # with sub, mul and div
          second=[Second(lambda a, b: (a - b) * (a + b) / (b * b + 1), [(4, 1), (1, 3)], ["any", "any"])],
          kinds={"add": Kind(bcast, lambda b, s: b[0] + b[1], spelling="operator"),
                 "add_op": Kind(bcast, lambda b, s: b[0] + b[1])}),
    Entry("sub", np.subtract, grid(PAIRS, "any", "any"), spellings={"operator": lambda a, b: a - b},
          kinds={"sub": Kind(bcast, lambda b, s: b[0] + b[1], spelling="operator")}),
    Entry("mul", np.multiply, grid(PAIRS, "any", "any"), spellings={"operator": lambda a, b: a * b},
          second=[Second(lambda a, b: a * b * a, [(3, 4), (4,)], ["any", "any"])],
          kinds={"mul": Kind(bcast, lambda b, s: b[0] * b[1], spelling="operator"),
                 "mul_op": Kind(bcast, lambda b, s: b[0] * b[1])}),
    Entry("div", np.divide, grid(PAIRS, "any", "nonzero"), spellings={"operator": lambda a, b: a / b},
          second=[Second(lambda a, b: a / b, [(3,), (3,)], ["any", "nonzero"])],
          kinds={"div_sq1": Kind(bcast, lambda b, s: b[0], spelling="operator", pre=[None, SQ1])}),
    # relu's gradient: x only places the kink
    Entry("relu_grad", lambda x, g: np.where(x > 0, g, 0.0), grid(SAME_PAIRS, "nonzero", "any"),
          zero_grads=(0,)),

    # shape ops and reductions; the inputs after the first only lend their shapes
    Entry("broadcast_to", lambda a, b: np.broadcast_to(a, b.shape), grid(BROADCAST_TO, "any", "any"),
          zero_grads=(1,),
          second=[Second(lambda a, b: ad.broadcast_to_op(a * a, b) * b, [(3,), (2, 3)], ["any", "any"])],
          kinds={"broadcast_to": Kind(bcast_to_shape, lambda b, s: b[0])}),
    Entry("sum_to", lambda a, b: np_sum_to(a, b.shape), grid([(b, a) for a, b in BROADCAST_TO], "any", "any"),
          zero_grads=(1,)),
    Entry("reshape_like", lambda x, y: np.reshape(x, y.shape),
          grid([((3, 4), (2, 6)), ((6,), (2, 3)), ((), (1, 1)), ((2, 3, 4), (24,))], "any", "any"),
          zero_grads=(1,)),
    Entry("reduce_sum", lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
          REDUCE,
          second=[Second(lambda a: ad.reduce_sum_op(a * a, axis=-1) * ad.reduce_sum_op(a),
                         [(2, 3)], ["any"])],
          kinds={"sum": Kind(reduce_shape, lambda b, s, axis, keepdims: b[0] * count(s[0], axis), AXES)}),
    Entry("reduce_mean", lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
          REDUCE,
          second=[Second(lambda a: ad.reduce_mean_op(a * a, axis=0, keepdims=True) * a, [(3, 2)], ["any"])],
          kinds={"mean": Kind(reduce_shape, lambda b, s, axis, keepdims: b[0], AXES)}),
    # the gradient of a reduction
    Entry("unreduce", np_unreduce, UNREDUCE, build=_unreduce, zero_grads=(1,)),

    # matmul
    Entry("matmul", np_matmul, [Variant((ta, tb), (a, b), ("any", "any")) for a, b, ta, tb in MATMUL],
          second=[Second(lambda a, b: ad.matmul_op(ad.matmul_op(a, b), a, trans_B=True),
                         [(2, 3), (3, 3)], ["any", "any"]),
                  Second(lambda a, b: ad.matmul_op(a * a, b, trans_A=True, trans_B=True),
                         [(3, 2), (4, 3)], ["any", "any"]),
                  Second(lambda a, b: ad.matmul_op(a, b) * ad.matmul_op(b, a, trans_A=True),
                         [(3,), (3, 3)], ["any", "any"])],
          kinds={"mm_self": Kind(mm_self_shape, mm_self_bound, rank_param, arity=1,
                                 build=mm_self, numpy=np_mm_self),
                 "mm_pair": Kind(mm_pair_shape, mm_pair_bound, rank_param, arity=2,
                                 build=mm_pair, numpy=np_mm_pair)}),
    # how matmul's gradient views vectors as matrices
    Entry("as_matrix", np_as_matrix, AS_MATRIX, build=_as_matrix, zero_grads=(1, 2)),

    # softmax family (last axis)
    Entry("softmax", np_softmax, grid([(s,) for s in LAST_AXIS], ["any", "wide"]), check=rows_sum_to_1,
          second=[Second(ad.softmax_op, [(2, 3)], ["any"])],
          kinds={"softmax": Kind(nonscalar, lambda b, s: 1.0)}),
    Entry("log_softmax", np_log_softmax, grid([(s,) for s in LAST_AXIS], ["any", "wide"]),
          second=[Second(ad.log_softmax_op, [(2, 3)], ["any"])],
          kinds={"log_softmax": Kind(nonscalar, lambda b, s: 2 * b[0] + math.log(s[0][-1]))}),
    # The logits' gradient is the true derivative for any labels, summing to 1 or not.
    Entry("softmax_cross_entropy", np_softmax_cross_entropy,
          grid([(s, s) for s in LAST_AXIS], ["any", "wide"], ["prob", "onehot", "any", "unit"]),
          check=sce_gradients_in_closed_form,
          second=[Second(ad.softmax_cross_entropy_op, [(2, 3), (2, 3)], ["any", "unit"]),
                  Second(lambda a, b: ad.softmax_cross_entropy_op(a * b, b), [(4,), (4,)], ["any", "unit"])],
          kinds={"sce": Kind(sce_shape, lambda b, s: 2 * b[0] + math.log(s[0][-1]), pre=[None, SOFTMAX])}),
    # the gradient of softmax_cross_entropy: g / rows of Z
    Entry("per_row", lambda g, z: g / math.prod(z.shape[:-1]),
          grid([((), (3, 4)), ((), (5,)), ((), (2, 3, 4)), ((2,), (2, 3))], "any", "any"),
          zero_grads=(1,)),
    # elementwise ops for models
    Entry("square", np.square, grid(ONE, "any"), second=[Second(ad.square_op, [(4,)], ["any"])],
          kinds={"square": Kind(same, lambda b, s: b[0] ** 2)}),
    Entry("log1p", np.log1p, grid(ONE, ["pos", "unit"]), second=[Second(ad.log1p_op, [(4,)], ["pos"])],
          kinds={"log1p_sq": Kind(same, lambda b, s: math.log1p(b[0] ** 2), arity=1,
                                  build=lambda n, p: ad.log1p_op(n[0] * n[0]),
                                  numpy=lambda v, p: np.log1p(v[0] * v[0]))}),
    Entry("expm1", np.expm1, grid(ONE, "any"), second=[Second(ad.expm1_op, [(4,)], ["any"])],
          kinds={"expm1": Kind(same, lambda b, s: math.expm1(b[0]) if b[0] <= 3 else math.inf)}),
    Entry("softplus", lambda x: np.logaddexp(0, x), grid(ONE, ["any", "wide"]),
          second=[Second(ad.softplus_op, [(4,)], ["any"])],
          kinds={"softplus": Kind(same, lambda b, s: b[0] + 1.0)}),
    Entry("log_sigmoid", lambda x: -np.logaddexp(0, -x), grid(ONE, ["any", "wide"]),
          second=[Second(ad.log_sigmoid_op, [(4,)], ["any"])],
          kinds={"log_sigmoid": Kind(same, lambda b, s: b[0] + 1.0)}),
    Entry("maximum", np.maximum, grid(PAIRS, "any", "any"),
          second=[Second(lambda a, b: ad.maximum_op(a, b) * a, [(3, 4), (4,)], ["any", "any"])],
          kinds={"maximum": Kind(bcast, lambda b, s: max(b), kink=DIFFERENCE)}),
    Entry("minimum", np.minimum, grid(PAIRS, "any", "any"),
          kinds={"minimum": Kind(bcast, lambda b, s: max(b), kink=DIFFERENCE)}),
    # a ** b with b a node (the operator too); a > 0
    Entry("pow", np.power, grid(PAIRS, "pos", "unit"), spellings={"operator": lambda a, b: a ** b},
          second=[Second(lambda a, b: ad.pow_op(a, b), [(3,), (3,)], ["pos", "unit"])],
          kinds={"pow_sq1_tanh": Kind(bcast, lambda b, s: b[0] ** 2 + 1, pre=[SQ1, TANH])}),
    # 0/1 masks: no gradient through them; the operators with nodes and with numbers
    Entry("less", lambda a, b: (a < b).astype(float), grid(PAIRS, "any", "any"),
          spellings={"operator": lambda a, b: a < b}, zero_grads=(0, 1),
          kinds={"negative_part": Kind(same, lambda b, s: b[0], arity=1, kink=FIRST,
                                       build=lambda n, p: (n[0] < 0.0) * n[0],
                                       numpy=lambda v, p: (v[0] < 0) * v[0])}),
    Entry("less_equal", lambda a, b: (a <= b).astype(float), grid(PAIRS, "any", "any"),
          spellings={"operator": lambda a, b: a <= b}, zero_grads=(0, 1)),
    Entry("greater", lambda a, b: (a > b).astype(float), grid(PAIRS, "any", "any"),
          spellings={"operator": lambda a, b: a > b}, zero_grads=(0, 1)),
    Entry("greater_equal", lambda a, b: (a >= b).astype(float), grid(PAIRS, "any", "any"),
          spellings={"operator": lambda a, b: a >= b}, zero_grads=(0, 1)),
    Entry("equal", lambda a, b: (a == b).astype(float),
          grid(PAIRS, "any", "any") + [Variant((), ((3, 4), (3, 4)), ("onehot", "onehot"))],
          zero_grads=(0, 1)),
    Entry("full_like", lambda x, c: np.full_like(x, c), grid(ONE, "any", params=[(2.5,), (-0.0,)]),
          zero_grads=(0,)),
    Entry("clip", np.clip, grid(ONE, "any", params=[(-0.5, 1.0), (0.0, 0.0), (-3.0, 3.0)]),
          kinds={"clip": Kind(same, lambda b, s, lo, hi: 1.0,
                              st.sampled_from([(-0.5, 1.0), (0.0, 1.5)]),
                              kink=lambda v, lo, hi: np.minimum(np.abs(v[0] - lo),
                                                                np.abs(v[0] - hi)))}),
    # the condition as a mask of the first input
    Entry("where", lambda c, a, b: np.where(c > 0, a, b),
          grid([((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), (3, 4)), ((), (2, 3), ()),
                ((2, 3), (2, 3), (3,))], "nonzero", "any", "any"),
          build=lambda c, a, b: ad.where_op(c > 0, a, b), zero_grads=(0,),
          second=[Second(lambda c, a, b: ad.where_op(c > 0, a * a, b * a), [(4,), (4,), (4,)],
                         ["nonzero", "any", "any"])],
          kinds={"where": Kind(bcast, lambda b, s: max(b[1:]), arity=3, kink=FIRST,
                               build=lambda n, p: ad.where_op(n[0] > 0, n[1], n[2]),
                               numpy=lambda v, p: np.where(v[0] > 0, v[1], v[2]))}),

    # reductions
    Entry("reduce_max", lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
          REDUCE, second=[Second(lambda a: ad.reduce_max_op(a * a, axis=-1, keepdims=True) * a, [(2, 3)], ["nonzero"])],
          kinds={"max": Kind(reduce_shape, lambda b, s, axis, keepdims: b[0], AXES,
                             kink=TOP_GAP)}),
    Entry("reduce_min", lambda x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
          REDUCE, kinds={"min": Kind(reduce_shape, lambda b, s, axis, keepdims: b[0], AXES,
                                     kink=TOP_GAP)}),
    Entry("logsumexp", np_logsumexp, REDUCE + grid([((3, 4),)], "wide", params=[(-1, False)]),
          second=[Second(lambda a: ad.logsumexp_op(a, axis=-1), [(2, 3)], ["any"])],
          kinds={"logsumexp": Kind(reduce_shape, lambda b, s, axis, keepdims:
                                   b[0] + math.log(count(s[0], axis)), AXES)}),

    # shapes and indexing
    Entry("reshape", lambda x, shape: np.reshape(x, shape),
          grid([((3, 4),)], "any", params=[((2, 6),), ((-1,),), ((4, -1, 1),)])
          + grid([((),)], "any", params=[((1, 1),)]) + grid([((6,),)], "any", params=[((2, 3),)]),
          second=[Second(lambda a: ad.reshape_op(a * a, (3, 2)) * ad.reshape_op(a, (3, 2)),
                         [(6,)], ["any"])],
          kinds={"flat_and_back": Kind(same, lambda b, s: 2 * b[0], arity=1, shaped=True,
                                       build=lambda n, p, s: ad.reshape_op(
                                           ad.reshape_op(n[0], (-1,)) * 2.0, s[0]),
                                       numpy=lambda v, p: np.reshape(np.reshape(v[0], -1) * 2.0,
                                                                     v[0].shape))}),
    Entry("transpose", lambda x, axes: np.transpose(x, axes),
          grid([((2, 3, 4),)], "any", params=[((1, 2, 0),), ((2, 0, 1),), (None,), ((-1, 0, 1),)])
          + grid([((3, 4),), ((5,),), ((),)], "any", params=[(None,)]),
          second=[Second(lambda a: ad.transpose_op(a * a) * ad.transpose_op(a), [(2, 3)], ["any"])],
          kinds={"transpose": Kind(lambda s: tuple(s[0])[::-1] if len(set(s[0])) == 1 else None,
                                   lambda b, s: b[0], arity=1,
                                   build=lambda n, p: ad.transpose_op(n[0]),
                                   numpy=lambda v, p: np.transpose(v[0]))}),
    Entry("untranspose", np_perm_back,
          grid([((3, 4, 2), (2, 3, 4))], "any", "any", params=[((1, 2, 0),)])
          + grid([((4, 3), (3, 4))], "any", "any", params=[(None,)]),
          build=lambda g, x, axes: ad.untranspose_op(g, ad.transpose_op(x, axes)), zero_grads=(1,)),
    Entry("getitem", lambda x, key: x[key],
          grid([((4, 5),)], "any", params=[((slice(1, None), slice(None, None, 2)),), ((-1,),),
                                            ((Ellipsis, None, 3),), ((np.array([0, 2, 2, 3]),),),
                                            ((slice(None), np.array([4, 0, 0, -1])),),
                                            ((slice(3, 0, -2), slice(None)),), ((slice(2, 2),),)])
          + grid([((3, 4, 5),)], "any", params=[((1, np.array([1, 1]), slice(2, None)),),
                                               ((np.array([[0, 2], [1, 1]]), None),)]),
          spellings={"operator": lambda x, key: x[key]},
          second=[Second(lambda a: a[np.array([0, 0, 2])] * a[::-1], [(3,)], ["any"])],
          kinds={"flip": Kind(nonscalar, lambda b, s: b[0], arity=1, build=lambda n, p: n[0][..., ::-1],
                              numpy=lambda v, p: v[0][..., ::-1]),
                 "gather_last": Kind(lambda s, seed: nonscalar(s), lambda b, s, seed: b[0],
                                     st.tuples(st.integers(0, 2**16)), arity=1, shaped=True,
                                     build=lambda n, p, s: n[0][..., last_axis_picks(s[0], *p)],
                                     numpy=lambda v, p: v[0][..., last_axis_picks(v[0].shape, *p)])}),
    Entry("index_add", np_index_add,
          grid([((4, 3), (5, 3))], "any", "any", params=[((np.array([0, 2, 2, 4]),),)])
          + grid([((2, 3), (4, 5))], "any", "any", params=[((slice(1, 3), slice(None, None, 2)),)]),
          zero_grads=(1,)),
    Entry("concat", _join_ref(np.concatenate),
          [Variant((0,), ((2, 3), (4, 3)), ("any", "any")), Variant((-1,), ((2, 3), (2, 1)), ("any", "any")),
           Variant((1,), ((2, 1, 3), (2, 2, 3), (2, 4, 3)), ("any", "any", "any")),
           Variant((0,), ((3,),), ("any",))],
          build=_join(ad.concat_op),
          second=[Second(lambda a, b: ad.concat_op([a * b, a], 0) * ad.concat_op([b, b], 0),
                         [(3,), (3,)], ["any", "any"])],
          kinds={"roll": Kind(lambda s: nonscalar(s) if s[0] and s[0][-1] >= 2 else None,
                              lambda b, s: b[0], arity=1,
                              build=lambda n, p: ad.concat_op([n[0][..., 1:], n[0][..., :1]], -1),
                              numpy=lambda v, p: np.concatenate([v[0][..., 1:], v[0][..., :1]], -1))}),
    Entry("stack", _join_ref(np.stack),
          [Variant((0,), ((2, 3), (2, 3)), ("any", "any")), Variant((-1,), ((4,), (4,), (4,)), ("any",) * 3),
           Variant((-1,), ((), ()), ("any", "any"))],
          build=_join(ad.stack_op),
          kinds={"stack_sum": Kind(lambda s: tuple(s[0]) if tuple(s[0]) == tuple(s[1]) else None,
                                   lambda b, s: b[0] + b[1], arity=2,
                                   build=lambda n, p: ad.reduce_sum_op(ad.stack_op(n, -1), axis=-1),
                                   numpy=lambda v, p: np.sum(np.stack(v, -1), axis=-1))}),
    Entry("join_part", lambda g, a, b, i, axis, stack: np_join_part(g, a, b, i, axis, stack),
          [Variant((i, 1, False), ((2, 5), (2, 3), (2, 2)), ("any",) * 3) for i in (0, 1)]
          + [Variant((1, 0, True), ((2, 3), (3,), (3,)), ("any",) * 3)],
          build=lambda g, a, b, i, axis, stack: ad.join_part_op(
              g, (ad.stack_op if stack else ad.concat_op)([a, b], axis), i), zero_grads=(1, 2)),
    Entry("pad", lambda x, pw: np.pad(x, pw),
          grid([((3, 4),)], "any", params=[(1,), (((1, 0), (0, 2)),), ((2, 1),)])
          + grid([((5,),)], "any", params=[((0, 3),)]),
          second=[Second(lambda a: ad.pad_op(a * a, 1) * ad.pad_op(a, 1), [(3,)], ["any"])],
          kinds={"pad_crop": Kind(lambda s, nd: nonscalar(s), lambda b, s, nd: b[0],
                                  lambda s: st.just((len(s[0]),)), arity=1,
                                  build=lambda n, p: ad.pad_op(n[0], (1, 2))[(slice(1, -2),) * p[0]],
                                  numpy=lambda v, p: np.pad(v[0], (1, 2))[(slice(1, -2),) * p[0]])}),
    Entry("unpad", lambda g, x, pw: g[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, np.broadcast_to(np.asarray(pw), (x.ndim, 2))))],
          grid([((4, 7), (3, 4))], "any", "any", params=[(((1, 0), (1, 2)),)]), zero_grads=(1,)),

    # convolution and pooling (NCHW, OIHW)
    Entry("conv2d", np_conv2d,
          grid([((2, 3, 5, 4), (4, 3, 3, 2))], "any", "any", params=[(1, 0), (2, 1), (1, 2)])
          + grid([((1, 1, 4, 4), (2, 1, 4, 4))], "any", "any", params=[(1, 0)]),
          build=lambda x, w, s, p: ad.conv2d_op(x, w, stride=s, padding=p), rtol=1e-11,
          second=[Second(lambda x, w: ad.conv2d_op(x * x, w, stride=1, padding=1) * 1.0,
                         [(1, 2, 4, 3), (2, 2, 2, 2)], ["any", "any"])]),
    Entry("conv2d_grad_input", np_conv2d_grad_input,
          grid([((2, 4, 3, 3), (4, 3, 3, 2), (2, 3, 5, 4))], "any", "any", "any", params=[(2, 1)])
          + grid([((2, 4, 3, 3), (4, 3, 3, 2), (2, 3, 5, 4))], "any", "any", "any", params=[(1, 0)]),
          build=lambda g, w, x, s, p: ad.conv2d_grad_input_op(g, w, x, stride=s, padding=p),
          rtol=1e-11, zero_grads=(2,)),
    Entry("conv2d_grad_filter", np_conv2d_grad_filter,
          grid([((2, 4, 3, 3), (2, 3, 5, 4), (4, 3, 3, 2))], "any", "any", "any", params=[(2, 1)]),
          build=lambda g, x, w, s, p: ad.conv2d_grad_filter_op(g, x, w, stride=s, padding=p),
          rtol=1e-11, zero_grads=(2,)),
    Entry("max_pool2d", lambda x, k, s=None: np_pool(x, k, s),
          grid([((2, 3, 6, 5),)], "any", params=[(2,), (3, 2), (2, 1)]),
          build=lambda x, k, s=None: ad.max_pool2d_op(x, k, s),
          second=[Second(lambda x: ad.max_pool2d_op(x * x, 2), [(1, 2, 4, 4)], ["nonzero"])]),
    Entry("avg_pool2d", lambda x, k, s=None: np_pool(x, k, s, "avg"),
          grid([((2, 3, 6, 5),)], "any", params=[(2,), (3, 2)]),
          build=lambda x, k, s=None: ad.avg_pool2d_op(x, k, s)),
    Entry("max_pool2d_scatter", np_max_scatter,
          grid([((2, 3, 3, 2), (2, 3, 6, 5))], "any", "any", params=[(2,)])
          + grid([((2, 3, 5, 4), (2, 3, 6, 5))], "any", "any", params=[(2, 1)]),
          build=lambda g, x, k, s=None: ad.max_pool2d_scatter_op(g, x, k, s), zero_grads=(1,)),
    Entry("max_pool2d_gather", np_max_gather,
          grid([((2, 3, 6, 5), (2, 3, 6, 5))], "any", "any", params=[(2,), (3, 2)]),
          build=lambda t, x, k, s=None: ad.max_pool2d_gather_op(t, x, k, s), zero_grads=(1,)),
    Entry("avg_pool2d_grad", np_avg_grad,
          grid([((2, 3, 3, 2), (2, 3, 6, 5))], "any", "any", params=[(2,)])
          + grid([((2, 3, 2, 2), (2, 3, 6, 5))], "any", "any", params=[(3, 2)]),
          build=lambda g, x, k, s=None: ad.avg_pool2d_grad_op(g, x, k, s), zero_grads=(1,)),
    # labels in [0, 1]
    Entry("sigmoid_cross_entropy", np_sigmoid_cross_entropy,
          grid([((3, 4), (3, 4)), ((5,), (5,)), ((), ())], ["any", "wide"], "prob")),
]

# Ops whose forward does what numpy does, element for element (moves, selections and
# comparisons, no rounding, or the same rounding): their forward must equal the
# reference bit for bit.
EXACT = {"oneslike", "zeroslike", "neg", "relu", "abs", "sign", "square", "maximum", "minimum",
         "less", "less_equal", "greater", "greater_equal", "equal", "full_like", "clip", "where",
         "reduce_max", "reduce_min", "reshape", "transpose", "untranspose", "getitem", "concat",
         "stack", "join_part", "pad", "unpad", "max_pool2d", "max_pool2d_gather", "broadcast_to"}
CATALOGUE = [replace(e, rtol=0.0) if e.name in EXACT else e for e in CATALOGUE]
