"""The first run of a long chain: building the Executor and its first `run`, native
(lowering, simplification, memory planning, validation) against the python backend.

    python benchmarks/first_run.py              # chains of 20,000 and 100,000 nodes
    python benchmarks/first_run.py 5000 --profile

Each figure is the median of `--repeat` fresh executors (new graphs), the two backends
interleaved, in CPU seconds of this process (steadier than wall time on a busy
machine; the first run is single-threaded); the ratio native / python is the figure to
watch (goal: at most 2).
`--profile` prints cProfile's top functions of one native first run instead.
"""
import argparse
import cProfile
import gc
import pstats
import statistics
import time

import numpy as np

import fastad as ad


def chain(n):
    """x, then n elementwise nodes: multiply, add, tanh and sin in turn."""
    x = ad.Variable("x")
    y = x
    for i in range(n):
        k = i % 4
        y = y * 1.0001 if k == 0 else y + 0.5 if k == 1 else ad.tanh_op(y) if k == 2 else ad.sin_op(y)
    return x, y


def first_run(n, backend):
    x, y = chain(n)
    feed = {x: np.linspace(-1, 1, 16)}
    gc.collect()
    t0 = time.process_time()
    out = ad.Executor([y], backend=backend).run(feed)[0]
    return time.process_time() - t0, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[20_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        for n in args.sizes:
            x, y = chain(n)
            prof = cProfile.Profile()
            prof.enable()
            ad.Executor([y]).run({x: np.linspace(-1, 1, 16)})
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return
    print(f"{'nodes':>8} {'native s':>9} {'python s':>9} {'ratio':>6}")
    for n in args.sizes:
        native, python = [], []
        for _ in range(args.repeat):
            t, a = first_run(n, "native")
            native.append(t)
            t, b = first_run(n, "python")
            python.append(t)
            if not np.array_equal(a, b):
                raise SystemExit(f"{n} nodes: native and python results differ")
        tn, tp = statistics.median(native), statistics.median(python)
        print(f"{n:>8} {tn:>9.3f} {tp:>9.3f} {tn / tp:>6.2f}")


if __name__ == "__main__":
    main()
