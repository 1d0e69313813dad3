"""Executor.profile: a per-op table of a native run's time."""
import numpy as np
import pytest

import fastad as ad


class Scale(ad.Op):  # a user op: a Python step
    name = "scale"

    def __call__(self, x):
        return ad.Node(self, [x], f"Scale({x})")

    def compute(self, node, vals):
        return vals[0] * 3.0

    def gradient(self, node, g):
        return [g * 3.0]


def mlp():
    x, w, b, t = (ad.Variable(n) for n in "xwbt")
    loss = ad.softmax_cross_entropy_op(Scale()(ad.relu_op(x @ w + b)), t)
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal((64, 32)), w: rng.standard_normal((32, 16)),
            b: rng.standard_normal(16), t: np.eye(16)[rng.integers(0, 16, 64)]}
    return [loss, *ad.gradients(loss, [w, b])], feed


def test_profile_rows_name_ops_with_calls_times_bytes_and_flops(capsys):
    nodes, feed = mlp()
    prof = ad.Executor(nodes).profile(feed, runs=20)
    printed = capsys.readouterr().out
    assert "matmul" in printed and "GFLOP/s" in printed
    rows = {r.op: r for r in prof.rows}
    assert prof.runs == 20 and prof.run_us > 0
    mm = rows["matmul"]
    assert mm.calls == 2  # forward, and the weight gradient (x is not differentiated)
    assert mm.gflops > 0 and mm.bytes > 0 and mm.us > 0
    assert "scale (Python step)" in rows and rows["scale (Python step)"].us > 0
    assert rows["(feeds, C call, outputs)"].calls == 0
    assert all(r.gflops is None for name, r in rows.items() if name != "matmul")
    assert sum(r.share for r in prof.rows) == pytest.approx(1.0, abs=1e-9)
    assert [r.us for r in prof.rows[:-1]] == sorted((r.us for r in prof.rows[:-1]), reverse=True)
    # and the runs computed the right thing
    assert np.array_equal(ad.Executor(nodes).run(feed)[0],
                          ad.Executor(nodes, backend="python").run(feed)[0])


def test_profile_shows_groups_by_their_ops():
    x = ad.Variable("x")
    y = ad.reduce_sum_op(ad.exp_op(x * 2.0 + 1.0))
    prof = ad.Executor([y]).profile({x: np.ones(50_000)}, runs=3, show=False)
    names = [r.op for r in prof.rows]
    # the sum is the group's last member: summed block by block as the group makes them
    assert "group of 4: mul_byconst+add_byconst+exp+reduce_sum" in names, names
    assert "reduce_sum" not in names


def test_profile_needs_the_native_backend():
    x = ad.Variable("x")
    with pytest.raises(ValueError, match="native"):
        ad.Executor([x * 2.0], backend="python").profile({x: np.ones(3)})
