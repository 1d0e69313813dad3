"""Reliability: what a hostile round of probes found (issue 12), kept fixed.

User ops get inputs that stay valid and read-only; caches stay bounded; a feed_dict is
never changed; a rebound array is re-read when its layout changes; a dropped executor
frees itself without the cycle collector; both backends agree on corner cases; errors
name their real cause; Ctrl-C stops long runs soon and leaves training consistent.
"""
import gc
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import weakref
from collections import defaultdict

import numpy as np
import pytest

import fastad as ad
from fastad import optim
from helpers import SANITIZED
from fastad.graph import Op

BACKENDS = ["native", "python"]


def run(nodes, feed, backend="native", **kwargs):
    return ad.Executor(nodes, backend=backend, **kwargs).run(feed)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Keep(Op):
    """A user op that keeps the arrays its compute is given (as course code may)."""
    name = "keep"

    def __init__(self):
        self.kept = []

    def compute(self, node, vals):
        self.kept.append(vals[0])
        return vals[0] * 2

    def gradient(self, node, g):
        return [g * 2]

    def infer(self, node, shapes, dtypes):  # not compute on ones, whose inputs it would keep
        return shapes[0], dtypes[0]


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


# -- 1. a user op's inputs keep their memory alive --------------------------------------

def test_user_op_inputs_stay_valid_after_the_executor_is_freed():
    keep, x = Keep(), ad.Variable("x")
    ex = ad.Executor([keep(ad.exp_op(x) + 1.0)])
    v = np.linspace(0, 1, 8000)
    ex.run({x: v})
    kept = keep.kept[-1]  # exp(x) + 1, in the executor's arena
    del ex
    gc.collect()
    junk = [np.full(8000, 7.0) for _ in range(50)]  # would land in freed memory
    np.testing.assert_array_equal(kept, np.exp(v) + 1.0)
    del junk


def test_a_kept_feed_input_still_reads_its_array_after_the_slot_is_rebound():
    keep, x = Keep(), ad.Variable("x")
    ex = ad.Executor([keep(x)])
    first = np.arange(8000.0)
    ex.run({x: first})
    ex.run({x: np.ones(8000)})  # the slot now points elsewhere
    kept = keep.kept[0]
    del first
    gc.collect()
    junk = [np.full(8000, 7.0) for _ in range(50)]
    np.testing.assert_array_equal(kept, np.arange(8000.0))
    del junk


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_user_op_cannot_write_into_its_inputs(backend):
    class Scribble(Op):
        name = "scribble"

        def compute(self, node, vals):
            vals[0][...] = 0.0
            return vals[0]

    x = ad.Variable("x")
    for y in (Scribble()(x), Scribble()(x * 3.0)):  # a fed array, a computed value
        v = np.arange(4.0)
        with pytest.raises(ValueError, match="read-only"):
            run([y, x * 1.5], {x: v}, backend)
        np.testing.assert_array_equal(v, np.arange(4.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_check_the_shape_a_user_op_returns(backend):
    class Short(Op):
        name = "short"

        def compute(self, node, vals):
            return vals[0][:2]

        def infer(self, node, shapes, dtypes):
            return shapes[0], dtypes[0]

    x = ad.Variable("x")
    with pytest.raises(ValueError, match=r"short node .*compute returned shape \(2,\), but "
                                         r"its inputs \[\(3,\)\] give \(3,\)"):
        run([Short()(x) + 1.0], {x: np.ones(3)}, backend)


# -- 2. the plan cache is bounded ---------------------------------------------------------

def sigmoid_layer():
    """(sigmoid: numpy's bits natively on every CPU, which tanh is not where numpy's
    tanh is a scalar loop)"""
    x, w = ad.Variable("x"), ad.Variable("w")
    return x, w, ad.sigmoid_op(x @ w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plan_cache_keeps_at_most_max_plans_and_counts_evictions(backend):
    x, w, y = sigmoid_layer()
    ex = ad.Executor([y], backend=backend, max_plans=4)
    W = np.linspace(-1, 1, 12).reshape(4, 3)
    for batch in [*range(1, 31), 1, 2]:  # the first sizes again: evicted, built anew
        X = np.linspace(0, 1, 4 * batch).reshape(batch, 4)
        np.testing.assert_array_equal(ex.run({x: X, w: W})[0],
                                      run([y], {x: X, w: W}, "python")[0])
    info = ex.cache_info()
    assert info.entries == 4 and info.max_entries == 4
    assert info.evictions == 32 - 4


def test_plan_cache_keeps_at_most_max_plan_bytes():
    x, y = ad.Variable("x"), None
    y = ad.exp_op(ad.exp_op(x) + 1.0) * 2.0  # arena temporaries of 8 bytes per element
    limit = 1 << 20
    ex = ad.Executor([y], max_plan_bytes=limit)
    sizes = range(1000, 16000, 500)  # arenas of about 2 MiB in all
    for n in sizes:
        ex.run({x: np.ones(n)})
        info = ex.cache_info()
        assert info.nbytes <= limit or info.entries == 1
    assert 1 <= info.entries < len(sizes) and info.evictions == len(sizes) - info.entries


def test_set_plan_cache_bounds_executors_made_without_their_own():
    x, w, y = sigmoid_layer()
    before = ad.Executor([y]).cache_info()
    assert before.max_entries <= 1024 and before.max_bytes <= 512 << 20  # a few hundred MiB
    try:
        ad.set_plan_cache(max_plans=3)
        ex = ad.Executor([y])
        for batch in range(1, 10):
            ex.run({x: np.ones((batch, 4)), w: np.ones((4, 3))})
        assert ex.cache_info().entries == 3
    finally:
        ad.set_plan_cache(before.max_entries, before.max_bytes)
    with pytest.raises(ValueError, match="positive integer"):
        ad.set_plan_cache(max_plans=0)


def test_a_trainer_fed_ever_new_batch_shapes_keeps_its_plans_bounded():
    x, t, w = ad.Variable("x"), ad.Variable("t"), ad.Variable("w")
    loss = ad.reduce_mean_op((ad.matmul_op(x, w) - t) ** 2)
    before = ad.Executor([loss]).cache_info()
    try:
        ad.set_plan_cache(max_plans=3)
        trainer = ad.Trainer(loss, {w: np.zeros(4)}, ad.optim.SGD(0.01))
        for batch in range(1, 12):  # a step and a fit (the kernel's loop) per shape
            trainer.step({x: np.ones((batch, 4)), t: np.ones(batch)})
            trainer.fit({x: np.ones((batch, 4)), t: np.ones(batch)}, batch_size=batch)
        assert len(trainer._plans) <= 3 and len(trainer._loops) <= 3
    finally:
        ad.set_plan_cache(before.max_entries, before.max_bytes)


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine keeps freed memory")
@pytest.mark.parametrize("backend", BACKENDS)
def test_5000_batch_sizes_keep_memory_bounded(backend):
    x, w, y = sigmoid_layer()
    ex = ad.Executor([y], backend=backend, max_plans=8)
    W = np.ones((4, 3))
    ex.run({x: np.ones((1, 4)), w: W})
    before = rss_mib()
    for batch in range(2, 5002):
        ex.run({x: np.ones((batch, 4)), w: W})
    assert rss_mib() - before < 32  # unbounded, 5,000 plans took over 180 MiB
    assert ex.cache_info().entries == 8


# -- 3. keys outside the graph enter no cache key --------------------------------------------

def plans_alive():
    from fastad.vm import Plan
    return sum(isinstance(o, Plan) for o in gc.get_objects())


@pytest.mark.parametrize("backend", BACKENDS)
def test_feed_keys_outside_the_graph_enter_no_cache_key(backend):
    x, w, y = sigmoid_layer()
    ex = ad.Executor([y], backend=backend)
    feed = {x: np.ones((2, 4)), w: np.ones((4, 3))}
    gc.collect()
    before = plans_alive()
    for step in range(300):
        ex.run({**feed, ("step", step): step, f"note {step}": None})
    assert plans_alive() - before <= 1
    assert len(ex.schedules.cache) == 1
    assert ex.cache_info().entries == 1 and ex.cache_info().evictions == 0


# -- 4. a feed_dict is never changed ------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_defaultdict_feed_is_never_changed_and_a_missing_feed_says_so(backend):
    x, w, y = sigmoid_layer()
    ex = ad.Executor([y], backend=backend)
    ex.run({x: np.ones((2, 4)), w: np.ones((4, 3))})
    feed = defaultdict(lambda: 0.0, {x: np.ones((2, 4)), "unrelated": 1})
    with pytest.raises(ValueError, match="missing feed for placeholder 'w'"):
        ex.run(feed)
    assert list(feed) == [x, "unrelated"]


# -- 5. rebinding a fed array re-reads its layout -------------------------------------------

def test_a_fed_array_whose_strides_change_is_read_with_the_new_ones():
    a = ad.Variable("a")
    ex = ad.Executor([a * 2.0])
    arr = np.arange(6.0)
    np.testing.assert_array_equal(ex.run({a: arr})[0], np.arange(6.0) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        arr.strides = (0,)  # every element is now arr[0]
    np.testing.assert_array_equal(ex.run({a: arr})[0], np.zeros(6))


def _swap_strides(arr):  # a transposed layout of the same memory: no longer C-contiguous
    arr.shape, arr.strides = arr.shape[::-1], arr.strides[::-1]


def _as_float32(arr):  # the same bytes read as float32: dtype and shape change
    arr.dtype = np.float32


@pytest.mark.parametrize("change", [_swap_strides, _as_float32], ids=["strides", "dtype"])
@pytest.mark.parametrize("ndim", [2, 8], ids=["2-d", "8-d"])  # 8 > the VM's loop rank
def test_a_fed_array_changed_in_place_between_runs_is_read_as_it_is_now(change, ndim):
    a = ad.Variable("a")
    ex, ref = ad.Executor([a * 2.0]), ad.Executor([a * 2.0], backend="python")
    arr = np.arange(48.0).reshape((4, 12) if ndim == 2 else (2, 3) + (1,) * 5 + (8,))
    for _ in range(2):  # bound, then met again
        np.testing.assert_array_equal(ex.run({a: arr})[0], arr * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        change(arr)
    for _ in range(2):
        out, want = ex.run({a: arr})[0], ref.run({a: arr})[0]
        assert out.dtype == want.dtype and out.shape == want.shape
        np.testing.assert_array_equal(out, want)


def test_a_fed_array_whose_data_moved_is_read_where_it_is_now():
    a = ad.Variable("a")
    ex = ad.Executor([a * 2.0])
    arr = np.arange(6.0)
    ex.run({a: arr})
    before = arr.ctypes.data
    # the same object, shape, dtype and strides, its data moved (numpy says: unsafe)
    arr.resize(100_000, refcheck=False)
    arr.resize(6, refcheck=False)
    assert arr.ctypes.data != before
    arr[:] = 5.0
    np.testing.assert_array_equal(ex.run({a: arr})[0], np.full(6, 10.0))


# -- 6. no reference cycles: dropping the last reference frees everything ---------------------

@pytest.fixture
def no_cycle_collector():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("backend", BACKENDS)
def test_building_and_running_an_executor_leaves_no_cyclic_garbage(no_cycle_collector, backend):
    """Lowering's own objects (simplification's tables, the values) go with their last
    reference: a long graph's first run leaves nothing for the cycle collector to find."""
    x, w = ad.Variable("x"), ad.Variable("w")
    h = ad.tanh_op(x @ w)
    y = ad.reduce_sum_op(-(-h) * 1.0 + ad.oneslike_op(h) * 0.0 + ad.tanh_op(x @ w))
    ex = ad.Executor([y, *ad.gradients(y, [w])], backend=backend)
    ex.run({x: np.ones((3, 4)), w: np.ones((4, 5))})
    if backend == "native":
        assert any(ex._vm.last.rewrites.counts.values())  # every kind of rewrite was tried
    del ex
    assert gc.collect() == 0


def test_a_dropped_executor_is_freed_without_the_cycle_collector(no_cycle_collector):
    keep, x, w = Keep(), ad.Variable("x"), ad.Variable("w")
    graphs = [[ad.tanh_op(x @ w)],                              # one C call
              [keep(x @ w) + 1.0, ad.exp_op(x @ w) * 3.0],      # Python steps, fresh outputs
              [ad.reduce_sum_op(x @ w), x @ w]]
    feed = {x: np.ones((300, 4)), w: np.ones((4, 30))}
    for nodes in graphs:
        for backend in BACKENDS:
            ex = ad.Executor(nodes, backend=backend)
            ex.run(feed)
            ex.run({**feed, x: np.ones((5, 4))})
            refs = [weakref.ref(ex)]
            if backend == "native":
                plan = ex._vm.last
                refs += [weakref.ref(plan), weakref.ref(plan.pool[0].arena)]
                del plan
            keep.kept.clear()  # views that keep an arena alive
            del ex
            assert [r() for r in refs] == [None] * len(refs), (nodes, backend)


def test_a_dropped_trainer_is_freed_without_the_cycle_collector(no_cycle_collector):
    w, x = ad.Variable("w"), ad.Variable("x")
    loss = ad.reduce_sum_op((w * x) * (w * x))
    for backend in BACKENDS:
        trainer = ad.Trainer(loss, {w: np.ones(3)}, optim.Adam(0.1), backend=backend)
        trainer.fit({x: np.ones((8, 3))}, batch_size=4, progress=False)
        trainer.step({x: np.ones(3)})
        ref = weakref.ref(trainer)
        del trainer
        assert ref() is None, backend


# -- 7. the backends agree (the reference defines the answer) -------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
def test_square_root_power_is_numpys_at_minus_infinity_and_minus_zero(backend, dtype):
    x = ad.Variable("x")
    v = np.array([-np.inf, -0.0, 0.0, -1.0, np.inf, np.nan, 4.0, 1e-300], dtype)
    with np.errstate(invalid="ignore"):
        want = v ** 0.5
    assert np.signbit(want[1]) and np.isnan(want[0])
    assert same_bits(run([x ** 0.5], {x: v}, backend)[0], want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_tangent_of_float64_x_with_a_float32_tangent(backend):
    x, t = ad.Variable("x"), ad.Variable("t")
    xs = np.array([1e-50, -1e-50, 0.0, -0.0, np.nan, 2.0, -3.0, 1e-300])
    tangent, = ad.jvp([ad.relu_op(x)], [x], [t])
    got = run([tangent], {x: xs, t: np.ones(8, np.float32)}, backend)[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1, 0, 0, 0, 0, 1, 0, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_where_condition_in_float64_steers_float32_values(backend):
    c, a, b = ad.Variable("c"), ad.Variable("a"), ad.Variable("b")
    cond = np.array([1e-50, -1e-50, 0.0, -0.0, np.nan, 1e-300])
    got = run([ad.where_op(c, a, b)], {c: cond, a: np.ones(6, np.float32),
                                       b: np.zeros(6, np.float32)}, backend)[0]
    np.testing.assert_array_equal(got, np.where(cond, 1.0, 0.0).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_products_of_a_row_and_a_column_equal_numpys_dot_bit_for_bit(dtype):
    a, b = ad.Variable("a"), ad.Variable("b")
    ex = ad.Executor([a @ b])
    rng = np.random.default_rng(0)
    for k in [*range(1, 40), 100, 257, 1000, 4099]:
        for sa, sb in [((k,), (k,)), ((1, k), (k, 1)), ((k,), (k, 1)), ((1, k), (k,)),
                       ((3, 1, k), (3, k, 1))]:
            A, B = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
            assert same_bits(ex.run({a: A, b: B})[0], np.matmul(A, B)), (sa, sb)


# -- 8. errors name their real cause --------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_matmul_with_a_dimension_past_2_31_is_numpys_empty_result(backend):
    a, b = ad.Variable("a"), ad.Variable("b")
    big = 2**31 + 5
    for sa, sb in [((0, big), (big, 0)), ((big, 0), (0, 0)), ((0, 0), (0, big)),
                   ((3, 0), (0, 4)), ((2, 0, 3), (3, 4))]:
        A, B = np.empty(sa), np.empty(sb)
        assert same_bits(run([a @ b], {a: A, b: B}, backend)[0], np.matmul(A, B)), (sa, sb)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broadcast_whose_size_overflows_says_so(backend):
    xs = [ad.Variable(f"x{i}") for i in range(6)]
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    # six inputs of 2**11 elements, each along its own axis: 2**66 elements together
    feed = {x: np.ones([2**11 if d == i else 1 for d in range(6)], np.float32)
            for i, x in enumerate(xs)}
    with pytest.raises(ValueError, match=r"add node .*the broadcast shape \(2048, 2048, 2048, "
                                         r"2048, 2048, 2048\) has 73786976294838206464 "
                                         r"elements: its size overflows"):
        run([total], feed, backend)
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        run([xs[0] + xs[1]], {xs[0]: np.ones(3), xs[1]: np.ones(4)}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, why", [
    ((-3, 2), r"shape \(-3, 2\) has a negative dimension"),
    ((2**40, 2**40), r"shape \(1099511627776, 1099511627776\) is too large: .* overflows"),
    ((2.5,), r"shape \(2.5,\) is not a tuple of integers"),
], ids=["negative", "huge", "float"])
def test_a_user_op_infer_giving_no_array_shape_raises_a_clear_error(backend, shape, why):
    class Odd(Op):
        name = "odd"

        def compute(self, node, vals):
            return vals[0]

        def infer(self, node, shapes, dtypes):
            return shape, dtypes[0]

    x = ad.Variable("x")
    with pytest.raises(ValueError, match=rf"odd node 'Odd\(x\)': {why} \(input shapes \(3,\)\)"):
        run([Odd()(x) + 1.0], {x: np.ones(3)}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_list_of_pairs_as_feed_asks_for_a_dict(backend):
    x = ad.Variable("x")
    with pytest.raises(TypeError, match=r"feed_dict must be a dict \{node: value\}, not list: "
                                        r"dict\(pairs\)"):
        run([x + 1.0], [(x, np.ones(3))], backend)


def test_operands_that_are_not_nodes_fail_when_the_graph_is_built():
    x = ad.Variable("x")
    for build in (lambda: x @ 3, lambda: 3 @ x, lambda: x @ np.ones(3),
                  lambda: ad.exp_op(2.0), lambda: ad.matmul_op(x, [1.0])):
        with pytest.raises(TypeError, match="takes Nodes as inputs"):
            build()
    for build in (lambda: ad.softmax_op(), lambda: ad.softmax_op(x, x),
                  lambda: ad.softmax_cross_entropy_op(x)):
        with pytest.raises(TypeError, match=r"takes \d input node\(s\), not"):
            build()
    with pytest.raises(TypeError, match="kernel"):
        ad.max_pool2d_op(kernel=2)


def test_check_gradients_refuses_complex_feeds():
    x = ad.Variable("x")
    with pytest.raises(TypeError, match="feed for 'x' has dtype complex128"):
        ad.check_gradients(ad.reduce_sum_op(x * x), [x], {x: np.ones(3) + 1j})


# -- 10. responsiveness --------------------------------------------------------------------

CTRL_C_RUN = textwrap.dedent("""
    import sys, time
    import numpy as np
    import fastad as ad
    x, w = ad.Variable("x"), ad.Variable("w")
    if sys.argv[1] == "chain":  # long elementwise instructions and groups
        y = x
        for i in range(400):
            y = ad.sin_op(y) if i % 2 else y * 1.0001
        feed, small = {x: np.ones(1 << 22)}, {x: np.ones(5)}
    else:  # one matmul of about 1.5 s (quiet machine, one thread): blocks of 256 rows
        y = x @ w
        feed = {x: np.ones((8192, 4096)), w: np.ones((4096, 2048))}
        small = {x: np.ones((2, 4096)), w: np.ones((4096, 3))}
    ex = ad.Executor([y])
    ex.run(small)
    print("ready", flush=True)
    try:
        while True:
            ex.run(feed)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    same = all(np.array_equal(ex.run(f)[0], ad.Executor([y]).run(f)[0]) for f in (small, small))
    print("usable", int(same), flush=True)
""")


@pytest.mark.parametrize("kind", ["chain", "matmul"])
def test_ctrl_c_stops_a_long_native_run_soon_and_the_executor_stays_usable(kind):
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_RUN, kind], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # the first long run has started
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline().strip()
    elapsed = time.perf_counter() - sent
    rest = proc.stdout.read().split()  # (communicate(timeout) skips what readline read)
    proc.wait(timeout=60)
    assert line == "interrupted"
    assert elapsed < 0.5, elapsed  # within 0.1 s of the signal, plus a busy machine's noise
    assert rest == ["usable", "1"], proc.returncode


def chain(n):
    x = ad.Variable("x")
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 3 == 0 else y + 0.5 if i % 3 == 1 else ad.sigmoid_op(y)
    return x, y


def test_a_20000_node_chain_runs_natively_as_the_reference():
    x, y = chain(20_000)
    v = np.linspace(-1, 1, 7)
    assert same_bits(run([y], {x: v})[0], run([y], {x: v}, "python")[0])


# -- Trainer: Ctrl-C outside the kernel's loop ---------------------------------------------

CTRL_C_FIT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import fastad as ad
    from fastad.graph import Op

    class Twice(Op):  # a user op: the native step program has a Python step
        name = "twice"
        def compute(self, node, vals):
            return vals[0] * 2.0
        def gradient(self, node, g):
            return [g * 2.0]

    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    backend, batch = sys.argv[1], (None if sys.argv[2] == "none" else int(sys.argv[2]))
    o = ad.reduce_sum_op(Twice()(w * x), axis=-1) + b
    loss = ad.reduce_mean_op((o - y) * (o - y))
    rng = np.random.default_rng(0)
    X, Y = rng.random((1_000_003, 4)), rng.random(1_000_003)

    def trainer():
        return ad.Trainer(loss, {w: np.zeros(4), b: np.zeros(1)}, ad.optim.SGD(1e-3),
                          backend=backend)

    t = trainer()
    t.fit({x: X[:10], y: Y[:10]}, batch_size=batch)
    warm = t.t
    print("ready", flush=True)
    try:
        t.fit({x: X, y: Y}, epochs=100, batch_size=batch, progress=False)
        print("finished")
    except KeyboardInterrupt:
        h = t.history
        steps = len(h.losses)
        print("interrupted", steps, t.t - warm, h.interrupted, flush=True)
        again = trainer()  # the parameters are those of exactly those steps: replay them
        again.fit({x: X[:10], y: Y[:10]}, batch_size=batch)
        n = steps if batch is None else steps * batch
        replay = again.fit({x: X[:n], y: Y[:n]}, batch_size=batch, progress=False)
        print(int(np.array_equal(again.params[w], t.params[w])),
              int(np.array_equal(replay.losses, h.losses)), flush=True)
""")


@pytest.mark.parametrize("backend, batch", [("python", "none"), ("native", "none"),
                                            ("python", "3")])
def test_ctrl_c_in_a_python_loop_fit_keeps_the_steps_done(backend, batch):
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_FIT, backend, batch],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline().split()
    rest = proc.stdout.read().split()  # (communicate(timeout) skips what readline read)
    proc.wait(timeout=60)
    assert line[0] == "interrupted", line
    steps, t, interrupted = int(line[1]), int(line[2]), line[3]
    assert 0 < steps == t and interrupted == "True"
    assert rest == ["1", "1"]


def test_ctrl_c_in_the_last_partial_batch_keeps_the_epoch(monkeypatch):
    w, x = ad.Variable("w"), ad.Variable("x")
    loss = ad.reduce_mean_op((w * x - 1.0) * (w * x - 1.0))
    trainer = ad.Trainer(loss, {w: np.zeros(3)}, optim.SGD(0.1))
    run_step = trainer._run_step

    def interrupted_partial(data, losses):
        if len(data[x]) == 2:  # the partial batch: Ctrl-C before it runs
            raise KeyboardInterrupt
        run_step(data, losses)

    monkeypatch.setattr(trainer, "_run_step", interrupted_partial)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit({x: np.ones((8, 3))}, batch_size=3, progress=False)
    h = trainer.history
    assert h.interrupted and len(h.losses) == 2 and trainer.t == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_during_a_parameter_update_never_leaves_it_half_done(backend, monkeypatch):
    w, v, x = ad.Variable("w"), ad.Variable("v"), ad.Variable("x")
    loss = ad.reduce_sum_op((w * x + v) * (w * x + v))
    params, data = {w: np.ones(3), v: np.full(3, 0.5)}, {x: np.arange(3.0)}
    clean = ad.Trainer(loss, params, optim.Adam(0.1), backend=backend)
    trainer = ad.Trainer(loss, params, optim.Adam(0.1), backend=backend)
    for t in (clean, trainer):  # the step program is built (and its constants folded)
        t.step(data)
    clean.step(data)
    copyto, calls = np.copyto, []

    def copy_then_ctrl_c(*args, **kwargs):  # Ctrl-C after the first buffer is written
        copyto(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(np, "copyto", copy_then_ctrl_c)
    if backend == "native":  # Ctrl-C in the middle of the C call's run
        from fastad import vm
        run = vm.Plan.run

        def run_then_ctrl_c(self, *args, **kwargs):
            signal.raise_signal(signal.SIGINT)
            return run(self, *args, **kwargs)

        monkeypatch.setattr(vm.Plan, "run", run_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        trainer.step(data)
    monkeypatch.undo()
    assert trainer.t == 2
    for p in (w, v):
        np.testing.assert_array_equal(trainer.params[p], clean.params[p])
    assert trainer.step(data) == clean.step(data)


def test_without_reading_array_structs_feeds_are_bound_anew_each_run(monkeypatch):
    # where ids are not addresses (not CPython), every run binds through the buffer protocol
    from fastad import vm
    monkeypatch.setattr(vm, "BIND_BY_ID", False)
    a, b = ad.Variable("a"), ad.Variable("b")
    ex = ad.Executor([a * b + 1.0])
    arr, other = np.arange(6.0), np.full(6, 2.0)
    for _ in range(2):
        np.testing.assert_array_equal(ex.run({a: arr, b: other})[0], arr * 2 + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        arr.strides = (0,)
    np.testing.assert_array_equal(ex.run({a: arr, b: other})[0], np.full(6, 1.0))
    np.testing.assert_array_equal(ex.run({a: arr[::2], b: other[:3]})[0], np.ones(3))
