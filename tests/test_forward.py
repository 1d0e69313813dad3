"""Forward mode (`ad.jvp`): every op's tangent rule (the ops of tests/catalogue.py)
against central finite differences along random directions, agreement with `gradients`
(<grad f, v> = J v), Hessian-vector products (forward-over-reverse) and the seed's
worked example."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastad as ad
from catalogue import cases
from helpers import (assert_grad_close, build_graph, eval_graph_numpy, graph_specs, kink_margin,
                     rand, rands, random_feeds)


def directional_fd(f, inputs, directions, h=1e-4):
    """d/ds f(inputs + s directions) at s = 0, fourth-order central difference."""
    def at(s):
        return np.asarray(f(*[x + s * v for x, v in zip(inputs, directions)]), dtype=np.float64)
    return (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)


def check_jvp(backend, build, inputs, seed=0, rtol=1e-6, atol=1e-7):
    """The tangent of build(*placeholders) along random directions, for all inputs
    moving at once and for each input alone, against finite differences."""
    rng = np.random.default_rng(seed)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    vs = [ad.Variable(f"v{i}") for i in range(len(inputs))]
    directions = [rng.uniform(-1, 1, np.shape(x)) for x in inputs]
    out = build(*xs)
    subsets = [list(range(len(xs)))] + ([[i] for i in range(len(xs))] if len(xs) > 1 else [])
    tangents = [ad.jvp([out], [xs[i] for i in s], [vs[i] for i in s])[0] for s in subsets]
    feed = {**dict(zip(xs, inputs)), **dict(zip(vs, directions))}
    val, *got = ad.Executor([out] + tangents, backend=backend).run(feed)

    forward = ad.Executor([out], backend=backend)
    for s, t in zip(subsets, got):
        def f(*a):
            return forward.run(dict(zip(xs, a)))[0]
        moving = [d if i in s else np.zeros_like(d) for i, d in enumerate(directions)]
        assert type(t) is np.ndarray and t.dtype == np.float64
        assert t.shape == val.shape, f"tangent along inputs {s}"
        assert_grad_close(t, directional_fd(f, inputs, moving), rtol=rtol, atol=atol,
                          err_msg=f"tangent along inputs {s}")


# --- every op of the catalogue ----------------------------------------------------------------

TANGENT_CASES = cases("tangent")


@pytest.mark.parametrize("case", TANGENT_CASES, ids=[c.id for c in TANGENT_CASES])
def test_op(backend, case):
    entry = case.entry
    inputs = rands(np.random.default_rng(1), case.shapes, case.domains)
    check_jvp(backend, case.build, inputs, rtol=entry.grad_rtol, atol=entry.grad_atol)


def test_same_node_twice(backend):
    x = rand(np.random.default_rng(3), (3,), "nonzero")
    check_jvp(backend, lambda a: a * a + a / a - a, [x])


# --- jvp and gradients agree; random graphs ----------------------------------------------------

@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=graph_specs(max_ops=8), seed=st.integers(0, 2**32 - 1))
def test_random_graph_jvp(backend, spec, seed):
    """J v against finite differences of the numpy reference, and <grad(sum(out * R)), v>
    = sum(J v * R)."""
    rng = np.random.default_rng(seed)
    feeds = random_feeds(spec, rng)
    vals = eval_graph_numpy(spec, feeds)
    assume(kink_margin(spec, vals) > 1e-3)  # finite differences must not cross a kink
    xs, nodes = build_graph(spec)
    vs = [ad.Variable(f"v{i}") for i in range(len(xs))]
    V = [rng.uniform(-1, 1, f.shape) for f in feeds]
    r, R = ad.Variable("R"), rng.uniform(-1, 1, vals[-1].shape)
    t, = ad.jvp([nodes[-1]], xs, vs)
    grads = ad.gradients(ad.reduce_sum_op(nodes[-1] * r), xs)
    feed = {**dict(zip(xs, feeds)), **dict(zip(vs, V)), r: R}
    t_val, *g_vals = ad.Executor([t] + grads, backend=backend).run(feed)

    numeric = directional_fd(lambda *a: eval_graph_numpy(spec, a)[-1], feeds, V)
    assert t_val.shape == vals[-1].shape
    assert_grad_close(t_val, numeric)
    dot_grad = sum(np.sum(g * v) for g, v in zip(g_vals, V))
    np.testing.assert_allclose(np.sum(t_val * R), dot_grad, rtol=1e-10, atol=1e-10)


def test_jvp_agrees_with_gradients_for_any_labels(backend):
    # sce's gradient contract is the derivative only for distributions; its tangent rule
    # is the transpose of that contract, so both modes agree for any labels.
    rng = np.random.default_rng(5)
    z, t, vz, vt = (ad.Variable(n) for n in ("z", "t", "vz", "vt"))
    loss = ad.softmax_cross_entropy_op(z * z, t)
    tangent, = ad.jvp([loss], [z, t], [vz, vt])
    gz, gt = ad.gradients(loss, [z, t])
    feed = {n: rand(rng, (3, 4)) for n in (z, t, vz, vt)}
    tv, gzv, gtv = ad.Executor([tangent, gz, gt], backend=backend).run(feed)
    np.testing.assert_allclose(tv, np.sum(gzv * feed[vz]) + np.sum(gtv * feed[vt]), rtol=1e-12)


# --- Hessian-vector products: forward-over-reverse ----------------------------------------------

def _logreg(w, x):
    # mean logistic loss of labels 1 for the rows of x, with a tanh feature
    return ad.reduce_mean_op(ad.ln_op(1 + ad.exp_op(-ad.matmul_op(ad.tanh_op(x), w))))


HVP = [
    # id, f (scalar), [(shape, domain)]
    ("seed", lambda a, b: ad.ln_op(a) + a * b - ad.sin_op(b), [((), "pos"), ((), "any")]),
    ("logreg", _logreg, [((3,), "any"), ((5, 3), "any")]),
    ("mlp_sce", lambda w, x: ad.softmax_cross_entropy_op(
        ad.matmul_op(ad.relu_op(ad.matmul_op(x, w)), w, trans_B=True), ad.softmax_op(x)),
     [((4, 3), "any"), ((2, 4), "any")]),
    ("broadcasting", lambda a, b: ad.reduce_sum_op(ad.sqrt_op(a * a + 1) / (b * b + 1) - a * b),
     [((3,), "any"), ((4, 3), "any")]),
    ("reductions", lambda a: ad.reduce_sum_op(ad.reduce_mean_op(a * a, axis=0, keepdims=True) * a
                                              + ad.log_softmax_op(a) ** 2), [((3, 2), "any")]),
]


@pytest.mark.parametrize("name,f,specs", HVP, ids=[c[0] for c in HVP])
def test_hessian_vector_product(backend, name, f, specs):
    """H v as the jvp of the gradient nodes, against finite differences of the gradient
    along v and against reverse-over-reverse (the gradient of <grad f, v>)."""
    rng = np.random.default_rng(6)
    inputs = [rand(rng, s, d) for s, d in specs]
    V = [rng.uniform(-1, 1, np.shape(x)) for x in inputs]
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    vs = [ad.Variable(f"v{i}") for i in range(len(inputs))]
    grads = ad.gradients(f(*xs), xs)
    hvp = ad.jvp(grads, xs, vs)
    inner = ad.reduce_sum_op(grads[0] * vs[0])
    for g, v in zip(grads[1:], vs[1:]):
        inner = inner + ad.reduce_sum_op(g * v)
    rr = ad.gradients(inner, xs)
    feed = {**dict(zip(xs, inputs)), **dict(zip(vs, V))}
    got = ad.Executor(hvp + rr, backend=backend).run(feed)
    got_hvp, got_rr = got[:len(xs)], got[len(xs):]

    grad_ex = ad.Executor(grads, backend=backend)
    for i, (h, r) in enumerate(zip(got_hvp, got_rr)):
        numeric = directional_fd(lambda *a: grad_ex.run(dict(zip(xs, a)))[i], inputs, V)
        assert h.shape == np.shape(inputs[i])
        assert_grad_close(h, numeric, err_msg=f"Hv, block of input {i}")
        np.testing.assert_allclose(h, r, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")


# --- the seed's worked example and the driver's contract ----------------------------------------

def test_seed_example(backend):
    # f(x1, x2) = ln(x1) + x1 x2 - sin(x2) at (2, 5)
    x1, x2, v1, v2 = (ad.Variable(n) for n in ("x1", "x2", "v1", "v2"))
    f = ad.ln_op(x1) + x1 * x2 - ad.sin_op(x2)
    df, = ad.jvp([f], [x1, x2], [v1, v2])
    g1, g2 = ad.gradients(f, [x1, x2])
    ex = ad.Executor([f, df, g1, g2], backend=backend)
    y, d1, g1v, g2v = ex.run({x1: 2.0, x2: 5.0, v1: 1.0, v2: 0.0})
    assert y == pytest.approx(11.652, abs=5e-4)
    assert y == pytest.approx(np.log(2) + 10 - np.sin(5), rel=1e-15)
    assert d1 == pytest.approx(5.5, rel=1e-15) and g1v == pytest.approx(5.5, rel=1e-15)
    _, d2, _, _ = ex.run({x1: 2.0, x2: 5.0, v1: 0.0, v2: 1.0})
    assert d2 == pytest.approx(2 - np.cos(5), rel=1e-15) and g2v == pytest.approx(d2, rel=1e-15)


def test_outputs_independent_of_inputs_get_zeros(backend):
    x, y, v = ad.Variable("x"), ad.Variable("y"), ad.Variable("v")
    tx, ty = ad.jvp([ad.exp_op(x), ad.exp_op(y) * 2], [x], [v])
    assert ty.op is ad.zeroslike_op
    a, b = ad.Executor([tx, ty], backend=backend).run({x: np.zeros(3), y: np.ones((2, 2)),
                                                       v: np.arange(3.0)})
    np.testing.assert_array_equal(a, np.arange(3.0))
    np.testing.assert_array_equal(b, np.zeros((2, 2)))


def test_zero_tangents_build_no_nodes():
    # only the x branch gets tangent nodes; nothing is built for exp(y) or as a zero
    x, y, v = ad.Variable("x"), ad.Variable("y"), ad.Variable("v")
    out = x * 3 + ad.exp_op(y)
    t, = ad.jvp([out], [x], [v])
    new = set(ad.find_topo_sort([t])) - set(ad.find_topo_sort([out, v]))
    assert sorted(n.op.name for n in new) == ["broadcast_to", "mul_byconst"]


def test_input_tangent_is_the_seed_and_repeats_add(backend):
    x, v, w = ad.Variable("x"), ad.Variable("v"), ad.Variable("w")
    t_same, = ad.jvp([x], [x], [v])
    assert t_same is v
    t_rep, = ad.jvp([x * 2], [x, x], [v, w])
    got, = ad.Executor([t_rep], backend=backend).run({x: 1.0, v: 3.0, w: 4.0})
    assert got == 14.0


def test_errors():
    x, v = ad.Variable("x"), ad.Variable("v")
    with pytest.raises(ValueError, match="1 inputs but 2 tangents"):
        ad.jvp([x], [x], [v, v])

    class Cube(ad.Op):
        name = "cube"

        def compute(self, node, vals):
            return vals[0] ** 3

        def gradient(self, node, g):
            return [g * 3 * node.inputs[0] ** 2]

    with pytest.raises(NotImplementedError, match=r"Cube\.jvp: op 'cube' has no forward-mode rule"):
        ad.jvp([Cube()(x)], [x], [v])
