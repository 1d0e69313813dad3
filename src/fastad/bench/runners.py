"""A Runner computes one step of a case on one executor: here fastad's two executors,
from one graph built by the case's loss, and the hand-written numpy step."""
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

import fastad as ad

EXECUTORS = ("native", "python", "numpy")  # python is the reference the others must match


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
    softmax_cross_entropy=ad.softmax_cross_entropy_op)


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
