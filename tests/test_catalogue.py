"""The op catalogue (tests/catalogue.py) has every public op of fastad, and every graph
of it, with its gradient graph, survives copy.deepcopy and pickle on both backends, and so
do the Executors that ran them."""
import copy
import pickle

import numpy as np
import pytest

import fastad as ad
from catalogue import CATALOGUE, EXACT, cases
from helpers import case_graph, rands

# Every graph's inputs are placeholders (ad.Variable): every test builds on them.
NOT_IN_CATALOGUE = {"placeholder_op"}

CASES = cases()


def test_every_public_op_has_one_entry():
    public = {n for n in dir(ad) if n.endswith("_op")}
    names = [f"{entry.name}_op" for entry in CATALOGUE]
    assert len(names) == len(set(names)), "an op has two entries"
    assert public - NOT_IN_CATALOGUE - set(names) == set(), "ops missing from the catalogue"
    assert all(entry.cases for entry in CATALOGUE)
    assert EXACT <= {entry.name for entry in CATALOGUE}


def test_every_case_builds_its_op():
    for case in CASES:
        xs = [ad.Variable(f"x{i}") for i in range(len(case.shapes))]
        assert case.build(*xs).op is case.entry.op, case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_graph_survives_deepcopy_and_pickle(case):
    inputs = rands(np.random.default_rng(0), case.shapes, case.domains)
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    out = case.build(*xs)
    nodes = [out]
    if case.entry.grad:
        r = ad.Variable("r")
        R = np.random.default_rng(1).uniform(-1, 1, np.shape(case.ref(*inputs)))
        xs, inputs = xs + [r], inputs + [R]
        nodes += ad.gradients(ad.reduce_sum_op(out * r), xs[:-1])
    n = len(xs)
    for backend in ("native", "python"):
        want = ad.Executor(nodes, backend=backend).run(dict(zip(xs, inputs)))
        for copied in (copy.deepcopy([*xs, *nodes]), pickle.loads(pickle.dumps([*xs, *nodes]))):
            assert copied[n] is not out and copied[n].op is out.op  # new nodes, the same op
            got = ad.Executor(copied[n:], backend=backend).run(dict(zip(copied[:n], inputs)))
            for g, w in zip(got, want):
                assert g.shape == w.shape and np.array_equal(g, w), backend


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_executor_with_its_plans_survives_pickle(case):
    xs, inputs, nodes = case_graph(case, np.random.default_rng(0))
    for backend in ("native", "python"):
        executor = ad.Executor(nodes, backend=backend)
        want = executor.run(dict(zip(xs, inputs)))  # a plan is cached now
        copied, *copied_xs = pickle.loads(pickle.dumps((executor, *xs)))
        got = copied.run(dict(zip(copied_xs, inputs)))
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype, backend
            assert np.array_equal(g, w, equal_nan=True), backend
