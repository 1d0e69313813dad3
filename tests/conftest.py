"""Shared fixtures.  `python -m pytest tests` works from the repository root with or
without an installed fastad: if none is installed, the source tree (`src/`) is used."""
import importlib.util
import os
import sys

import pytest
from hypothesis import settings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # `from helpers import ...`
if importlib.util.find_spec("fastad") is None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

# No example database (no `.hypothesis/` folder in the work tree); failures print a
# reproduction blob instead.
settings.register_profile("fastad", deadline=None, database=None)
settings.load_profile("fastad")


@pytest.fixture(params=["python", "native"])
def backend(request):
    """Every executor-level test runs once per backend."""
    return request.param


@pytest.fixture(params=[0, 1, 2], ids=["portable", "avx2", "avx512"])
def simd_path(request):
    """Runs the test with fastad's SIMD kernels (csrc/simd.h: the direct convolution,
    2 x 2 max pooling, sigmoid's tail) at most at this instruction set (0: never; the
    portable code, im2col and a gemm for the convolution)."""
    from fastad.vm import lib
    best = lib.fa_simd_isa(-1)
    if request.param > best:
        pytest.skip("this CPU lacks the instruction set")
    lib.fa_simd_isa(request.param)
    yield request.param
    lib.fa_simd_isa(best)
