"""fastad's native convolution against the dgemm it is built on, GFLOP/s, one thread.

conv2d_op runs as im2col and gemm: for data (N, C, H, W) and weights (O, C, k, k) the
forward pass is W (O, C*k*k) @ cols (C*k*k, N*OH*OW), its gradient in the data W^T @ G
and col2im, in the weights G @ cols^T (one gemm over the batch, or one per image where
that is as fast: csrc/kernels.h) — except a stride-1 forward pass where the direct
kernel pays (csrc/simd.h: few input channels, or AVX-512 with output planes filling
its vectors), which skips im2col and the gemm.  For each layer
this times, in C, the native instruction of each of the three (`Executor.profile`) and a
dgemm of the same shape and transposition through the same BLAS (scipy-openblas32: a
`matmul_op`), taking turns, and prints the medians; a layer's GFLOP/s are those of its
gemm (2 M K N floating-point operations per run).  conv/dgemm is the fraction of the
dgemm's speed the whole convolution reaches (issue 11 asks >= 50 % for the forward pass
at batch 64).  Also a 512 x 512 dgemm, the BLAS's speed on a large square product, and
the GFLOP/s of W8's forward convolutions together against it.

    python benchmarks/conv.py [--repeats R]

The machine may be shared: read the ratios, taken interleaved.
"""
import argparse
import statistics

import numpy as np

import fastad as ad
from fastad.bench.machine import cpu_model

# (name, data shape, weights shape, padding)
LAYERS = [
    ("W8 conv1", (64, 1, 8, 8), (8, 1, 3, 3), 1),
    ("W8 conv2", (64, 8, 4, 4), (16, 8, 3, 3), 1),
    ("32->64 on 8x8", (64, 32, 8, 8), (64, 32, 3, 3), 1),
]


def instruction_us(executor, feed, op, runs):
    """µs per run of the instructions of `op` in the native program, measured in C."""
    rows = executor.profile(feed, runs=runs, show=False).rows
    return sum(r.us for r in rows if r.op == op)


def gemm_case(m, k, n, ta, tb, rng):
    a, b = ad.Variable("a"), ad.Variable("b")
    feed = {a: rng.standard_normal((k, m) if ta else (m, k)),
            b: rng.standard_normal((n, k) if tb else (k, n))}
    return ad.Executor([ad.matmul_op(a, b, trans_A=ta, trans_B=tb)]), feed, "matmul"


def layer_cases(xs, ws, pad, rng):
    """{role: ((executor, feed, op), (executor, feed, op) of its gemm), 2 M K N}."""
    n, c, h, w = xs
    o, _, k, _ = ws
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    ckk, np_ = c * k * k, n * oh * ow
    x, wt, g = ad.Variable("x"), ad.Variable("w"), ad.Variable("g")
    xv, wv, gv = (rng.standard_normal(s) for s in (xs, ws, (n, o, oh, ow)))
    graphs = {
        "conv2d": (ad.conv2d_op(x, wt, stride=1, padding=pad), {x: xv, wt: wv},
                   (o, ckk, np_, False, False)),
        "conv2d_grad_input": (ad.conv2d_grad_input_op(g, wt, x, stride=1, padding=pad),
                              {g: gv, wt: wv, x: xv}, (ckk, o, np_, True, False)),
        "conv2d_grad_filter": (ad.conv2d_grad_filter_op(g, x, wt, stride=1, padding=pad),
                               {g: gv, x: xv, wt: wv}, (o, np_, ckk, False, True)),
    }
    return {role: ((ad.Executor([node]), feed, role), gemm_case(*shape, rng),
                   2 * shape[0] * shape[1] * shape[2])
            for role, (node, feed, shape) in graphs.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    ad.set_blas_threads(1)
    rng = np.random.default_rng(0)

    big = gemm_case(512, 512, 512, False, False, rng)
    big_us, forward = [], []
    print(f"{cpu_model()}, float64, one thread, medians of {args.repeats} interleaved "
          "repeats (each ~20 ms a side)\n")
    head = (f"{'layer':<14} {'op':<19} {'gemm M x K x N':>18} {'conv µs':>9} {'GFLOP/s':>8} "
            f"{'dgemm µs':>9} {'GFLOP/s':>8} {'conv/dgemm':>10}")
    print(head)
    print("-" * len(head))
    for name, xs, ws, pad in LAYERS:
        for role, (conv, gemm, flops) in layer_cases(xs, ws, pad, rng).items():
            for ex, feed, _ in (conv, gemm):
                ex.run(feed)  # compile and warm up
            runs = max(5, round(0.02 / (flops / 20e9)))  # ~20 ms of a 20 GFLOP/s gemm
            conv_us, gemm_us = [], []
            for _ in range(args.repeats):
                conv_us.append(instruction_us(*conv, runs))
                gemm_us.append(instruction_us(*gemm, runs))
                big_us.append(instruction_us(*big, 20))
            c, d = statistics.median(conv_us), statistics.median(gemm_us)
            m, k, n = (gemm[0]._vm.last.instructions()[0].fields[f] for f in ("m", "k", "n"))
            print(f"{name:<14} {role:<19} {f'{m} x {k} x {n}':>18} {c:9.1f} "
                  f"{flops / c / 1e3:8.1f} {d:9.1f} {flops / d / 1e3:8.1f} {d / c:10.0%}")
            if role == "conv2d":
                forward.append((name, flops / c / 1e3, d / c, flops, c))
    peak = 2 * 512 ** 3 / statistics.median(big_us) / 1e3
    print(f"\n512 x 512 x 512 dgemm: {peak:.1f} GFLOP/s")
    print("conv2d forward at batch 64:")
    for name, gflops, ratio, _, _ in forward:
        print(f"  {name:<14} {gflops:5.1f} GFLOP/s: {ratio:4.0%} of its dgemm's, "
              f"{gflops / peak:4.0%} of the 512^3 dgemm's")
    w8 = [(flops, us) for name, _, _, flops, us in forward if name.startswith("W8")]
    gflops = sum(f for f, _ in w8) / sum(us for _, us in w8) / 1e3
    print(f"  W8's two together: {gflops:5.1f} GFLOP/s, {gflops / peak:4.0%} of the 512^3 dgemm's")


if __name__ == "__main__":
    main()
