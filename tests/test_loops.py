"""The native VM's math functions are numpy's own inner loops (fastad.loops): native
results equal numpy's bit for bit on every CPU, whatever instruction set numpy picked.
tanh, and sin and cos in float64, are numpy's loop or fastad's own (within 1 ulp of the
truth), as fastad.loops decides."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastad as ad
from fastad import loops, vm
from helpers import near_multiples_of_half_pi

DTYPES = [np.float32, np.float64]


def inputs(dtype, n=200_000, seed=0):
    """Random bit patterns, wide and narrow uniform values, subnormals and specials."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    uint = np.uint64 if dtype == np.float64 else np.uint32
    bits = rng.integers(0, np.iinfo(uint).max, n, dtype=uint).view(dtype)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, -info.tiny,
                         info.smallest_subnormal, -info.smallest_subnormal, info.max, -info.max,
                         1.0, -1.0, 0.5, 2.0, 88.72, -103.9, 709.78, -745.13], dtype=dtype)
    return np.concatenate([
        bits, specials,
        rng.uniform(-800, 800, n).astype(dtype), rng.uniform(-30, 30, n).astype(dtype),
        rng.uniform(-1, 1, n).astype(dtype), rng.uniform(0, 5, n).astype(dtype),
        (rng.uniform(0, 1, n) * info.smallest_normal).astype(dtype),
        np.arange(-30, 31).astype(dtype), np.arange(-30, 31).astype(dtype) + 0.5,
        near_multiples_of_half_pi(rng, 20_000, small=2000, top=3_000_000).astype(dtype)])


def run_native(node, x, v):
    out, = ad.Executor([node]).run({x: v})
    return out


def same_bits(a, b):
    """Equal as numbers, nans where the other has nans, and the same zero signs."""
    return (a.shape == b.shape and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a[a == 0]), np.signbit(b[b == 0])))


UNARY = [("exp", ad.exp_op, np.exp), ("log", ad.ln_op, np.log),
         ("sin", ad.sin_op, np.sin), ("cos", ad.cos_op, np.cos), ("tanh", ad.tanh_op, np.tanh)]
CODE = {np.float32: 0, np.float64: 1}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, op, ref", UNARY, ids=[u[0] for u in UNARY])
def test_math_functions_are_numpys_bits_or_within_an_ulp_of_the_truth(name, op, ref, dtype):
    """numpy's loop: numpy's bits.  fastad's own kernel: within 1 ulp of the truth
    (numpy's x86 long double function, 11 more bits), with numpy's nans and infinities."""
    x = ad.Variable("x")
    v = inputs(dtype)
    got = run_native(op(x), x, v)
    with np.errstate(all="ignore"):
        want = ref(v)
        truth = ref(v.astype(np.longdouble))
    if loops.choose(name, CODE[dtype]) == "numpy":
        assert same_bits(got, want)
        return
    assert name in loops.OWN and np.finfo(np.longdouble).nmant >= 63
    finite = np.isfinite(want)
    assert same_bits(got[~finite], want[~finite])
    err = np.abs(got[finite].astype(np.longdouble) - truth[finite])
    ulp = np.spacing(np.abs(truth[finite]).astype(dtype)).astype(np.longdouble)
    assert np.all(err <= ulp), float(np.max(err / ulp))
    assert same_bits(got[got == 0], want[got == 0])  # signed zeros too


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1.7, -2.5, 3.0, 2.0, -1.0, 0.0, 1.0, 0.5, -0.5, 1e-3])
def test_powers_equal_numpy_bit_for_bit(c, dtype):
    """`x ** c` is np.power (np.sqrt for 0.5, as numpy's own `**` does)."""
    x = ad.Variable("x")
    v = inputs(dtype, n=50_000)
    with np.errstate(all="ignore"):
        want = np.sqrt(v) if c == 0.5 else np.power(v, c)
    assert same_bits(run_native(x ** c, x, v), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_softmax_family_equal_the_reference_bit_for_bit(dtype):
    """Built on numpy's exp and log loops with the reference's formulas and summation
    order, these equal the reference executor exactly."""
    rng = np.random.default_rng(1)
    x, y = ad.Variable("x"), ad.Variable("y")
    nodes = [ad.sigmoid_op(x), ad.softmax_op(x), ad.log_softmax_op(x),
             ad.softmax_cross_entropy_op(x, y)]
    for shape in [(7,), (3, 5), (64, 10), (2, 3, 130), (1, 3000)]:
        xv = (rng.standard_normal(shape) * 20).astype(dtype)
        yv = rng.uniform(0, 1, shape).astype(dtype)
        feed = {x: xv, y: yv}
        native = ad.Executor(nodes).run(feed)
        ref = ad.Executor(nodes, backend="python").run(feed)
        for a, b, node in zip(native, ref, nodes):
            assert same_bits(a, b), node
    v = inputs(dtype)  # sigmoid over every kind of value
    assert same_bits(run_native(ad.sigmoid_op(x), x, v),
                     ad.Executor([ad.sigmoid_op(x)], backend="python").run({x: v})[0])


def sigmoid_edges(rng):
    """Where 1 + exp(-|x|) nears 2 (x near 0) and 1 (x large), every float64 around a
    few points, and random values of every size."""
    around = [np.float64(p).view(np.int64) + np.arange(-20_000, 20_000)
              for p in (1e-300, 1e-17, 1e-9, 0.5, 1.0, 20.0, 36.0, 37.5, 700.0)]
    x = np.concatenate([np.concatenate(around).view(np.float64),
                        rng.uniform(-1e-3, 1e-3, 100_000), rng.uniform(-40, 40, 300_000),
                        np.exp(rng.uniform(-50, 6.6, 300_000))])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_the_references_on_every_simd_path(dtype, simd_path):
    """sigmoid's SIMD tail (AVX-512 float64: 1/(1 + e) by Newton steps and a rounding
    check, no division) gives the division's bits: every length's tail, alone and in a
    group, against the reference executor."""
    rng = np.random.default_rng(11)
    x = ad.Variable("x")
    with np.errstate(all="ignore"):  # float64 beyond float32's range: inf
        v = np.concatenate([sigmoid_edges(rng), inputs(np.float64, n=50_000)]).astype(dtype)
    ref = ad.Executor([ad.sigmoid_op(x)], backend="python")
    assert same_bits(run_native(ad.sigmoid_op(x), x, v), ref.run({x: v})[0])
    grouped = ad.sigmoid_op(x * 1.0) + 0.0
    for n in (1, 7, 8, 9, 1023, 1025, 5000):
        w = v[n:2 * n]
        want = ad.Executor([grouped], backend="python").run({x: w})[0]
        assert same_bits(run_native(grouped, x, w), want), n


@pytest.mark.parametrize("dtype", DTYPES)
def test_math_in_blocked_groups_and_odd_lengths(dtype):
    """Math instructions inside groups run block by block (and in place): still the
    same loops (numpy's; sin by itself gives the bits of whichever loop it runs)."""
    x = ad.Variable("x")
    node = ad.sin_op(ad.ln_op(ad.exp_op(x * 0.25) + 1.0) ** 1.5)
    for n in (0, 1, 7, 1023, 1024, 1025, 4097, 100_003):
        v = np.random.default_rng(n).uniform(-40, 40, n).astype(dtype)
        with np.errstate(all="ignore"):
            inner = np.power(np.log(np.exp(v * 0.25) + 1.0), 1.5)
        assert same_bits(run_native(node, x, v), run_native(ad.sin_op(x), x, inner)), n


def test_describe_names_every_loop():
    info = loops.describe(vm.ffi, vm.lib)
    assert set(info) == {"exp", "log", "tanh", "sin", "cos", "log1p", "expm1", "power",
                         "logaddexp", "maximum", "minimum", "clip"}
    for name, by_dtype in info.items():
        for dtype, origin in by_dtype.items():
            own = CODE[np.dtype(dtype).type] in loops.OWN.get(name, ())
            assert origin.startswith("numpy") or (own and origin == "fastad")


@pytest.mark.parametrize("name", ["tanh", "sin"])
@pytest.mark.parametrize("forced", ["numpy", "fastad"])
def test_fastad_function_forces_its_loop(forced, name):
    code = ("import numpy as np, fastad as ad; from fastad import loops, vm\n"
            f"print(loops.describe(vm.ffi, vm.lib)['{name}'])\n"
            "x = ad.Variable('x'); v = np.linspace(-20, 20, 100001)\n"
            f"y, = ad.Executor([ad.{name}_op(x)]).run({{x: v}})\n"
            f"print(int(np.array_equal(y, np.{name}(v))), np.max(np.abs(y - np.{name}(v))))\n")
    env = dict(os.environ, **{f"FASTAD_{name.upper()}": forced})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert (forced == "fastad") == ("'fastad'" in out[0])
    equal, diff = out[1].split()
    if forced == "numpy":
        assert equal == "1"
    else:
        assert float(diff) <= 4 * np.finfo(np.float64).eps
