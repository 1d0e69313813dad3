"""Which inner loop computes each math function in the native VM (csrc/loops.h).

- exp, log, log1p, expm1, power, logaddexp, maximum, minimum and clip, and sin and cos
  in float32, always run numpy's own inner loop for the dtype: the very function numpy
  itself runs for `np.exp(x)` etc., which numpy picked for this CPU when it was
  imported.  Native results therefore equal numpy's (and the reference executor's)
  bit for bit on every CPU, whatever instruction set numpy chose.
- sin and cos in float64 run fastad's own kernels (csrc/vmath.h: within 1 ulp of the
  truth, the same bits on every CPU, 4-5x numpy's speed): numpy's float64 sin and cos
  are scalar libm loops on every CPU.
- tanh runs numpy's loop where numpy has an AVX-512 one for the dtype (numpy reports
  the target as X86_V4 or AVX512_*); elsewhere numpy's tanh is a scalar libm loop and
  fastad's own kernel (csrc/vmath.h, within 1 ulp of the truth) is several times faster.
FASTAD_TANH, FASTAD_SIN or FASTAD_COS = numpy or fastad, set before fastad is imported,
forces one for that function (fastad's only where it has a kernel for the dtype).

`describe()` says what this process uses.
"""
import os

import numpy as np

DTYPES = {0: "float32", 1: "float64"}
_SIGNATURE = {0: "f", 1: "d"}


def numpy_target(name, dtype_code):
    """The instruction-set target numpy dispatched `np.<name>`'s loop to for the dtype,
    e.g. "X86_V4" or "baseline(X86_V2)"; None when numpy doesn't say."""
    try:
        from numpy.lib.introspect import opt_func_info
    except ImportError:
        return None
    sig = _SIGNATURE[dtype_code]
    info = opt_func_info(func_name=f"^{name}$").get(name, {})
    for key in (sig * 2, sig * 3):
        if key in info:
            return info[key]["current"]
    return None


def has_avx512_loop(name, dtype_code):
    target = numpy_target(name, dtype_code) or ""
    return target.startswith(("X86_V4", "AVX512"))


OWN = {"tanh": (0, 1), "sin": (1,), "cos": (1,)}  # dtype codes of loops.c's own_loops


def choose(name, dtype_code):
    """'numpy' or 'fastad': whose loop computes `name` in the dtype."""
    if dtype_code not in OWN.get(name, ()):
        return "numpy"
    forced = os.environ.get(f"FASTAD_{name.upper()}", "")
    if forced in ("numpy", "fastad"):
        return forced
    if name == "tanh":
        return "numpy" if has_avx512_loop(name, dtype_code) else "fastad"
    return "fastad"


def ufunc_of(name):
    """numpy's ufunc of this name (np.clip is a Python function around its ufunc)."""
    from numpy._core import umath
    return getattr(umath, name)


def bind(ffi, lib):
    """Fills the kernel's loop table; raises ImportError when numpy lacks a loop."""
    for i in range(lib.fa_num_loops):
        name = ffi.string(lib.fa_loop_names[i]).decode().lower()
        ufunc = ufunc_of(name)
        for code, dtype in DTYPES.items():
            if choose(name, code) == "fastad" and lib.fa_use_own_loop(i, code) == 0:
                continue
            if lib.fa_bind_numpy_loop(i, code, id(ufunc)) != 0:
                raise ImportError(f"fastad: numpy {np.__version__} has no {dtype} inner loop for "
                                  f"np.{name}, which fastad's kernel calls")


def describe(ffi, lib):
    """{function: {dtype: "numpy <target>" | "fastad"}} for this process."""
    out = {}
    for i in range(lib.fa_num_loops):
        name = ffi.string(lib.fa_loop_names[i]).decode().lower()
        out[name] = {dtype: (f"numpy {numpy_target(name, code) or ''}".strip()
                             if lib.fa_loop_origin(i, code) == 1 else "fastad")
                     for code, dtype in DTYPES.items()}
    return out
