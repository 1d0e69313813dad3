"""The ops for models beyond the seed (issue 11), where the catalogue's generic checks
don't reach: accuracy where the naive formula fails, ties, comparisons with numbers,
the numpy-style and TensorFlow-style spellings, and bad input on both backends."""
import math

import numpy as np
import pytest

import fastad as ad
import mpmath
from fastad import numpy_names


def run(nodes, feed, backend):
    return ad.Executor(nodes, backend=backend).run(feed)


def grad_of(build, x_val, backend):
    x = ad.Variable("x")
    y = build(x)
    g, = ad.gradients(ad.reduce_sum_op(y), [x])
    return run([y, g], {x: x_val}, backend)


# --- accuracy where the naive formula is not ---------------------------------------------------

TINY = np.array([1e-300, -1e-300, 1e-20, -1e-17, 3e-10, 1e-5, 0.0, -0.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log1p_and_expm1_keep_tiny_arguments(backend, dtype):
    """log1p(x) = x and expm1(x) = x to the last bit for tiny x (log(1 + x) gives 0),
    numpy's own values, with derivatives 1/(1+x) and exp(x) near 1."""
    v = TINY.astype(dtype)
    for build, ref, deriv in [(ad.log1p_op, np.log1p, lambda v: 1 / (1 + v)),
                              (ad.expm1_op, np.expm1, np.exp)]:
        y, g = grad_of(build, v, backend)
        assert y.dtype == dtype and np.array_equal(y, ref(v)) and np.array_equal(np.signbit(y), np.signbit(v))
        small = np.abs(v) < 1e-15
        assert np.array_equal(y[small], v[small])  # the argument itself
        np.testing.assert_allclose(g, deriv(v), rtol=4 * np.finfo(dtype).eps)


LARGE = np.array([-1000.0, -745.0, -100.0, -30.0, 0.0, 30.0, 100.0, 745.0, 1000.0])


def test_softplus_and_log_sigmoid_for_large_arguments(backend):
    """log(1 + exp(x)) overflows above 709 and loses everything below -37; the ops stay
    within a few ulps of the exact value, and their gradients are sigmoid(±x), no nan."""
    with mpmath.workdps(50):
        exact = np.array([float(mpmath.log1p(mpmath.exp(v))) for v in LARGE])
        sig = np.array([float(1 / (1 + mpmath.exp(-v))) for v in LARGE])
    y, g = grad_of(ad.softplus_op, LARGE, backend)
    np.testing.assert_allclose(y, exact, rtol=4e-16, atol=0)
    np.testing.assert_allclose(g, sig, rtol=4e-16, atol=0)

    y, g = grad_of(ad.log_sigmoid_op, LARGE, backend)
    np.testing.assert_allclose(y, -exact[::-1], rtol=4e-16, atol=0)
    np.testing.assert_allclose(g, sig[::-1], rtol=4e-16, atol=0)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))


def test_sigmoid_cross_entropy_is_stable_for_huge_logits(backend):
    """The seed's warning: log(sigmoid(z)) overflows/underflows for |z| >> 1.  Here the
    loss is max(z, 0) - z t + log1p(exp(-|z|)), finite, and its gradient (sigmoid(z) - t)/n."""
    z = ad.Variable("z"), ad.Variable("t")
    z, t = z
    loss = ad.sigmoid_cross_entropy_op(z, t)
    gz, gt = ad.gradients(loss, [z, t])
    zv = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    tv = np.array([0.0, 1.0, 0.5, 0.0, 1.0])
    val, gzv, gtv = run([loss, gz, gt], {z: zv, t: tv}, backend)
    want = np.mean(np.maximum(zv, 0) - zv * tv + np.log1p(np.exp(-np.abs(zv))))
    assert np.isfinite(val) and math.isclose(val, want, rel_tol=1e-15)
    sig = np.array([0.0, math.exp(-50), 0.5, 1.0, 1.0])
    np.testing.assert_allclose(gzv, (sig - tv) / 5, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(gtv, -zv / 5, rtol=1e-15)


def test_logsumexp_is_stable(backend):
    """No overflow at 1000, no nan at -inf; the gradient exp(x - logsumexp) carries the
    rounding of x - logsumexp, |x| ulps (2e-13 at |x| = 1000)."""
    x = ad.Variable("x")
    y = ad.logsumexp_op(x, axis=-1)
    g, = ad.gradients(ad.reduce_sum_op(y), [x])
    xv = np.array([[1000.0, 1000.0, -np.inf], [-1000.0, -1001.0, -1002.0]])
    yv, gv = run([y, g], {x: xv}, backend)
    np.testing.assert_allclose(yv, [1000 + math.log(2), -1000 + math.log1p(math.exp(-1) + math.exp(-2))],
                               rtol=1e-15)
    np.testing.assert_allclose(gv.sum(axis=-1), 1.0, rtol=2e-13)
    assert gv[0, 2] == 0.0 and gv[0, 0] == gv[0, 1]
    np.testing.assert_allclose(gv[0, :2], 0.5, rtol=2e-13)


# --- ties, masks and spellings -----------------------------------------------------------------

def test_max_gradient_is_shared_among_ties(backend):
    xv = np.array([[3.0, 1.0, 3.0, 3.0], [0.0, -1.0, -2.0, -0.0]])
    for op, want in [(ad.reduce_max_op, [[1 / 3, 0, 1 / 3, 1 / 3], [0.5, 0, 0, 0.5]]),
                     (ad.reduce_min_op, [[0, 1, 0, 0], [0, 0, 1, 0]])]:
        y, g = grad_of(lambda x: op(x, axis=1), xv, backend)
        assert np.array_equal(y, np.max(xv, axis=1) if op is ad.reduce_max_op else np.min(xv, axis=1))
        np.testing.assert_allclose(g, want, rtol=1e-15)


def test_max_pool_gradient_goes_to_the_first_maximum(backend):
    """As np.argmax picks it: one window element gets the gradient, even among ties."""
    xv = np.array([[[[1.0, 1.0], [0.0, 1.0]]]])
    y, g = grad_of(lambda x: ad.max_pool2d_op(x, 2), xv, backend)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 1.0
    assert np.array_equal(g, [[[[1.0, 0.0], [0.0, 0.0]]]])


def test_comparisons_with_numbers_are_masks_without_gradient(backend):
    x = ad.Variable("x")
    xv = np.array([-1.0, 0.0, 0.5, 2.0])
    masks = [x < 0.5, x <= 0.5, x > 0.5, x >= 0.5, 0.5 < x, ad.equal_op(x, ad.full_like_op(x, 0.5))]
    want = [xv < 0.5, xv <= 0.5, xv > 0.5, xv >= 0.5, 0.5 < xv, xv == 0.5]
    got = run(masks, {x: xv}, backend)
    for m, w in zip(got, want):
        assert m.dtype == np.float64 and np.array_equal(m, w.astype(float))
    g, = ad.gradients(ad.reduce_sum_op(ad.where_op(x > 0.0, x * x, -x) + (x < 1.0)), [x])
    gv, = run([g], {x: xv}, backend)
    assert np.array_equal(gv, np.where(xv > 0, 2 * xv, -1.0))


def test_masks_take_the_floating_dtype(backend):
    x = ad.Variable("x")
    m, = run([x > 0.0], {x: np.array([1.0, -1.0], dtype=np.float32)}, backend)
    assert m.dtype == np.float32 and np.array_equal(m, [1.0, 0.0])


def test_numpy_style_names_are_the_same_ops():
    for name in dir(numpy_names):
        obj = getattr(numpy_names, name)
        if isinstance(obj, ad.Op):
            assert getattr(ad, name) is obj, name
    assert ad.exp is ad.exp_op and ad.log is ad.ln_op and ad.sum is ad.reduce_sum_op
    assert ad.max is ad.reduce_max_op and ad.concat is ad.concat_op and ad.where is ad.where_op


def test_tensorflow_era_reduction_keywords(backend):
    x = ad.Variable("x")
    xv = np.arange(6.0).reshape(2, 3)
    nodes = [ad.reduce_sum_op(x, reduction_indices=1), ad.reduce_mean_op(x, reduction_indices=0, keep_dims=True),
             ad.reduce_sum(x, axis=[0, 1])]
    s, m, t = run(nodes, {x: xv}, backend)
    assert np.array_equal(s, xv.sum(axis=1)) and np.array_equal(m, xv.mean(axis=0, keepdims=True))
    assert t == 15.0
    with pytest.raises(TypeError, match="axis"):
        ad.reduce_sum_op(x, axis=0, reduction_indices=0)


def test_stacked_matmul_broadcasts_batch_axes_through_blas(backend):
    a, b = ad.Variable("a"), ad.Variable("b")
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    y = ad.matmul_op(a, b)
    yt = ad.matmul_op(a, ad.transpose_op(b, (0, 2, 1)), trans_B=True)
    got, got_t = run([y, yt], {a: av, b: bv}, backend)
    np.testing.assert_allclose(got, np.matmul(av, bv), rtol=1e-14)
    assert got.shape == (2, 5, 3, 2) and np.array_equal(got, got_t)


# --- bad input: clear errors naming op, node and shapes ---------------------------------------

X34 = np.zeros((3, 4))
IMG = np.zeros((1, 1, 3, 3))
K2 = np.zeros((1, 1, 2, 2))

BAD_RUNS = [  # (build from x, w), feed for x, w, error, message pattern
    (lambda x, w: x[5], X34, None, IndexError, r"getitem node 'x\[5\]'.*index 5 is out of range.*\(3, 4\)"),
    (lambda x, w: x[-4], X34, None, IndexError, r"index -4 is out of range for axis 0 of size 3"),
    (lambda x, w: x[:, np.array([0, 4])], X34, None, IndexError, r"index 4 is out of range for axis 1"),
    (lambda x, w: x[1, 2, 3], X34, None, IndexError, r"too many indices.*\(3, 4\)"),
    (lambda x, w: ad.concat_op([x, w], 0), X34, np.zeros((2, 5)), ValueError,
     r"concat node 'Concat\(x,w\)': shapes differ off axis 0 \(input shapes \(3, 4\) and \(2, 5\)\)"),
    (lambda x, w: ad.concat_op([x, w], 2), X34, X34, ValueError, r"axis 2 is out of range"),
    (lambda x, w: ad.stack_op([x, w]), X34, np.zeros((4, 3)), ValueError, r"stack node .*one shape"),
    (lambda x, w: ad.conv2d_op(x, w, padding=1), IMG, np.zeros((1, 1, 6, 6)), ValueError,
     r"conv2d node 'Conv2d\(x,w\)': the 6x6 kernel does not fit the 3x3 input padded by 1"),
    (lambda x, w: ad.conv2d_op(x, w), np.zeros((1, 2, 3, 3)), K2, ValueError, r"2 channels, weights 1"),
    (lambda x, w: ad.conv2d_op(x, w), np.zeros((2, 3, 3)), K2, ValueError, r"4-d"),
    (lambda x, w: ad.max_pool2d_op(x, 4), IMG, None, ValueError, r"max_pool2d node .*4x4 window does not fit 3x3"),
    (lambda x, w: ad.avg_pool2d_op(x, 2), X34, None, ValueError, r"avg_pool2d node .*NCHW"),
    (lambda x, w: ad.reduce_max_op(x, axis=1), np.zeros((3, 0)), None, ValueError, r"reduce_max node .*empty"),
    (lambda x, w: ad.reshape_op(x, (5, -1)), X34, None, ValueError, r"cannot reshape 12 elements to \(5, -1\)"),
    (lambda x, w: ad.transpose_op(x, (0, 0)), X34, None, ValueError, r"not a permutation"),
    (lambda x, w: ad.where_op(x, x, w), X34, np.zeros((2, 4)), ValueError, r"where node .*do not broadcast"),
    (lambda x, w: ad.maximum_op(x, w), X34, np.zeros((2, 4)), ValueError, r"maximum node .*do not broadcast"),
    (lambda x, w: ad.matmul_op(x, w), np.zeros((2, 3, 4)), np.zeros((3, 5, 2)), ValueError, r"matmul node"),
    (lambda x, w: ad.sigmoid_cross_entropy_op(x, w), X34, np.zeros((4, 3)), ValueError, r"labels"),
]


@pytest.mark.parametrize("case", range(len(BAD_RUNS)))
def test_bad_input_is_named_at_run_time(backend, case):
    build, xv, wv, error, pattern = BAD_RUNS[case]
    x, w = ad.Variable("x"), ad.Variable("w")
    node = build(x, w)
    feed = {x: xv} if wv is None else {x: xv, w: wv}
    with pytest.raises(error, match=pattern):
        run([node], feed, backend)


BAD_BUILDS = [  # raised while the graph is built: no shapes needed
    (lambda x: ad.conv2d_op(x, x, stride=1.5), ValueError, r"conv2d node .*stride must be a positive integer, not 1.5"),
    (lambda x: ad.conv2d_op(x, x, stride="2"), ValueError, r"stride must be a positive integer, not '2'"),
    (lambda x: ad.conv2d_op(x, x, stride=True), ValueError, r"stride must be a positive integer, not True"),
    (lambda x: ad.conv2d_op(x, x, stride=0), ValueError, r"stride must be a positive integer, not 0"),
    (lambda x: ad.conv2d_op(x, x, padding=-1), ValueError, r"padding must be a non-negative integer"),
    (lambda x: ad.max_pool2d_op(x, 2.0), ValueError, r"kernel must be a positive integer, not 2.0"),
    (lambda x: ad.max_pool2d_op(x, 2, 0), ValueError, r"stride must be a positive integer, not 0"),
    (lambda x: ad.avg_pool2d_op(x, 2, 1.5), ValueError, r"stride must be a positive integer, not 1.5"),
    (lambda x: x[1.5], TypeError, r"getitem of node 'x': .*not float"),
    (lambda x: x[np.array([True, False])], TypeError, r"integer arrays, not bool.*where_op"),
    (lambda x: x[np.array([0]), np.array([1])], TypeError, r"one integer array at most"),
    (lambda x: x[::0], ValueError, r"step 0"),
    (lambda x: x[0.5:], TypeError, r"not an integer"),
    (lambda x: x[..., 0, ...], IndexError, r"single ellipsis"),
    (lambda x: ad.reshape_op(x, (-1, -1)), ValueError, r"one -1 at most"),
    (lambda x: ad.pad_op(x, -1), ValueError, r"pad_width -1 is negative"),
]


@pytest.mark.parametrize("case", range(len(BAD_BUILDS)))
def test_bad_arguments_are_named_when_the_graph_is_built(case):
    build, error, pattern = BAD_BUILDS[case]
    with pytest.raises(error, match=pattern):
        node = build(ad.Variable("x"))
        # an op that checks its arguments when shapes are known must still say so by then
        for backend in ("native", "python"):
            run([node], {node.inputs[0]: np.zeros((1, 1, 4, 4))}, backend)
