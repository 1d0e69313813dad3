"""Graph simplification (fastad.simplify): common subexpressions, identities, constant
folding and dead nodes, each shown by `disassemble`, and results that keep the
reference executor's bits on the graph as written."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastad as ad
from helpers import build_graph, graph_specs

SPECIAL = np.array([-0.0, 0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 5e-324, 1e300])


def program(nodes, feed):
    return ad.Executor(nodes).disassemble(feed)


def instructions(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def same_bits(a, b):
    return (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a), np.signbit(b)))


def check_results(nodes, feed):
    """Simplified native == unsimplified native == reference, bit for bit."""
    ref = ad.Executor(nodes, backend="python").run(feed)
    for simplify in (True, False):
        got = ad.Executor(nodes, simplify=simplify).run(feed)
        assert all(same_bits(g, r) for g, r in zip(got, ref)), simplify


def test_common_subexpressions_are_computed_once():
    x, y = ad.Variable("x"), ad.Variable("y")
    a = ad.exp_op(x * y)
    b = ad.exp_op(x * y)  # the same expression, built twice
    nodes = [a + b, ad.reduce_sum_op(x * y, axis=0)]
    feed = {x: np.arange(6.0).reshape(2, 3), y: np.array([1.0, -2.0, 0.5])}
    text = program(nodes, feed)
    assert "# simplified: common subexpressions 3" in text  # x*y twice more, exp once
    assert sum(" EXP " in line for line in instructions(text)) == 1
    assert sum(" MUL " in line for line in instructions(text)) == 1
    check_results(nodes, feed)


def test_exact_identities_are_skipped_and_inexact_ones_kept():
    x = ad.Variable("x")
    kept = x + 0.0  # -0.0 + 0.0 is 0.0: not an identity
    nodes = [x * 1.0, x / 1.0, x - 0.0, -(-x), ad.broadcast_to_op(x, x), ad.sum_to_op(x, x), kept]
    feed = {x: SPECIAL}
    text = program(nodes, feed)
    assert "identities 6" in text, text
    ops = [line.split()[1] for line in instructions(text)]
    assert ops.count("ADD_BYCONST") == 1 and "MUL_BYCONST" not in ops and "NEG" not in ops
    out = ad.Executor(nodes).run(feed)
    assert np.signbit(out[-1][0]) == np.False_ and np.signbit(out[0][0])  # x + 0.0 made +0
    check_results(nodes, feed)


def test_shape_keeping_moves_are_not_identities():
    """Gradients that move data within one shape (a square transpose's, a permuting
    gather's) are not mistaken for their input."""
    x, r = ad.Variable("x"), ad.Variable("r")
    moved = [ad.transpose_op(x), x[np.array([3, 0, 0, 2])], x[::-1]]
    for y in moved:
        g, = ad.gradients(ad.reduce_sum_op(y * r), [x])
        feed = {x: np.arange(16.0).reshape(4, 4), r: np.arange(16.0).reshape(4, 4) ** 2}
        check_results([y, g], feed)


def test_constant_subgraphs_fold_into_one_fill():
    x = ad.Variable("x")
    c = (ad.oneslike_op(x) * 3.0 + 1.0) / 8.0  # 0.5 everywhere, whatever x is
    total = ad.reduce_sum_op(ad.oneslike_op(x) * 0.1)  # a sum of 0.1s, rounded as np.sum does
    nodes = [x * c, total + x, ad.exp_op(ad.zeroslike_op(x))]
    feed = {x: np.linspace(-3, 3, 1001)}
    text = program(nodes, feed)
    assert "folded" in text and "folded to 0.5" in text and "folded to 1.0" in text
    ops = [line.split()[1] for line in instructions(text)]
    # x * 0.5 and x + total by constants; the fill of exp(0) = 1.0, an output; no SUM:
    # the sum of 1001 copies of 0.1 folded too, to np.sum's bits
    assert ops == ["MUL_BYCONST", "ADD_BYCONST", "FILL"], ops
    check_results(nodes, feed)
    assert ad.Executor([total]).run(feed)[0] == np.sum(np.full(1001, 0.1))


def test_binary_ops_of_a_constant_become_by_constant_ops():
    x = ad.Variable("x")
    c = ad.oneslike_op(x) * 2.5  # a constant of x's shape and dtype
    nodes = [c - x, x / c, c / x, x * c + c]
    feed = {x: SPECIAL}
    text = program(nodes, feed)
    assert "by constants 5" in text, text
    ops = [line.split()[1] for line in instructions(text)]
    assert ops == ["RSUB_BYCONST", "DIV_BYCONST", "RDIV_BYCONST", "MUL_BYCONST", "ADD_BYCONST"]
    check_results(nodes, feed)


def test_dead_nodes_are_dropped_after_rewriting():
    x, y = ad.Variable("x"), ad.Variable("y")
    unused = ad.tanh_op(y)  # only feeds a product that becomes an identity
    out = x * (ad.oneslike_op(unused) * 1.0)
    feed = {x: np.array([1.0, 2.0]), y: np.array([3.0, 4.0])}
    text = program([out], feed)
    assert "dead" in text and " TANH " not in text
    check_results([out], feed)


def test_gradients_of_the_second_order_graph_get_shorter():
    x, W = ad.Variable("x"), ad.Variable("W")
    gW, = ad.gradients(ad.reduce_sum_op(ad.sigmoid_op(ad.matmul_op(x, W))), [W])
    nodes = ad.gradients(ad.reduce_sum_op(gW * gW), [x, W])
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal((3, 4)), W: rng.standard_normal((4, 5))}
    full = instructions(ad.Executor(nodes, simplify=False).disassemble(feed))
    short = instructions(program(nodes, feed))
    assert len(short) * 5 <= len(full) * 3, (len(short), len(full))  # 29 -> 16 today
    check_results(nodes, feed)


def test_user_ops_are_never_merged():
    calls = []

    class Noisy(ad.Op):  # impure: each node must run
        def __call__(self, x):
            return ad.Node(self, [x], f"Noisy({x})")

        def compute(self, node, vals):
            calls.append(node)
            return vals[0] + len(calls)

    x = ad.Variable("x")
    op = Noisy()
    nodes = [op(x), op(x)]
    ad.Executor(nodes).run({x: np.zeros(2)})
    assert len(calls) >= 2 and calls[-1] is not calls[-2]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=graph_specs(), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_random_graphs_keep_their_bits_when_simplified(spec, seed, dtype):
    xs, nodes = build_graph(spec)
    out = nodes[-1]
    grads = ad.gradients(ad.reduce_sum_op(out * out), xs)
    rng = np.random.default_rng(seed)
    feed = {x: rng.uniform(-2, 2, s).astype(dtype) for x, s in zip(xs, spec.input_shapes)}
    a = ad.Executor([out, *grads]).run(feed)
    b = ad.Executor([out, *grads], simplify=False).run(feed)
    assert all(same_bits(p, q) for p, q in zip(a, b))
