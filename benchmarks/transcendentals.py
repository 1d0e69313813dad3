"""exp, log, tanh, sigmoid, sin, cos and x ** 1.7 over 1e5 elements: a native Executor
run (call overhead included) against numpy writing into a preallocated `out`, in float32
and float64.  Medians of interleaved repeats; the CPU and which loop computes each
function (numpy's own, or fastad's) are printed first.

    python benchmarks/transcendentals.py [--threads N] [--quick]
"""
import argparse
import statistics
import timeit

import numpy as np

import fastad as ad
from fastad import loops, vm
from fastad.bench.machine import cpu_model, simd_level

N, REPEATS, NUMBER = 100_000, 7, 30


def numpy_sigmoid(v, out):
    """The formula numpy users write (fastad's is the overflow-free one)."""
    np.exp(np.negative(v, out=out), out=out)
    out += 1
    return np.reciprocal(out, out=out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="threads of the fastad runs")
    p.add_argument("--quick", action="store_true", help="a few short repeats (a smoke test)")
    args = p.parse_args()
    repeats, number = (2, 2) if args.quick else (REPEATS, NUMBER)
    x = ad.Variable("x")
    cases = [("exp", ad.exp_op, np.exp), ("log", ad.ln_op, np.log),
             ("tanh", ad.tanh_op, np.tanh), ("sigmoid", ad.sigmoid_op, numpy_sigmoid),
             ("sin", ad.sin_op, np.sin), ("cos", ad.cos_op, np.cos),
             ("x**1.7", lambda t: t ** 1.7, lambda v, out: np.power(v, 1.7, out=out))]
    print(f"{cpu_model()} ({simd_level()}), numpy {np.__version__}, fastad threads {args.threads}")
    origins = loops.describe(vm.ffi, vm.lib)
    print("loops: " + "; ".join(f"{name} {', '.join(sorted(set(d.values())))}"
                                for name, d in origins.items()))
    print(f"{N:,} elements, median µs of {repeats} interleaved repeats")
    print(f"{'op':8} {'dtype':8} {'fastad':>8} {'numpy':>8} {'ratio':>6}")
    for name, op, numpy_fn in cases:
        for dtype in (np.float32, np.float64):
            v = np.random.default_rng(0).uniform(0.1, 3, N).astype(dtype)
            out = np.empty_like(v)
            ex = ad.Executor([op(x)], threads=args.threads)
            ex.run({x: v})
            ours, theirs = [], []
            for _ in range(repeats):
                ours.append(timeit.timeit(lambda: ex.run({x: v}), number=number) / number)
                theirs.append(timeit.timeit(lambda: numpy_fn(v, out=out), number=number) / number)
            a, b = statistics.median(ours) * 1e6, statistics.median(theirs) * 1e6
            print(f"{name:8} {np.dtype(dtype).name:8} {a:8.1f} {b:8.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
