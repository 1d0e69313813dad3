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
