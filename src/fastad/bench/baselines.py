"""The hand-written numpy forward+backward of each workload: the floor for numpy code.
A step takes the dict of a case's arrays and returns [loss, *gradients] (W5f's: [loss]);
the chain_* functions make the step for a chain of n_ops ops.  The optimizers' updates
in numpy (UPDATES) are for the training workloads W6 and W7."""
import numpy as np


def logreg_one_numpy(a):
    w, x, b, y = a["w"], a["x"], a["b"], a["y"]
    h = 1 / (np.exp(-(np.dot(w, x) + b)) + 1)
    loss = -(y * np.log(h) + (1 - y) * np.log(1 - h))
    d = h - y
    return [loss, d * x, d]


def logreg_batch_numpy(a):
    W, b, X, y = a["W"], a["b"], a["X"], a["y"]
    p = 1 / (1 + np.exp(-(X @ W + b)))
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    d = (p - y) / len(X)
    return [loss, X.T @ d, d.sum(axis=0)]


def mlp_numpy(a):
    W1, b1, W2, b2, X, Y = a["W1"], a["b1"], a["W2"], a["b2"], a["X"], a["Y"]
    pre = X @ W1 + b1
    h = np.maximum(pre, 0)
    z = h @ W2 + b2
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = len(X)
    loss = -np.sum(Y * (z - np.log(s))) / n
    dz = (e / s - Y) / n
    dh = dz @ W2.T
    dh *= pre > 0
    return [loss, X.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]


def chain_numpy(n_ops):
    def step(arrays):
        x, a = arrays["x"], arrays["a"]
        v, saved = x, []  # saved: each product's left input, each sigmoid's and exp's output
        for i in range(n_ops):
            op = i % 4
            if op == 0:
                saved.append(v)
                v = v * a
            elif op == 1:
                v += 0.5  # v is the product just made and saved nowhere: reuse it
            elif op == 2:
                np.negative(v, out=v)  # in place, as for + 0.5
                np.exp(v, out=v)
                v += 1
                np.reciprocal(v, out=v)
                saved.append(v)
            else:
                v = np.exp(v)
                saved.append(v)
        loss = v.sum()
        g, ga = np.ones_like(v), np.zeros_like(a)
        for i in reversed(range(n_ops)):
            op = i % 4
            if op == 0:
                ga += g * saved.pop()
                g *= a
            elif op == 2:
                s = saved.pop()
                g *= s
                g *= 1 - s
            elif op == 3:
                g *= saved.pop()
        return [loss, g, ga]
    return step


def chain_forward_numpy(n_ops):
    def step(arrays):
        x, a = arrays["x"], arrays["a"]
        v = x * a  # the first op; then everything in place in this one buffer
        for i in range(1, n_ops):
            op = i % 4
            if op == 0:
                v *= a
            elif op == 1:
                v += 0.5
            elif op == 2:
                np.negative(v, out=v)
                np.exp(v, out=v)
                v += 1
                np.reciprocal(v, out=v)
            else:
                np.exp(v, out=v)
        return [v.sum()]
    return step


# The training workloads' updates: make(lr, params) -> update(params, grads, t), which
# changes the arrays in `params` in place at step t (1 at the first); the optimizer's
# state starts at zero for arrays like `params`.  The rules are fastad.optim's.

def sgd_update(lr, params):
    def update(params, grads, t):
        for p, g in zip(params, grads):
            p -= lr * g
    return update


def adam_update(lr, params, b1=0.9, b2=0.999, eps=1e-8):
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]

    def update(params, grads, t):
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        for p, g, m, v in zip(params, grads, ms, vs):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= (m / c1) * lr / (np.sqrt(v / c2) + eps)
    return update


UPDATES = {"sgd": sgd_update, "adam": adam_update}
