"""The native convolution and pooling kernels on every path they take: the direct
convolution (stride 1, forward) with AVX-512 and with AVX2, each dtype, channel blocks
and column vectors cut short; 2 x 2 max pooling's SIMD kernels by rows of windows, two
rows a vector, and the windows they leave; im2col's shifted copy (stride 1 and OW == W: each image's
block of a row is one copy of the plane) and its row-by-row path, col2im, windows that
see only padding, strides, uneven kernels; max
pooling's nan, signed-zero and tie rules, overlapping windows.  Each against the direct
loops of tests/catalogue.py and the python backend, float64 and float32."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastad as ad
from fastad.vm import OPCODES, SIMD_ISAS, lib
from catalogue import (np_avg_grad, np_conv2d, np_conv2d_grad_filter, np_conv2d_grad_input,
                       np_max_gather, np_max_scatter, np_pool)

# (data shape, weights shape, stride, padding)
CONVS = [
    ((64, 8, 4, 4), (16, 8, 3, 3), 1, 1),   # W8's second layer: shifted, 4 wide
    ((3, 1, 8, 8), (8, 1, 3, 3), 1, 1),     # W8's first layer, one channel
    ((2, 3, 5, 7), (4, 3, 1, 1), 1, 0),     # shifted by 0
    ((2, 2, 6, 5), (3, 2, 5, 5), 1, 2),     # shifted by up to 2 rows and columns
    ((2, 2, 4, 5), (3, 2, 1, 3), 1, 1),     # shifted, OH = H + 2 (rows of padding only)
    ((2, 3, 3, 1), (2, 3, 3, 3), 1, 1),     # shifted, one column wide
    ((1, 1, 1, 1), (1, 1, 3, 3), 1, 1),     # one pixel
    ((2, 2, 5, 4), (3, 2, 3, 2), 1, 2),     # row by row: OW != W
    ((2, 2, 3, 3), (2, 2, 1, 1), 1, 2),     # windows that see only padding
    ((2, 2, 7, 6), (3, 2, 3, 3), 2, 1),     # stride 2
    ((1, 3, 8, 9), (2, 3, 2, 3), 3, 2),     # stride 3, uneven kernel
    ((2, 1, 4, 4), (1, 1, 4, 4), 1, 0),     # the kernel as large as the image
    ((0, 2, 4, 4), (3, 2, 3, 3), 1, 1),     # no images
    ((2, 2, 4, 4), (0, 2, 3, 3), 1, 1),     # no filters
    ((2, 0, 4, 4), (3, 0, 3, 3), 1, 1),     # no channels
    ((3, 2, 6, 6), (11, 2, 3, 3), 1, 1),    # direct: a block of 3 channels after one of 8
    ((2, 3, 5, 13), (5, 3, 3, 3), 1, 1),    # direct: planes of 65, the last vector masked
    ((2, 1, 9, 30), (3, 1, 5, 3), 1, 2),    # direct: rows of 32, uneven kernel
    ((2, 8, 6, 8), (9, 8, 3, 3), 1, 1),     # 72 taps: direct with AVX-512 only
]

BEST_ISA = lib.fa_simd_isa(-1)  # the SIMD kernels' best instruction set here


def conv_id(case):
    xs, ws, s, p = case
    return f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{s}p{p}"


def run_both(build, inputs, dtype):
    xs = [ad.Variable(f"x{i}") for i in range(len(inputs))]
    nodes = build(*xs)
    feed = {x: v.astype(dtype) for x, v in zip(xs, inputs)}
    return [ad.Executor(nodes, backend=b).run(feed) for b in ("native", "python")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONVS, ids=[conv_id(c) for c in CONVS])
def test_conv_kernels_match_the_direct_loops(case, dtype, simd_path):
    xs, ws, s, p = case
    rng = np.random.default_rng(len(xs) * sum(xs) + s + 7 * p)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = np_conv2d(x, w, s, p)
    g = rng.standard_normal(y.shape)
    want = [y, np_conv2d_grad_input(g, w, x, s, p), np_conv2d_grad_filter(g, x, w, s, p)]
    rtol = 1e-12 if dtype == np.float64 else 2e-5

    def build(X, W, G):
        return [ad.conv2d_op(X, W, stride=s, padding=p),
                ad.conv2d_grad_input_op(G, W, X, stride=s, padding=p),
                ad.conv2d_grad_filter_op(G, X, W, stride=s, padding=p)]

    native, python = run_both(build, [x, w, g], dtype)
    for name, a, b, ref in zip(["conv2d", "grad_input", "grad_filter"], native, python, want):
        assert a.dtype == dtype and a.shape == ref.shape, name
        scale = np.abs(ref).max(initial=1)
        np.testing.assert_allclose(a, ref, rtol=rtol, atol=rtol * scale, err_msg=name)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)


def conv_paths(case, dtype):
    """The instruction set each CONV2D instruction of the case's forward pass runs with."""
    xs, ws, s, p = case
    x, w = ad.Variable("x"), ad.Variable("w")
    ex = ad.Executor([ad.conv2d_op(x, w, stride=s, padding=p)])
    ex.run({x: np.ones(xs, dtype), w: np.ones(ws, dtype)})
    plan = ex._vm.last
    return {lib.fa_conv_path(plan.prog + i) for i, ins in enumerate(plan.instructions())
            if ins.opcode == OPCODES["CONV2D"]}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_cases_take_every_convolution_path(dtype, simd_path):
    taken = set().union(*(conv_paths(case, dtype) for case in CONVS))
    assert taken == {0, simd_path}


@pytest.mark.parametrize("channels, path", [(56, 2), (57, 0)])
def test_the_direct_convolution_takes_at_most_512_taps(channels, path):
    """56 * 3 * 3 = 504 taps run direct with AVX-512, 57 * 9 = 513 as im2col and a gemm."""
    if BEST_ISA < 2:
        pytest.skip("this CPU lacks AVX-512")
    case = ((1, channels, 3, 8), (2, channels, 3, 3), 1, 1)
    assert conv_paths(case, np.float64) == {path}
    xs, ws, s, p = case
    rng = np.random.default_rng(channels)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    native, python = run_both(lambda X, W: [ad.conv2d_op(X, W, padding=1)], [x, w], np.float64)
    np.testing.assert_allclose(native[0], np_conv2d(x, w, 1, 1), rtol=1e-12, atol=1e-12)


def test_the_direct_convolution_propagates_inf_and_nan(simd_path):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 1, 8, 8)), rng.standard_normal((8, 1, 3, 3))
    x[0, 0, 3, 4], x[1, 0, 0, 0], w[2, 0, 1, 1] = np.inf, np.nan, -np.inf
    native, python = run_both(lambda X, W: [ad.conv2d_op(X, W, padding=1)], [x, w], np.float64)
    np.testing.assert_allclose(native[0], python[0], rtol=1e-12, equal_nan=True)
    assert np.isnan(native[0]).any() and np.isinf(native[0]).any()


def test_conv_padding_is_zero_not_left_over(simd_path):
    """The scratch buffer is reused between runs: a border that im2col skipped would
    carry the last run's values.  Runs with other data must give their own results."""
    x, w = ad.Variable("x"), ad.Variable("w")
    ex = ad.Executor([ad.conv2d_op(x, w, stride=1, padding=1)])
    rng = np.random.default_rng(3)
    wv = rng.standard_normal((2, 3, 3, 3))
    for _ in range(3):
        xv = rng.standard_normal((2, 3, 4, 4)) * 100
        out, = ex.run({x: xv, w: wv})
        np.testing.assert_allclose(out, np_conv2d(xv, wv, 1, 1), rtol=1e-12, atol=1e-10)


# (data shape, kernel, stride)
POOLS = [((2, 3, 8, 8), 2, 2), ((2, 2, 4, 4), 2, 2), ((1, 2, 7, 6), 3, 2), ((2, 1, 5, 5), 2, 1),
         ((1, 1, 3, 3), 3, 3),
         # 2 x 2 by 2 (simd.h): rows of 17 windows, vectors and one left; 8 and 4 windows a
         # row, two rows a vector (16 float32 or 8 float64 lanes), an odd row left
         ((2, 3, 16, 34), 2, 2), ((3, 1, 6, 16), 2, 2), ((1, 3, 2, 8), 2, 2)]


def pool_data(shape, rng):
    """Random values with ties, +0 and -0 and a few nans."""
    x = rng.choice([-1.0, -0.0, 0.0, 0.5, 2.0], shape)
    x = np.where(rng.random(shape) < 0.6, rng.standard_normal(shape), x)
    x[rng.random(shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOLS, ids=[f"{c[0]}-k{c[1]}s{c[2]}" for c in POOLS])
def test_pool_kernels(case, dtype, simd_path):
    """Max pooling and its gathers and scatters bit for bit (a window's first largest,
    its first nan if any); average pooling to rounding.  Where +0 and -0 tie for the
    largest, the native max is the first of them (the element the gradient goes to),
    numpy's max and so the python backend's either one."""
    shape, k, s = case
    rng = np.random.default_rng(sum(shape) + k + s)
    x = pool_data(shape, rng)
    pooled = np_pool(np.nan_to_num(x), k, s)
    g, t = rng.standard_normal(pooled.shape), rng.standard_normal(shape)
    g.flat[::7] = -0.0  # a -0 share added to 0 gives +0, as np.add.at has it

    def build(X, G, T):
        return [ad.max_pool2d_op(X, k, s), ad.max_pool2d_scatter_op(G, X, k, s),
                ad.max_pool2d_gather_op(T, X, k, s), ad.avg_pool2d_op(X, k, s),
                ad.avg_pool2d_grad_op(G, X, k, s)]

    native, python = run_both(build, [x, g, t], dtype)
    x, g, t = (v.astype(dtype) for v in (x, g, t))
    exact = [np_pool(x, k, s), np_max_scatter(g, x, k, s), np_max_gather(t, x, k, s)]
    for name, a, b, ref in zip(["max", "scatter", "gather"], native, python, exact):
        np.testing.assert_array_equal(a, b, err_msg=name)
        if name != "max":
            np.testing.assert_array_equal(np.signbit(a), np.signbit(b), err_msg=name)
        if dtype == np.float64:  # the references add overlapping windows' shares in float64
            np.testing.assert_array_equal(a, ref, err_msg=name)
        else:
            np.testing.assert_allclose(a, ref, rtol=1e-6, err_msg=name)
    first = np_max_gather(x, x, k, s)
    np.testing.assert_array_equal(np.signbit(native[0]), np.signbit(first))
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    for name, a, b, ref in zip(["avg", "avg_grad"], native[3:], python[3:],
                               [np_pool(x, k, s, "avg"), np_avg_grad(g, x, k, s)]):
        np.testing.assert_allclose(a, ref, rtol=rtol, atol=rtol, err_msg=name)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("name", ["portable", "avx2", "avx512", "sse9"])
def test_fastad_simd_caps_the_simd_kernels(name):
    """FASTAD_SIMD, read at import, caps the SIMD kernels' instruction set (CI runs the
    suite as an AVX2 machine that way); an unknown name fails the import, saying so."""
    code = "from fastad.vm import lib; print(lib.fa_simd_isa(-1))"

    def isa_with(value):
        env = {k: v for k, v in os.environ.items() if k != "FASTAD_SIMD"}
        if value is not None:
            env["FASTAD_SIMD"] = value
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True)

    r = isa_with(name)
    if name == "sse9":
        assert r.returncode != 0 and "FASTAD_SIMD='sse9' is none of" in r.stderr
    else:
        best = int(isa_with(None).stdout)  # the CPU's, whatever this process was capped to
        cap = SIMD_ISAS[name]
        assert r.returncode == 0 and int(r.stdout) == min(cap, best), r.stderr
