"""fastad.parallel: a batch's rows split across threads give the unsplit loss and gradients
to rounding, the same bits for the same number of workers, and only for losses that are
means or sums over the rows; Trainer.fit(workers=N) trains with it."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastad as ad
from fastad import optim, parallel, vm
from user_ops import cube_op


@pytest.fixture(autouse=True)
def small_shards_on_threads(monkeypatch):
    """The tests' shards are small: have them run on the pool's threads all the same."""
    monkeypatch.setattr(parallel, "SHARD_WORK", 0)


def close(got, want, rtol=1e-12):
    """Equal to rounding: within rtol of the largest magnitude of each array."""
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        assert np.max(np.abs(g - w), initial=0) <= rtol * np.max(np.abs(w), initial=0), (g, w)


def logreg(n=1000, d=20, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X, y, w, b = ad.Variable("X"), ad.Variable("y"), ad.Variable("w"), ad.Variable("b")
    loss = ad.sigmoid_cross_entropy_op(X @ w + b, y)
    params = {w: (rng.standard_normal(d) * 0.3).astype(dtype), b: np.full(1, 0.1, dtype)}
    data = {X: rng.standard_normal((n, d)).astype(dtype),
            y: (rng.random(n) < 0.5).astype(dtype)}
    return loss, params, data


def mlp(n=90, seed=1):
    rng = np.random.default_rng(seed)
    X, T = ad.Variable("X"), ad.Variable("T")
    W1, b1, W2, b2 = (ad.Variable(n) for n in ("W1", "b1", "W2", "b2"))
    logits = ad.relu_op(X @ W1 + b1) @ W2 + b2
    params = {W1: rng.standard_normal((6, 16)) * 0.5, b1: rng.standard_normal(16) * 0.1,
              W2: rng.standard_normal((16, 4)) * 0.5, b2: np.zeros(4)}
    data = {X: rng.standard_normal((n, 6)), T: np.eye(4)[rng.integers(0, 4, n)]}
    return (X, T), (W1, b1, W2, b2), logits, params, data


def unsplit(loss, params, data, backend="native"):
    out = ad.Executor([loss, *ad.gradients(loss, list(params))], backend=backend).run(
        {**params, **data})
    return float(out[0]), out[1:]


def losses():
    """(name, loss, params, data, reduction) of losses that split."""
    (X, T), (W1, b1, W2, b2), logits, params, data = mlp()
    l2 = ad.reduce_sum_op(W1 * W1) + ad.reduce_sum_op(W2 * W2)
    squared = ad.reduce_sum_op((logits - T) * (logits - T), axis=1)
    lr, lr_params, lr_data = logreg()
    return [
        ("logreg", lr, lr_params, lr_data, "mean"),
        ("softmax-ce", ad.softmax_cross_entropy_op(logits, T), params, data, "mean"),
        ("ce+l2", ad.softmax_cross_entropy_op(logits, T) * 2.0 + l2 * 1e-3, params, data, "mean"),
        ("mse", ad.reduce_mean_op(squared) - 1.0, params, data, "mean"),
        ("sum-of-squares", ad.reduce_sum_op(squared) / 90.0, params, data, "sum"),
        ("log-softmax-mean", -ad.reduce_mean_op(ad.log_softmax_op(logits) * T), params, data,
         "mean"),
    ]


LOSSES = losses()


@pytest.mark.parametrize("name, loss, params, data, reduction", LOSSES, ids=[c[0] for c in LOSSES])
def test_split_gradients_equal_the_unsplit_ones(name, loss, params, data, reduction):
    want = unsplit(loss, params, data)
    dp = parallel.DataParallel(loss, list(params))
    assert dp.reduction_for(params, data) == reduction
    # one worker is one shard: the unsplit bits
    one = dp.gradients(params, data, workers=1)
    assert one[0] == want[0] and all(np.array_equal(g, w) for g, w in zip(one[1], want[1]))
    for workers in (2, 3, 4, 7):  # 7: shards of unequal sizes, weighted
        loss_value, grads = dp.gradients(params, data, workers=workers)
        close([loss_value, *grads], [want[0], *want[1]])
        again = dp.gradients(params, data, workers=workers)  # the same bits every time
        assert again[0] == loss_value and all(np.array_equal(a, g) for a, g in zip(again[1], grads))


def test_small_shards_on_the_caller_give_the_same_bits(monkeypatch):
    loss, params, data = logreg(n=301)
    dp = parallel.DataParallel(loss, list(params))
    threaded = dp.gradients(params, data, workers=3)
    monkeypatch.setattr(parallel, "SHARD_WORK", 1 << 60)
    alone = dp.gradients(params, data, workers=3)
    assert alone[0] == threaded[0]
    assert all(np.array_equal(a, t) for a, t in zip(alone[1], threaded[1]))


def test_the_python_backend_splits_alike():
    loss, params, data = logreg(n=101)
    for workers in (1, 3):
        ref = parallel.gradients(loss, params, data, workers=workers, backend="python")
        got = parallel.gradients(loss, params, data, workers=workers)
        close([got[0], *got[1]], [ref[0], *ref[1]], rtol=1e-14)
    want = unsplit(loss, params, data, backend="python")
    ref = parallel.gradients(loss, params, data, workers=1, backend="python")
    assert ref[0] == want[0] and all(np.array_equal(g, w) for g, w in zip(ref[1], want[1]))


def test_float32_and_more_workers_than_rows():
    loss, params, data = logreg(n=5, d=3, dtype=np.float32)
    want = unsplit(loss, params, data)
    got = parallel.gradients(loss, params, data, workers=8)  # 5 shards of one row
    assert all(g.dtype == np.float32 for g in got[1])
    close([np.float32(got[0]), *got[1]], [np.float32(want[0]), *want[1]], rtol=1e-6)


def test_big_shards_run_on_the_kernels_pool():
    loss, params, data = logreg(n=40_000, d=30)  # long enough to be worth catching Ctrl-C
    want = unsplit(loss, params, data)
    got = parallel.gradients(loss, params, data, workers=2)
    close([got[0], *got[1]], [want[0], *want[1]])
    assert vm.lib.fa_pool_workers() >= 1


def test_threads_may_share_a_data_parallel():
    loss, params, data = logreg(n=3000)
    dp = parallel.DataParallel(loss, list(params))
    want = dp.gradients(params, data, workers=2)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(dp.gradients(params, data, workers=2))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 60
    for loss_value, grads in results:
        assert loss_value == want[0] and all(np.array_equal(g, w) for g, w in zip(grads, want[1]))


def test_ctrl_c_stops_a_long_split_run_and_leaves_it_usable():
    loss, params, data = logreg(n=400_000, d=10)
    dp = parallel.DataParallel(loss, list(params))
    want = dp.gradients(params, data, workers=2)
    timer = threading.Timer(0.002, signal.raise_signal, (signal.SIGINT,))
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        for _ in range(100):  # the signal lands in a run (or between two)
            dp.gradients(params, data, workers=2)
    timer.join()
    got = dp.gradients(params, data, workers=2)
    assert got[0] == want[0] and all(np.array_equal(g, w) for g, w in zip(got[1], want[1]))


def test_user_ops_run_shard_by_shard_when_vouched_for():
    x, w = ad.Variable("x"), ad.Variable("w")
    loss = ad.reduce_mean_op(cube_op(x * w))
    params, data = {w: np.array([0.5, -1.5])}, {x: np.random.default_rng(2).random((11, 2))}
    with pytest.raises(ValueError, match="user op"):
        parallel.gradients(loss, params, data, workers=2)
    got = parallel.gradients(loss, params, data, workers=3, reduction="mean")
    want = unsplit(loss, params, data)
    close([got[0], *got[1]], [want[0], *want[1]])


def refused():
    """(loss, params, data, what the error says) of losses that don't split."""
    (X, T), (W1, b1, W2, b2), logits, params, data = mlp()
    ce = ad.softmax_cross_entropy_op(logits, T)
    l2 = ad.reduce_sum_op(W1 * W1)
    centred = X - ad.reduce_mean_op(X, axis=0)  # a batch statistic
    flipped = ad.transpose_op(X @ W1)  # the samples' axis moves
    return [
        (ad.softmax_cross_entropy_op(ad.relu_op(centred @ W1 + b1) @ W2 + b2, T),
         "different kinds"),
        (ad.ln_op(ce), "not linear in the mean"),
        (ce * ce, "not linear in the mean"),
        (ad.reduce_sum_op(logits) + l2, "adds a term that doesn't depend on the data"),
        (ad.reduce_max_op(logits), "mixes rows"),
        (ad.reduce_mean_op(flipped @ (X @ W1)), "mixes rows"),
        (ad.reduce_sum_op(logits, axis=1), "keeps one value per row"),
        (ad.reduce_sum_op(W1 * W1), "does not depend on the data"),
    ], params, data


REFUSED, REFUSED_PARAMS, REFUSED_DATA = refused()


@pytest.mark.parametrize("loss, why", REFUSED, ids=[w for _, w in REFUSED])
def test_losses_that_are_not_means_or_sums_over_rows_are_refused(loss, why):
    graph = ad.find_topo_sort([loss])
    params = {p: v for p, v in REFUSED_PARAMS.items() if p in graph}
    data = {n: v for n, v in REFUSED_DATA.items() if n in graph}
    with pytest.raises(ValueError, match=f"can't be split by rows.*{why}"):
        parallel.gradients(loss, params, data, workers=2)


def test_bad_calls_are_refused_clearly():
    loss, params, data = logreg(n=10)
    dp = parallel.DataParallel(loss, list(params))
    X, y = dp.data_nodes
    with pytest.raises(ValueError, match="no data for placeholder"):
        dp.gradients(params, {X: data[X]})
    with pytest.raises(ValueError, match="the same number"):
        dp.gradients(params, {X: data[X], y: data[y][:5]})
    with pytest.raises(ValueError, match="not a data placeholder"):
        dp.gradients(params, {**data, ad.Variable("z"): data[y]})
    with pytest.raises(ValueError, match="no value for parameter"):
        dp.gradients({}, data)
    with pytest.raises(ValueError, match="workers must be"):
        dp.gradients(params, data, workers=0)
    with pytest.raises(ValueError, match="not a placeholder of the loss"):
        parallel.DataParallel(loss, [ad.Variable("z")])
    with pytest.raises(ValueError, match="reduction"):
        parallel.DataParallel(loss, list(params), reduction="max")
    with pytest.raises(ValueError, match="the loss must be a single number"):
        w = next(iter(params))
        parallel.gradients(ad.reduce_mean_op(X * w, axis=0), {w: params[w]}, {X: data[X]})
    with pytest.raises(ValueError, match="input shapes"):  # a shape error names the node
        dp.gradients(params, {X: data[X][:, :3], y: data[y]}, workers=2)


# -- Trainer.fit(workers=N) ----------------------------------------------------------------

@pytest.mark.parametrize("backend", ["native", "python"])
@pytest.mark.parametrize("make", [lambda: optim.SGD(0.5, momentum=0.9),
                                  lambda: optim.Adam(optim.StepLR(1e-2, 3))], ids=["sgd", "adam"])
def test_fit_with_workers_trains_as_one_thread_does(make, backend):
    (X, T), ps, logits, params, data = mlp()
    loss = ad.softmax_cross_entropy_op(logits, T)
    fit = dict(epochs=3, batch_size=40, shuffle=True, seed=4)  # batches of 40, 40, 10
    one = ad.Trainer(loss, params, make(), backend=backend)
    h1 = one.fit(data, **fit)
    split = [ad.Trainer(loss, params, make(), backend=backend) for _ in range(2)]
    histories = [t.fit(data, workers=3, **fit) for t in split]
    assert split[0].t == one.t == 9
    close([histories[0].losses], [h1.losses], rtol=1e-10)
    close([v for _, v in split[0].params.items()], [v for _, v in one.params.items()], rtol=1e-10)
    # the same number of workers: the same bits
    assert np.array_equal(histories[0].losses, histories[1].losses)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(split[0].params.items(),
                                                              split[1].params.items()))
    # and back to the kernel's loop afterwards
    split[0].fit(data, epochs=1, batch_size=30)
    assert split[0].t == 12


def test_full_batch_logistic_regression_with_workers():
    loss, params, data = logreg(n=2000, d=10)
    n = len(data[next(iter(data))])
    one, two = (ad.Trainer(loss, params, optim.SGD(1.0)) for _ in range(2))
    h1 = one.fit(data, epochs=20, batch_size=n)
    h2 = two.fit(data, epochs=20, batch_size=n, workers=2)
    close([h2.losses], [h1.losses])
    close([v for _, v in two.params.items()], [v for _, v in one.params.items()])
    assert h2.losses[-1] < h2.losses[0]


def test_fit_with_workers_refuses_what_it_cant_split():
    (X, T), ps, logits, params, data = mlp()
    trainer = ad.Trainer(ad.ln_op(ad.softmax_cross_entropy_op(logits, T)), params, optim.SGD(0.1))
    with pytest.raises(ValueError, match="give batch_size"):
        trainer.fit(data, workers=2)
    with pytest.raises(ValueError, match="workers must be"):
        trainer.fit(data, batch_size=10, workers=0)
    with pytest.raises(ValueError, match="not both"):
        trainer.fit(data, batch_size=10, workers=2, client=object())
    before = [v for _, v in trainer.params.items()]
    with pytest.raises(ValueError, match="can't be split by rows"):
        trainer.fit(data, batch_size=10, workers=2)
    assert trainer.t == 0
    assert all(np.array_equal(a, b) for a, (_, b) in zip(before, trainer.params.items()))
    trainer.fit(data, batch_size=10)  # without workers it trains
    assert trainer.t == 9


def test_the_benchmark_runs_and_its_modes_agree():
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "parallel.py")
    out = subprocess.run([sys.executable, script, "--rows", "3000", "--cols", "5",
                          "--repeats", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "workers=2" in out.stdout and "overhead of workers=2" in out.stdout


def test_unaligned_and_non_contiguous_data_are_packed():
    loss, params, data = logreg(n=50, d=3)
    X, y = parallel.DataParallel(loss, list(params)).data_nodes
    raw = np.zeros(data[X].nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float64, data[X].size, offset=1).reshape(data[X].shape)
    unaligned[...] = data[X]
    fortran = np.asfortranarray(data[X])
    want = parallel.gradients(loss, params, data, workers=2)
    for x_in in (unaligned, fortran):
        got = parallel.gradients(loss, params, {X: x_in, y: data[y]}, workers=2)
        assert got[0] == want[0] and all(np.array_equal(g, w) for g, w in zip(got[1], want[1]))
