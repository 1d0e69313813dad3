"""fastad.distributed on a 2-process LocalCluster: the distributed gradients and fits
equal the single-process ones (within 1e-12 relative), for numpy and dask.array data,
and a fit survives losing a worker with its result unchanged.  One cluster for the
module; the tests that kill a worker run last."""
import os
import signal
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed", reason='needs Dask: pip install "fastad[distributed]"')
da = pytest.importorskip("dask.array", reason='needs Dask: pip install "fastad[distributed]"')
from distributed import Client, LocalCluster  # noqa: E402

import fastad as ad  # noqa: E402

N, D = 1000, 5


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dask's notes about the dashboard and ports
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def problem(n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=d) + 0.3 * rng.normal(size=n) > 0).astype(float)
    return X, y


def logreg(reduction="mean"):
    """Mean (or summed) cross-entropy of a logistic regression, plus an L2 term that
    does not depend on the rows."""
    w, b, x, y = ad.Variable("w"), ad.Variable("b"), ad.Variable("x"), ad.Variable("y")
    p = ad.sigmoid_op(ad.matmul_op(x, w) + b)
    rows = -(y * ad.ln_op(p) + (1 - y) * ad.ln_op(1 - p))
    if reduction == "mean":
        loss = ad.reduce_mean_op(rows) + 0.01 * ad.reduce_sum_op(w * w)
    else:
        loss = ad.reduce_sum_op(rows)
    return loss, w, b, x, y


def close(got, want, rtol=1e-12):
    got, want = np.asarray(got, float), np.asarray(want, float)
    assert np.linalg.norm(got - want) <= rtol * np.linalg.norm(want), (got, want)


def accuracy(trainer, w, b, X, y):
    return np.mean(((X @ trainer.params[w] + trainer.params[b]) > 0) == y)


@pytest.mark.parametrize("kind", ["numpy", "dask"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradients_equal_single_process(client, backend, kind, reduction):
    loss, w, b, x, y = logreg(reduction)
    X, Y = problem()
    params = {w: np.linspace(-0.5, 0.5, D), b: np.array([0.2])}
    want = ad.Executor([loss, *ad.gradients(loss, [w, b])], backend=backend).run(
        {**params, x: X, y: Y})
    data = {x: X, y: Y}
    if kind == "dask":  # uneven chunks, several per worker
        data = {x: da.from_array(X, chunks=(300, D)), y: da.from_array(Y, chunks=300)}
    # the loss's reduction is proved from the graph (fastad.rows), not told
    value, grads = ad.distributed.gradients(loss, params, data, client, backend=backend)
    close(value, want[0])
    for got, ref in zip(grads, want[1:]):
        close(got, ref)
    assert isinstance(value, float) and [g.shape for g in grads] == [(D,), (1,)]


def test_full_batch_fit_equals_single_process(client):
    loss, w, b, x, y = logreg()
    X, Y = problem()
    start = {w: np.zeros(D), b: np.zeros(1)}
    one = ad.Trainer(loss, start, ad.optim.SGD(0.5))
    h1 = one.fit({x: X, y: Y}, epochs=15, batch_size=N)
    many = ad.Trainer(loss, start, ad.optim.SGD(0.5))
    seen = []
    h2 = many.fit({x: X, y: Y}, epochs=15, batch_size=N, client=client,
                  callbacks=[lambda epoch, h: seen.append(epoch)])
    close(h2.losses, h1.losses)
    close(h2.epoch_means, h1.epoch_means)
    for p in (w, b):
        close(many.params[p], one.params[p])
    assert many.t == one.t == 15 and h2.steps_per_epoch == [1] * 15 and seen == list(range(15))
    assert h2 is many.history and h2.workers_lost == []
    assert accuracy(many, w, b, X, Y) == accuracy(one, w, b, X, Y) >= 0.9
    many.step({x: X, y: Y})  # the trainer goes on from the same parameters and state
    one.step({x: X, y: Y})
    close(many.params[w], one.params[w])


def test_fit_of_a_summed_loss_equals_single_process(client):
    """A sum over the rows is combined as a sum (the graph says so), not as a mean."""
    loss, w, b, x, y = logreg("sum")
    X, Y = problem()
    start = {w: np.zeros(D), b: np.zeros(1)}
    one, many = ad.Trainer(loss, start, ad.optim.SGD(1e-3)), ad.Trainer(loss, start, ad.optim.SGD(1e-3))
    h1 = one.fit({x: X, y: Y}, epochs=3, batch_size=400)
    h2 = many.fit({x: X, y: Y}, epochs=3, batch_size=400, client=client)
    close(h2.losses, h1.losses)
    for p in (w, b):
        close(many.params[p], one.params[p])


def test_a_loss_that_does_not_split_by_rows_is_refused(client):
    w, x = ad.Variable("w"), ad.Variable("x")
    loss = ad.reduce_max_op(ad.matmul_op(x, w))  # a max over the rows
    with pytest.raises(ValueError, match="can't be split by rows: reduce_max node"):
        ad.distributed.gradients(loss, {w: np.ones(D)}, {x: problem()[0]}, client)


def test_shuffled_minibatch_fit_on_dask_arrays(client):
    """Adam (optimizer state on the client), shuffled batches with a partial last one,
    a learning-rate schedule: the same steps as one process."""
    loss, w, b, x, y = logreg()
    X, Y = problem()
    data = {x: da.from_array(X, chunks=(250, D)), y: da.from_array(Y, chunks=250)}
    start = {w: np.zeros(D), b: np.zeros(1)}
    opt = lambda: ad.optim.Adam(ad.optim.StepLR(0.3, 10, 0.5))  # noqa: E731
    one, many = ad.Trainer(loss, start, opt()), ad.Trainer(loss, start, opt())
    h1 = one.fit({x: X, y: Y}, epochs=2, batch_size=300, shuffle=True, seed=4)
    h2 = many.fit(data, epochs=2, batch_size=300, shuffle=True, seed=4, client=client)
    assert h2.steps_per_epoch == h1.steps_per_epoch == [4, 4]
    close(h2.losses, h1.losses, 1e-10)
    for p in (w, b):
        close(many.params[p], one.params[p], 1e-10)
    assert accuracy(many, w, b, X, Y) == accuracy(one, w, b, X, Y) >= 0.9


def test_fit_checks_its_arguments(client):
    loss, w, b, x, y = logreg()
    X, Y = problem()
    trainer = ad.Trainer(loss, {w: np.zeros(D), b: np.zeros(1)}, ad.optim.SGD(0.1))
    with pytest.raises(ValueError, match="batch_size"):
        trainer.fit({x: X, y: Y}, client=client)
    with pytest.raises(ValueError, match="progress"):
        trainer.fit({x: X, y: Y}, batch_size=N, progress=True, client=client)
    with pytest.raises(ValueError, match="no data for placeholder.*'y'"):
        trainer.fit({x: X}, batch_size=N, client=client)
    with pytest.raises(ValueError, match="different numbers of samples"):
        trainer.fit({x: X, y: Y[:10]}, batch_size=N, client=client)
    with pytest.raises(ValueError, match="reduction"):
        ad.distributed.gradients(loss, {w: np.zeros(D), b: np.zeros(1)}, {x: X, y: Y}, client,
                                 reduction="median")
    assert trainer.t == 0


def test_example_quick(client, capsys):
    from test_examples import load_example
    example = load_example("distributed_logreg")
    result = example.main(["--quick"], client=client)
    assert result["accuracy"] >= 0.9
    close(result["params"]["cluster"], result["params"]["1 process"], 1e-10)
    out = capsys.readouterr().out
    assert "ms per step" in out and "cluster" in out


def kill_worker(cluster, address):
    """SIGKILL the worker process at `address` (its nanny starts a new one)."""
    for nanny in cluster.workers.values():
        if nanny.worker_address == address:
            os.kill(nanny.process.process.pid, signal.SIGKILL)
            return
    raise AssertionError(f"no worker {address}")


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_losing_a_worker_mid_fit_leaves_the_result_unchanged(client, kind):
    loss, w, b, x, y = logreg()
    X, Y = problem()
    start = {w: np.zeros(D), b: np.zeros(1)}
    one = ad.Trainer(loss, start, ad.optim.SGD(0.5))
    one.fit({x: X, y: Y}, epochs=8, batch_size=N)
    data = {x: X, y: Y}
    if kind == "dask":
        data = {x: da.from_array(X, chunks=(500, D)), y: da.from_array(Y, chunks=500)}
    client.wait_for_workers(2)
    victim = sorted(client.nthreads())[0]

    def kill(epoch, history):
        if epoch == 2:
            kill_worker(client.cluster, victim)

    many = ad.Trainer(loss, start, ad.optim.SGD(0.5))
    with pytest.warns(RuntimeWarning, match="worker .* was lost during step"):
        history = many.fit(data, epochs=8, batch_size=N, client=client, callbacks=[kill])
    assert [addr for _, addr in history.workers_lost] == [victim]
    assert history.workers_lost[0][0] in (3, 4)  # the step after the kill (or the one after)
    close(history.losses, one.history.losses)
    for p in (w, b):
        close(many.params[p], one.params[p])
    assert many.t == 8
    client.wait_for_workers(2)
