"""The scripts in benchmarks/ run (short versions of them): they print figures, so
nothing else would notice when a change breaks one.  benchmarks/parallel.py has its own
test in test_parallel.py, `python -m fastad.bench` in test_bench.py."""
import os
import subprocess
import sys

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")

SCRIPTS = [("overhead.py", ["--quick"], "Python beyond the call"),
           ("transcendentals.py", ["--quick"], "x**1.7"),
           ("blas_threads.py", ["--quick"], "GFLOP/s"),
           ("first_run.py", ["300", "--repeat", "1"], "ratio"),
           ("conv.py", ["--repeats", "1"], "GFLOP/s")]


@pytest.mark.parametrize("script, args, says", SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_benchmark_script_runs(script, args, says):
    out = subprocess.run([sys.executable, os.path.join(HERE, script), *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert says in out.stdout, out.stdout
