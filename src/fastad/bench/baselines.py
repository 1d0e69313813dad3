"""The hand-written numpy forward+backward of each workload: the floor for numpy code.
A step takes the dict of a case's arrays and returns [loss, *gradients] (W5f's: [loss]);
the chain_* functions make the step for a chain of n_ops ops; cnn_numpy is W8's
convolutional net, by im2col.  The optimizers' updates in numpy (UPDATES) are for the
training workloads W6 and W7."""
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


def softmax_cross_entropy_backward(z, Y):
    """The mean softmax cross-entropy of logits z (n, k) against Y, and its gradient in z."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = len(z)
    return -np.sum(Y * (z - np.log(s))) / n, (e / s - Y) / n


def mlp_numpy(a):
    W1, b1, W2, b2, X, Y = a["W1"], a["b1"], a["W2"], a["b2"], a["X"], a["Y"]
    pre = X @ W1 + b1
    h = np.maximum(pre, 0)
    loss, dz = softmax_cross_entropy_backward(h @ W2 + b2, Y)
    dh = dz @ W2.T
    dh *= pre > 0
    return [loss, X.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]


# W8's convolutions (stride 1, NCHW data, OIHW weights) by im2col: the k x k windows of
# the padded input as the columns of one matrix, cols (C*k*k, N*OH*OW), so that the
# convolution of the whole batch is one matmul with the weights as a (O, C*k*k) matrix.
# The padded input is kept channel-first, (C, N, H + 2 pad, W + 2 pad), so that each of
# the k*k kernel offsets copies one block of cols.

def im2col(x, k, pad):
    n, c, h, w = x.shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    xp = np.zeros((c, n, h + 2 * pad, w + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + w] = x.transpose(1, 0, 2, 3)
    cols = np.empty((c, k, k, n, oh, ow))
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, :, i:i + oh, j:j + ow]
    return cols.reshape(c * k * k, n * oh * ow)


def col2im(dcols, x_shape, k, pad):
    """The adjoint of im2col: each column's entries added back where they were taken."""
    n, c, h, w = x_shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    dcols = dcols.reshape(c, k, k, n, oh, ow)
    dxp = np.zeros((c, n, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + oh, j:j + ow] += dcols[:, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3)


def conv_forward(x, w, pad):
    """conv(x, w) and the cols to keep for the backward pass."""
    o, _, k, _ = w.shape
    cols = im2col(x, k, pad)
    out = w.reshape(o, -1) @ cols                              # (O, N*OH*OW)
    oh, ow = x.shape[2] + 2 * pad - k + 1, x.shape[3] + 2 * pad - k + 1
    return out.reshape(o, len(x), oh, ow).transpose(1, 0, 2, 3), cols


def conv_backward(g, x_shape, w, cols, pad):
    """(dx, dw) of conv given g = d/d out (N, O, OH, OW)."""
    o, k = w.shape[0], w.shape[2]
    g_mat = g.transpose(1, 0, 2, 3).reshape(o, -1)            # (O, N*OH*OW)
    dw = (g_mat @ cols.T).reshape(w.shape)
    return col2im(w.reshape(o, -1).T @ g_mat, x_shape, k, pad), dw


# 2 x 2 max pooling, stride 2, on even sizes: a window's four elements are at the same
# place in the four strided views x[:, :, i::2, j::2] (the corners).  The gradient goes to
# the first largest of them (row by row), as fastad's max_pool2d_op has it.
CORNERS = [(i, j) for i in (0, 1) for j in (0, 1)]


def max_pool_forward(x):
    """The pooled x, and for each corner where it is the window's first largest."""
    corners = [x[:, :, i::2, j::2] for i, j in CORNERS]
    out = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    taken, firsts = np.zeros(out.shape, bool), []
    for corner in corners:
        first = (corner == out) & ~taken
        taken |= first
        firsts.append(first)
    return out, firsts


def max_pool_backward(g, firsts):
    n, c, oh, ow = g.shape
    dx = np.empty((n, c, 2 * oh, 2 * ow))
    for (i, j), first in zip(CORNERS, firsts):
        np.multiply(g, first, out=dx[:, :, i::2, j::2])
    return dx


def cnn_numpy(a):
    """W8: conv(8, 3x3, pad 1) -> relu -> max-pool 2 -> conv(16, 3x3, pad 1) -> relu ->
    max-pool 2 -> dense 10 -> mean softmax cross-entropy."""
    K1, c1, K2, c2, W, b, X, Y = (a[n] for n in ("K1", "c1", "K2", "c2", "W", "b", "X", "Y"))
    conv1, cols1 = conv_forward(X, K1, 1)
    pre1 = conv1 + c1
    p1, first1 = max_pool_forward(np.maximum(pre1, 0))
    conv2, cols2 = conv_forward(p1, K2, 1)
    pre2 = conv2 + c2
    p2, first2 = max_pool_forward(np.maximum(pre2, 0))
    flat = p2.reshape(len(X), -1)
    loss, dz = softmax_cross_entropy_backward(flat @ W + b, Y)

    d2 = max_pool_backward((dz @ W.T).reshape(p2.shape), first2)
    d2 *= pre2 > 0
    dp1, dK2 = conv_backward(d2, p1.shape, K2, cols2, 1)
    d1 = max_pool_backward(dp1, first1)
    d1 *= pre1 > 0
    _, dK1 = conv_backward(d1, X.shape, K1, cols1, 1)  # (dx of the data: not needed)
    return [loss, dK1, d1.sum(axis=(0, 2, 3)).reshape(c1.shape), dK2,
            d2.sum(axis=(0, 2, 3)).reshape(c2.shape), flat.T @ dz, dz.sum(axis=0)]


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
