"""Build glue: project metadata lives in pyproject.toml; this file only names the cffi
build script, so that `pip install .` compiles the C kernel (fastad._kernel)."""
from setuptools import setup

setup(cffi_modules=["csrc/build_kernel.py:ffibuilder"])
