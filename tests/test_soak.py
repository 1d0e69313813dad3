"""A soak run (marked `soak`; .ci/run runs it as a step of its own, `python -m pytest -m
soak tests`): 4 Python threads share three executors (an MLP, an elementwise chain cut
into chunks on 2 kernel threads, a small convnet; each with its gradients) for 20,000
runs each over mixed shapes, feeding the same arrays again, other arrays of the same
shapes and fresh copies.  Every result must have the bits of the native result for
those inputs computed up front (itself checked against the python backend), and RSS
may grow by less than 16 MB after the warm-up."""
import gc
import os
import threading

import numpy as np
import pytest

import fastad as ad

pytestmark = pytest.mark.soak

THREADS, RUNS, WARMUP, MAX_GROWTH = 4, 20_000, 1_000, 16 << 20


def mlp():
    x, w1, b1, w2, t = (ad.Variable(n) for n in ("x", "w1", "b1", "w2", "t"))
    hidden = ad.relu_op(ad.matmul_op(x, w1) + b1)
    loss = ad.softmax_cross_entropy_op(ad.tanh_op(hidden) @ w2, t)
    nodes = [loss, *ad.gradients(loss, [w1, b1, w2])]

    def feed(rng, batch):
        return {x: rng.standard_normal((batch, 5)), w1: rng.standard_normal((5, 7)),
                b1: rng.standard_normal(7), w2: rng.standard_normal((7, 4)),
                t: np.eye(4)[rng.integers(0, 4, batch)]}
    return ad.Executor(nodes), nodes, [lambda rng, b=b: feed(rng, b) for b in (1, 2, 3, 8, 33)]


def chain():
    x, a = ad.Variable("x"), ad.Variable("a")
    y = ad.exp_op(ad.sigmoid_op(x * a + 0.5)) * x - a
    loss = ad.reduce_sum_op(y)
    nodes = [ad.reduce_sum_op(y, axis=0), *ad.gradients(loss, [x, a])]
    shapes = [(1,), (7,), (100, 3), (5000,), (40_000,)]  # the last is cut into chunks
    return ad.Executor(nodes, threads=2), nodes, [
        lambda rng, s=s: {x: rng.uniform(-2, 2, s), a: np.float64(rng.uniform(0.5, 1.5))}
        for s in shapes]


def convnet():
    x, w = ad.Variable("x"), ad.Variable("w")
    loss = ad.reduce_sum_op(ad.max_pool2d_op(ad.tanh_op(ad.conv2d_op(x, w, padding=1)), 2))
    nodes = [loss, *ad.gradients(loss, [x, w])]
    return ad.Executor(nodes), nodes, [
        lambda rng, n=n: {x: rng.standard_normal((n, 2, 6, 6)),
                          w: rng.standard_normal((3, 2, 3, 3))} for n in (1, 2, 3)]


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_threads_mixed_shapes_and_many_runs_stay_exact_and_bounded():
    rng = np.random.default_rng(0)
    cases = []  # (executor, feeds, expected): two input sets per shape
    for ex, nodes, makers in (mlp(), chain(), convnet()):
        for make in makers:
            for _ in range(2):
                feed = make(rng)
                want = ex.run(feed)
                ref = ad.Executor(nodes, backend="python").run(feed)
                for w, r in zip(want, ref):
                    np.testing.assert_allclose(w, r, rtol=1e-10, atol=1e-12)
                cases.append((ex, feed, want))
    warm = threading.Barrier(THREADS + 1)
    done = threading.Barrier(THREADS + 1)
    errors = []

    def work(k):
        try:
            for i in range(RUNS):
                if i == WARMUP:
                    warm.wait()
                    done.wait()  # the main thread measures RSS in between
                ex, feed, want = cases[(i * 7 + k) % len(cases)]
                if i % 50 == k:  # new array objects: the slots are bound anew
                    feed = {n: v.copy() for n, v in feed.items()}
                got = ex.run(feed)
                if not all(np.array_equal(g, w) for g, w in zip(got, want)):
                    errors.append((k, i))
                    return
        except Exception as err:  # noqa: BLE001 -- reported below
            errors.append((k, repr(err)))
        finally:
            warm.abort()  # releases the main thread if a worker stopped early
            done.abort()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    try:
        warm.wait()
        gc.collect()
        before = rss()
        done.wait()
    except threading.BrokenBarrierError:
        before = None
    for t in threads:
        t.join()
    assert errors == []
    gc.collect()
    growth = rss() - before
    assert growth < MAX_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB"
