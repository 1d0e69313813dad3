"""Tests for csrc/vmath.h (fastad's own vectorisable kernels: tanh, which fastad.loops
installs where numpy's tanh is a scalar loop, and float64 sin and cos).

The header is compiled on the fly into a small cffi API-mode module (once per
session).  Truth is computed with numpy's long double (x86 80-bit) functions
and rounded once; "ulp" below counts representable numbers between two
results (np.testing.assert_array_max_ulp).
"""

import importlib.util
import pathlib

import numpy as np
import pytest

from helpers import near_multiples_of_half_pi

cffi = pytest.importorskip("cffi")

CSRC = pathlib.Path(__file__).resolve().parent.parent / "csrc"
KERNELS = {"tanh": ("f64", "f32"), "sin": ("f64",), "cos": ("f64",)}  # func: dtypes
FUNCS = tuple(KERNELS)
F32_FUNCS = tuple(f for f, sfx in KERNELS.items() if "f32" in sfx)
# float64 results not correctly rounded, at most: tanh works in double-double, sin and
# cos only fold the reduction's low part in (measured: 3.2 % of uniform inputs)
NOT_CR = {"tanh": 0.01, "sin": 0.05, "cos": 0.05}
CTYPE = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}
SUFFIX = {np.dtype(np.float64): "f64", np.dtype(np.float32): "f32"}
LD = np.longdouble

pytestmark = pytest.mark.skipif(
    np.finfo(LD).nmant < 63, reason="needs x86 80-bit long double for the truth"
)


def _build(tmpdir, modname, defines=(), flags=()):
    ffi = cffi.FFI()
    ffi.cdef(
        "\n".join(
            f"void fa_v{f}_{s}(const {c} *x, {c} *y, int64_t n);"
            for f, sfx in KERNELS.items()
            for s, c in (("f64", "double"), ("f32", "float")) if s in sfx
        )
    )
    src = "".join(f"#define {d}\n" for d in defines) + '#include "vmath.h"\n'
    ffi.set_source(
        modname,
        src,
        include_dirs=[str(CSRC)],
        extra_compile_args=["-O3", "-ffp-contract=off", "-std=gnu99", "-g0", *flags],
    )
    path = ffi.compile(tmpdir=str(tmpdir))
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def vm(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("vmath"), "_fa_vmath_test")


@pytest.fixture(scope="session")
def vm_noclones(tmp_path_factory):
    return _build(
        tmp_path_factory.mktemp("vmath_nc"), "_fa_vmath_test_nc", ["FA_VMATH_NO_CLONES"]
    )


@pytest.fixture(scope="session")
def vm_avx2(tmp_path_factory):
    """Built for AVX2 and FMA throughout (what the avx2 clone is, on any machine that
    can run it: an AVX-512 machine tests its code too)."""
    if not _cpu_has("avx2", "fma"):
        pytest.skip("the CPU has no AVX2 and FMA")
    return _build(tmp_path_factory.mktemp("vmath_avx2"), "_fa_vmath_test_avx2",
                  ["FA_VMATH_NO_CLONES"], ["-mavx2", "-mfma"])


def _cpu_has(*flags):
    try:
        words = set(pathlib.Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return all(f in words for f in flags)


def run(mod, func, x, out=None):
    """Call fa_v<func>_<f64|f32>(x, out, x.size); out defaults to a new array."""
    x = np.asarray(x)
    assert x.dtype in CTYPE and x.flags.c_contiguous
    if out is None:
        out = np.empty_like(x)
    assert out.dtype == x.dtype and out.flags.c_contiguous and out.flags.writeable
    assert out.size == x.size
    c = CTYPE[x.dtype]
    fn = getattr(mod.lib, f"fa_v{func}_{SUFFIX[x.dtype]}")
    fn(mod.ffi.from_buffer(f"{c}[]", x), mod.ffi.from_buffer(f"{c}[]", out), x.size)
    return out


def truth(func, x):
    with np.errstate(all="ignore"):  # casts of signalling nans warn
        return getattr(np, func)(x.astype(LD)).astype(x.dtype)


def numpy_ref(func, x):
    """What numpy (the Python reference) computes."""
    with np.errstate(all="ignore"):
        return getattr(np, func)(x)


def ulps(a, b):
    """Number of representable values between a and b (numpy's nulp measure;
    +0 and -0 count as equal).  Returned as float64."""
    it = np.int64 if a.dtype == np.float64 else np.int32
    lim = np.int64(np.iinfo(it).min)

    def key(v):  # monotonic integer key
        i = v.view(it).astype(np.int64)
        return np.where(i < 0, lim - i, i)

    ka, kb = key(a), key(b)
    same = (ka >= 0) == (kb >= 0)  # no int64 overflow then
    with np.errstate(over="ignore"):
        exact = np.abs(ka - kb).astype(np.float64)
    approx = np.abs(ka.astype(np.float64) - kb.astype(np.float64))
    return np.where(same, exact, approx)


def check_close(ours, ref, maxulp, what):
    nan_o, nan_r = np.isnan(ours), np.isnan(ref)
    bad = np.flatnonzero(nan_o != nan_r)
    assert bad.size == 0, f"{what}: nan mismatch at {bad[:5]}"
    ok = ~nan_r
    d = ulps(ours[ok], ref[ok])
    worst = int(np.argmax(d)) if d.size else 0
    assert d.size == 0 or d.max() <= maxulp, (
        f"{what}: {d.max():.0f} ulp > {maxulp} at "
        f"ours={ours[ok][worst]!r} ref={ref[ok][worst]!r}"
    )
    # the documented assert as well
    np.testing.assert_array_max_ulp(ours[ok], ref[ok], maxulp=maxulp)
    return d


RNG_SEED = 20240601


def f64_inputs(func, n=400_000):
    rng = np.random.default_rng([RNG_SEED, 2])
    u = rng.uniform
    sign = rng.choice([-1.0, 1.0], n)
    bits = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
    denorm = rng.integers(1, 2**52, n, dtype=np.uint64).view(np.float64) * sign
    logu = np.exp2(u(-1074, 1024, n))
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2250738585072014e-308,
         1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0]
    )
    common = {"bits": bits, "denorm": denorm, "logu*sign": logu * sign, "specials": specials,
              "uniform": u(-25, 25, n), "small": u(-1, 1, n),
              "logu_small": np.exp2(u(-1074, 6, n)) * sign}
    if func == "tanh":
        return {**common, "switch": u(0.06, 0.065, n) * sign, "big": u(18, 23, n) * sign}
    # sin, cos: the reduction's whole range, next to multiples of pi/2 (tiny results),
    # around the switch to libm at 1.5 * 2^20 and the tiny-x switch at 2^-27
    near = near_multiples_of_half_pi(rng, n // 8, small=5000, top=1_000_000)
    edge = np.array([1.5 * 2**20, 2**-27])
    around = np.concatenate([(e.view(np.int64) + np.arange(-3000, 3000)).view(np.float64)
                             for e in edge[:, None]])
    return {**common, "medium": u(-1.6e6, 1.6e6, n),
            "near_k_pi/2": near,
            "switches": np.concatenate([around, -around])}


@pytest.mark.parametrize("func", FUNCS)
def test_f64_within_1ulp_of_truth(vm, func):
    for name, x in f64_inputs(func).items():
        d = check_close(run(vm, func, x), truth(func, x), 1, f"{func} f64 [{name}]")
        # nearly correctly rounded (the long double truth is itself off by one in
        # ~0.03 % of cases)
        if x.size >= 1000:
            frac = np.mean(d > 0)
            assert frac < NOT_CR[func], f"{func} [{name}]: {frac:.4f} not correctly rounded"


@pytest.mark.parametrize("func", FUNCS)
def test_f64_vs_numpy(vm, func):
    """Agreement with what numpy computes: within 1 ulp where numpy is itself nearly
    correctly rounded, else within 4."""
    for name, x in f64_inputs(func).items():
        ours, ref = run(vm, func, x), numpy_ref(func, x)
        ok = ~np.isnan(ref)
        np_err = ulps(ref, truth(func, x))[ok]
        np_nearly_cr = np_err.size > 0 and np_err.max() <= 1 and np.mean(np_err > 0) < 0.005
        d = check_close(ours, ref, 1 if np_nearly_cr else 4, f"{func} f64 vs numpy [{name}]")
        if np_nearly_cr and x.size >= 1000:
            frac = np.mean(d > 0)
            assert frac < NOT_CR[func], f"{func} [{name}]: {frac:.4f} differ from numpy"


def sign_bits(a):
    return np.signbit(a)


TRIG_SPECIALS = [(0.0, 0.0, 1.0), (-0.0, -0.0, 1.0), (5e-324, 5e-324, 1.0),
                 (-1e-300, -1e-300, 1.0), (np.inf, np.nan, np.nan), (-np.inf, np.nan, np.nan),
                 (np.nan, np.nan, np.nan)]


def test_sin_cos_special_values(vm):
    x = np.array([p[0] for p in TRIG_SPECIALS])
    for func, col in (("sin", 1), ("cos", 2)):
        want = np.array([p[col] for p in TRIG_SPECIALS])
        got = run(vm, func, x)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(sign_bits(got[:4]), sign_bits(want[:4]), err_msg=func)


SPECIAL_F64 = [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (19.1, 1.0),
               (-22.0, -1.0), (1e300, 1.0), (-1e300, -1.0), (5e-324, 5e-324),
               (-5e-324, -5e-324), (1e-300, 1e-300), (-1e-17, -1e-17)]
SPECIAL_F32 = [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (9.1, 1.0),
               (-10.0, -1.0), (3e38, 1.0), (-3e38, -1.0), (1e-45, 1e-45), (-1e-45, -1e-45),
               (-1e-10, -1e-10)]


@pytest.mark.parametrize("dtype, pairs", [(np.float64, SPECIAL_F64), (np.float32, SPECIAL_F32)])
def test_special_values(vm, dtype, pairs):
    x = np.array([p[0] for p in pairs], dtype=dtype)
    want = np.array([p[1] for p in pairs], dtype=dtype)
    got = run(vm, "tanh", x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(sign_bits(got), sign_bits(want), err_msg="signs")
    # nan in -> nan out, whatever the sign or payload of the nan
    nans = np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001,
                     0xFFFFFFFFFFFFFFFF, 0x7FF4000000000000], dtype=np.uint64).view(np.float64)
    with np.errstate(invalid="ignore"):
        assert np.isnan(run(vm, "tanh", nans.astype(dtype))).all()


def f32_inputs(func, n=400_000):
    rng = np.random.default_rng([RNG_SEED, 99, 2])
    u = rng.uniform
    f32 = lambda a: np.asarray(a).astype(np.float32)  # noqa: E731
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    denorm = rng.integers(1, 2**23, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    specials = f32([0, -0.0, np.inf, -np.inf, np.nan, 1, -1, 88.72, 88.73, -103.9, -104,
                    3.4028235e38, -3.4028235e38, 1e-45, -1e-45, 1.1754944e-38])

    def around(points, k=2000):  # every float32 around the switch points
        p = f32(points).view(np.int32).astype(np.int64)
        return np.concatenate([(q + np.arange(-k, k)).astype(np.int32).view(np.float32) for q in p])

    return {"bits": bits, "denorm": denorm, "denorm_neg": -denorm, "specials": specials,
            "uniform": f32(u(-10, 10, n)), "small": f32(u(-1, 1, n)),
            "logu*sign": f32(np.exp2(u(-149, 128, n)) * rng.choice([-1.0, 1.0], n)),
            # polynomial / exp switch, saturation
            "thresholds": around([0.0625, -0.0625, 9.0, -9.01091, 10.0])}


@pytest.mark.parametrize("func", F32_FUNCS)
def test_f32_within_1ulp_of_truth(vm, func):
    """Within 1 ulp of the truth everywhere; evaluated in double with short polynomials
    and one final rounding, so nearly correctly rounded (measured exhaustively over all
    float32 inputs with a non-trivial result: 1.9e-6 not correctly rounded)."""
    for name, x in f32_inputs(func).items():
        ours = run(vm, func, x)
        d = check_close(ours, truth(func, x), 1, f"{func} f32 [{name}]")
        # and vs numpy's float32 result (itself up to a few ulp off)
        check_close(ours, numpy_ref(func, x), 4, f"{func} f32 vs numpy [{name}]")
        frac = np.mean(d > 0) if d.size else 0.0
        assert frac < 1e-4, f"{func} f32 [{name}]: {frac:.5f} not correctly rounded"


@pytest.mark.parametrize("func, dtype", [(f, np.float64 if s == "f64" else np.float32)
                                         for f, sfx in KERNELS.items() for s in sfx])
def test_lengths_offsets_and_in_place(vm, func, dtype):
    rng = np.random.default_rng([RNG_SEED, 7, 2])
    x = rng.uniform(-30, 30, 2000).astype(dtype)
    full = run(vm, func, x)
    # element-wise: each y[i] depends on x[i] only
    single = np.concatenate([run(vm, func, x[i:i + 1]) for i in range(0, 1100)])
    np.testing.assert_array_equal(full[:1100], single)
    for start in (0, 1, 3):
        for n in (0, 1, 2, 3, 5, 7, 15, 16, 17, 31, 255, 256, 257, 511, 513, 1001):
            xs = x[start:start + n].copy()
            sentinel = np.full(n + 1, 123.0, dtype=dtype)
            run(vm, func, xs, out=sentinel[:n])
            np.testing.assert_array_equal(sentinel[:n], full[start:start + n])
            assert sentinel[n] == 123.0  # nothing written past the end
            inplace = xs.copy()
            run(vm, func, inplace, out=inplace)  # y == x
            np.testing.assert_array_equal(inplace, full[start:start + n])


def test_n_zero_writes_nothing(vm):
    for dtype in (np.float64, np.float32):
        x = np.ones(4, dtype=dtype)
        y = np.full(4, 7.0, dtype=dtype)
        for func in (f for f, sfx in KERNELS.items() if SUFFIX[np.dtype(dtype)] in sfx):
            getattr(vm.lib, f"fa_v{func}_{SUFFIX[np.dtype(dtype)]}")(
                vm.ffi.from_buffer(f"{CTYPE[np.dtype(dtype)]}[]", x),
                vm.ffi.from_buffer(f"{CTYPE[np.dtype(dtype)]}[]", y), 0)
            assert (y == 7.0).all()


def test_clones_bit_identical(vm, vm_noclones, vm_avx2):
    """The clone picked at run time (avx512f, avx2 or the baseline), an AVX2 and FMA
    build and the baseline SSE2 build give the same bits: no FMA, one rounding per
    operation in any vector width."""
    rng = np.random.default_rng([RNG_SEED, 3])
    x64 = np.concatenate([rng.integers(0, 2**64, 300_000, dtype=np.uint64).view(np.float64),
                          rng.uniform(-800, 800, 300_000), rng.uniform(-3, 3, 300_000)])
    x32 = np.concatenate([rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32)
                          .view(np.float32), rng.uniform(-120, 120, 300_000).astype(np.float32)])
    x64 = np.concatenate([x64, f64_inputs("sin", 100_000)["near_k_pi/2"]])
    for func, sfx in KERNELS.items():
        for x in (x64, x32)[:len(sfx)]:
            a, b, c = (run(m, func, x) for m in (vm, vm_noclones, vm_avx2))
            assert a.tobytes() == b.tobytes() == c.tobytes(), f"{func} {x.dtype}"
