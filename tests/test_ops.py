"""Every op of the catalogue (tests/catalogue.py): forward against its numpy reference,
gradient against central finite differences of a scalar loss sum(op(...) * R), second
order for the catalogue's second-order graphs, and float32 forward/backward; plus
properties of single ops."""
import numpy as np
import pytest

import fastad as ad
from catalogue import cases, np_softmax, second_order
from helpers import assert_grad_close, numeric_grads, rand, rands


def np_sigmoid(x):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def by_id(cases):
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


def check_op(backend, build, ref, inputs, seed=0, fwd_rtol=1e-12, grad=True, grad_rtol=1e-6,
             grad_atol=1e-7):
    """Forward of build(*placeholders) vs ref(*inputs); gradients of sum(out * R) wrt
    every input vs finite differences of sum(ref(*inputs) * R)."""
    rng = np.random.default_rng(seed)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    out = build(*xs)
    expected = np.asarray(ref(*inputs))
    R = rng.uniform(-1, 1, expected.shape)
    r = ad.Variable("r")
    loss = ad.reduce_sum_op(out * r)
    grads = ad.gradients(loss, xs) if grad else []
    feed = dict(zip(xs, inputs))
    feed[r] = R
    vals = ad.Executor([out, loss] + grads, backend=backend).run(feed)
    out_val, loss_val, grad_vals = vals[0], vals[1], vals[2:]

    assert type(out_val) is np.ndarray and type(loss_val) is np.ndarray
    assert out_val.shape == expected.shape and loss_val.shape == ()
    assert out_val.dtype == np.float64
    if fwd_rtol == 0:  # bit for bit, signs of zeros too
        assert np.array_equal(out_val, expected, equal_nan=True), (out_val, expected)
        assert np.array_equal(np.signbit(out_val), np.signbit(expected))
    else:
        np.testing.assert_allclose(out_val, expected, rtol=fwd_rtol, atol=1e-14)
    np.testing.assert_allclose(loss_val, np.sum(expected * R), rtol=1e-11, atol=1e-12)
    if grad:
        numeric = numeric_grads(lambda *a: np.sum(ref(*a) * R), inputs)
        for i, (g, n) in enumerate(zip(grad_vals, numeric)):
            assert type(g) is np.ndarray and g.dtype == np.float64
            assert g.shape == np.shape(inputs[i]), f"gradient of input {i}"
            assert_grad_close(g, n, rtol=grad_rtol, atol=grad_atol, err_msg=f"gradient of input {i}")
    return out_val, grad_vals


# --- every op of the catalogue ------------------------------------------------------------

CASES = cases()


@by_id(CASES)
def test_op(backend, case):
    entry = case.entry
    inputs = rands(np.random.default_rng(0), case.shapes, case.domains)
    out, grads = check_op(backend, case.build, case.ref, inputs, fwd_rtol=entry.rtol, grad=entry.grad,
                          grad_rtol=entry.grad_rtol, grad_atol=entry.grad_atol)
    for i in entry.zero_grads:
        if i < len(inputs):
            assert np.array_equal(grads[i], np.zeros(np.shape(inputs[i]))), f"gradient of input {i}"
    if entry.check:
        entry.check(backend, case, inputs, out, grads)


# --- properties of single ops ------------------------------------------------------------------

def test_sigmoid_matches_stable_formula(backend):
    x = ad.Variable("x")
    xv = np.concatenate([np.linspace(-50, 50, 101), [-1e300, -745.0, 0.0, 745.0, 1e300]])
    y, = ad.Executor([ad.sigmoid_op(x)], backend=backend).run({x: xv})
    np.testing.assert_allclose(y, np_sigmoid(xv), rtol=1e-15, atol=0)
    assert np.all(np.isfinite(y)) and y[0] == np_sigmoid(np.array(-50.0))


def test_oneslike_zeroslike_values(backend):
    x = ad.Variable("x")
    xv = rand(np.random.default_rng(0), (2, 3))
    ones, zeros = ad.Executor([ad.oneslike_op(x), ad.zeroslike_op(x)], backend=backend).run({x: xv})
    assert np.array_equal(ones, np.ones((2, 3))) and np.array_equal(zeros, np.zeros((2, 3)))


def test_same_node_twice(backend):
    # x * x and x / x: both partials land on one node and must be summed
    x = rand(np.random.default_rng(1), (3,), "nonzero")
    check_op(backend, lambda a: a * a, lambda a: a * a, [x])
    check_op(backend, lambda a: a / a + a - a, lambda a: a / a + a - a, [x])
    check_op(backend, lambda a: ad.matmul_op(a, a), lambda a: np.asarray(a @ a), [x])


def test_matmul_positional_flags_and_operator(backend):
    rng = np.random.default_rng(6)
    a, b = rand(rng, (4, 3)), rand(rng, (5, 4))
    check_op(backend, lambda x, y: ad.matmul_op(x, y, True, True), lambda x, y: x.T @ y.T, [a, b])
    check_op(backend, lambda x, y: x @ y, lambda x, y: x @ y, [a.T, b.T])


def test_softmax_cross_entropy_value_by_hand(backend):
    logits = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    labels = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    x, y = ad.Variable("logits"), ad.Variable("labels")
    val, = ad.Executor([ad.softmax_cross_entropy_op(x, y)], backend=backend).run({x: logits, y: labels})
    row0 = -(3 - np.log(np.exp(1) + np.exp(2) + np.exp(3)))
    row1 = np.log(3)
    np.testing.assert_allclose(val, (row0 + row1) / 2, rtol=1e-14)


def test_softmax_large_logits_are_stable(backend):
    x = ad.Variable("x")
    t = ad.Variable("t")
    xv = np.array([[1000.0, 0.0, -1000.0], [-800.0, -800.0, -800.0]])
    tv = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    sm, lsm, ce = ad.Executor([ad.softmax_op(x), ad.log_softmax_op(x),
                               ad.softmax_cross_entropy_op(x, t)], backend=backend).run({x: xv, t: tv})
    np.testing.assert_allclose(sm, np_softmax(xv), rtol=1e-15, atol=0)
    np.testing.assert_allclose(lsm, [[0.0, -1000.0, -2000.0], [-np.log(3)] * 3], rtol=1e-15)
    np.testing.assert_allclose(ce, (1000.0 + np.log(3)) / 2, rtol=1e-15)


# --- second order: gradients of gradients vs finite differences of the gradient -----------------

SECOND_ORDER = second_order()


@pytest.mark.parametrize("build,shapes,domains", [s for _, s in SECOND_ORDER],
                         ids=[name for name, _ in SECOND_ORDER])
def test_second_order(backend, build, shapes, domains):
    rng = np.random.default_rng(10)
    inputs = rands(rng, shapes, domains)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    out = build(*xs)
    r = ad.Variable("r")
    R = rng.uniform(-1, 1, ad.Executor([out], backend=backend).run(dict(zip(xs, inputs)))[0].shape)
    grads = ad.gradients(ad.reduce_sum_op(out * r), xs)
    # a scalar of the first gradients, and its gradients (second order)
    r2s = [ad.Variable(f"r2_{i}") for i in range(len(xs))]
    R2s = [rng.uniform(-1, 1, np.shape(x)) for x in inputs]
    loss2 = ad.reduce_sum_op(grads[0] * r2s[0])
    for g, r2 in zip(grads[1:], r2s[1:]):
        loss2 = loss2 + ad.reduce_sum_op(g * r2)
    second = ad.gradients(loss2, xs)

    fixed = {r: R, **dict(zip(r2s, R2s))}
    first_ex = ad.Executor([loss2], backend=backend)

    def f(*a):
        return first_ex.run({**fixed, **dict(zip(xs, a))})[0]

    got = ad.Executor(second, backend=backend).run({**fixed, **dict(zip(xs, inputs))})
    for i, (g, n) in enumerate(zip(got, numeric_grads(f, inputs))):
        assert g.shape == inputs[i].shape
        assert_grad_close(g, n, err_msg=f"second-order gradient of input {i}")


def test_third_order(backend):
    x = ad.Variable("x")
    y = ad.sin_op(x) * x
    g1, = ad.gradients(y, [x])
    g2, = ad.gradients(g1, [x])
    g3, = ad.gradients(g2, [x])
    xv = np.array([0.3, -1.2, 2.0])
    vals = ad.Executor([g1, g2, g3], backend=backend).run({x: xv})
    s, c = np.sin(xv), np.cos(xv)
    np.testing.assert_allclose(vals[0], s + xv * c, rtol=1e-14)
    np.testing.assert_allclose(vals[1], 2 * c - xv * s, rtol=1e-14)
    np.testing.assert_allclose(vals[2], -3 * s - xv * c, rtol=1e-13)


# --- float32 -------------------------------------------------------------------------------------

def check_float32(backend, build, shapes, domains):
    """Float32 inputs give float32 outputs and gradients, close to the float64 ones."""
    rng = np.random.default_rng(11)
    inputs = rands(rng, shapes, domains)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    out = build(*xs)
    ex64 = ad.Executor([out], backend=backend)
    R = rng.uniform(-1, 1, ex64.run(dict(zip(xs, inputs)))[0].shape)
    r = ad.Variable("r")
    nodes = [out] + ad.gradients(ad.reduce_sum_op(out * r), xs)
    ex = ad.Executor(nodes, backend=backend)
    want = ex.run({r: R, **dict(zip(xs, inputs))})
    got = ex.run({r: R.astype(np.float32), **{x: v.astype(np.float32) for x, v in zip(xs, inputs)}})
    for i, (g, w) in enumerate(zip(got, want)):
        what = "output" if i == 0 else f"gradient of input {i - 1}"
        assert type(g) is np.ndarray and g.dtype == np.float32, (what, type(g), g.dtype)
        assert w.dtype == np.float64 and g.shape == w.shape, what
        scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6 * scale, err_msg=what)


@by_id(cases("float32"))
def test_float32(backend, case):
    check_float32(backend, case.build, case.shapes, case.domains)


def test_float32_const_chain(backend):
    # constants of every kind in one graph, a numpy scalar among them
    check_float32(backend, lambda a: (2.5 * a - 1) / 3 + np.float64(0.5) * a ** 2, [(3, 4)], ["any"])
