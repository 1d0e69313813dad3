"""Runs on several threads (`Executor(nodes, threads=N)`, `fastad.set_threads`) give the
same bits as on one: big instructions are cut into a fixed partition of chunks, and
reductions only where their order of additions doesn't change."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastad as ad
from fastad import vm
from helpers import GraphSpec, build_graph, graph_specs

CHUNK = 1 << 14  # csrc/run.c's FA_CHUNK: instructions of 2 chunks or more are cut


def run_with(nodes, feed, threads):
    return ad.Executor(nodes, threads=threads).run(feed)


def assert_same_bits(a, b):
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert np.array_equal(x, y, equal_nan=True)
        assert np.array_equal(np.signbit(x), np.signbit(y))


def scaled(spec, factors):
    """`spec` with every non-unit axis of every shape stretched: axis -k by factors[k-1]
    (shapes that broadcast together still do); all axes by the smallest factor when a
    step needs equal axes (a transpose of a cube) that unequal factors would break."""
    def grow(shape, factors):
        n = len(shape)
        return tuple(d if d == 1 else d * factors[n - 1 - i] for i, d in enumerate(shape))
    for fs in (factors, (min(factors),) * len(factors)):
        stretched = GraphSpec(tuple(grow(s, fs) for s in spec.input_shapes), spec.steps)
        try:
            if None not in stretched.shapes():
                return stretched
        except (TypeError, ValueError):  # a None shape reached a later step's rule
            pass
    raise AssertionError(f"{spec} can't be stretched")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=graph_specs(max_ops=8), seed=st.integers(0, 2**32 - 1),
       size=st.sampled_from(["below", "around", "above"]),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_random_graphs_same_bits_on_1_2_and_3_threads(spec, seed, size, dtype):
    # base shapes have at most 12 elements; stretch them below, around and above the cut
    factors = {"below": (40, 5, 2), "around": (100, 30, 3), "above": (301, 41, 3)}[size]
    spec = scaled(spec, factors)
    xs, nodes = build_graph(spec)
    out = nodes[-1]
    grads = ad.gradients(ad.reduce_sum_op(out), xs)
    rng = np.random.default_rng(seed)
    feed = {x: rng.uniform(-2, 2, s).astype(dtype) for x, s in zip(xs, spec.input_shapes)}
    one = run_with([out, *grads], feed, 1)
    for threads in (2, 3):
        assert_same_bits(run_with([out, *grads], feed, threads), one)


SUM_CASES = [((1_000_003,), None), ((70_001,), 0), ((300, 400), 0), ((300, 400), 1),
             ((40, 50, 60), (0, 2)), ((40, 50, 60), 1), ((2, 65_537), None), ((65_537, 2), 0)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, axis", SUM_CASES)
def test_big_sums_same_bits_as_numpy_and_one_thread(shape, axis, dtype):
    """Full sums are cut along the subtrees of numpy's pairwise summation, partial sums
    along the axes they keep: np.sum's bits on any thread count."""
    x = ad.Variable("x")
    v = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    nodes = [ad.reduce_sum_op(x, axis=axis), ad.reduce_mean_op(x * x, axis=axis)]
    for threads in (1, 2, 4):
        total, mean = run_with(nodes, {x: v}, threads)
        assert np.array_equal(total, np.sum(v, axis=axis)), threads
        ref = ad.Executor(nodes[1:], backend="python").run({x: v})[0]
        assert np.array_equal(mean, ref), threads


@pytest.mark.parametrize("n", [5, 70_001, 1_000_003])
def test_a_sum_of_negative_zeros_is_numpys_positive_zero(n):
    """np.sum starts from 0.0, so that -0.0 + -0.0 ... sums to 0.0: so do the native
    sums, whole or cut at the subtrees of the pairwise sum."""
    x = ad.Variable("x")
    v = np.full(n, -0.0)
    want = np.sum(v)
    for threads in (1, 2):
        got = run_with([ad.reduce_sum_op(x)], {x: v}, threads)[0]
        assert got == want and np.signbit(got) == np.signbit(want), (n, threads)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_rows_and_blocked_groups_same_bits(dtype):
    x, t = ad.Variable("x"), ad.Variable("t")
    rng = np.random.default_rng(2)
    v, labels = rng.standard_normal((3000, 37)).astype(dtype), rng.uniform(0, 1, (3000, 37))
    chain = ad.exp_op(ad.sigmoid_op(x * 0.5 + 1.0) * x) - x
    nodes = [ad.softmax_op(x), ad.log_softmax_op(x), ad.softmax_cross_entropy_op(x, t), chain,
             *ad.gradients(ad.softmax_cross_entropy_op(x, t) + ad.reduce_sum_op(chain), [x])]
    feed = {x: v, t: labels.astype(dtype)}
    ref = ad.Executor(nodes, backend="python").run(feed)
    for threads in (1, 2, 3):
        got = run_with(nodes, feed, threads)
        assert_same_bits(got[:4], ref[:4])  # exactly the reference's bits
        if threads == 1:
            first = got
        assert_same_bits(got, first)


def test_set_threads_is_the_default_of_executors_without_threads():
    x = ad.Variable("x")
    v = np.random.default_rng(3).standard_normal(200_000)
    ex = ad.Executor([ad.reduce_sum_op(ad.tanh_op(x))])
    want = ex.run({x: v})
    try:
        ad.set_threads(2)
        assert vm.DEFAULT_OPTIONS.threads == 2
        assert_same_bits(ex.run({x: v}), want)
        assert vm.lib.fa_pool_workers() >= 1
    finally:
        ad.set_threads(1)
    with pytest.raises(ValueError, match="at least 1"):
        ad.set_threads(0)
    with pytest.raises(ValueError, match="only the native backend"):
        ad.Executor([x], backend="python", threads=2)


def test_threaded_executor_shared_by_python_threads():
    """Several Python threads running threaded executors at once: one gets the pool, the
    others run their chunks alone; every result has the same bits."""
    x = ad.Variable("x")
    node = ad.reduce_sum_op(ad.exp_op(ad.sin_op(x)) * x, axis=0)
    ex = ad.Executor([node], threads=2)
    vals = [np.random.default_rng(k).standard_normal((500, 300)) for k in range(4)]
    want = [ad.Executor([node]).run({x: v})[0] for v in vals]
    errors = []

    def work(k):
        for _ in range(15):
            got, = ex.run({x: vals[k]})
            if not np.array_equal(got, want[k]):
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
