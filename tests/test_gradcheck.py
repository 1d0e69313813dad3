"""`ad.check_gradients`: passes on correct graphs, catches a wrong gradient rule, says
when float32 feeds were upcast, and reports per input."""
import numpy as np
import pytest

import fastad as ad
from helpers import rand


class BadSquare(ad.Op):
    """x**2 with a wrong gradient rule (3x instead of 2x)."""
    name = "bad_square"

    def compute(self, node, vals):
        return vals[0] ** 2

    def gradient(self, node, g):
        return [g * node.inputs[0] * 3]


class NanGradient(ad.Op):
    """The identity with a NaN gradient."""
    name = "nan_gradient"

    def compute(self, node, vals):
        return vals[0].copy()

    def gradient(self, node, g):
        return [g * float("nan")]


def _logreg():
    w, x, b, y = (ad.Variable(n) for n in ("w", "x", "b", "y"))
    h = ad.sigmoid_op(ad.matmul_op(x, w) + b)
    loss = -ad.reduce_mean_op(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))
    rng = np.random.default_rng(0)
    feed = {w: rand(rng, (3,)), x: rand(rng, (5, 3)), b: rand(rng, ()),
            y: (rng.uniform(size=5) > 0.5).astype(np.float64)}
    return loss, [w, b, x], feed


def test_passes_on_a_correct_graph(backend):
    loss, inputs, feed = _logreg()
    report = ad.check_gradients(loss, inputs, feed, backend=backend)
    assert report.ok and not report.projected and report.upcast == []
    assert [c.name for c in report.inputs] == ["w", "b", "x"]
    assert report.backend == backend and report.eps == 1e-6
    for c, x in zip(report.inputs, inputs):
        assert c.ok and c.max_abs_error < 1e-8 and c.max_rel_error < 1e-6
        assert len(c.worst_index) == np.ndim(feed[x])
        assert c.analytic.shape == c.numeric.shape == np.shape(feed[x])
    assert str(report).startswith("gradient check passed")


def test_non_scalar_output_is_projected(backend):
    a, b = ad.Variable("a"), ad.Variable("b")
    out = ad.matmul_op(ad.softmax_op(ad.matmul_op(a, b)) * ad.tanh_op(a), b)  # (2, 3)
    rng = np.random.default_rng(1)
    feed = {a: rand(rng, (2, 3)), b: rand(rng, (3, 3))}
    report = ad.check_gradients(out, [a, b], feed, backend=backend)
    assert report.ok and report.projected
    assert "checked sum(output * R)" in str(report)


def test_catches_a_wrong_gradient_rule(backend):
    x, w = ad.Variable("x"), ad.Variable("w")
    f = ad.reduce_sum_op(BadSquare()(x) * w)
    feed = {x: np.array([[1.0, -2.0], [0.5, 3.0]]), w: np.array([1.0, 2.0])}
    with pytest.raises(ad.GradientCheckError) as info:
        ad.check_gradients(f, [x, w], feed, backend=backend)
    err = info.value
    assert isinstance(err, AssertionError)
    bad, good = err.report.inputs
    assert not bad.ok and good.ok and not err.report.ok
    # d/dx = 2 x w, the rule says 3 x w: worst at x[1, 1] = 3, w[1] = 2 (18 vs 12)
    assert bad.worst_index == (1, 1)
    assert bad.max_abs_error == pytest.approx(6.0, rel=1e-6)
    assert bad.max_rel_error == pytest.approx(1 / 3, rel=1e-6)
    message = str(err)
    assert message.startswith("gradient check failed for 1 of 2 inputs")
    assert "x: MISMATCH" in message and "w: ok" in message
    assert "worst at index (1, 1): analytic 18, numeric 12" in message


def test_a_nan_gradient_fails():
    x = ad.Variable("x")
    with pytest.raises(ad.GradientCheckError, match="x: MISMATCH"):
        ad.check_gradients(ad.reduce_sum_op(NanGradient()(x)), [x], {x: np.ones(3)})


def test_float32_feeds_are_checked_in_float64(backend):
    x, y = ad.Variable("x"), ad.Variable("y")
    feed = {x: np.array([0.5, 1.0, 2.0], np.float32), y: np.float32(3.0)}
    before = feed[x].copy()
    with pytest.warns(UserWarning, match="float32 feeds checked in float64: x, y"):
        report = ad.check_gradients(ad.reduce_sum_op(ad.sin_op(x) * y), [x], feed, backend=backend)
    assert report.ok and report.upcast == ["x", "y"]
    assert "note: float32 feeds checked in float64: x, y" in str(report)
    assert report.inputs[0].analytic.dtype == np.float64
    np.testing.assert_allclose(report.inputs[0].analytic, 3 * np.cos([0.5, 1.0, 2.0]), rtol=1e-12)
    assert feed[x].dtype == np.float32 and np.array_equal(feed[x], before)  # feeds untouched


def test_tolerances_are_used():
    x = ad.Variable("x")
    f = ad.reduce_sum_op(ad.exp_op(x))
    feed = {x: np.array([1.0, 2.0])}
    # eps = 1e-2: truncation error ~ eps^2 e^x / 6 ~ 1e-4, beyond the default rtol
    with pytest.raises(ad.GradientCheckError):
        ad.check_gradients(f, [x], feed, eps=1e-2)
    assert ad.check_gradients(f, [x], feed, eps=1e-2, rtol=1e-3).ok


def test_inputs_must_be_fed():
    x, y = ad.Variable("x"), ad.Variable("y")
    with pytest.raises(ValueError, match="not in feed_dict: y"):
        ad.check_gradients(x * y, [x, y], {x: 1.0})
