"""The sdist carries everything a build needs: build it, build a wheel from it, and run
the wheel's kernel."""
import glob
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "pyproject.toml")),
                    reason="needs the source tree")
def test_sdist_builds_a_working_wheel(tmp_path):
    pytest.importorskip("build")
    # --no-isolation: the test environment already has the build requirements
    # (setuptools, cffi, scipy-openblas32); building offline keeps the test quick.
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                    "--outdir", str(tmp_path / "dist"), ROOT],
                   check=True, capture_output=True, timeout=300)
    sdist, = glob.glob(str(tmp_path / "dist" / "fastad-*.tar.gz"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), sdist],
                   check=True, capture_output=True, timeout=300)
    wheel, = glob.glob(str(tmp_path / "wheels" / "fastad-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("fastad/_kernel") and n.endswith(".so") for n in names), names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    check = ("import numpy as np, fastad as ad, fastad.vm\n"
             "assert fastad.__file__.startswith(%r)\n"
             "x = ad.Variable('x'); g, = ad.gradients(ad.reduce_sum_op(x * x), [x])\n"
             "assert ad.Executor([g]).run({x: np.arange(3.0)})[0].tolist() == [0, 2, 4]\n"
             % str(unpacked))
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=str(tmp_path),
                   timeout=60)
