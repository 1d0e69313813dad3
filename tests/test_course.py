"""The CSE 599W assignment-1 tests, in the course's style (exact comparisons), plus the
usual extension set (neg, sub, div, ln, exp, reduce_sum).  Every test runs per backend."""
import numpy as np

import fastad as ad


def test_identity(backend):
    x2 = ad.Variable(name="x2")
    y = x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))


def test_add_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = 5 + x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val + 5)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))


def test_mul_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = 5 * x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val * 5)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val) * 5)


def test_add_two_vars(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x2 + x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val + x3_val)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))
    assert np.array_equal(grad_x3_val, np.ones_like(x3_val))


def test_mul_two_vars(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x2 * x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val * x3_val)
    assert np.array_equal(grad_x2_val, x3_val)
    assert np.array_equal(grad_x3_val, x2_val)


def test_add_mul_mix_1(backend):
    x1 = ad.Variable(name="x1")
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x1 + x2 * x3 * x1

    grad_x1, grad_x2, grad_x3 = ad.gradients(y, [x1, x2, x3])

    executor = ad.Executor([y, grad_x1, grad_x2, grad_x3], backend=backend)
    x1_val = 1 * np.ones(3)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x1_val, grad_x2_val, grad_x3_val = executor.run(
        feed_dict={x1: x1_val, x2: x2_val, x3: x3_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x1_val + x2_val * x3_val * x1_val)
    assert np.array_equal(grad_x1_val, np.ones_like(x1_val) + x2_val * x3_val)
    assert np.array_equal(grad_x2_val, x3_val * x1_val)
    assert np.array_equal(grad_x3_val, x2_val * x1_val)


def test_add_mul_mix_2(backend):
    x1 = ad.Variable(name="x1")
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    x4 = ad.Variable(name="x4")
    y = x1 + x2 * x3 * x4

    grad_x1, grad_x2, grad_x3, grad_x4 = ad.gradients(y, [x1, x2, x3, x4])

    executor = ad.Executor([y, grad_x1, grad_x2, grad_x3, grad_x4], backend=backend)
    x1_val = 1 * np.ones(3)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    x4_val = 4 * np.ones(3)
    y_val, grad_x1_val, grad_x2_val, grad_x3_val, grad_x4_val = executor.run(
        feed_dict={x1: x1_val, x2: x2_val, x3: x3_val, x4: x4_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x1_val + x2_val * x3_val * x4_val)
    assert np.array_equal(grad_x1_val, np.ones_like(x1_val))
    assert np.array_equal(grad_x2_val, x3_val * x4_val)
    assert np.array_equal(grad_x3_val, x2_val * x4_val)
    assert np.array_equal(grad_x4_val, x2_val * x3_val)


def test_add_mul_mix_3(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    z = x2 * x2 + x2 + x3 + 3
    y = z * z + x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    z_val = x2_val * x2_val + x2_val + x3_val + 3
    expected_yval = z_val * z_val + x3_val
    expected_grad_x2_val = 2 * (x2_val * x2_val + x2_val + x3_val + 3) * (2 * x2_val + 1)
    expected_grad_x3_val = 2 * (x2_val * x2_val + x2_val + x3_val + 3) + 1
    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, expected_yval)
    assert np.array_equal(grad_x2_val, expected_grad_x2_val)
    assert np.array_equal(grad_x3_val, expected_grad_x3_val)


def test_grad_of_grad(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x2 * x2 + x2 * x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])
    grad_x2_x2, grad_x2_x3 = ad.gradients(grad_x2, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3, grad_x2_x2, grad_x2_x3], backend=backend)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val, grad_x2_x2_val, grad_x2_x3_val = executor.run(
        feed_dict={x2: x2_val, x3: x3_val})

    expected_yval = x2_val * x2_val + x2_val * x3_val
    expected_grad_x2_val = 2 * x2_val + x3_val
    expected_grad_x3_val = x2_val
    expected_grad_x2_x2_val = 2 * np.ones_like(x2_val)
    expected_grad_x2_x3_val = 1 * np.ones_like(x2_val)

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, expected_yval)
    assert np.array_equal(grad_x2_val, expected_grad_x2_val)
    assert np.array_equal(grad_x3_val, expected_grad_x3_val)
    assert np.array_equal(grad_x2_x2_val, expected_grad_x2_x2_val)
    assert np.array_equal(grad_x2_x3_val, expected_grad_x2_x3_val)


def test_matmul_two_vars(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = ad.matmul_op(x2, x3)

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    x2_val = np.array([[1, 2], [3, 4], [5, 6]])  # 3x2, int64
    x3_val = np.array([[7, 8, 9], [10, 11, 12]])  # 2x3, int64

    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    expected_yval = np.matmul(x2_val, x3_val)
    expected_grad_x2_val = np.matmul(np.ones_like(expected_yval), np.transpose(x3_val))
    expected_grad_x3_val = np.matmul(np.transpose(x2_val), np.ones_like(expected_yval))

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, expected_yval)
    assert np.array_equal(grad_x2_val, expected_grad_x2_val)
    assert np.array_equal(grad_x3_val, expected_grad_x3_val)


# --- the extension set -------------------------------------------------------------------

def test_neg(backend):
    x2 = ad.Variable(name="x2")
    y = -x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, -x2_val)
    assert np.array_equal(grad_x2_val, -np.ones_like(x2_val))


def test_sub_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = x2 - 2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val - 2)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))


def test_rsub_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = 2 - x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 3 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, 2 - x2_val)
    assert np.array_equal(grad_x2_val, -np.ones_like(x2_val))


def test_sub_two_vars(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x2 - x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val - x3_val)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))
    assert np.array_equal(grad_x3_val, -np.ones_like(x3_val))


def test_div_two_vars(backend):
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = x2 / x3

    grad_x2, grad_x3 = ad.gradients(y, [x2, x3])

    executor = ad.Executor([y, grad_x2, grad_x3], backend=backend)
    # powers of two: every way of computing 1/x3 and -x2/x3**2 is exact
    x2_val = np.array([2.0, 1.0, -4.0, 0.5])
    x3_val = np.array([4.0, 0.5, 2.0, -8.0])
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val / x3_val)
    assert np.array_equal(grad_x2_val, 1 / x3_val)
    assert np.array_equal(grad_x3_val, -x2_val / (x3_val * x3_val))

    # general values: a single division is exact, the gradient within a few ulps
    x2_val = 2 * np.ones(3)
    x3_val = 3 * np.ones(3)
    y_val, grad_x2_val, grad_x3_val = executor.run(feed_dict={x2: x2_val, x3: x3_val})
    assert np.array_equal(y_val, x2_val / x3_val)
    np.testing.assert_allclose(grad_x2_val, 1 / x3_val, rtol=1e-15)
    np.testing.assert_allclose(grad_x3_val, -x2_val / (x3_val * x3_val), rtol=1e-15)


def test_div_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = x2 / 5

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, x2_val / 5)
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val) / 5)


def test_rdiv_by_const(backend):
    x2 = ad.Variable(name="x2")
    y = 1 / x2

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = np.array([2.0, 4.0, -0.5, 1.0])  # powers of two: exact
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, 1 / x2_val)
    assert np.array_equal(grad_x2_val, -1 / x2_val ** 2)

    x2_val = np.array([3.0, -7.0, 0.3])
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})
    assert np.array_equal(y_val, 1 / x2_val)
    np.testing.assert_allclose(grad_x2_val, -1 / x2_val ** 2, rtol=1e-15)


def test_div_mix(backend):
    x1 = ad.Variable(name="x1")
    x2 = ad.Variable(name="x2")
    x3 = ad.Variable(name="x3")
    y = (x1 / x2 + 3) / (x2 / x1 - x3)

    grad_x1, grad_x2, grad_x3 = ad.gradients(y, [x1, x2, x3])
    executor = ad.Executor([y, grad_x1, grad_x2, grad_x3], backend=backend)

    def expected(x1, x2, x3):
        a = x1 / x2 + 3
        b = x2 / x1 - x3
        return (a / b,
                1 / (x2 * b) + a * x2 / (x1 * x1 * b * b),
                -x1 / (x2 * x2 * b) - a / (x1 * b * b),
                a / (b * b))

    # dyadic values (a = x1/x2 + 3 and b = x2/x1 - x3 are short binary fractions): every
    # intermediate is exact, so any evaluation order gives these exact values
    x1_val = np.array([2.0, 1.0, 4.0])
    x2_val = np.array([4.0, 2.0, 2.0])
    x3_val = np.array([1.0, 1.5, -0.5])
    vals = executor.run(feed_dict={x1: x1_val, x2: x2_val, x3: x3_val})
    exp = expected(x1_val, x2_val, x3_val)
    assert np.array_equal(exp[0], [3.5, 7.0, 5.0 / 1.0])
    for got, want in zip(vals, exp):
        assert np.array_equal(got, want)

    # general values: a few roundings apart
    rng = np.random.default_rng(7)
    x1_val = rng.uniform(1, 2, 5)
    x2_val = rng.uniform(1, 2, 5)
    x3_val = rng.uniform(-2, -1, 5)
    vals = executor.run(feed_dict={x1: x1_val, x2: x2_val, x3: x3_val})
    for got, want in zip(vals, expected(x1_val, x2_val, x3_val)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_ln(backend):
    x2 = ad.Variable(name="x2")
    y = ad.ln_op(x2)

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = np.array([1, 2, 4, 8])  # int64; 1/x exact
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, np.log(x2_val.astype(float)))
    assert np.array_equal(grad_x2_val, 1 / x2_val)


def test_log_alias(backend):
    x2 = ad.Variable(name="x2")
    y = ad.log_op(x2)

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, np.log(x2_val))
    assert np.array_equal(grad_x2_val, 1 / x2_val)


def test_exp(backend):
    x2 = ad.Variable(name="x2")
    y = ad.exp_op(x2)

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = np.array([0, 1, 2, -3, 5])  # int64
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, np.exp(x2_val.astype(float)))
    assert np.array_equal(grad_x2_val, np.exp(x2_val.astype(float)))


def test_exp_is_numpys_exp(backend):
    # the course compares exp with np.array_equal: bit for bit on the kind of values its
    # tests feed (small integers and halves), within 1 ulp of numpy's everywhere else
    x2 = ad.Variable(name="x2")
    executor = ad.Executor([ad.exp_op(x2)], backend=backend)
    small = np.concatenate([np.arange(-30, 31), np.arange(-30, 31) + 0.5])
    y_val, = executor.run(feed_dict={x2: small})
    assert np.array_equal(y_val, np.exp(small))
    for x2_val in (np.arange(-745, 710), np.random.default_rng(3).uniform(-20, 20, 1000)):
        y_val, = executor.run(feed_dict={x2: x2_val})
        np.testing.assert_array_max_ulp(y_val, np.exp(x2_val.astype(float)), maxulp=1)


def test_reduce_sum(backend):
    x2 = ad.Variable(name="x2")
    y = ad.reduce_sum_op(x2)

    grad_x2, = ad.gradients(y, [x2])

    executor = ad.Executor([y, grad_x2], backend=backend)
    x2_val = 2 * np.ones(3)
    y_val, grad_x2_val = executor.run(feed_dict={x2: x2_val})

    assert isinstance(y, ad.Node)
    assert np.array_equal(y_val, 6.0)
    assert np.shape(y_val) == ()
    assert np.array_equal(grad_x2_val, np.ones_like(x2_val))


def test_reduce_sum_mix(backend):
    x1 = ad.Variable(name="x1")
    y = ad.exp_op(ad.reduce_sum_op(x1))

    grad_x1, = ad.gradients(y, [x1])

    executor = ad.Executor([y, grad_x1], backend=backend)
    x1_val = 2 * np.ones(3)
    y_val, grad_x1_val = executor.run(feed_dict={x1: x1_val})

    expected_y_val = np.exp(np.sum(x1_val))
    assert np.array_equal(y_val, expected_y_val)
    assert np.array_equal(grad_x1_val, expected_y_val * np.ones_like(x1_val))
