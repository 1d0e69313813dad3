"""`python -m fastad.bench`: fastad's native executor against its pure-Python reference
executor and a hand-written numpy forward+backward, on seven workloads; and, on two
training workloads, `Trainer.fit` against Python loops of `Executor.run` and numpy.

One step is one evaluation of a loss and its gradients w.r.t. the parameters, in float64
(W5f: the loss only).  Every executor first computes one step on the same inputs and
must agree with the reference executor (`np.allclose`, loss and every gradient); a
disagreement is reported and makes the exit status 1.  Then each executor runs `repeats`
timed loops of steps, the executors interleaved in a rotating order so that a noisy
machine slows them alike; the table gives the median µs per step and the quartiles.

W6 and W7 time training steps (loss, gradients and the optimizer's update): a timed
call is a whole training run from the initial parameters, four ways (TRAINING_EXECUTORS),
and each must end where the pure-Python loop does (every step's loss and the final
parameters, within the same tolerances).

Each workload's loss is written once, against a small op namespace (`xp`), so the same
function builds the fastad graph and, with `--peers`, the PyTorch or JAX computation.

The package, from the bottom up: `baselines` (the hand-written numpy steps and optimizer
updates), `workloads`, `runners` (fastad's executors, its Trainer and numpy), `peers`
(PyTorch, JAX), `check` (agreement with the reference), `timing`, `machine`, `report`
(tables, chart) and `cli` (`main`).
"""
from .cli import main
from .runners import EXECUTORS, TRAINING_EXECUTORS
from .workloads import FULL, QUICK, WORKLOADS

__all__ = ["main", "EXECUTORS", "TRAINING_EXECUTORS", "FULL", "QUICK", "WORKLOADS"]
