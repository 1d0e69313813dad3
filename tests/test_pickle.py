"""Executors, Trainers and DataParallels pickle (and cloudpickle): an unpickled one gives
the same bits as the original, in this process and in a fresh one; a pickle of another
format is refused with a clear error.  (Every catalogue op's Executor: test_catalogue.)"""
import copy
import copyreg
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import cloudpickle
import numpy as np
import pytest

import fastad as ad
from fastad import optim
from user_ops import cube_op

DUMPERS = [pytest.param(pickle, id="pickle"), pytest.param(cloudpickle, id="cloudpickle")]


def mlp():
    X, T = ad.Variable("X"), ad.Variable("T")
    W1, b1, W2, b2 = (ad.Variable(n) for n in ("W1", "b1", "W2", "b2"))
    loss = ad.softmax_cross_entropy_op(ad.tanh_op(X @ W1 + b1) @ W2 + b2, T)
    rng = np.random.default_rng(3)
    params = {W1: rng.standard_normal((4, 6)) * 0.5, b1: rng.standard_normal(6) * 0.1,
              W2: rng.standard_normal((6, 3)) * 0.5, b2: np.zeros(3)}
    data = {X: rng.standard_normal((40, 4)), T: np.eye(3)[rng.integers(0, 3, 40)]}
    return (X, T), loss, params, data


def assert_same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert np.array_equal(g, w)


def bad_format(cls, state):
    """A pickle whose state claims another format, as an older or newer fastad's would."""
    class Foreign:
        def __reduce__(self):
            return copyreg._reconstructor, (cls, object, None), state
    return pickle.dumps(Foreign())


# -- Executors ---------------------------------------------------------------------------

@pytest.mark.parametrize("dumper", DUMPERS)
@pytest.mark.parametrize("backend", ["native", "python"])
def test_executor_with_cached_plans_round_trips(dumper, backend):
    (X, T), loss, params, data = mlp()
    nodes = [loss, *ad.gradients(loss, list(params))]
    options = {"threads": 2, "simplify": False} if backend == "native" else {}
    executor = ad.Executor(nodes, backend=backend, **options)
    feeds = [{**params, **data},  # three signatures: two shapes and float32
             {**params, X: data[X][:7], T: data[T][:7]},
             {k: v.astype(np.float32) for k, v in {**params, **data}.items()}]
    want = [executor.run(f) for f in feeds]
    blob = dumper.dumps((executor, X, T, *params))
    copied, cX, cT, *cparams = pickle.loads(blob)
    assert copied.backend == backend and copied is not executor
    if backend == "native":
        assert copied._vm.options.threads == 2 and copied._vm.simplified is False
    renamed = {X: cX, T: cT, **dict(zip(params, cparams))}
    for feed, w in zip(feeds, want):
        assert_same(copied.run({renamed[k]: v for k, v in feed.items()}), w)


def test_a_pickled_executor_holds_no_program():
    x = ad.Variable("x")
    executor = ad.Executor([ad.exp_op(x) * 2])
    executor.run({x: np.ones(100_000)})
    # the state is the graph and the options: no plan, pointer or arena crosses
    assert set(executor.__getstate__()) == {"format", "nodes", "backend", "threads", "simplify",
                                            "max_plans", "max_plan_bytes"}
    assert len(pickle.dumps(executor)) < 2000


def test_a_pickled_executor_keeps_its_cache_bounds(backend):
    x = ad.Variable("x")
    executor = ad.Executor([x * 2], backend=backend, max_plans=3, max_plan_bytes=1 << 20)
    copied = pickle.loads(pickle.dumps(executor))
    assert copied.cache_info()[3:] == (3, 1 << 20)


@pytest.mark.parametrize("cls, what", [(ad.Executor, "Executor"), (ad.Trainer, "Trainer"),
                                       (ad.parallel.DataParallel, "DataParallel")])
@pytest.mark.parametrize("state", [{"format": 0}, {"format": 99, "nodes": []}, {}, ("x", 1)])
def test_another_format_is_refused_clearly(cls, what, state):
    with pytest.raises(pickle.UnpicklingError, match=f"cannot unpickle this fastad {what}: "
                                                     "it was pickled in format"):
        pickle.loads(bad_format(cls, state))


def test_user_ops_pickle_when_their_class_can_be_imported():
    x = ad.Variable("x")
    y = ad.reduce_sum_op(cube_op(x) * x)
    nodes = [y, *ad.gradients(y, [x])]
    v = np.linspace(-2, 2, 9)
    for backend in ("native", "python"):
        executor = ad.Executor(nodes, backend=backend)
        want = executor.run({x: v})
        copied, cx = pickle.loads(pickle.dumps((executor, x)))
        assert type(copied.eval_node_list[0].inputs[0].inputs[0].op) is type(cube_op)
        assert_same(copied.run({cx: v}), want)
    np.testing.assert_allclose(want[1], 4 * v ** 3)


def test_a_local_user_op_needs_cloudpickle():
    class Twice(ad.Op):  # not importable: pickle refuses, cloudpickle saves the class
        def compute(self, node, vals):
            return vals[0] * 2

        def gradient(self, node, g):
            return [g * 2]

    x = ad.Variable("x")
    executor = ad.Executor([Twice()(x)])
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(executor)
    copied, cx = cloudpickle.loads(cloudpickle.dumps((executor, x)))
    assert_same(copied.run({cx: np.arange(3.0)}), [np.arange(3.0) * 2])


# -- Trainers ----------------------------------------------------------------------------

OPTIMIZERS = [
    pytest.param(lambda: optim.SGD(optim.StepLR(0.2, 3, 0.5), momentum=0.9), id="sgd-steplr"),
    pytest.param(lambda: optim.Adam(optim.CosineLR(1e-2, 50), weight_decay=0.01), id="adam-cosine"),
    pytest.param(lambda: optim.RMSProp(1e-2, momentum=0.5), id="rmsprop"),
]


def continued(trainer, X, T, arrays, **fit):
    history = trainer.fit(dict(zip((X, T), arrays)), **fit)
    return history, [v for _, v in trainer.params.items()]


@pytest.mark.parametrize("dumper", DUMPERS)
@pytest.mark.parametrize("backend", ["native", "python"])
@pytest.mark.parametrize("make", OPTIMIZERS)
def test_trainer_mid_training_resumes_bit_for_bit(make, backend, dumper):
    (X, T), loss, params, data = mlp()
    trainer = ad.Trainer(loss, params, make(), backend=backend)
    trainer.fit(data, epochs=2, batch_size=16, shuffle=True, seed=1)  # 6 steps, partial batches
    copied, cX, cT = pickle.loads(dumper.dumps((trainer, X, T)))
    assert copied.t == trainer.t == 6
    assert_same([copied.history.losses], [trainer.history.losses])
    fit = dict(epochs=3, batch_size=16, shuffle=True, seed=2)
    want, want_params = continued(trainer, X, T, (data[X], data[T]), **fit)
    got, got_params = continued(copied, cX, cT, (data[X], data[T]), **fit)
    assert copied.t == trainer.t == 15
    assert_same([got.losses, got.epoch_means], [want.losses, want.epoch_means])
    assert_same(got_params, want_params)
    assert_same([v for v in copied._values.values()], [v for v in trainer._values.values()])


def test_trainer_pickled_from_a_callback_resumes_where_it_was():
    (X, T), loss, params, data = mlp()
    trainer = ad.Trainer(loss, params, optim.Adam(1e-2))
    saved = []
    trainer.fit(data, epochs=4, batch_size=10, callbacks=[
        lambda epoch, history: epoch == 1 and saved.append(pickle.dumps((trainer, X, T)))])
    copied, cX, cT = pickle.loads(saved[0])
    assert copied.t == 8 and len(copied.history.losses) == 8
    copied.fit({cX: data[X], cT: data[T]}, epochs=2, batch_size=10)
    assert copied.t == trainer.t
    assert_same([v for _, v in copied.params.items()], [v for _, v in trainer.params.items()])


def test_trainer_is_not_pickled_while_another_thread_trains_it():
    (X, T), loss, params, data = mlp()
    trainer = ad.Trainer(loss, params, optim.SGD(0.1))
    started, release = threading.Event(), threading.Event()

    def wait(epoch, history):
        started.set()
        release.wait(10)

    thread = threading.Thread(target=lambda: trainer.fit(data, epochs=2, batch_size=10,
                                                         callbacks=[wait]))
    thread.start()
    started.wait(10)
    try:
        with pytest.raises(RuntimeError, match="training in another thread"):
            pickle.dumps(trainer)
    finally:
        release.set()
        thread.join()
    pickle.dumps(trainer)  # between fits: fine


def test_trainer_with_a_lambda_schedule_needs_cloudpickle_and_copies():
    (X, T), loss, params, data = mlp()
    trainer = ad.Trainer(loss, params, optim.SGD(lambda t: 0.3 / t))
    trainer.fit(data, epochs=1, batch_size=8)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(trainer)
    copied, cX, cT = cloudpickle.loads(cloudpickle.dumps((trainer, X, T)))
    twin, tX, tT = copy.deepcopy((trainer, X, T))  # the same state; new nodes, as pickle's
    for t, x, tt in ((copied, cX, cT), (twin, tX, tT), (trainer, X, T)):
        t.fit({x: data[X], tt: data[T]}, epochs=1, batch_size=8)
    for t in (copied, twin):
        assert_same([v for _, v in t.params.items()], [v for _, v in trainer.params.items()])


# -- a fresh process ---------------------------------------------------------------------

FRESH = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    executor, x, trainer, X, T, data, dp, values = pickle.load(open(sys.argv[1], "rb"))
    out = executor.run({x: np.linspace(-1, 1, 5)})
    history = trainer.fit({X: data["X"], T: data["T"]}, epochs=2, batch_size=16)
    # one pickle: the keys of `values` are dp's parameters
    loss, grads = dp.gradients(values, dict(zip(dp.data_nodes, data["dp"])), workers=2)
    np.savez(sys.argv[2], *out, history.losses, *(v for _, v in trainer.params.items()),
             np.array(loss), *grads)
""")


def test_pickles_resume_in_a_fresh_process(tmp_path):
    x = ad.Variable("x")
    y = ad.reduce_sum_op(cube_op(x) + ad.sin_op(x))
    executor = ad.Executor([y, *ad.gradients(y, [x])])
    (X, T), loss, params, data = mlp()
    trainer = ad.Trainer(loss, params, optim.Adam(1e-2))
    trainer.fit(data, epochs=1, batch_size=16)
    dp = ad.parallel.DataParallel(loss, list(params))
    dp_data = [data[n] for n in dp.data_nodes]
    with open(tmp_path / "in.pkl", "wb") as f:
        pickle.dump((executor, x, trainer, X, T, {"X": data[X], "T": data[T], "dp": dp_data},
                     dp, params), f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))  # finds user_ops
    subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "in.pkl"),
                    str(tmp_path / "out.npz")], check=True, env=env, timeout=120)
    got = list(np.load(tmp_path / "out.npz").values())
    want = executor.run({x: np.linspace(-1, 1, 5)})
    history = trainer.fit(data, epochs=2, batch_size=16)
    loss_value, grads = dp.gradients(params, data, workers=2)
    want += [history.losses, *(v for _, v in trainer.params.items()), np.array(loss_value), *grads]
    assert_same(got, want)


CATALOGUE_FRESH = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    bad = []
    for name, executor, xs, inputs, want in pickle.load(open(sys.argv[1], "rb")):
        got = executor.run(dict(zip(xs, inputs)))
        if not all(g.shape == w.shape and g.dtype == w.dtype and
                   np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want)):
            bad.append(name)
    print(bad)
    sys.exit(1 if bad else 0)
""")


def test_every_catalogue_executor_runs_alike_in_a_fresh_process(tmp_path):
    from catalogue import cases
    from helpers import case_graph
    jobs = []
    for case in cases():
        xs, inputs, nodes = case_graph(case, np.random.default_rng(0))
        for backend in ("native", "python"):
            executor = ad.Executor(nodes, backend=backend)
            want = executor.run(dict(zip(xs, inputs)))  # with its plan cached
            jobs.append((f"{case.id}-{backend}", executor, xs, inputs, want))
    with open(tmp_path / "catalogue.pkl", "wb") as f:
        pickle.dump(jobs, f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", CATALOGUE_FRESH, str(tmp_path / "catalogue.pkl")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
