"""Timing: warm-up, then repeated timed loops of steps, the executors taking turns."""
import gc
import itertools
import time

import numpy as np


def step_function(runner):
    """A no-argument function computing one step, on the next of the runner's inputs."""
    run, inputs = runner.run, runner.inputs
    if len(inputs) == 1:
        only = inputs[0]
        return lambda: run(only)
    next_input = itertools.cycle(inputs).__next__
    return lambda: run(next_input())


def time_per_step(fn, budget_s):
    """Warms `fn` up (its first call builds plans and fills caches) and returns the mean
    time of the calls made within `budget_s` after the first."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return elapsed / calls


def measure(steps, settings, on_repeat):
    """{executor: (seconds per step of each timed loop, steps per loop)}.

    Each timed loop runs enough steps to last about `settings.target_s`; the executors
    take turns, in an order that rotates every repeat.  The garbage collector is off
    while timing, as in `timeit`."""
    counts = {name: max(1, round(settings.target_s / time_per_step(fn, settings.warmup_s)))
              for name, fn in steps.items()}
    samples = {name: [] for name in steps}
    names = list(steps)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with np.errstate(all="ignore"):
            for r in range(settings.repeats):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    fn, count = steps[name], counts[name]
                    start = time.perf_counter()
                    for _ in range(count):
                        fn()
                    samples[name].append((time.perf_counter() - start) / count)
                on_repeat()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: (samples[name], counts[name]) for name in names}


def summary(samples, count, steps=1):
    """µs per step of the timed loops, whose every call ran `steps` steps."""
    us = np.array(samples) * 1e6 / steps
    q1, median, q3 = np.percentile(us, [25, 50, 75])
    return {"median_us": median, "q1_us": q1, "q3_us": q3,
            "min_us": us.min(), "max_us": us.max(),
            "repeats": len(samples), "steps_per_repeat": count * steps}
