"""Runs the benchmark from a checkout: the same as `python -m fastad.bench`, with the same
arguments (see benchmarks/README.md).  Uses the source tree when fastad is not installed;
the C kernel must have been built there (`pip install -e .`)."""
import importlib.util
import os
import sys

if importlib.util.find_spec("fastad") is None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from fastad.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
