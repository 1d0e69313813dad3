"""The seed's logistic-regression program: per-sample SGD on a synthetic, separable task."""
import numpy as np

import fastad as ad

EPOCHS = 30   # the numpy replay below reaches 100 % train accuracy by epoch 15
LR = 0.1


def make_data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 2))
    y = (x.sum(axis=1) >= 1).astype(np.float64)
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))  # min-max normalisation
    return x, y


def test_logistic_regression(backend):
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(w * x) + b
    h = 1 / (ad.exp_op(-o) + 1)
    l = -(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))
    grad_w, grad_b = ad.gradients(l, [w, b])
    train = ad.Executor([l, grad_w, grad_b], backend=backend)
    predict = ad.Executor([h], backend=backend)

    x_in, y_in = make_data()
    w_val, b_val = np.zeros(2), np.zeros(1)
    w_ref, b_ref = np.zeros(2), np.zeros(1)   # the same SGD with hand-written gradients
    epoch_loss = []
    for _ in range(EPOCHS):
        total = 0.0
        for i in range(len(x_in)):
            l_val, gw, gb = train.run({w: w_val, x: x_in[i], b: b_val, y: y_in[i]})
            assert l_val.shape == (1,) and gw.shape == (2,) and gb.shape == (1,)
            total += float(l_val[0])
            w_val = w_val - LR * gw
            b_val = b_val - LR * gb

            h_ref = 1 / (np.exp(-(np.sum(w_ref * x_in[i]) + b_ref)) + 1)
            w_ref = w_ref - LR * (h_ref - y_in[i]) * x_in[i]
            b_ref = b_ref - LR * (h_ref - y_in[i])
        epoch_loss.append(total / len(x_in))

    np.testing.assert_allclose(w_val, w_ref, rtol=1e-10)
    np.testing.assert_allclose(b_val, b_ref, rtol=1e-10)
    assert epoch_loss[-1] < epoch_loss[0] / 2

    probs = np.array([predict.run({w: w_val, x: xi, b: b_val})[0][0] for xi in x_in])
    accuracy = np.mean((probs >= 0.5) == (y_in == 1))
    assert accuracy >= 0.9, accuracy
