"""Test helpers shared by several test files: random inputs, finite differences and a
random-graph generator (hypothesis) with its own numpy evaluator.

The graph generator is backend-neutral: `graph_specs()` draws a `GraphSpec` (pure data)
whose steps are the kinds of tests/catalogue.py, `build_graph(spec)` turns it into
fastad nodes, `random_feeds(spec, rng)` makes inputs in the generator's safe range and
`eval_graph_numpy(spec, feeds)` is an independent numpy reference.  To compare two
backends, build one graph, add its gradients and run `ad.Executor(nodes, backend=...)`
for each backend on the same feeds.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

import fastad as ad
from catalogue import graph_kinds, np_softmax

# Whether AddressSanitizer runs this process (the CI's sanitizer stage): it quarantines
# freed memory, so tests of memory growth can't tell there.
with open("/proc/self/maps") as maps:
    SANITIZED = "libasan" in maps.read()


# --- random inputs -------------------------------------------------------------------------

def rand(rng, shape, domain="any", dtype=np.float64):
    """Random array in a domain: "any" U[-2, 2], "pos" U[0.5, 3],
    "nonzero" +-U[0.5, 2] (away from 0: kinks, division), "unit" U[-1, 1],
    "wide" U[-4, 4] (logits); along the last axis, "prob" rows of probabilities
    (softmax of U[-2, 2]) and "onehot" rows."""
    shape = tuple(shape)
    if domain == "any":
        x = rng.uniform(-2.0, 2.0, shape)
    elif domain == "pos":
        x = rng.uniform(0.5, 3.0, shape)
    elif domain == "nonzero":
        x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif domain == "unit":
        x = rng.uniform(-1.0, 1.0, shape)
    elif domain == "wide":
        x = rng.uniform(-4.0, 4.0, shape)
    elif domain == "prob":
        x = np_softmax(rng.uniform(-2.0, 2.0, shape))
    elif domain == "onehot":
        x = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    else:
        raise ValueError(domain)
    return np.asarray(x, dtype=dtype)


def rands(rng, shapes, domains, dtype=np.float64):
    """One `rand` array per (shape, domain)."""
    return [rand(rng, s, d, dtype) for s, d in zip(shapes, domains)]


def case_graph(case, rng):
    """A catalogue case as (placeholders, their values, nodes): the op's output, and the
    gradients of its sum where the op has them."""
    inputs = rands(rng, case.shapes, case.domains)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    out = case.build(*xs)
    nodes = [out, *ad.gradients(ad.reduce_sum_op(out), xs)] if case.entry.grad else [out]
    return xs, inputs, nodes


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
    param: tuple = ()


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
            shapes.append(KINDS[s.kind].shape([shapes[a] for a in s.args], *s.param))
        return shapes


INPUT_BOUND = 2.0   # feeds are U[-2, 2]
MAX_BOUND = 20.0    # no node may exceed this magnitude (keeps exp and FD well-conditioned)
BASE_SHAPES = [(2, 3), (3,), (2, 1, 3), (3, 1), (2, 2, 2), (1,), ()]  # favoured first
KINDS = graph_kinds()  # the catalogue's ops as steps (catalogue.Kind), the richer first


def _broadcasts_to(shape, base):
    try:
        return np.broadcast_shapes(shape, base) == tuple(base)
    except ValueError:
        return False


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
    kinds = [k for k in KINDS if k in kinds] if kinds is not None else list(KINDS)
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
        params = spec.params
        if params is not None and not isinstance(params, st.SearchStrategy):
            params = params(arg_shapes)
        param = draw(params) if params is not None else ()
        shape = spec.shape(arg_shapes, *param)
        ok = shape is not None and _broadcasts_to(shape, base)
        bound = spec.bound([bounds[a] for a in args], arg_shapes, *param) if ok else math.inf
        if not bound <= MAX_BOUND:
            kind, args, param = "tanh", args[:1], ()
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


def build_graph(spec, names=None):
    """fastad nodes for `spec`: returns (placeholders, all nodes); nodes[-1] is the output."""
    names = names or [f"x{i}" for i in range(spec.n_inputs)]
    nodes = [ad.Variable(name) for name in names]
    placeholders = list(nodes)
    shapes = spec.shapes()
    for s in spec.steps:
        kind, args = KINDS[s.kind], [nodes[a] for a in s.args]
        if kind.shaped:
            nodes.append(kind.build(args, s.param, [shapes[a] for a in s.args]))
        else:
            nodes.append(kind.build(args, s.param))
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
    """How near any step's arguments are to one of its op's kinks (Kind.kink: relu's and
    abs's 0, maximum's ties, clip's bounds, where's switch, a max reduction's ties; inf if
    none): finite differences across a kink are meaningless.  Exact zeros come from
    identically-equal inputs (`a - a`, `maximum(a, a)`), which stay so on both sides."""
    margin = math.inf
    for s in spec.steps:
        kink = KINDS[s.kind].kink
        if kink is not None:
            d = np.abs(np.asarray(kink([vals[a] for a in s.args], *s.param), dtype=np.float64))
            d = d[d != 0]
            if d.size:
                margin = min(margin, float(d.min()))
    return margin


def near_multiples_of_half_pi(rng, n, small=2000, top=3_000_000):
    """float64 values at and next to k pi/2 for every k < small and n random k < top, both
    signs: where sin or cos is tiny and a range reduction's error shows most."""
    k = np.concatenate([np.arange(1, small), rng.integers(small, top, n)])
    x = np.concatenate([k, -k]) * (np.pi / 2)
    return np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
