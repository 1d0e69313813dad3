"""The native executor's own promises: no Python compute for built-in ops, user ops
between native segments, threads, no leaks, programs validated before they run,
and feeds that can never crash the process."""
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import fastad as ad
from fastad import ops
from fastad.vm import OPCODES, ffi, lib


def seed_logreg():
    w, x, b, y = (ad.Variable(n) for n in "wxby")
    o = ad.reduce_sum_op(w * x) + b
    h = 1 / (ad.exp_op(-o) + 1)
    loss = -(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))
    return (w, x, b, y), [loss, *ad.gradients(loss, [w, b])]


def mlp():
    x, w1, b1, w2, t = (ad.Variable(n) for n in ("x", "w1", "b1", "w2", "t"))
    hidden = ad.relu_op(ad.matmul_op(x, w1) + b1)
    loss = ad.softmax_cross_entropy_op(ad.tanh_op(hidden) @ w2, t)
    return (x, w1, b1, w2, t), [loss, *ad.gradients(loss, [w1, b1, w2])]


def mlp_feeds(rng, dtype=np.float64):
    t = np.eye(4)[rng.integers(0, 4, 6)]
    return [rng.standard_normal(s).astype(dtype) for s in ((6, 5), (5, 7), (7,), (7, 4))] + [
        t.astype(dtype)]


def test_native_run_calls_no_python_compute(monkeypatch):
    """Every built-in op of these graphs runs in C: make every `compute` raise."""
    graphs = [seed_logreg(), mlp()]
    rng = np.random.default_rng(0)
    feeds = [[rng.random(3), rng.random(3), rng.random(1), np.float64(1.0)], mlp_feeds(rng)]
    expected = [ad.Executor(nodes, backend="python").run(dict(zip(ins, f)))
                for (ins, nodes), f in zip(graphs, feeds)]

    def forbidden(self, node, vals):
        raise AssertionError(f"Python compute called for {node}")

    for cls in {type(getattr(ops, name)) for name in dir(ops) if name.endswith("_op")}:
        monkeypatch.setattr(cls, "compute", forbidden)
    for (ins, nodes), f, want in zip(graphs, feeds, expected):
        got = ad.Executor(nodes).run(dict(zip(ins, f)))
        for g, e in zip(got, want):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


class Square(ad.Op):
    """A user-defined op without `infer`: the executor learns its shape from `compute`."""
    name = "square"

    def __call__(self, a):
        return ad.Node(self, [a], f"Square({a})")

    def compute(self, node, vals):
        return vals[0] * vals[0]

    def gradient(self, node, g):
        return [g * node.inputs[0] * 2]


class IntCount(ad.Op):
    """A user op that returns integers: promoted to float64 like an integer feed."""
    name = "int_count"

    def __call__(self, a):
        return ad.Node(self, [a], f"IntCount({a})")

    def compute(self, node, vals):
        return (vals[0] > 0).astype(np.int64)

    def gradient(self, node, g):
        return [ad.zeroslike_op(node.inputs[0])]


def test_user_op_between_native_segments():
    x, y = ad.Variable("x"), ad.Variable("y")
    s = Square()(ad.exp_op(x) * y)
    out = ad.reduce_sum_op(ad.tanh_op(s) + IntCount()(x - 0.5), axis=0)
    nodes = [out, *ad.gradients(ad.reduce_sum_op(out), [x, y])]
    feed = {x: np.linspace(-1, 1, 12).reshape(4, 3), y: np.arange(3.0)}
    native, ref = ad.Executor(nodes).run(feed), ad.Executor(nodes, backend="python").run(feed)
    for n, r in zip(native, ref):
        assert n.dtype == r.dtype == np.float64
        np.testing.assert_allclose(n, r, rtol=1e-13)


def test_user_op_returning_a_wrong_shape_is_reported():
    class Bad(Square):
        def infer(self, node, shapes, dtypes):
            return shapes[0], dtypes[0]

        def compute(self, node, vals):
            return np.zeros(7)

    x = ad.Variable("x")
    with pytest.raises(ValueError, match=r"square node .*returned shape \(7,\)"):
        ad.Executor([Bad()(x) + 1]).run({x: np.ones(3)})


def test_threads_share_one_executor():
    (ins, nodes) = mlp()
    ex = ad.Executor(nodes)
    ref = ad.Executor(nodes, backend="python")
    rng = np.random.default_rng(1)
    cases = [dict(zip(ins, mlp_feeds(rng))) for _ in range(8)]
    expected = [ref.run(c) for c in cases]
    errors = []

    def worker(k):
        try:
            for i in range(150):
                j = (i * 5 + k) % len(cases)
                for g, e in zip(ex.run(cases[j]), expected[j]):
                    np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)
        except Exception as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(ex._vm.last.pool) >= 1


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_no_leak_over_30k_runs():
    ins, nodes = seed_logreg()
    ex = ad.Executor(nodes)
    rng = np.random.default_rng(2)
    xs = rng.random((64, 3))
    w, b = rng.random(3), rng.random(1)
    for i in range(2000):  # warm up allocator pools
        ex.run({ins[0]: w, ins[1]: xs[i % 64], ins[2]: b, ins[3]: np.float64(i % 2)})
    before = rss_bytes()
    for i in range(30000):
        ex.run({ins[0]: w, ins[1]: xs[i % 64], ins[2]: b, ins[3]: np.float64(i % 2)})
    growth = rss_bytes() - before
    assert growth < 4 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"


def test_outputs_are_fresh_and_feeds_untouched():
    x = ad.Variable("x")
    nodes = [x, x * 1, ad.reduce_sum_op(x), x]
    feed = np.arange(6.0).reshape(2, 3)
    before = feed.copy()
    ex = ad.Executor(nodes)
    first = ex.run({x: feed})
    assert not any(np.shares_memory(a, feed) for a in first)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(first) for b in first[i + 1:])
    second = ex.run({x: feed * 2})
    np.testing.assert_array_equal(first[1], before)
    np.testing.assert_array_equal(second[1], before * 2)
    np.testing.assert_array_equal(feed, before)


def test_large_outputs_are_fresh_arrays():
    x = ad.Variable("x")
    ex = ad.Executor([ad.exp_op(x), ad.exp_op(x) * 2])
    a = ex.run({x: np.zeros(100_000)})
    b = ex.run({x: np.ones(100_000)})
    assert a[0][0] == 1.0 and b[0][0] == np.e and not np.shares_memory(a[0], b[0])


CPYTHON = sys.implementation.name == "cpython"


@pytest.mark.skipif(not CPYTHON, reason="outputs are reused only where references are counted")
def test_a_dropped_large_output_is_written_again_and_a_held_one_never():
    """A large output's array is reused by the next run once the caller holds nothing
    of it (no reference, view, buffer or weak reference); while anything holds it, the
    next run writes a new array and the old one keeps its values."""
    x = ad.Variable("x")
    ex = ad.Executor([ad.exp_op(x)])
    n = 100_000
    address = ex.run({x: np.zeros(n)})[0].ctypes.data  # dropped at once
    again = ex.run({x: np.ones(n)})[0]
    assert again.ctypes.data == address and again[0] == np.e
    del again
    # y = ex.run(...): the last output is still held while the next run writes, the
    # one before is not: two arrays take turns
    y = ex.run({x: np.zeros(n)})[0]
    turns = []
    for i in range(4):
        y = ex.run({x: np.full(n, float(i))})[0]
        turns.append(y.ctypes.data)
        assert np.all(y == np.exp(float(i)))
    assert turns[0] == turns[2] and turns[1] == turns[3] and turns[0] != turns[1]
    del y
    for keep in (lambda a: a, lambda a: a[10:], memoryview, weakref.ref, lambda a: a.reshape(10, -1)):
        held = keep(ex.run({x: np.full(n, 2.0)})[0])
        after = ex.run({x: np.full(n, 3.0)})[0]
        if isinstance(held, weakref.ref):  # dead (it was freed), never written again
            assert held() is None or np.all(held() == np.exp(2.0))
        else:
            seen = np.asarray(held)
            assert np.all(seen == np.exp(2.0)) and not np.shares_memory(seen, after), keep
        assert np.all(after == np.exp(3.0))
        del held, after


def test_an_output_fed_back_as_the_next_input():
    """y <- f(y) with the run's own large output as the next feed (its memory is in use
    as an input while the run writes: it must not be the output's)."""
    x = ad.Variable("x")
    ex = ad.Executor([x * 0.5 + 1.0, ad.reduce_sum_op(x)])
    y = expect = np.linspace(0, 1, 50_000)
    for _ in range(4):
        y, total = ex.run({x: y})
        expect_total = expect.sum()
        expect = expect * 0.5 + 1.0
        assert np.array_equal(y, expect) and total == expect_total


def test_feeding_the_same_array_object_after_changing_it():
    """The bound-feed shortcut must notice in-place changes of shape and values."""
    x = ad.Variable("x")
    ex = ad.Executor([x * 2])
    a = np.arange(6.0)
    assert ex.run({x: a})[0].tolist() == [0, 2, 4, 6, 8, 10]
    a += 1
    assert ex.run({x: a})[0].tolist() == [2, 4, 6, 8, 10, 12]
    a.shape = (2, 3)
    assert ex.run({x: a})[0].shape == (2, 3)


# --- the program is validated before it ever runs ----------------------------------------

def lowered_program():
    ins, nodes = mlp()
    ex = ad.Executor(nodes)
    ex.run(dict(zip(ins, mlp_feeds(np.random.default_rng(3)))))
    return ex._vm.last


def chain(x, a, n_ops):
    """x*a, +0.5, sigmoid, exp(sigmoid(.)), ... as in the benchmark's W4/W5."""
    steps = [lambda t: t * a, lambda t: t + 0.5, ad.sigmoid_op,
             lambda t: ad.exp_op(ad.sigmoid_op(t))]
    for i in range(n_ops):
        x = steps[i % 4](x)
    return x


def grouped_program():
    x, a = ad.Variable("x"), ad.Variable("a")
    loss = ad.reduce_sum_op(chain(x, a, 12))
    ex = ad.Executor([loss, *ad.gradients(loss, [x, a])])
    ex.run({x: np.linspace(-1, 1, 5000), a: np.float64(0.7)})
    return ex._vm.last


@pytest.mark.parametrize("make, shapes, work", [
    (ad.exp_op, [(300,)], 300),
    (lambda x, w: x * w, [(4, 1), (1, 5)], 20),                      # the broadcast loop
    (ad.matmul_op, [(5, 7), (7, 3)], 5 * 3 * 7 / 8),                 # multiply-adds / 8
    (ad.matmul_op, [(2, 5, 7), (7, 3)], 2 * 5 * 3 * 7 / 8),          # a stack of two
    (lambda x, w: ad.conv2d_op(x, w, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3)],
     2 * 4 * 6 * 6 * 3 * 3 * 3 / 8),
    (lambda x: ad.max_pool2d_op(x, 2), [(2, 3, 6, 6)], 2 * 3 * 6 * 6),
    (ad.softmax_op, [(4, 5)], 20),
])
def test_a_plans_work_counts_elements_and_multiply_adds(make, shapes, work):
    """The work that decides whether a run is long (caught Ctrl-C) and worth threads."""
    xs = [ad.Variable(f"x{i}") for i in range(len(shapes))]
    ex = ad.Executor([make(*xs)])
    ex.run({x: np.ones(s) for x, s in zip(xs, shapes)})
    assert ex._vm.last.n_instrs == 1
    assert ex._vm.last.work == work


def test_a_plans_instructions_lowered_again_are_its_program():
    """A plan keeps only the assembled table; `instructions()` lowers it again (folded
    constants, by-constant rewrites, a Python step and a group included) and checks
    that the table it assembles is the plan's, byte for byte."""
    x, a = ad.Variable("x"), ad.Variable("a")
    y = Square()(chain(x, a, 8) * ad.oneslike_op(x) * 3.0) + ad.zeroslike_op(x)
    loss = ad.reduce_sum_op(y)
    ex = ad.Executor([loss, *ad.gradients(loss, [x, a])])
    ex.run({x: np.linspace(-1, 1, 5000), a: np.float64(0.7)})
    plan = ex._vm.last
    first, second = plan.instructions(), plan.instructions()
    assert len(first) == plan.n_instrs and plan.segments is not None
    assert [(i.opcode, i.out.index, i.fields) for i in first] == [
        (i.opcode, i.out.index, i.fields) for i in second]
    assert max(i.fields.get("group", 0) for i in first) > 1
    assert plan.rewrites.counts["folded"] and plan.rewrites.counts["by constants"]
    assert plan.disassemble().count("\n") >= plan.n_instrs


FUSED_SUMS = {  # sums that end a group: members writing over buffers, and over the
    # memory the sum's one output gets (the product's, dead when the sum runs)
    "chain": lambda x, y: ad.reduce_sum_op(ad.exp_op(ad.sigmoid_op(x * 0.5 + 1.0) * y)),
    "aliased": lambda x, y: ad.reduce_sum_op(ad.maximum_op(x, 0 * x) - x * y),
    "cross-entropy": lambda x, y: ad.sigmoid_cross_entropy_op(x, y),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1025, 32_767, 32_768, 40_000, 70_001, 1_000_003])
@pytest.mark.parametrize("name", FUSED_SUMS)
def test_a_sum_ending_a_group_is_fused_and_rounds_like_np_sum(name, n, dtype):
    """A full sum after a group of elementwise instructions runs in the group's pass,
    block by block along the subtrees of numpy's pairwise sum: the reference's bits on
    every thread count, whole or cut into chunks (n >= 32,768) or stoppable by Ctrl-C."""
    x, y = ad.Variable("x"), ad.Variable("y")
    node = FUSED_SUMS[name](x, y)
    rng = np.random.default_rng(n)
    feed = {x: rng.standard_normal(n).astype(dtype), y: (rng.random(n) < 0.5).astype(dtype)}
    want = ad.Executor([node], backend="python").run(feed)[0]
    for threads in (1, 2):
        ex = ad.Executor([node], threads=threads)
        got = ex.run(feed)[0]
        assert got.tobytes() == want.tobytes(), (threads, got, want)
        plan = ex._vm.last
        instrs = plan.instructions()
        start = next(k for k, i in enumerate(instrs) if i.fields.get("group"))
        assert instrs[start + instrs[start].fields["group"] - 1].opcode == OPCODES["SUM"]
        # as a run Ctrl-C may stop: cut into chunks on one thread too
        ws = plan.pool[0]
        assert ws.bind(feed, plan.feed_specs)
        ws.out_views[0][...] = np.nan
        lib.fa_run(plan.prog, 0, plan.n_instrs, ws.slots,
                   ffi.new("fa_opts *", {"threads": threads, "interruptible": 1}))
        assert ws.out_views[0].tobytes() == want.tobytes(), threads


def test_long_elementwise_runs_are_grouped_and_agree():
    plan = grouped_program()
    groups = [i.fields.get("group", 0) for i in plan.instructions()]
    assert max(groups) >= 10, groups
    x, a = ad.Variable("x"), ad.Variable("a")
    loss = ad.reduce_sum_op(chain(x, a, 12))
    nodes = [loss, *ad.gradients(loss, [x, a])]
    feed = {x: np.linspace(-1, 1, 5000), a: np.float64(0.7)}
    for g, w in zip(ad.Executor(nodes).run(feed), ad.Executor(nodes, backend="python").run(feed)):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def validate(plan, prog):
    sizes = ffi.new("int64_t[]", plan.slot_bytes)
    bad = ffi.new("int64_t *")
    return lib.fa_validate(prog, plan.n_instrs, sizes, len(plan.slot_bytes), bad)


FIELDS = ["op", "dtype", "out", "a", "b", "ndim", "trans_a", "group", "n", "m", "k"]
BAD_VALUES = [-1, -2**31, 2**31 - 1, 10**6, 2**62, len(OPCODES)]


def corruptions(plan):
    """Every instruction with one field (or one axis of shape/sa/sb/so) set to a bad value."""
    for i in range(plan.n_instrs):
        for field in FIELDS + ["shape", "sa", "sb", "so"]:
            for value in BAD_VALUES:
                for axis in range(lib.fa_maxdim) if field in ("shape", "sa", "sb", "so") else [None]:
                    prog = ffi.new("fa_instr[]", plan.n_instrs)
                    ffi.memmove(prog, plan.prog, ffi.sizeof("fa_instr") * plan.n_instrs)
                    if axis is not None:
                        getattr(prog[i], field)[axis] = value
                    elif field in ("n", "m", "k"):
                        setattr(prog[i], field, value)
                    else:
                        setattr(prog[i], field, max(min(value, 2**31 - 1), -2**31))
                    yield prog


@pytest.mark.parametrize("which", ["mlp", "grouped"])
def test_validation_rejects_corrupted_programs(which):
    """A corrupted program is rejected, or else it stays inside its buffers when run
    (under the sanitizer build, any stray access is reported)."""
    plan = PLAN if which == "mlp" else grouped_program()
    assert validate(plan, plan.prog) == 0
    assert not plan.fresh  # every slot of the workspace still points at live memory
    rejected = accepted = 0
    for prog in corruptions(plan):
        if validate(plan, prog):
            rejected += 1
        else:
            accepted += 1  # garbage values are fine, stray memory accesses are not
            lib.fa_run(prog, 0, plan.n_instrs, plan.pool[0].slots, ffi.NULL)
    assert rejected and accepted  # the mutations hit both kinds


def test_validation_names_what_is_wrong():
    plan = PLAN
    codes = {}
    for field, value in [("op", len(OPCODES)), ("dtype", 2), ("out", len(plan.slot_bytes)),
                         ("ndim", lib.fa_maxdim + 1), ("out", -1), ("group", 2)]:
        prog = ffi.new("fa_instr[]", plan.n_instrs)
        ffi.memmove(prog, plan.prog, ffi.sizeof("fa_instr") * plan.n_instrs)
        setattr(prog[0], field, value)
        codes[field, value] = ffi.string(lib.fa_error_message(validate(plan, prog))).decode()
    assert codes == {("op", len(OPCODES)): "opcode out of range", ("dtype", 2): "bad dtype",
                     ("out", len(plan.slot_bytes)): "slot index out of range",
                     ("ndim", lib.fa_maxdim + 1): "loop rank out of range",
                     ("out", -1): "slot index out of range",
                     ("group", 2): "bad elementwise group"}


PLAN = lowered_program()


# --- odd and bad feeds: an error or an answer, never a crash ------------------------------

ODD_FEEDS = """
import numpy as np, fastad as ad
x, y = ad.Variable("x"), ad.Variable("y")
z = ad.reduce_sum_op(ad.exp_op(x) * y + x @ ad.matmul_op(y, y, trans_A=True), axis=0)
nodes = [z] + ad.gradients(ad.reduce_sum_op(z), [x, y])
ex, ref = ad.Executor(nodes), ad.Executor(nodes, backend="python")
sq = np.ones((3, 3))
cases = [
    (sq, sq), (np.ones((3, 3), order="F"), sq), (np.ones((3, 6))[:, ::2], sq),
    (sq.astype(np.float32), sq), (sq.astype(">f8"), sq), (sq.astype(np.float16), sq),
    (sq.astype(bool), sq.astype(int)), ([[1, 2, 3]] * 3, sq), (np.full((3, 3), np.nan), sq),
    (np.full((3, 3), np.inf), -sq), (np.ones((0, 0)), np.ones((0, 0))),
    (np.ones((0, 3)), np.ones((3, 3))),
    (np.frombuffer(b"0" + sq.tobytes(), np.float64, 9, 1).reshape(3, 3), sq),
    ("abc", sq), (sq * 1j, sq), ([[1, 2], [3]], sq), (None, sq), (object(), sq),
    (np.ones((3, 4)), sq), (np.ones(3), sq), (2.0, 3.0), (np.ones((2, 3, 3)), sq),
    ([["a", 1]], sq), (np.array(["1"]), sq), (sq, np.ones((3, 3, 1, 1))),
]
for a, b in cases:
    try:
        got = ex.run({x: a, y: b})
    except (ValueError, TypeError) as err:
        try:
            ref.run({x: a, y: b})
        except type(err):
            print("raised", type(err).__name__)
            continue
        raise AssertionError(f"native raised {err!r} where the reference did not")
    want = ref.run({x: a, y: b})
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-5)
    print("ran")
print("done", len(cases))
"""


def test_odd_and_bad_feeds_never_crash():
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(ODD_FEEDS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("done 25")


# --- native equals the reference bit for bit where IEEE arithmetic is exact ----------------

EXACT_BASES = [(), (1,), (4,), (2, 3), (0,), (0, 3), (2, 1, 3), (3, 0, 2)]
EXACT_CONST_OPS = [lambda x, c: x + c, lambda x, c: x - c, lambda x, c: c - x,
                   lambda x, c: x * c, lambda x, c: x / c, lambda x, c: c / x]
EXACT_UNARY_OPS = [lambda x: -x, ad.relu_op, ad.oneslike_op, ad.zeroslike_op]
EXACT_BINARY_OPS = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
                    lambda a, b: a / b]


@st.composite
def exact_graphs(draw, divide=True, bases=EXACT_BASES):
    """(input shapes, builder) of a random DAG of + - * / (by nodes and by constants),
    neg, relu, oneslike and zeroslike whose shapes all broadcast to one base shape,
    empty and 0-d ones included."""
    base = draw(st.sampled_from(bases))
    subshapes = [base[i:] for i in range(len(base) + 1)] + [
        tuple(1 if j == i else n for j, n in enumerate(base)) for i in range(len(base))]
    shapes = draw(st.lists(st.sampled_from(subshapes), min_size=1, max_size=3))
    binary = EXACT_BINARY_OPS if divide else EXACT_BINARY_OPS[:3]
    const = EXACT_CONST_OPS if divide else EXACT_CONST_OPS[:4]
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        n = len(shapes) + len(steps)
        kind = draw(st.sampled_from(["unary", "const", "binary", "binary"]))
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if kind == "unary":
            steps.append((draw(st.sampled_from(EXACT_UNARY_OPS)), a))
        elif kind == "const":
            c = draw(st.sampled_from([0.0, 1.0, -2.0, 0.5, 3.0, 1e300]))
            steps.append((draw(st.sampled_from(const)), a, c))
        else:
            steps.append((draw(st.sampled_from(binary)), a, b))

    def build(xs):
        nodes = list(xs)
        for op, *args in steps:
            if len(args) == 2 and isinstance(args[1], float):
                nodes.append(op(nodes[args[0]], args[1]))
            else:
                nodes.append(op(*(nodes[i] for i in args)))
        return nodes[len(xs):]
    return shapes, build


def exact_feeds(rng, shapes, dtype, integers):
    if integers:
        return [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    pool = np.array([0.0, -0.0, 1.0, -1.5, 2.0, np.inf, -np.inf, np.nan, 1e-310, 3e38, 7.25])
    return [np.where(rng.random(s) < 0.3, rng.choice(pool, s), rng.standard_normal(s))
            .astype(dtype) for s in shapes]


def assert_bitwise_equal(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert np.array_equal(g, w, equal_nan=True), (g, w)


@settings(max_examples=300, deadline=None)
@given(exact_graphs(), st.integers(0, 2**32 - 1), st.sampled_from([np.float64, np.float32]))
def test_exact_ops_match_the_reference_bit_for_bit(graph, seed, dtype):
    shapes, build = graph
    xs = [ad.Variable(f"x{i}") for i in range(len(shapes))]
    nodes = build(xs)
    feed = dict(zip(xs, exact_feeds(np.random.default_rng(seed), shapes, dtype, False)))
    want = ad.Executor(nodes, backend="python").run(feed)
    assert_bitwise_equal(ad.Executor(nodes).run(feed), want)


@settings(max_examples=60, deadline=None)
@given(exact_graphs(bases=[(3000,), (2, 2100), (1, 2500)]), st.integers(0, 2**32 - 1))
def test_blocked_groups_match_the_reference_bit_for_bit(graph, seed):
    """Arrays longer than a VM block: runs of elementwise instructions execute block by
    block, with broadcast scalars and reused buffers in between."""
    test_exact_ops_match_the_reference_bit_for_bit.hypothesis.inner_test(
        graph, seed, np.float64)


@settings(max_examples=150, deadline=None)
@given(exact_graphs(divide=False), st.integers(0, 2**32 - 1))
def test_exact_gradients_match_the_reference_bit_for_bit(graph, seed):
    """Integer-valued feeds keep every partial sum of the gradient graph exact, so the
    summation order (numpy's pairwise or the VM's) cannot matter."""
    shapes, build = graph
    xs = [ad.Variable(f"x{i}") for i in range(len(shapes))]
    out = build(xs)[-1]
    nodes = [out, *ad.gradients(out, xs)]
    feed = dict(zip(xs, exact_feeds(np.random.default_rng(seed), shapes, np.float64, True)))
    assert_bitwise_equal(ad.Executor(nodes).run(feed),
                         ad.Executor(nodes, backend="python").run(feed))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 6), st.integers(0, 9), st.integers(0, 6), st.booleans(), st.booleans(),
       st.sampled_from(["mm", "mv", "vm", "vv"]), st.integers(0, 2**32 - 1))
def test_small_integer_matmul_is_exact(m, k, n, ta, tb, form, seed):
    rng = np.random.default_rng(seed)
    a_shape = (k,) if form in ("vm", "vv") else ((k, m) if ta else (m, k))
    b_shape = (k,) if form in ("mv", "vv") else ((n, k) if tb else (k, n))
    A, B = ad.Variable("A"), ad.Variable("B")
    y = ad.matmul_op(A, B, ta, tb)
    nodes = [y, *ad.gradients(ad.reduce_sum_op(y * y), [A, B])]
    feed = {A: rng.integers(-5, 6, a_shape).astype(float),
            B: rng.integers(-5, 6, b_shape).astype(float)}
    assert_bitwise_equal(ad.Executor(nodes).run(feed),
                         ad.Executor(nodes, backend="python").run(feed))


def test_loops_of_more_axes_than_the_vm_takes_fall_back_to_numpy():
    """Broadcasting that no collapsing brings under the VM's rank limit still runs: that
    node is computed by its numpy `compute` between native segments."""
    rank = lib.fa_maxdim + 2
    a_shape = tuple(2 if d % 2 else 1 for d in range(rank))
    b_shape = tuple(1 if d % 2 else 2 for d in range(rank))
    x, y = ad.Variable("x"), ad.Variable("y")
    nodes = [ad.exp_op(x) * y, *ad.gradients(ad.reduce_sum_op(ad.exp_op(x) * y), [x, y])]
    ex = ad.Executor(nodes)
    rng = np.random.default_rng(4)
    feed = {x: rng.standard_normal(a_shape), y: rng.standard_normal(b_shape)}
    assert "PYTHON" in ex.disassemble(feed)
    for g, w in zip(ex.run(feed), ad.Executor(nodes, backend="python").run(feed)):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_feed_dicts_with_more_keys_reuse_or_change_the_plan():
    """Keys outside the graph keep the last plan (the fast path); feeding one more graph
    node changes the schedule, and the next exact feed set goes back."""
    (w, x, b, y), nodes = seed_logreg()
    o = nodes[0].inputs[0].inputs[0]  # y * ln(h), inside the loss
    ex, ref = ad.Executor(nodes), ad.Executor(nodes, backend="python")
    base = {w: np.arange(3.0), x: np.ones(3), b: np.ones(1), y: np.float64(1)}
    for feed in [base, {**base, ad.Variable("elsewhere"): np.ones(2)},
                 {**base, o: np.array([-0.25])}, base]:
        for g, e in zip(ex.run(feed), ref.run(feed)):
            np.testing.assert_allclose(g, e, rtol=1e-14)


def test_dtypes_equal_but_not_identical_share_a_plan():
    """A float64 dtype carrying metadata equals float64 (same signature, same plan) but
    is another object: binding must accept both kinds of feed in either order."""
    x = ad.Variable("x")
    ex = ad.Executor([x * 2])
    tagged = np.dtype(np.float64, metadata={"unit": "m"})
    for feed in (np.ones(3, dtype=tagged), np.ones(3), np.ones(3, dtype=tagged),
                 np.array(1.0, dtype=tagged), np.float64(1.0), np.array(1.0, dtype=tagged)):
        out, = ex.run({x: feed})
        assert out.tolist() == np.full(feed.shape, 2.0).tolist()


@pytest.mark.parametrize("shape,axis", [((7,), None), ((130,), None), ((100_000,), None),
                                        ((64, 300), -1), ((64, 300), 0), ((5, 6, 7), (0, 2)),
                                        ((300, 64), None)])
def test_sums_round_like_numpy(shape, axis):
    """The VM sums rows pairwise as np.sum does and other axes in numpy's order, so
    reductions match numpy bit for bit on these layouts."""
    x = ad.Variable("x")
    ex = ad.Executor([ad.reduce_sum_op(x, axis=axis), ad.reduce_mean_op(x, axis=axis)])
    rng = np.random.default_rng(5)
    for _ in range(10):
        v = rng.standard_normal(shape)
        total, mean = ex.run({x: v})
        assert np.array_equal(total, np.sum(v, axis=axis))
        assert np.array_equal(mean, np.mean(v, axis=axis))


# --- instructions of a few elements run inline in fa_run's loop (kinds.h: FA_FEW) ----------

FEW_UNARY = [(ad.neg_op, np.negative), (ad.sqrt_op, np.sqrt), (ad.relu_op, None),
             (ad.abs_op, np.abs), (ad.sign_op, np.sign),
             (lambda a: a + 0.3, lambda v: v + 0.3), (lambda a: a - 0.3, lambda v: v - 0.3),
             (lambda a: 0.3 - a, lambda v: 0.3 - v), (lambda a: a * -1.7, lambda v: v * -1.7),
             (lambda a: a / 1.7, lambda v: v / 1.7), (lambda a: 1.7 / a, lambda v: 1.7 / v)]
FEW_BINARY = [(lambda a, b: a + b, np.add), (lambda a, b: a - b, np.subtract),
              (lambda a, b: a * b, np.multiply), (lambda a, b: a / b, np.divide),
              (ad.less_op, np.less), (ad.greater_equal_op, np.greater_equal),
              (ad.equal_op, np.equal)]


def special_values(rng, n, dtype):
    """n values mixing signed zeros, infinities, nan and ordinary numbers."""
    pool = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -2.5, 1e-300, 3.0], dtype)
    return np.where(rng.random(n) < 0.4, rng.choice(pool, n), rng.standard_normal(n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9])  # across FA_FEW
def test_few_element_instructions_equal_numpy_bit_for_bit(n, dtype):
    rng = np.random.default_rng(n)
    a, b, s = ad.Variable("a"), ad.Variable("b"), ad.Variable("s")
    va, vb, vs = (special_values(rng, n, dtype), special_values(rng, n, dtype),
                  special_values(rng, 1, dtype).reshape(()))
    with np.errstate(all="ignore"):
        for op, ref in FEW_UNARY:
            out, = ad.Executor([op(a)]).run({a: va})
            want = np.maximum(va, 0) if ref is None else ref(va).astype(dtype)
            if ref is None:  # relu keeps nan
                want = np.where(np.isnan(va), va, want)
            assert out.dtype == dtype and np.array_equal(out, want, equal_nan=True), op
            assert np.array_equal(np.signbit(out), np.signbit(want)), op
        for op, ref in FEW_BINARY:  # same shapes, and either side a broadcast scalar
            for x, y, feed in ((a, b, {a: va, b: vb}), (a, s, {a: va, s: vs}),
                               (s, b, {s: vs, b: vb})):
                out, = ad.Executor([op(x, y)]).run(feed)
                want = ref(feed[x], feed[y]).astype(dtype)
                assert out.dtype == dtype and np.array_equal(out, want, equal_nan=True), op
                assert np.array_equal(np.signbit(out), np.signbit(want)), op


@pytest.mark.parametrize("n", [2, 8])
def test_few_element_instructions_in_place_equal_the_reference(n):
    # a chain of same-shaped elementwise steps: the memory plan writes each over its
    # dying input, so the inline loops run in place
    x, y = ad.Variable("x"), ad.Variable("y")
    z = ad.relu_op((-(x * y) + 0.5) / 3.0 - y) * x
    nodes = [z, *ad.gradients(ad.reduce_sum_op(z), [x, y])]
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal(n), y: rng.standard_normal(n)}
    want = ad.Executor(nodes, backend="python").run(feed)
    for got, w in zip(ad.Executor(nodes).run(feed), want):
        assert np.array_equal(got, w)
