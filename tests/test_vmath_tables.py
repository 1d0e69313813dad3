"""csrc/vmath.h's generated regions hold what tools/vmath_tables.py makes (its --check:
mpmath values exactly, the float32 exp fit within a documented tolerance)."""
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("mpmath", reason="tools/vmath_tables.py computes the constants with mpmath")

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = ROOT / "csrc" / "vmath.h"


def check(header):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "vmath_tables.py"), "--check",
                           "--header", str(header)], capture_output=True, text=True, timeout=120)


def test_header_is_what_the_generator_makes():
    r = check(HEADER)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("old, new", [
    ("0x1.0163da9fb3335p+0", "0x1.0163da9fb3336p+0"),  # exp table: one ulp
    ("0x1.ffffffffd3801p-1", "0x1.ffffffffd3c01p-1"),  # fit: P changes by 2^-44.5
])
def test_check_fails_on_a_changed_value(tmp_path, old, new):
    text = HEADER.read_text()
    assert text.count(old) == 1
    changed = tmp_path / "vmath.h"
    changed.write_text(text.replace(old, new))
    r = check(changed)
    assert r.returncode == 1, r.stdout + r.stderr
    assert new in r.stdout  # on a "-" line of the diff
