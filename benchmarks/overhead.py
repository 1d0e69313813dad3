"""The native executor's per-run Python overhead: a run of `x * 2` (one feed, one
output, one instruction) against its C call alone, minima of repeated timings.

    python benchmarks/overhead.py [--quick]

Timings drift on a shared machine; instruction counts don't.  `--runs N` only makes N
runs, for counting them with callgrind (main thread, N runs minus 0 runs, divided by N):

    valgrind --tool=callgrind --separate-threads=yes python benchmarks/overhead.py --runs 20000
"""
import sys
import timeit

import numpy as np

import fastad as ad
from fastad.vm import DEFAULT_OPTIONS, lib


def main():
    x = ad.Variable("x")
    ex = ad.Executor([x * 2])
    feed = {x: np.ones(3)}
    ex.run(feed)
    if sys.argv[1:2] == ["--runs"]:
        for _ in range(int(sys.argv[2])):
            ex.run(feed)
        return
    plan = ex._vm.last
    slots = plan.pool[0].slots

    number = 2_000 if sys.argv[1:2] == ["--quick"] else 200_000

    def best(fn):
        return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6

    run = best(lambda: ex.run(feed))
    opts = DEFAULT_OPTIONS.plain
    c_call = best(lambda: lib.fa_run(plan.prog, 0, plan.n_instrs, slots, opts))
    print(f"run {run:.2f} µs, its C call alone {c_call:.2f} µs, "
          f"Python beyond the call {run - c_call:.2f} µs")


if __name__ == "__main__":
    main()
