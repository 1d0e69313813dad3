"""Test helpers shared by several test files: numpy references, finite differences,
random feeds and a random-graph generator (hypothesis) with its own numpy evaluator.

The graph generator is backend-neutral: `graph_specs()` draws a `GraphSpec` (pure data),
`build_graph(ad, spec)` turns it into fastad nodes, `random_feeds(spec, rng)` makes
inputs in the generator's safe range and `eval_graph_numpy(spec, feeds)` is an
independent numpy reference.  To compare two backends, build one graph, add its
gradients and run `ad.Executor(nodes, backend=...)` for each backend on the same feeds.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st


# --- numpy references --------------------------------------------------------------------

def np_sigmoid(x):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


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


# --- random inputs -------------------------------------------------------------------------

def rand(rng, shape, domain="any", dtype=np.float64):
    """Random array in a domain: "any" U[-2, 2], "pos" U[0.5, 3],
    "nonzero" +-U[0.5, 2] (away from 0: relu kink, division), "unit" U[-1, 1]."""
    shape = tuple(shape)
    if domain == "any":
        x = rng.uniform(-2.0, 2.0, shape)
    elif domain == "pos":
        x = rng.uniform(0.5, 3.0, shape)
    elif domain == "nonzero":
        x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif domain == "unit":
        x = rng.uniform(-1.0, 1.0, shape)
    else:
        raise ValueError(domain)
    return np.asarray(x, dtype=dtype)


# --- finite differences --------------------------------------------------------------------

def numeric_grads(f, args, h=1e-4):
    """d f(*args) / d args by the fourth-order central difference
    (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h, element by element, in float64.

    `f` returns a scalar; error ~ h^4 f^(5) / 30 plus roundoff ~ ulp(f) / h, i.e. about
    1e-10 relative for the smooth, O(1)-sized functions tested here."""
    args = [np.array(a, dtype=np.float64, order="C") for a in args]  # private C-order copies
    grads = []
    for a in args:
        g = np.zeros(a.shape)
        flat, gflat = a.reshape(-1), g.reshape(-1)  # views
        for i in range(flat.size):
            orig = flat[i]
            vals = []
            for step in (2 * h, h, -h, -2 * h):
                flat[i] = orig + step
                vals.append(float(f(*args)))
            flat[i] = orig
            gflat[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
        grads.append(g)
    return grads


def assert_grad_close(analytic, numeric, rtol=1e-6, atol=1e-7, err_msg=""):
    """Gradient vs finite differences; `atol` is scaled by the gradient's magnitude."""
    numeric = np.asarray(numeric)
    assert np.shape(analytic) == numeric.shape, (np.shape(analytic), numeric.shape, err_msg)
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol * scale,
                               err_msg=err_msg)


# --- random graphs -------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One op of a generated graph: `kind` (a key of KINDS) applied to earlier nodes."""
    kind: str
    args: tuple
    param: object = None


@dataclass(frozen=True)
class GraphSpec:
    """Placeholders 0..n_inputs-1, then one node per step; the last node is the output."""
    input_shapes: tuple
    steps: tuple

    @property
    def n_inputs(self):
        return len(self.input_shapes)

    def shapes(self):
        """The shape of every node (placeholders first)."""
        shapes = list(self.input_shapes)
        for s in self.steps:
            shapes.append(KINDS[s.kind].shape([shapes[a] for a in s.args], s.param))
        return shapes


INPUT_BOUND = 2.0   # feeds are U[-2, 2]
MAX_BOUND = 20.0    # no node may exceed this magnitude (keeps exp and FD well-conditioned)
BASE_SHAPES = [(2, 3), (3,), (2, 1, 3), (3, 1), (2, 2, 2), (1,), ()]  # favoured first


@dataclass(frozen=True)
class Kind:
    arity: int
    build: object            # (ad, nodes, param) -> node
    numpy: object            # (arrays, param) -> array
    shape: object            # (shapes, param) -> shape, or None where not applicable
    bound: object            # (bounds, shapes, param) -> bound on |value|
    params: object = None    # hypothesis strategy for `param`


def _same(shapes, param):
    return tuple(shapes[0])


def _nonscalar(shapes, param):
    return tuple(shapes[0]) if len(shapes[0]) >= 1 else None


def _bcast(shapes, param):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _reduce_axes(ndim, axis):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -ndim <= a < ndim for a in axes):
        return None
    norm = sorted(a % ndim for a in axes)
    return None if len(set(norm)) != len(norm) else tuple(norm)


def _reduce_shape(shapes, param):
    axis, keepdims = param
    shape = tuple(shapes[0])
    axes = _reduce_axes(len(shape), axis)
    if axes is None:
        return None
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _count(shape, param):
    axes = _reduce_axes(len(shape), param[0])
    return math.prod(shape[a] for a in axes)


def _mm_self_shape(shapes, param):
    s = tuple(shapes[0])
    return {1: (), 2: s}.get(len(s))


def _mm_pair_shape(shapes, param):
    a, b = (tuple(s) for s in shapes)
    return {1: (), 2: a}.get(len(a)) if a == b else None


def _sce_shape(shapes, param):
    a, b = (tuple(s) for s in shapes)
    return () if a == b and len(a) >= 1 else None


def _bcast_to_shape(shapes, param):
    out = _bcast(shapes, param)
    return tuple(shapes[1]) if out == tuple(shapes[1]) else None


def _mm_self_bound(b, s, p):
    # 1-D: |a.a| <= n b^2; 2-D: |(A A^T) A| <= m n b^3
    return b[0] ** 2 * s[0][0] if len(s[0]) == 1 else b[0] ** 3 * math.prod(s[0])


def _mm_pair_bound(b, s, p):
    # 1-D: |a.b| <= n b_a b_b; 2-D: |A (A^T B)| <= m n b_a^2 b_b
    return b[0] * b[1] * s[0][0] if len(s[0]) == 1 else b[0] ** 2 * b[1] * math.prod(s[0])


def _sq1(ad, a):
    return a * a + 1


def _build_mm_self(ad, n, p):
    a = n[0]
    # 2-D: (A A^T) A, same shape as A; 1-D: A . A, 0-d.
    return ad.matmul_op(ad.matmul_op(a, a, trans_B=True), a) if p == 2 else ad.matmul_op(a, a)


def _np_mm_self(v, p):
    a = v[0]
    return (a @ a.T) @ a if a.ndim == 2 else np.asarray(a @ a)


def _build_mm_pair(ad, n, p):
    a, b = n
    return ad.matmul_op(a, ad.matmul_op(a, b, trans_A=True)) if p == 2 else ad.matmul_op(a, b)


def _np_mm_pair(v, p):
    a, b = v
    return a @ (a.T @ b) if a.ndim == 2 else np.asarray(a @ b)


_CONSTS = st.sampled_from([-1.5, 0.5, 2.0, 3.0])
_AXES = st.tuples(st.sampled_from([None, 0, -1, (0, -1), 1]), st.booleans())

KINDS = {
    # elementwise unary
    "neg": Kind(1, lambda ad, n, p: -n[0], lambda v, p: -v[0], _same, lambda b, s, p: b[0]),
    "exp": Kind(1, lambda ad, n, p: ad.exp_op(n[0]), lambda v, p: np.exp(v[0]), _same,
                lambda b, s, p: math.exp(b[0]) if b[0] <= 3 else math.inf),
    "log_exp": Kind(1, lambda ad, n, p: ad.log_op(ad.exp_op(n[0])), lambda v, p: np.log(np.exp(v[0])),
                    _same, lambda b, s, p: b[0] if b[0] <= 3 else math.inf),
    "ln_sq1": Kind(1, lambda ad, n, p: ad.ln_op(_sq1(ad, n[0])), lambda v, p: np.log(v[0] * v[0] + 1),
                   _same, lambda b, s, p: math.log(b[0] ** 2 + 1)),
    "sqrt_sq1": Kind(1, lambda ad, n, p: ad.sqrt_op(_sq1(ad, n[0])), lambda v, p: np.sqrt(v[0] * v[0] + 1),
                     _same, lambda b, s, p: math.sqrt(b[0] ** 2 + 1)),
    "pow_int": Kind(1, lambda ad, n, p: ad.pow_byconst_op(n[0], p), lambda v, p: v[0] ** p, _same,
                    lambda b, s, p: b[0] ** p, st.sampled_from([2, 3])),
    "pow_sq1": Kind(1, lambda ad, n, p: _sq1(ad, n[0]) ** p, lambda v, p: (v[0] * v[0] + 1) ** p, _same,
                    lambda b, s, p: (b[0] ** 2 + 1) ** max(p, 0), st.sampled_from([0.5, -1.5, 1.5])),
    "tanh": Kind(1, lambda ad, n, p: ad.tanh_op(n[0]), lambda v, p: np.tanh(v[0]), _same,
                 lambda b, s, p: 1.0),
    "sigmoid": Kind(1, lambda ad, n, p: ad.sigmoid_op(n[0]), lambda v, p: np_sigmoid(v[0]), _same,
                    lambda b, s, p: 1.0),
    "relu": Kind(1, lambda ad, n, p: ad.relu_op(n[0]), lambda v, p: np.maximum(v[0], 0), _same,
                 lambda b, s, p: b[0]),
    "sin": Kind(1, lambda ad, n, p: ad.sin_op(n[0]), lambda v, p: np.sin(v[0]), _same,
                lambda b, s, p: min(b[0], 1.0)),
    "cos": Kind(1, lambda ad, n, p: ad.cos_op(n[0]), lambda v, p: np.cos(v[0]), _same,
                lambda b, s, p: 1.0),
    # with a scalar constant (operators, incl. reflected ones and numpy scalars)
    "add_c": Kind(1, lambda ad, n, p: n[0] + p, lambda v, p: v[0] + p, _same,
                  lambda b, s, p: b[0] + abs(p), _CONSTS),
    "radd_c": Kind(1, lambda ad, n, p: p + n[0], lambda v, p: p + v[0], _same,
                   lambda b, s, p: b[0] + abs(p), _CONSTS),
    "sub_c": Kind(1, lambda ad, n, p: n[0] - p, lambda v, p: v[0] - p, _same,
                  lambda b, s, p: b[0] + abs(p), _CONSTS),
    "rsub_c": Kind(1, lambda ad, n, p: p - n[0], lambda v, p: p - v[0], _same,
                   lambda b, s, p: b[0] + abs(p), _CONSTS),
    "mul_c": Kind(1, lambda ad, n, p: n[0] * p, lambda v, p: v[0] * p, _same,
                  lambda b, s, p: b[0] * abs(p), _CONSTS),
    "rmul_np": Kind(1, lambda ad, n, p: np.float64(p) * n[0], lambda v, p: p * v[0], _same,
                    lambda b, s, p: b[0] * abs(p), _CONSTS),
    "div_c": Kind(1, lambda ad, n, p: n[0] / p, lambda v, p: v[0] / p, _same,
                  lambda b, s, p: b[0] / abs(p), _CONSTS),
    "rdiv_sq1": Kind(1, lambda ad, n, p: p / _sq1(ad, n[0]), lambda v, p: p / (v[0] * v[0] + 1), _same,
                     lambda b, s, p: abs(p), _CONSTS),
    # last axis
    "softmax": Kind(1, lambda ad, n, p: ad.softmax_op(n[0]), lambda v, p: np_softmax(v[0]),
                    _nonscalar, lambda b, s, p: 1.0),
    "log_softmax": Kind(1, lambda ad, n, p: ad.log_softmax_op(n[0]), lambda v, p: np_log_softmax(v[0]),
                        _nonscalar, lambda b, s, p: 2 * b[0] + math.log(s[0][-1])),
    # reductions and fills
    "sum": Kind(1, lambda ad, n, p: ad.reduce_sum_op(n[0], axis=p[0], keepdims=p[1]),
                lambda v, p: np.sum(v[0], axis=p[0], keepdims=p[1]), _reduce_shape,
                lambda b, s, p: b[0] * _count(s[0], p), _AXES),
    "mean": Kind(1, lambda ad, n, p: ad.reduce_mean_op(n[0], axis=p[0], keepdims=p[1]),
                 lambda v, p: np.mean(v[0], axis=p[0], keepdims=p[1]), _reduce_shape,
                 lambda b, s, p: b[0], _AXES),
    "oneslike": Kind(1, lambda ad, n, p: ad.oneslike_op(n[0]), lambda v, p: np.ones_like(v[0]), _same,
                     lambda b, s, p: 1.0),
    "zeroslike": Kind(1, lambda ad, n, p: ad.zeroslike_op(n[0]), lambda v, p: np.zeros_like(v[0]),
                      _same, lambda b, s, p: 0.0),
    "mm_self": Kind(1, lambda ad, n, p: _build_mm_self(ad, n, len(p)), lambda v, p: _np_mm_self(v, p),
                    _mm_self_shape, _mm_self_bound),
    # binary, numpy broadcasting
    "add": Kind(2, lambda ad, n, p: n[0] + n[1], lambda v, p: v[0] + v[1], _bcast,
                lambda b, s, p: b[0] + b[1]),
    "sub": Kind(2, lambda ad, n, p: n[0] - n[1], lambda v, p: v[0] - v[1], _bcast,
                lambda b, s, p: b[0] + b[1]),
    "mul": Kind(2, lambda ad, n, p: n[0] * n[1], lambda v, p: v[0] * v[1], _bcast,
                lambda b, s, p: b[0] * b[1]),
    "div_sq1": Kind(2, lambda ad, n, p: n[0] / _sq1(ad, n[1]), lambda v, p: v[0] / (v[1] * v[1] + 1),
                    _bcast, lambda b, s, p: b[0]),
    "add_op": Kind(2, lambda ad, n, p: ad.add_op(n[0], n[1]), lambda v, p: v[0] + v[1], _bcast,
                   lambda b, s, p: b[0] + b[1]),
    "mul_op": Kind(2, lambda ad, n, p: ad.mul_op(n[0], n[1]), lambda v, p: v[0] * v[1], _bcast,
                   lambda b, s, p: b[0] * b[1]),
    "broadcast_to": Kind(2, lambda ad, n, p: ad.broadcast_to_op(n[0], n[1]),
                         lambda v, p: np.broadcast_to(v[0], v[1].shape).copy(), _bcast_to_shape,
                         lambda b, s, p: b[0]),
    # labels are softmax(b): rows sum to 1, where the contract's gradient is the derivative
    "sce": Kind(2, lambda ad, n, p: ad.softmax_cross_entropy_op(n[0], ad.softmax_op(n[1])),
                lambda v, p: np_softmax_cross_entropy(v[0], np_softmax(v[1])), _sce_shape,
                lambda b, s, p: 2 * b[0] + math.log(s[0][-1])),
    "mm_pair": Kind(2, lambda ad, n, p: _build_mm_pair(ad, n, len(p)), lambda v, p: _np_mm_pair(v, p),
                    _mm_pair_shape, _mm_pair_bound),
}
# hypothesis favours the first entries of a sampled_from: the richer kinds come first
KIND_NAMES = ["mm_pair", "sce", "mm_self", "log_softmax", "softmax", "sum", "mean", "broadcast_to",
              "div_sq1", "mul", "sub", "add", "mul_op", "add_op", "relu", "sigmoid", "tanh", "exp",
              "log_exp", "ln_sq1", "sqrt_sq1", "pow_int", "pow_sq1", "sin", "cos", "rdiv_sq1",
              "rsub_c", "div_c", "rmul_np", "mul_c", "sub_c", "radd_c", "add_c", "neg", "oneslike",
              "zeroslike"]
assert sorted(KIND_NAMES) == sorted(KINDS)


def _broadcasts_to(shape, base):
    try:
        return np.broadcast_shapes(shape, base) == tuple(base)
    except ValueError:
        return False


def _shape_params(kind, shapes):
    """Kinds whose builder depends on the input's rank get it through `param`."""
    return tuple(shapes[0]) if kind in ("mm_self", "mm_pair") else None


def sub_shapes(base):
    """Shapes that broadcast to `base` (leading axes dropped, axes set to 1); `base` itself
    has extra weight so that most placeholders have the full shape."""
    shapes = {()}
    for drop in range(len(base)):
        shapes |= set(itertools.product(*[(n, 1) for n in base[drop:]]))
    return st.sampled_from([tuple(base)] * 3 + sorted(shapes, key=lambda s: (-len(s), s)))


@st.composite
def graph_specs(draw, max_ops=10, max_inputs=3, kinds=None):
    """A random DAG of 1..max_ops steps over 1..max_inputs placeholders (plus `add` steps
    that join unused nodes into the output, the last node).  Every node's shape
    broadcasts to one base shape, so any two nodes can be combined elementwise; every
    node's magnitude stays below MAX_BOUND (for U[-2, 2] feeds).  A step that does not
    apply (shape) or would exceed the bound becomes `tanh` of its first argument."""
    kinds = [k for k in KIND_NAMES if k in kinds] if kinds is not None else KIND_NAMES
    base = draw(st.sampled_from(BASE_SHAPES))
    n_inputs = draw(st.integers(1, max_inputs))
    input_shapes = tuple(draw(sub_shapes(base)) for _ in range(n_inputs))
    shapes, bounds, steps = list(input_shapes), [INPUT_BOUND] * n_inputs, []
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(kinds))
        spec = KINDS[kind]
        last = len(shapes) - 1
        # the first argument is often the newest node, so graphs get deep, not just wide
        args = tuple(draw(st.one_of(st.just(last), st.integers(0, last))) if i == 0
                     else draw(st.integers(0, last)) for i in range(spec.arity))
        arg_shapes = [shapes[a] for a in args]
        param = draw(spec.params) if spec.params is not None else _shape_params(kind, arg_shapes)
        shape = spec.shape(arg_shapes, param)
        ok = shape is not None and _broadcasts_to(shape, base)
        bound = spec.bound([bounds[a] for a in args], arg_shapes, param) if ok else math.inf
        if not bound <= MAX_BOUND:
            kind, args, param = "tanh", args[:1], None
            shape, bound = tuple(shapes[args[0]]), 1.0
        steps.append(Step(kind, args, param))
        shapes.append(shape)
        bounds.append(bound)
    # the output adds up every step nobody consumes, so no step is dead code
    used = {a for s in steps for a in s.args}
    sinks = [i for i in range(n_inputs, len(shapes) - 1) if i not in used]
    out = len(shapes) - 1
    for i in sinks:
        steps.append(Step("add", (out, i)))
        out = len(shapes)
        shapes.append(np.broadcast_shapes(shapes[out - 1], shapes[i]))
    return GraphSpec(input_shapes, tuple(steps))


def build_graph(ad, spec, names=None):
    """fastad nodes for `spec`: returns (placeholders, all nodes); nodes[-1] is the output."""
    names = names or [f"x{i}" for i in range(spec.n_inputs)]
    nodes = [ad.Variable(name) for name in names]
    placeholders = list(nodes)
    for s in spec.steps:
        nodes.append(KINDS[s.kind].build(ad, [nodes[a] for a in s.args], s.param))
    return placeholders, nodes


def random_feeds(spec, rng, dtype=np.float64):
    """One U[-2, 2] array per placeholder."""
    return [rand(rng, shape, "any", dtype) for shape in spec.input_shapes]


def eval_graph_numpy(spec, feeds):
    """Every node's value (placeholders first) by the numpy reference."""
    vals = [np.asarray(f) for f in feeds]
    for s in spec.steps:
        vals.append(np.asarray(KINDS[s.kind].numpy([vals[a] for a in s.args], s.param)))
    return vals


def kink_margin(spec, vals):
    """The smallest nonzero |input| of any relu (inf if none): finite differences across
    relu's kink are meaningless.  Exact zeros come from identically-zero inputs (`a - a`),
    whose derivative is zero on both sides."""
    margin = math.inf
    for i, s in enumerate(spec.steps):
        if s.kind == "relu":
            x = np.abs(vals[s.args[0]])
            x = x[x != 0]
            if x.size:
                margin = min(margin, float(x.min()))
    return margin
