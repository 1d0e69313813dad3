"""The workloads W1..W8: each loss written once against an op namespace `xp`, its
inputs, and its hand-written numpy step; and the settings of a full and a quick run.
W1..W5f and W8 time one step (a Case); W6 and W7 time a training run (a Training)."""
import importlib.util
import math
import os
from dataclasses import dataclass

import numpy as np

from .baselines import (chain_forward_numpy, chain_numpy, cnn_numpy, logreg_batch_numpy,
                        logreg_one_numpy, mlp_numpy)


@dataclass
class Settings:
    repeats: int      # timed loops per executor
    target_s: float   # aimed duration of one loop (sets its number of steps)
    warmup_s: float   # untimed running first; it also estimates the time of a step
    w5_size: int
    w6_epochs: int    # a training run of W6: epochs over its 100 samples
    w7_samples: int   # a training run of W7: one epoch over this many digits


FULL = Settings(repeats=15, target_s=0.05, warmup_s=0.1, w5_size=1_000_000, w6_epochs=20,
                w7_samples=1792)
QUICK = Settings(repeats=5, target_s=0.004, warmup_s=0.01, w5_size=100_000, w6_epochs=2,
                 w7_samples=256)


@dataclass
class Case:
    """One workload, ready to run.

    loss(xp, **arrays) builds the loss from the ops in `xp`; `params` are the arrays it is
    differentiated against (in this order) and `data` the other inputs: a list that the
    steps cycle through.  numpy_step(arrays) is the hand-written numpy equivalent and
    returns [loss, *gradients]."""
    loss: object
    params: dict
    data: list
    numpy_step: object
    grad: bool = True

    def outputs(self):
        return ["loss"] + ([f"d/d{name}" for name in self.params] if self.grad else [])


@dataclass
class Training:
    """A training workload, ready to run: `epochs` passes over `data` ({name: array},
    the samples along the first axis), `batch_size` samples a step (None: one sample,
    without a batch axis, as the seed feeds them), from the initial `params`, with the
    optimizer named `optimizer` (baselines.UPDATES, fastad.optim) at learning rate `lr`.
    `loss` is as in a Case; numpy_step(arrays) is the hand-written forward+backward of
    a step.  The runners in `bitwise` must end at exactly the same parameters."""
    loss: object
    params: dict
    data: dict
    batch_size: object
    epochs: int
    optimizer: str
    lr: float
    numpy_step: object
    bitwise: tuple = ()

    def batches(self):
        """Each step's rows of the data in an epoch: a sample's index, or a slice."""
        n = len(next(iter(self.data.values())))
        if self.batch_size is None:
            return list(range(n))
        return [slice(lo, lo + self.batch_size) for lo in range(0, n, self.batch_size)]

    @property
    def steps(self):
        """Steps of a training run."""
        return self.epochs * len(self.batches())

    def outputs(self):
        """What a run returns: every step's loss, then the final parameters."""
        return ["losses"] + list(self.params)


@dataclass
class Workload:
    name: str
    title: str
    build: object  # Settings -> Case


def logreg_one_loss(xp, w, x, b, y):
    # the seed's graph, node for node
    o = xp.sum(w * x) + b
    h = 1 / (xp.exp(-o) + 1)
    return -(y * xp.log(h) + (1 - y) * xp.log(1 - h))


def build_w1(settings):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (100, 3))
    y = (x.sum(axis=1) >= 1.5).astype(np.float64)
    # like the seed's training loop: each step feeds the next sample, and y[i] is a
    # numpy float64 scalar
    data = [{"x": x[i], "y": y[i]} for i in range(len(x))]
    params = {"w": rng.uniform(-1, 1, 3), "b": rng.uniform(-1, 1, 1)}
    return Case(logreg_one_loss, params, data, logreg_one_numpy)


def logreg_batch_loss(xp, W, b, X, y):
    p = xp.sigmoid(X @ W + b)
    return -xp.mean(y * xp.log(p) + (1 - y) * xp.log(1 - p))


def build_w2(settings):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 100))
    w_true = rng.standard_normal((100, 1))
    y = (X @ w_true > 0).astype(np.float64)
    params = {"W": rng.standard_normal((100, 1)) * 0.1, "b": np.zeros(1)}
    return Case(logreg_batch_loss, params, [{"X": X, "y": y}], logreg_batch_numpy)


def mlp_loss(xp, W1, b1, W2, b2, X, Y):
    h = xp.relu(X @ W1 + b1)
    return xp.softmax_cross_entropy(h @ W2 + b2, Y)


def digits_batch(n, rng):
    """n digits images (64 pixels scaled to [0, 1]) and one-hot labels: scikit-learn's
    digits when installed, else random data of the same shape.  The digits are read from
    the file scikit-learn ships, as importing scikit-learn takes seconds."""
    spec = importlib.util.find_spec("sklearn")
    path = spec and os.path.join(spec.submodule_search_locations[0],
                                 "datasets", "data", "digits.csv.gz")
    if path and os.path.exists(path):
        data = np.loadtxt(path, delimiter=",", max_rows=n)
        X, labels = data[:, :-1] / 16, data[:, -1].astype(int)
    elif spec:
        from sklearn.datasets import load_digits
        digits = load_digits()
        X, labels = digits.data[:n] / 16, digits.target[:n]
    else:
        X, labels = rng.uniform(0, 1, (n, 64)), rng.integers(0, 10, n)
    return X, np.eye(10)[labels]


def mlp_params(rng):
    return {"W1": rng.standard_normal((64, 128)) * math.sqrt(2 / 64),
            "b1": rng.uniform(-0.1, 0.1, 128),
            "W2": rng.standard_normal((128, 10)) * math.sqrt(1 / 128),
            "b2": np.zeros(10)}


def build_w3(settings):
    rng = np.random.default_rng(3)
    X, Y = digits_batch(128, rng)
    return Case(mlp_loss, mlp_params(rng), [{"X": X, "Y": Y}], mlp_numpy)


# The chains cycle through v*a, v+0.5, sigmoid(v), exp(v).  For x in [-1, 1] and a in
# [0.5, 1] every value stays within [-1, e + 0.5]; the gradient w.r.t. x shrinks along the
# chain (hence the relative tolerance).

def chain_loss(n_ops):
    def loss(xp, x, a):
        v = x
        for i in range(n_ops):
            op = i % 4
            if op == 0:
                v = v * a
            elif op == 1:
                v = v + 0.5
            elif op == 2:
                v = xp.sigmoid(v)
            else:
                v = xp.exp(v)
        return xp.sum(v)
    return loss


def chain_case(n, n_ops, seed, grad=True):
    rng = np.random.default_rng(seed)
    params = {"x": rng.uniform(-1, 1, n), "a": rng.uniform(0.5, 1, n)}
    numpy_step = chain_numpy(n_ops) if grad else chain_forward_numpy(n_ops)
    return Case(chain_loss(n_ops), params, [{}], numpy_step, grad)


def build_w6(settings):
    # data like tests/test_train.py's logreg_data: label 1 when the features sum to 1 or more
    rng = np.random.default_rng(6)
    x = rng.random((100, 2))
    y = (x.sum(axis=1) >= 1).astype(np.float64)
    params = {"w": rng.random(2), "b": rng.random(1)}
    return Training(logreg_one_loss, params, {"x": x, "y": y}, None, settings.w6_epochs,
                    "sgd", 0.1, logreg_one_numpy, bitwise=("native", "executor"))


def build_w7(settings):
    rng = np.random.default_rng(7)
    X, Y = digits_batch(settings.w7_samples, rng)
    return Training(mlp_loss, mlp_params(rng), {"X": X, "Y": Y}, 32, 1, "adam", 1e-3,
                    mlp_numpy)


def cnn_loss(xp, K1, c1, K2, c2, W, b, X, Y):
    # examples/cnn_digits.py's net
    h = xp.max_pool2d(xp.relu(xp.conv2d(X, K1, padding=1) + c1), 2)
    h = xp.max_pool2d(xp.relu(xp.conv2d(h, K2, padding=1) + c2), 2)
    return xp.softmax_cross_entropy(xp.reshape(h, (-1, 64)) @ W + b, Y)


def build_w8(settings):
    rng = np.random.default_rng(8)
    X, Y = digits_batch(64, rng)
    params = {"K1": rng.standard_normal((8, 1, 3, 3)) * math.sqrt(2 / 9),
              "c1": rng.uniform(-0.1, 0.1, (8, 1, 1)),
              "K2": rng.standard_normal((16, 8, 3, 3)) * math.sqrt(2 / 72),
              "c2": rng.uniform(-0.1, 0.1, (16, 1, 1)),
              "W": rng.standard_normal((64, 10)) * math.sqrt(1 / 64),
              "b": np.zeros(10)}
    return Case(cnn_loss, params, [{"X": X.reshape(-1, 1, 8, 8), "Y": Y}], cnn_numpy)


WORKLOADS = [
    Workload("W1", "seed logistic regression, 1 sample x 3 features, the seed's graph "
             "(reduce_sum, exp, ln); steps cycle through 100 samples",
             build_w1),
    Workload("W2", "logistic regression, batch 1000 x 100: matmul, bias broadcast, "
             "sigmoid_op, mean cross-entropy from ln_op",
             build_w2),
    Workload("W3", "MLP 64-128-10, relu, softmax_cross_entropy_op, batch 128 of the digits "
             "(random pixels without scikit-learn)",
             build_w3),
    Workload("W4", "chain of 200 elementwise ops (x*a, +0.5, sigmoid, exp) on length 16, "
             "grads w.r.t. x and a",
             lambda s: chain_case(16, 200, seed=4)),
    Workload("W5", "chain of 20 elementwise ops on length {w5_size:,}, grads w.r.t. x and a",
             lambda s: chain_case(s.w5_size, 20, seed=5)),
    Workload("W5f", "W5 forward only (the loss, no gradients)",
             lambda s: chain_case(s.w5_size, 20, seed=5, grad=False)),
    Workload("W6", "training the seed's logistic regression: per-sample SGD (lr 0.1), "
             "100 samples x 2 features, {w6_epochs} epochs", build_w6),
    Workload("W7", "training the MLP of W3: Adam (lr 1e-3), batches of 32, one epoch over "
             "{w7_samples:,} digits", build_w7),
    Workload("W8", "CNN conv(8, 3x3, pad 1)-relu-maxpool 2-conv(16, 3x3, pad 1)-relu-maxpool "
             "2-dense 10, softmax_cross_entropy_op, batch 64 of the 8x8 digits (random pixels "
             "without scikit-learn)", build_w8),
]
