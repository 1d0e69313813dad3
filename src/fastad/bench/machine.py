"""The machine a run is on, and the pinning of BLAS threads."""
import os
import platform

import numpy as np

import fastad as ad
from fastad import loops, vm


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def simd_level():
    """The widest x86 SIMD the CPU has, by numpy's own detection ("AVX-512", "AVX2",
    ...), or the machine's architecture elsewhere."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return platform.machine()
    for name, label in (("AVX512F", "AVX-512"), ("AVX2", "AVX2"), ("SSE42", "SSE4.2")):
        if features.get(name):
            return label
    return platform.machine()


def pin_threads(n):
    """Sets the BLAS threads of fastad (its own OpenBLAS) and, through threadpoolctl when
    installed, of numpy; returns notes on what is pinned and the BLAS libraries seen."""
    vm.set_blas_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        env = os.environ.get("OPENBLAS_NUM_THREADS")
        return ({"fastad_blas": n, "numpy_blas": f"OPENBLAS_NUM_THREADS={env}" if env else None},
                [], "numpy's BLAS threads are not pinned: pip install threadpoolctl, or set "
                    "OPENBLAS_NUM_THREADS before Python starts")
    threadpoolctl.threadpool_limits(limits=n, user_api="blas")  # for the whole process
    libs = [{"library": os.path.basename(info["filepath"]), "api": info["internal_api"],
             "num_threads": info["num_threads"]}
            for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    return {"fastad_blas": n, "numpy_blas": n}, libs, None


def machine_info():
    return {"cpu": cpu_model(), "simd": simd_level(), "loops": loops.describe(vm.ffi, vm.lib),
            "logical_cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "fastad": ad.__version__}
