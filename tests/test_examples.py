"""The examples in their short mode reach their accuracy targets, with both backends."""
import importlib.util
import os
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def load_example(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)  # examples import their shared `training` module
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_logistic_regression(backend):
    example = load_example("logistic_regression")
    result = example.train(epochs=example.QUICK_EPOCHS, backend=backend)
    assert result["accuracy"] >= 0.9, result["accuracies"]
    assert result["losses"][-1] < result["losses"][0] / 2
    assert result["seconds"] > 0


def test_mlp_digits(backend):
    pytest.importorskip("sklearn", reason="examples/mlp_digits.py needs scikit-learn "
                                          "(pip install fastad[examples])")
    example = load_example("mlp_digits")
    result = example.train(epochs=example.QUICK_EPOCHS, backend=backend)
    assert result["accuracy"] >= 0.95, result["accuracies"]
    assert result["losses"][-1] < result["losses"][0] / 2
