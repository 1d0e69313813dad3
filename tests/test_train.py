"""Trainer and fastad.optim: the kernel's training loop against the same loops written
in Python, optimizers against numpy references, batching and shuffling, Ctrl-C, bad
input and threads."""
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastad as ad
from fastad import optim


def seed_logreg():
    """The seed's graph: loss of (w, b) for a sample x and a label y."""
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(w * x) + b
    h = 1 / (ad.exp_op(-o) + 1)
    loss = -(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))
    return (w, x, b, y), loss


def logreg_data(n=100, d=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return X, (X.sum(axis=1) >= d / 2).astype(float), rng.random(d), rng.random(1)


def mlp():
    """A small MLP with a mean softmax cross-entropy, for mini-batches."""
    X, T = ad.Variable("X"), ad.Variable("T")
    W1, b1, W2, b2 = (ad.Variable(n) for n in ("W1", "b1", "W2", "b2"))
    loss = ad.softmax_cross_entropy_op(ad.relu_op(X @ W1 + b1) @ W2 + b2, T)
    rng = np.random.default_rng(1)
    params = {W1: rng.standard_normal((5, 8)) * 0.5, b1: rng.standard_normal(8) * 0.1,
              W2: rng.standard_normal((8, 3)) * 0.5, b2: np.zeros(3)}
    data = {X: rng.standard_normal((50, 5)), T: np.eye(3)[rng.integers(0, 3, 50)]}
    return (X, T), (W1, b1, W2, b2), loss, params, data


def python_loop(loss, params, data, epochs, batch, order_of, update):
    """The same training written with Executor.run and numpy: `update(p, g, state, t)`
    changes p in place.  Returns the parameters and the per-step losses."""
    params = {p: v.copy() for p, v in params.items()}
    ex = ad.Executor([loss, *ad.gradients(loss, list(params))])
    n = len(next(iter(data.values())))
    losses, state, t = [], {}, 0
    for epoch in range(epochs):
        order = order_of(epoch, n)
        steps = [order[i:i + 1] for i in range(len(order))] if batch is None else \
            [order[i:i + batch] for i in range(0, len(order), batch)]
        for rows in steps:
            t += 1
            feed = {k: (v[rows[0]] if batch is None else v[rows]) for k, v in data.items()}
            loss_val, *grads = ex.run({**params, **feed})
            losses.append(float(np.asarray(loss_val).reshape(-1)[0]))
            for (p, value), g in zip(params.items(), grads):
                update(value, g, state.setdefault(p, {}), t)
    return params, np.array(losses)


def sgd_update(lr):
    def update(p, g, state, t):
        p -= lr * g
    return update


def test_sgd_fit_equals_the_python_loop_bit_for_bit():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.1))
    history = trainer.fit({x: X, y: Y}, epochs=20)
    want, losses = python_loop(loss, {w: w0, b: b0}, {x: X, y: Y}, 20, None,
                               lambda e, n: np.arange(n), sgd_update(0.1))
    assert np.array_equal(trainer.params[w], want[w]) and np.array_equal(trainer.params[b], want[b])
    assert np.array_equal(history.losses, losses)
    assert history.steps_per_epoch == [100] * 20 and len(history.epoch_means) == 20
    np.testing.assert_allclose(history.epoch_means, losses.reshape(20, 100).mean(axis=1))
    assert trainer.t == 2000
    # both backends train alike
    py = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.1), backend="python")
    py_history = py.fit({x: X, y: Y}, epochs=20)
    np.testing.assert_array_equal(py_history.losses, history.losses)
    np.testing.assert_array_equal(py.params[w], trainer.params[w])


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.9, False, 0.0), (0.9, True, 0.01),
                                                    (0.0, False, 0.05)])
def test_sgd_momentum_and_weight_decay_equal_their_python_loop(momentum, nesterov, wd):
    (X, T), ps, loss, params, data = mlp()

    def update(p, g, state, t):
        g = g + p * wd if wd else g
        if momentum:
            buf = state["buf"] = state.get("buf", np.zeros_like(p)) * momentum + g
            g = g + buf * momentum if nesterov else buf
        p -= g * 0.05

    order = lambda e, n: np.arange(n)  # noqa: E731
    want, losses = python_loop(loss, params, data, 3, 10, order, update)
    trainer = ad.Trainer(loss, params, optim.SGD(0.05, momentum, nesterov, wd))
    history = trainer.fit(data, epochs=3, batch_size=10)
    for p in ps:
        np.testing.assert_array_equal(trainer.params[p], want[p])
    np.testing.assert_array_equal(history.losses, losses)


def adam_reference(b1, b2, eps, wd, decoupled, lr):
    def update(p, g, s, t):
        if wd and decoupled:
            p -= p * lr * wd
        elif wd:
            g = g + p * wd
        s["m"] = s.get("m", np.zeros_like(p)) * b1 + g * (1 - b1)
        s["v"] = s.get("v", np.zeros_like(p)) * b2 + g * g * (1 - b2)
        m_hat = s["m"] / (1 - b1 ** t)
        v_hat = s["v"] / (1 - b2 ** t)
        p -= m_hat * lr / (np.sqrt(v_hat) + eps)
    return update


def rmsprop_reference(alpha, eps, momentum, lr):
    def update(p, g, s, t):
        s["v"] = s.get("v", np.zeros_like(p)) * alpha + g * g * (1 - alpha)
        step = g / (np.sqrt(s["v"]) + eps)
        if momentum:
            s["buf"] = s.get("buf", np.zeros_like(p)) * momentum + step
            step = s["buf"]
        p -= step * lr
    return update


@pytest.mark.parametrize("name, make, reference", [
    ("adam", lambda: optim.Adam(1e-2), adam_reference(0.9, 0.999, 1e-8, 0.0, False, 1e-2)),
    ("adam_wd", lambda: optim.Adam(1e-2, weight_decay=0.01),
     adam_reference(0.9, 0.999, 1e-8, 0.01, False, 1e-2)),
    ("adamw", lambda: optim.Adam(1e-2, (0.8, 0.99), 1e-7, 0.05, decoupled=True),
     adam_reference(0.8, 0.99, 1e-7, 0.05, True, 1e-2)),
    ("rmsprop", lambda: optim.RMSProp(1e-3), rmsprop_reference(0.99, 1e-8, 0.0, 1e-3)),
    ("rmsprop_momentum", lambda: optim.RMSProp(1e-3, 0.9, 1e-6, 0.5),
     rmsprop_reference(0.9, 1e-6, 0.5, 1e-3)),
])
def test_adam_and_rmsprop_match_numpy_after_1000_steps(name, make, reference):
    (X, T), ps, loss, params, data = mlp()
    want, losses = python_loop(loss, params, data, 100, 5, lambda e, n: np.arange(n), reference)
    for backend in ("native", "python"):
        trainer = ad.Trainer(loss, params, make(), backend=backend)
        history = trainer.fit(data, epochs=100, batch_size=5)
        assert trainer.t == 1000
        for p in ps:
            np.testing.assert_allclose(trainer.params[p], want[p], rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} {backend} {p}")
        np.testing.assert_allclose(history.losses, losses, rtol=1e-12, atol=1e-14)


def test_minibatches_with_a_partial_last_batch_and_drop_last():
    (X, T), ps, loss, params, data = mlp()  # 50 samples
    for drop_last, steps in ((False, 4), (True, 3)):  # batches of 16: 16, 16, 16 (+ 2)
        trainer = ad.Trainer(loss, params, optim.SGD(0.1))
        history = trainer.fit(data, epochs=2, batch_size=16, drop_last=drop_last)
        assert history.steps_per_epoch == [steps, steps] and len(history.losses) == 2 * steps
        order = lambda e, n: np.arange(n if not drop_last else 48)  # noqa: E731
        want, losses = python_loop(loss, params, data, 2, 16, order, sgd_update(0.1))
        np.testing.assert_array_equal(history.losses, losses)
        for p in ps:
            np.testing.assert_array_equal(trainer.params[p], want[p])


@pytest.mark.parametrize("batch", [None, 7])
def test_shuffle_draws_one_permutation_an_epoch_from_the_seed(batch):
    (X, T), ps, loss, params, data = mlp()
    runs = []
    for seed in (3, 3, 4):
        trainer = ad.Trainer(loss, params, optim.SGD(0.1))
        runs.append((trainer.fit(data, epochs=3, batch_size=batch, shuffle=True, seed=seed),
                     trainer.params[ps[0]]))
    assert np.array_equal(runs[0][0].losses, runs[1][0].losses)
    assert np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0].losses, runs[2][0].losses)
    rng = np.random.default_rng(3)
    perms = [rng.permutation(50) for _ in range(3)]
    want, losses = python_loop(loss, params, data, 3, batch, lambda e, n: perms[e],
                               sgd_update(0.1))
    np.testing.assert_array_equal(runs[0][0].losses, losses)
    np.testing.assert_array_equal(runs[0][1], want[ps[0]])


def test_step_trains_one_step_and_returns_the_loss():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.5))
    l0 = trainer.step({x: X[0], y: Y[0]})
    ex = ad.Executor([loss, *ad.gradients(loss, [w, b])])
    want, gw, gb = ex.run({w: w0, x: X[0], b: b0, y: Y[0]})
    assert isinstance(l0, float) and l0 == float(want[0])
    assert np.array_equal(trainer.params[w], w0 - 0.5 * gw)
    got = trainer.params[w]
    got[:] = 0  # a copy: the trainer's parameter is untouched
    assert np.array_equal(trainer.params[w], w0 - 0.5 * gw) and trainer.t == 1


def test_schedules_and_a_user_optimizer():
    assert optim.StepLR(1.0, 2, 0.5).values(1, 6).tolist() == [1, 1, 0.5, 0.5, 0.25, 0.25]
    cos = optim.CosineLR(1.0, 4, 0.2)
    assert cos(1) == 1.0 and cos(5) == pytest.approx(0.2) and cos(9) == pytest.approx(0.2)
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    schedule = lambda t: 0.5 / t  # noqa: E731
    trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(schedule))
    trainer.fit({x: X, y: Y}, epochs=2)

    def update(p, g, state, t):
        p -= schedule(t) * g

    want, _ = python_loop(loss, {w: w0, b: b0}, {x: X, y: Y}, 2, None,
                          lambda e, n: np.arange(n), update)
    np.testing.assert_allclose(trainer.params[w], want[w], rtol=1e-14)

    class SignSGD(optim.Optimizer):
        def update(self, p, g, state, shared, lr):
            return p - ad.sign_op(g) * lr, {}

    signs = ad.Trainer(loss, {w: w0, b: b0}, SignSGD(0.01))
    signs.step({x: X[0], y: Y[0]})
    g = ad.Executor(ad.gradients(loss, [w])).run({w: w0, x: X[0], b: b0, y: Y[0]})[0]
    assert np.array_equal(signs.params[w], w0 - np.sign(g) * 0.01)


def test_float32_parameters_train_in_float32():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    trainer = ad.Trainer(loss, {w: w0.astype(np.float32), b: b0.astype(np.float32)},
                         optim.Adam(0.01))
    history = trainer.fit({x: X.astype(np.float32), y: Y.astype(np.float32)}, epochs=3)
    assert trainer.params[w].dtype == np.float32 and np.all(np.isfinite(history.losses))
    assert history.epoch_means[-1] < history.epoch_means[0]


class Double(ad.Op):  # a user op: the step program gets a Python step
    def __call__(self, x):
        return ad.Node(self, [x], f"Double({x})")

    def compute(self, node, vals):
        return vals[0] * 2.0

    def gradient(self, node, g):
        return [g * 2.0]


def test_graphs_with_user_ops_still_train():
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(Double()(w) * x) + b
    loss = (o - y) * (o - y)
    X, Y, w0, b0 = logreg_data()
    trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.01))
    history = trainer.fit({x: X, y: Y}, epochs=2)
    o2 = ad.reduce_sum_op((w * 2.0) * x) + b  # the same graph from built-in ops
    native = ad.Trainer((o2 - y) * (o2 - y), {w: w0, b: b0}, optim.SGD(0.01))
    want = native.fit({x: X, y: Y}, epochs=2)
    np.testing.assert_allclose(history.losses, want.losses, rtol=1e-14)
    np.testing.assert_allclose(trainer.params[w], native.params[w], rtol=1e-14)


def test_bad_input_is_refused_before_any_step_and_parameters_stay():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    other = ad.Variable("other")
    with pytest.raises(ValueError, match="'other' is not a placeholder of the loss"):
        ad.Trainer(loss, {w: w0, b: b0, other: np.ones(2)}, optim.SGD(0.1))
    with pytest.raises(TypeError, match="keys must be Variables"):
        ad.Trainer(loss, {w * 2.0: w0}, optim.SGD(0.1))
    with pytest.raises(TypeError, match="fastad.optim.Optimizer"):
        ad.Trainer(loss, {w: w0}, "sgd")
    trainer = ad.Trainer(loss, {w: w0}, optim.SGD(0.1))  # b is data now
    cases = [
        ({x: X, y: Y}, ValueError, "no data for placeholder.*'b'"),
        ({x: X, y: Y[:50], b: np.ones((100, 1))}, ValueError, "different numbers of samples"),
        ({x: X, y: Y, b: np.ones((100, 1)), other: Y}, ValueError, "'other' is not a data"),
        ({x: X, y: Y, b: np.ones((100, 1)), w: X}, ValueError, "'w' is trained by fastad"),
        ({x: X.astype(complex), y: Y, b: np.ones((100, 1))}, TypeError, "real numbers"),
        ({x: X, y: np.array(["a"] * 100), b: np.ones((100, 1))}, TypeError, "real numbers"),
        ({x: X[:0], y: Y[:0], b: np.ones((0, 1))}, ValueError, "no samples"),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            trainer.fit(data, epochs=1)
        assert np.array_equal(trainer.params[w], w0) and trainer.t == 0
    with pytest.raises(ValueError, match="batch_size"):
        trainer.fit({x: X, y: Y, b: np.ones((100, 1))}, batch_size=0)
    with pytest.raises(ValueError, match="single number"):
        ad.Trainer(ad.exp_op(w), {w: w0}, optim.SGD(0.1)).step({})
    assert np.array_equal(trainer.params[w], w0)


def test_a_trainer_is_used_by_one_thread_at_a_time():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data(n=200_000)
    trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.01))
    trainer.step({x: X[0], y: Y[0]})
    errors, done = [], threading.Event()

    def other():
        while not done.is_set():
            try:
                trainer.step({x: X[0], y: Y[0]})
            except RuntimeError as err:
                errors.append(err)
                return

    t = threading.Thread(target=other)
    fit_thread = threading.Thread(target=lambda: (trainer.fit({x: X, y: Y}, epochs=3),
                                                  done.set()))
    fit_thread.start()
    time.sleep(0.01)
    t.start()
    fit_thread.join()
    done.set()
    t.join()
    assert errors and "one thread at a time" in str(errors[0])


CTRL_C = textwrap.dedent("""
    import sys, time
    import numpy as np
    import fastad as ad
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(w * x) + b
    loss = (o - y) * (o - y)
    rng = np.random.default_rng(0)
    X, Y = rng.random((2_000_000, 4)), rng.random(2_000_000)
    trainer = ad.Trainer(loss, {w: np.zeros(4), b: np.zeros(1)}, ad.optim.SGD(1e-3))
    trainer.fit({x: X[:10], y: Y[:10]})
    print("ready", flush=True)
    try:
        trainer.fit({x: X, y: Y}, epochs=100, progress=False)
        print("finished")
    except KeyboardInterrupt:
        t0 = time.perf_counter()
        h = trainer.history
        steps = len(h.losses)
        print("interrupted", steps, trainer.t, h.interrupted, flush=True)
        # the parameters are those of exactly those steps: replay them
        again = ad.Trainer(loss, {w: np.zeros(4), b: np.zeros(1)}, ad.optim.SGD(1e-3))
        again.fit({x: X[:10], y: Y[:10]})
        # the interrupted fit may have gone past an epoch: the samples it saw, in order
        replay = again.fit({x: np.resize(X, (steps, 4)), y: np.resize(Y, steps)},
                           progress=False)
        print(int(np.array_equal(again.params[w], trainer.params[w])),
              int(np.array_equal(replay.losses, h.losses)))
""")


def test_ctrl_c_stops_fit_at_a_step_boundary():
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline().split()
    elapsed = time.perf_counter() - sent
    rest = proc.communicate(timeout=60)[0].split()
    assert line[0] == "interrupted", line
    steps, t, interrupted = int(line[1]), int(line[2]), line[3]
    assert 0 < steps < 200_000_000 and t == steps + 10 and interrupted == "True"
    assert elapsed < 0.5  # printed within 0.1 s of the signal, plus process noise
    assert rest == ["1", "1"]


def test_plot_history(tmp_path):
    pytest.importorskip("matplotlib")
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    history = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.1)).fit({x: X, y: Y}, epochs=3)
    path = ad.plot_history(history, tmp_path / "h.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_callbacks_see_each_epoch():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    seen = []
    ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.1)).fit(
        {x: X, y: Y}, epochs=3, callbacks=[lambda e, h: seen.append((e, len(h.losses)))])
    assert seen == [(0, 100), (1, 200), (2, 300)]


def unaligned(a):
    """A copy of `a` at an odd address (as arrays unpickled from a byte stream may be)."""
    raw = np.empty(a.nbytes + 1, np.uint8)[1:]
    out = raw.view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_unaligned_data_train_like_aligned_data():
    (w, x, b, y), loss = seed_logreg()
    X, Y, w0, b0 = logreg_data()
    runs = []
    for data in ({x: X, y: Y}, {x: unaligned(X), y: unaligned(Y)}):
        trainer = ad.Trainer(loss, {w: w0, b: b0}, optim.SGD(0.1))
        losses = trainer.fit(data, epochs=2).losses
        last = trainer.step({x: unaligned(X[0]) if len(runs) else X[0], y: Y[0]})
        runs.append((losses, trainer.params[w], last))
    for got, want in zip(*runs):
        np.testing.assert_array_equal(got, want)
