"""Data-parallel training steps: how much faster `Trainer.fit(..., workers=2)` is than one
thread, on full-batch logistic regression of 200,000 x 100 (float64, plain gradient
descent), and what the threaded mode costs per step on a tiny problem.

Each mode is a function `make(problem, stack)` returning `run(steps)`, which trains the
problem's parameters for that many full-batch steps; `stack` (a contextlib.ExitStack)
takes whatever must be closed afterwards.  Before timing, every mode trains STEPS steps
from the same start and must end within 1e-12 (relative to the largest entry) of the
one-thread parameters; and workers=2's gradients must equal one thread's to 1e-12.
Then the modes take turns, in an order rotating every repeat, each timed over a few
steps; the medians of those per-step times are printed, and each mode's ratio to one
thread, beside the CPU time the step took on the calling thread and on all the others
(for modes in other processes, those clocks don't see their work).  Add a mode by
appending (name, make) to MODES.

    python benchmarks/parallel.py [--repeats 15] [--rows 200000] [--cols 100]
"""
import argparse
import contextlib
import gc
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

import fastad as ad

STEPS = 5  # full-batch steps per timed call


@dataclass
class Problem:
    """Logistic regression: the loss of (w, b) for data X, y; `params` the start."""
    loss: ad.Node
    params: dict
    data: dict


def logreg(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    X, y, w, b = ad.Variable("X"), ad.Variable("y"), ad.Variable("w"), ad.Variable("b")
    loss = ad.sigmoid_cross_entropy_op(X @ w + b, y)
    x_in = rng.standard_normal((rows, cols))
    y_in = (x_in @ rng.standard_normal(cols) + rng.standard_normal(rows) > 0).astype(float)
    return Problem(loss, {w: np.zeros(cols), b: np.zeros(1)}, {X: x_in, y: y_in})


def trainer_mode(workers):
    def make(problem, stack):
        trainer = ad.Trainer(problem.loss, problem.params, ad.optim.SGD(1.0))
        rows = len(next(iter(problem.data.values())))

        def run(steps):
            trainer.fit(problem.data, epochs=steps, batch_size=rows, workers=workers,
                        progress=False)
            return [v for _, v in trainer.params.items()]
        return run
    return make


# (name, make); the first is the reference the others are compared with
MODES = [("1 thread", trainer_mode(None)), ("workers=2", trainer_mode(2))]


def agree(got, want, tol=1e-12):
    return max(float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-300))
               for g, w in zip(got, want)) <= tol


def check(problem):
    """workers=2's loss and gradients against one thread's, at a point off zero."""
    params = {p: v + 0.01 for p, v in problem.params.items()}
    one = ad.parallel.gradients(problem.loss, params, problem.data, workers=1)
    two = ad.parallel.gradients(problem.loss, params, problem.data, workers=2)
    return agree([np.array(two[0]), *two[1]], [np.array(one[0]), *one[1]])


def clocks():
    """(wall, CPU of the whole process, CPU of this thread) in seconds."""
    return time.perf_counter(), time.process_time(), time.thread_time()


def measure(problem, repeats, stack):
    """{mode: (median wall, CPU of all threads, CPU of the calling thread) per step}, and
    the modes that trained to other parameters than the first."""
    runs = {name: make(problem, stack) for name, make in MODES}
    finals = {name: run(STEPS) for name, run in runs.items()}  # warm-up and the check
    reference = finals[MODES[0][0]]
    bad = [name for name, final in finals.items() if not agree(final, reference)]
    samples = {name: [] for name in runs}
    names = list(runs)
    gc.disable()
    try:
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = clocks()
                runs[name](STEPS)
                samples[name].append([(b - a) / STEPS for a, b in zip(start, clocks())])
    finally:
        gc.enable()
    return {name: tuple(statistics.median(col) for col in zip(*s))
            for name, s in samples.items()}, bad


def table(title, medians):
    """Wall times and their ratios; and from the CPU clocks, a bound that holds on a
    busy machine too: a step can't take less wall time than its busiest thread's CPU
    time (the calling thread's, or all the others' together), which is the time it
    would take on idle cores."""
    first_wall, first_cpu, _ = medians[MODES[0][0]]
    print(title)
    print(f"  {'mode':<16} {'ms/step':>9} {'speedup':>8} {'CPU ms/step':>12} {'caller':>7} "
          f"{'others':>7} {'idle-core speedup':>18}")
    for name, (wall, cpu, caller) in medians.items():
        others = max(0.0, cpu - caller)
        print(f"  {name:<16} {wall * 1e3:>9.3f} {first_wall / wall:>7.2f}x {cpu * 1e3:>12.3f} "
              f"{caller * 1e3:>7.3f} {others * 1e3:>7.3f} {first_cpu / max(caller, others):>17.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=100)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.2f}; fastad BLAS at 1 thread; "
          f"medians of {args.repeats} interleaved repeats of {STEPS} steps")
    status = 0
    with contextlib.ExitStack() as stack:
        big = logreg(args.rows, args.cols)
        if not check(big):
            print("MISMATCH: workers=2 gradients differ from one thread's by more than 1e-12")
            status = 1
        medians, bad = measure(big, args.repeats, stack)
        table(f"full-batch logistic regression, {args.rows:,} x {args.cols}:", medians)
        tiny_medians, tiny_bad = measure(logreg(64, 4), args.repeats, stack)
        table("tiny problem, 64 x 4 (the threaded mode's own cost per step):", tiny_medians)
        first = tiny_medians[MODES[0][0]][0]
        for name, (wall, _, _) in list(tiny_medians.items())[1:]:
            print(f"  overhead of {name}: {(wall - first) * 1e6:.1f} us per step")
    for name in bad + tiny_bad:
        print(f"MISMATCH: {name} trained to other parameters than one thread (1e-12)")
        status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
