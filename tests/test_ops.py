"""Every op: forward against a numpy reference, gradient against central finite
differences of a scalar loss sum(op(...) * R), second order for a selection of ops,
and float32 forward/backward."""
import numpy as np
import pytest

import fastad as ad
from catalogue import np_log_softmax, np_matmul, np_softmax, np_softmax_cross_entropy
from helpers import assert_grad_close, numeric_grads, rand


def np_sigmoid(x):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)

SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 4)]
BROADCAST_PAIRS = [((3, 4), (4,)), ((4,), (3, 4)), ((4, 1), (1, 5)), ((), (2, 3)),
                   ((2, 3), ()), ((1,), (3,)), ((3,), (1,)), ((2, 1, 4), (3, 1))]
SHAPE_PAIRS = [(s, s) for s in SHAPES] + BROADCAST_PAIRS


def _id(shape):
    return "x".join(map(str, shape)) if shape else "0d"


def check_op(backend, build, ref, inputs, seed=0, fwd_rtol=1e-12, grad=True):
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
    np.testing.assert_allclose(out_val, expected, rtol=fwd_rtol, atol=1e-14)
    np.testing.assert_allclose(loss_val, np.sum(expected * R), rtol=1e-11, atol=1e-12)
    if grad:
        numeric = numeric_grads(lambda *a: np.sum(ref(*a) * R), inputs)
        for i, (g, n) in enumerate(zip(grad_vals, numeric)):
            assert type(g) is np.ndarray and g.dtype == np.float64
            assert g.shape == np.shape(inputs[i]), f"gradient of input {i}"
            assert_grad_close(g, n, err_msg=f"gradient of input {i}")
    return vals


# --- elementwise unary ops -------------------------------------------------------------------

UNARY = [
    # id, build, numpy reference, input domain
    ("neg", ad.neg_op, np.negative, "any"),
    ("neg_operator", lambda x: -x, np.negative, "any"),
    ("exp", ad.exp_op, np.exp, "any"),
    ("ln", ad.ln_op, np.log, "pos"),
    ("log", ad.log_op, np.log, "pos"),
    ("sqrt", ad.sqrt_op, np.sqrt, "pos"),
    ("tanh", ad.tanh_op, np.tanh, "any"),
    ("sigmoid", ad.sigmoid_op, lambda x: 1 / (1 + np.exp(-x)), "any"),
    ("relu", ad.relu_op, lambda x: np.maximum(x, 0), "nonzero"),
    ("sin", ad.sin_op, np.sin, "any"),
    ("cos", ad.cos_op, np.cos, "any"),
    ("oneslike", ad.oneslike_op, np.ones_like, "any"),
    ("zeroslike", ad.zeroslike_op, np.zeros_like, "any"),
    ("add_byconst", lambda x: ad.add_byconst_op(x, 1.5), lambda x: x + 1.5, "any"),
    ("sub_byconst", lambda x: ad.sub_byconst_op(x, 1.5), lambda x: x - 1.5, "any"),
    ("rsub_byconst", lambda x: ad.rsub_byconst_op(x, 1.5), lambda x: 1.5 - x, "any"),
    ("mul_byconst", lambda x: ad.mul_byconst_op(x, -2.5), lambda x: x * -2.5, "any"),
    ("div_byconst", lambda x: ad.div_byconst_op(x, 3.0), lambda x: x / 3.0, "any"),
    ("rdiv_byconst", lambda x: ad.rdiv_byconst_op(x, 2.0), lambda x: 2.0 / x, "nonzero"),
    ("pow_2", lambda x: ad.pow_byconst_op(x, 2), lambda x: x ** 2.0, "any"),
    ("pow_3", lambda x: ad.pow_byconst_op(x, 3), lambda x: x ** 3.0, "any"),
    ("pow_half", lambda x: ad.pow_byconst_op(x, 0.5), lambda x: x ** 0.5, "pos"),
    ("pow_third", lambda x: ad.pow_byconst_op(x, 1 / 3), lambda x: x ** (1 / 3), "pos"),
    ("pow_neg", lambda x: ad.pow_byconst_op(x, -1.5), lambda x: x ** -1.5, "pos"),
    ("pow_2.5", lambda x: ad.pow_byconst_op(x, 2.5), lambda x: x ** 2.5, "pos"),
    ("pow_1", lambda x: ad.pow_byconst_op(x, 1), lambda x: x ** 1.0, "any"),
    ("pow_0", lambda x: ad.pow_byconst_op(x, 0), lambda x: x ** 0.0, "pos"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=_id)
@pytest.mark.parametrize("name,build,ref,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary(backend, name, build, ref, domain, shape):
    x = rand(np.random.default_rng(len(shape)), shape, domain)
    check_op(backend, build, ref, [x])


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


# --- elementwise binary ops with broadcasting --------------------------------------------------

BINARY = [
    ("add", ad.add_op, np.add, "any"),
    ("sub", ad.sub_op, np.subtract, "any"),
    ("mul", ad.mul_op, np.multiply, "any"),
    ("div", ad.div_op, np.divide, "nonzero"),
    ("add_operator", lambda a, b: a + b, np.add, "any"),
    ("sub_operator", lambda a, b: a - b, np.subtract, "any"),
    ("mul_operator", lambda a, b: a * b, np.multiply, "any"),
    ("div_operator", lambda a, b: a / b, np.divide, "nonzero"),
]


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=[f"{_id(a)}-{_id(b)}" for a, b in SHAPE_PAIRS])
@pytest.mark.parametrize("name,build,ref,domain", BINARY, ids=[b[0] for b in BINARY])
def test_binary(backend, name, build, ref, domain, shapes):
    rng = np.random.default_rng(len(shapes[0]) * 10 + len(shapes[1]))
    a = rand(rng, shapes[0], "any")
    b = rand(rng, shapes[1], domain)
    check_op(backend, build, ref, [a, b])


def test_same_node_twice(backend):
    # x * x and x / x: both partials land on one node and must be summed
    x = rand(np.random.default_rng(1), (3,), "nonzero")
    check_op(backend, lambda a: a * a, lambda a: a * a, [x])
    check_op(backend, lambda a: a / a + a - a, lambda a: a / a + a - a, [x])
    check_op(backend, lambda a: ad.matmul_op(a, a), lambda a: np.asarray(a @ a), [x])


# --- reductions ----------------------------------------------------------------------------

REDUCTIONS = [((), None), ((5,), None), ((5,), 0), ((5,), -1), ((3, 4), None), ((3, 4), 0),
              ((3, 4), 1), ((3, 4), -1), ((3, 4), (0, 1)), ((3, 4), (-1, 0)),
              ((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1),
              ((2, 3, 4), (0, 2)), ((2, 3, 4), (-1, -2)), ((1, 3, 1), (0, 2))]


@pytest.mark.parametrize("keepdims", [False, True], ids=["flat", "keepdims"])
@pytest.mark.parametrize("shape,axis", REDUCTIONS, ids=[f"{_id(s)}-axis{a}" for s, a in REDUCTIONS])
@pytest.mark.parametrize("op,ref", [(ad.reduce_sum_op, np.sum), (ad.reduce_mean_op, np.mean)],
                         ids=["sum", "mean"])
def test_reduction(backend, op, ref, shape, axis, keepdims):
    x = rand(np.random.default_rng(2), shape)
    vals = check_op(backend, lambda a: op(a, axis=axis, keepdims=keepdims),
                    lambda a: ref(a, axis=axis, keepdims=keepdims), [x])
    assert vals[0].shape == np.shape(ref(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("op,ref", [(ad.reduce_sum_op, np.sum), (ad.reduce_mean_op, np.mean)],
                         ids=["sum", "mean"])
def test_reduction_defaults_reduce_everything(backend, op, ref):
    x = rand(np.random.default_rng(3), (2, 3))
    vals = check_op(backend, op, ref, [x])
    assert vals[0].shape == ()


# --- broadcast_to ------------------------------------------------------------------------------

BROADCAST_TO = [((4,), (3, 4)), ((), (2, 3)), ((4, 1), (4, 5)), ((1,), (3,)),
                ((3, 1), (2, 3, 4)), ((2, 3), (2, 3)), ((), ())]


@pytest.mark.parametrize("shapes", BROADCAST_TO, ids=[f"{_id(a)}-to-{_id(b)}" for a, b in BROADCAST_TO])
def test_broadcast_to(backend, shapes):
    rng = np.random.default_rng(4)
    a, b = rand(rng, shapes[0]), rand(rng, shapes[1])
    vals = check_op(backend, ad.broadcast_to_op, lambda a, b: np.broadcast_to(a, b.shape), [a, b])
    assert np.array_equal(vals[-1], np.zeros(shapes[1]))  # B only lends its shape


# --- matmul ------------------------------------------------------------------------------------

MATMUL = [((3, 4), (4, 5), False, False), ((4, 3), (4, 5), True, False),
          ((3, 4), (5, 4), False, True), ((4, 3), (5, 4), True, True),
          ((4,), (4, 5), False, False), ((3, 4), (4,), False, False), ((4,), (4,), False, False),
          ((4,), (5, 4), False, True), ((4, 3), (4,), True, False),
          ((1, 4), (4, 1), False, False), ((3, 1), (1, 5), False, False),
          ((1, 1), (1, 1), True, True)]


@pytest.mark.parametrize("sa,sb,ta,tb", MATMUL,
                         ids=[f"{_id(a)}{'T' if ta else ''}@{_id(b)}{'T' if tb else ''}"
                              for a, b, ta, tb in MATMUL])
def test_matmul(backend, sa, sb, ta, tb):
    rng = np.random.default_rng(5)
    a, b = rand(rng, sa), rand(rng, sb)
    check_op(backend, lambda x, y: ad.matmul_op(x, y, trans_A=ta, trans_B=tb),
             lambda x, y: np_matmul(x, y, ta, tb), [a, b])


def test_matmul_positional_flags_and_operator(backend):
    rng = np.random.default_rng(6)
    a, b = rand(rng, (4, 3)), rand(rng, (5, 4))
    check_op(backend, lambda x, y: ad.matmul_op(x, y, True, True), lambda x, y: x.T @ y.T, [a, b])
    check_op(backend, lambda x, y: x @ y, lambda x, y: x @ y, [a.T, b.T])


# --- softmax family ----------------------------------------------------------------------------

LAST_AXIS_SHAPES = [(5,), (4, 6), (2, 3, 5), (1,), (3, 1)]


@pytest.mark.parametrize("shape", LAST_AXIS_SHAPES, ids=_id)
def test_softmax(backend, shape):
    x = rand(np.random.default_rng(7), shape) * 2
    vals = check_op(backend, ad.softmax_op, np_softmax, [x])
    np.testing.assert_allclose(vals[0].sum(axis=-1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("shape", LAST_AXIS_SHAPES, ids=_id)
def test_log_softmax(backend, shape):
    x = rand(np.random.default_rng(8), shape) * 2
    check_op(backend, ad.log_softmax_op, np_log_softmax, [x])


@pytest.mark.parametrize("labels", ["prob", "onehot", "any"])
@pytest.mark.parametrize("shape", LAST_AXIS_SHAPES, ids=_id)
def test_softmax_cross_entropy(backend, shape, labels):
    rng = np.random.default_rng(9)
    logits = rand(rng, shape) * 2
    if labels == "prob":
        t = np_softmax(rand(rng, shape))
    elif labels == "onehot":
        t = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    else:
        t = rand(rng, shape)
    # labels == "any": rows do not sum to 1; the logits gradient is the true derivative,
    # (softmax * sum(labels) - labels) / rows, which finite differences check
    vals = check_op(backend, ad.softmax_cross_entropy_op, np_softmax_cross_entropy, [logits, t])
    assert vals[0].shape == ()
    # the gradients in closed form: (softmax - labels) / rows where label rows sum to 1,
    # and -log_softmax / rows
    rows = int(np.prod(shape[:-1]))
    x, y = ad.Variable("logits"), ad.Variable("labels")
    gx, gy = ad.gradients(ad.softmax_cross_entropy_op(x, y), [x, y])
    gx_val, gy_val = ad.Executor([gx, gy], backend=backend).run({x: logits, y: t})
    want_gx = np_softmax(logits) * np.sum(t, axis=-1, keepdims=True) - t
    if labels != "any":
        want_gx = np_softmax(logits) - t
    np.testing.assert_allclose(gx_val, want_gx / rows, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gy_val, -np_log_softmax(logits) / rows, rtol=1e-12, atol=1e-15)


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

SECOND_ORDER = [
    # id, build, input shapes, domains
    ("mul", lambda a, b: a * b * a, [(3, 4), (4,)], ["any", "any"]),
    ("div", lambda a, b: a / b, [(3,), (3,)], ["any", "nonzero"]),
    ("rdiv_byconst", lambda a: 2.0 / a, [(3,)], ["nonzero"]),
    ("exp", ad.exp_op, [(2, 3)], ["any"]),
    ("ln", ad.ln_op, [(2, 3)], ["pos"]),
    ("sqrt", ad.sqrt_op, [(2, 3)], ["pos"]),
    ("tanh", ad.tanh_op, [(2, 3)], ["any"]),
    ("sigmoid", ad.sigmoid_op, [(2, 3)], ["any"]),
    ("sin", ad.sin_op, [(4,)], ["any"]),
    ("cos", ad.cos_op, [(4,)], ["any"]),
    ("relu", lambda a: ad.relu_op(a) * a, [(5,)], ["nonzero"]),
    ("pow_3", lambda a: a ** 3, [(4,)], ["any"]),
    ("pow_half", lambda a: ad.pow_byconst_op(a, 0.5), [(4,)], ["pos"]),
    ("pow_neg", lambda a: ad.pow_byconst_op(a, -1.5), [(4,)], ["pos"]),
    ("softmax", ad.softmax_op, [(2, 3)], ["any"]),
    ("log_softmax", ad.log_softmax_op, [(2, 3)], ["any"]),
    ("sce", ad.softmax_cross_entropy_op, [(2, 3), (2, 3)], ["any", "unit"]),
    ("sce_1d", lambda a, b: ad.softmax_cross_entropy_op(a * b, b), [(4,), (4,)], ["any", "unit"]),
    ("matmul", lambda a, b: ad.matmul_op(ad.matmul_op(a, b), a, trans_B=True), [(2, 3), (3, 3)],
     ["any", "any"]),
    ("matmul_trans", lambda a, b: ad.matmul_op(a * a, b, trans_A=True, trans_B=True), [(3, 2), (4, 3)],
     ["any", "any"]),
    ("matmul_1d", lambda a, b: ad.matmul_op(a, b) * ad.matmul_op(b, a, trans_A=True), [(3,), (3, 3)],
     ["any", "any"]),
    ("reduce_mean", lambda a: ad.reduce_mean_op(a * a, axis=0, keepdims=True) * a, [(3, 2)], ["any"]),
    ("reduce_sum", lambda a: ad.reduce_sum_op(a * a, axis=-1) * ad.reduce_sum_op(a), [(2, 3)], ["any"]),
    ("broadcast_to", lambda a, b: ad.broadcast_to_op(a * a, b) * b, [(3,), (2, 3)], ["any", "any"]),
    ("broadcasting", lambda a, b: (a - b) * (a + b) / (b * b + 1), [(4, 1), (1, 3)], ["any", "any"]),
]


@pytest.mark.parametrize("name,build,shapes,domains", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order(backend, name, build, shapes, domains):
    rng = np.random.default_rng(10)
    inputs = [rand(rng, s, d) for s, d in zip(shapes, domains)]
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

FLOAT32_CASES = (
    [(u[0], u[1], [u[3]], [(3, 4)]) for u in UNARY]
    + [(b[0], b[1], ["any", b[3]], [(3, 4), (4,)]) for b in BINARY]
    + [("reduce_sum", lambda a: ad.reduce_sum_op(a, axis=0), ["any"], [(3, 4)]),
       ("reduce_mean", lambda a: ad.reduce_mean_op(a, axis=(0, 1), keepdims=True), ["any"], [(3, 4)]),
       ("reduce_all", ad.reduce_sum_op, ["any"], [(3, 4)]),
       ("broadcast_to", ad.broadcast_to_op, ["any", "any"], [(4,), (3, 4)]),
       ("matmul", ad.matmul_op, ["any", "any"], [(3, 4), (4, 2)]),
       ("matmul_trans", lambda a, b: ad.matmul_op(a, b, True, True), ["any", "any"], [(4, 3), (2, 4)]),
       ("matmul_1d", ad.matmul_op, ["any", "any"], [(4,), (4,)]),
       ("softmax", ad.softmax_op, ["any"], [(3, 4)]),
       ("log_softmax", ad.log_softmax_op, ["any"], [(3, 4)]),
       ("sce", ad.softmax_cross_entropy_op, ["any", "unit"], [(3, 4), (3, 4)]),
       ("const_chain", lambda a: (2.5 * a - 1) / 3 + np.float64(0.5) * a ** 2, ["any"], [(3, 4)])])


@pytest.mark.parametrize("name,build,domains,shapes", FLOAT32_CASES, ids=[c[0] for c in FLOAT32_CASES])
def test_float32(backend, name, build, domains, shapes):
    rng = np.random.default_rng(11)
    inputs = [rand(rng, s, d) for s, d in zip(shapes, domains)]
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
