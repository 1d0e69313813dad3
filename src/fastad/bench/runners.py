"""A Runner computes one step of a case on one executor: here fastad's two executors,
from one graph built by the case's loss, and the hand-written numpy step.  For a
training workload a Runner's call is a whole training run, four ways."""
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

import fastad as ad

from .baselines import UPDATES

EXECUTORS = ("native", "python", "numpy")  # python is the reference the others must match
# W6, W7: Trainer.fit (native); loops of Executor.run (native, python) and numpy updates;
# the hand-written numpy loop.  The python loop is the reference.
TRAINING_EXECUTORS = ("native", "executor", "python", "numpy")
OPTIMIZERS = {"sgd": ad.optim.SGD, "adam": ad.optim.Adam}


@dataclass
class Runner:
    """`run(inp)` computes one step for `inp`, one of `inputs`; `to_numpy` converts an
    output for the agreement check."""
    run: object
    inputs: list
    to_numpy: object = np.asarray


FASTAD_XP = SimpleNamespace(
    exp=ad.exp_op, log=ad.ln_op, sigmoid=ad.sigmoid_op, relu=ad.relu_op,
    sum=ad.reduce_sum_op, mean=ad.reduce_mean_op,
    softmax_cross_entropy=ad.softmax_cross_entropy_op,
    conv2d=lambda x, w, padding: ad.conv2d_op(x, w, stride=1, padding=padding),
    max_pool2d=ad.max_pool2d_op, reshape=ad.reshape_op)


def fastad_runners(case, threads=1):
    """Runners for the native executor (on `threads` threads) and the python executor,
    both of one graph."""
    arrays = [{**case.params, **d} for d in case.data]
    nodes = {name: ad.Variable(name) for name in arrays[0]}
    loss = case.loss(FASTAD_XP, **nodes)
    grads = ad.gradients(loss, [nodes[n] for n in case.params]) if case.grad else []
    feeds = [{nodes[n]: v for n, v in a.items()} for a in arrays]
    return {"native": Runner(ad.Executor([loss, *grads], threads=threads).run, feeds),
            "python": Runner(ad.Executor([loss, *grads], backend="python").run, feeds)}


def numpy_runner(case):
    return Runner(case.numpy_step, [{**case.params, **d} for d in case.data])


def training_runners(case, threads=1):
    """The four runners of a Training, each a whole training run from the initial
    parameters that returns [every step's loss, *final parameters]."""
    nodes = {name: ad.Variable(name) for name in [*case.params, *case.data]}
    loss = case.loss(FASTAD_XP, **nodes)
    eval_nodes = [loss, *ad.gradients(loss, [nodes[n] for n in case.params])]
    return {"native": fit_runner(case, nodes, loss, threads),
            "executor": loop_runner(case, ad.Executor(eval_nodes, threads=threads).run, nodes),
            "python": loop_runner(case, ad.Executor(eval_nodes, backend="python").run, nodes),
            "numpy": loop_runner(case, case.numpy_step, {n: n for n in nodes})}


def fit_runner(case, nodes, loss, threads):
    """Trainer.fit on the native backend."""
    trainer = ad.Trainer(loss, {nodes[n]: v for n, v in case.params.items()},
                         OPTIMIZERS[case.optimizer](case.lr), threads=threads)
    # No public call resets a Trainer: a run first writes the initial parameters and
    # optimizer state back into the buffers the Trainer owns (its step count too).
    start = {node: value.copy() for node, value in trainer._values.items()}

    def run(data):
        for node, value in start.items():
            np.copyto(trainer._values[node], value)
        trainer.t = 0
        history = trainer.fit(data, case.epochs, batch_size=case.batch_size, progress=False)
        return [history.losses, *(trainer.params[nodes[n]] for n in case.params)]

    return Runner(run, [{nodes[n]: v for n, v in case.data.items()}])


def loop_runner(case, step, keys):
    """A Python loop of `step` (a feed dict -> [loss, *gradients]) and the numpy update;
    keys: the feed dict's key of each of the case's names."""
    batches, make_update = case.batches(), UPDATES[case.optimizer]

    def run(data):
        params = [v.copy() for v in case.params.values()]
        update = make_update(case.lr, params)
        feed = dict(zip((keys[n] for n in case.params), params))  # updated in place
        losses, t = np.empty(case.steps), 0
        for _ in range(case.epochs):
            for rows in batches:
                for k, v in data.items():
                    feed[k] = v[rows]
                loss, *grads = step(feed)
                losses[t] = loss.item()
                t += 1
                update(params, grads, t)
        return [losses, *params]

    return Runner(run, [{keys[n]: v for n, v in case.data.items()}])
