"""How fastad's OpenBLAS thread count interacts with numpy's own OpenBLAS pool.

numpy's wheels carry one OpenBLAS, fastad links another (scipy-openblas32).  This times
a 512 x 512 float64 matmul through fastad and through numpy, alternating the two as a
training loop mixing both would, for fastad at 1 thread and at as many threads as cores
(numpy keeps its default).  Prints GFLOP/s medians.

    python benchmarks/blas_threads.py [--quick]
"""
import os
import statistics
import sys
import time

import numpy as np

import fastad as ad

N, REPEATS = 512, 30
if sys.argv[1:2] == ["--quick"]:  # a smoke test
    N, REPEATS = 64, 2


def gflops(seconds):
    return 2 * N**3 / seconds / 1e9


def measure(fastad_threads):
    ad.set_blas_threads(fastad_threads)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    x, y = ad.Variable("a"), ad.Variable("b")
    ex = ad.Executor([ad.matmul_op(x, y)])
    ours, numpys = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        ex.run({x: a, y: b})
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.matmul(a, b)
        numpys.append(time.perf_counter() - t)
    return gflops(statistics.median(ours)), gflops(statistics.median(numpys))


def main():
    cores = os.cpu_count() or 1
    print(f"{N}x{N} float64 matmul, fastad and numpy alternating, {cores} cores")
    print(f"{'fastad threads':>15} {'fastad GFLOP/s':>15} {'numpy GFLOP/s':>14}")
    for threads in sorted({1, cores}):
        ours, theirs = measure(threads)
        print(f"{threads:>15} {ours:>15.1f} {theirs:>14.1f}")
    ad.set_blas_threads(int(os.environ.get("FASTAD_BLAS_THREADS", "1")))


if __name__ == "__main__":
    main()
