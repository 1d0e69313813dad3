"""The examples in their short mode reach their accuracy targets with both loops
(Trainer.fit and the Executor.run loop) on both backends, the two loops end at the same
parameters, and --plot writes a PNG."""
import importlib.util
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
NEEDS_SKLEARN = "examples/mlp_digits.py needs scikit-learn (pip install fastad[examples])"


def load_example(name):
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)  # examples import their shared `training` module
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_training(a, b):
    """Both loops ran the same steps: the same losses, accuracies and final parameters,
    bit for bit."""
    np.testing.assert_array_equal(a["history"].losses, b["history"].losses)
    assert a["accuracies"] == b["accuracies"]
    for name in a["params"]:
        np.testing.assert_array_equal(a["params"][name], b["params"][name], err_msg=name)


def test_logistic_regression(backend):
    example = load_example("logistic_regression")
    results = {loop: example.train(epochs=example.QUICK_EPOCHS, backend=backend, loop=loop)
               for loop in ("trainer", "executor")}
    for result in results.values():
        assert result["accuracy"] >= 0.9, result["accuracies"]
        assert result["losses"][-1] < result["losses"][0] / 2
        assert len(result["history"].losses) == 100 * example.QUICK_EPOCHS
        assert result["seconds"] > 0
    assert_same_training(results["trainer"], results["executor"])


def test_mlp_digits(backend):
    pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    example = load_example("mlp_digits")
    results = {loop: example.train(epochs=example.QUICK_EPOCHS, backend=backend, loop=loop)
               for loop in ("trainer", "executor")}
    for result in results.values():
        assert result["accuracy"] >= 0.95, result["accuracies"]
        assert result["losses"][-1] < result["losses"][0] / 2
    assert_same_training(results["trainer"], results["executor"])


@pytest.mark.parametrize("name", ["logistic_regression", "mlp_digits"])
@pytest.mark.parametrize("loop", ["trainer", "executor"])
def test_plot_writes_a_png(name, loop, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    if name == "mlp_digits":
        pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    path = tmp_path / "curves.png"
    load_example(name).main(["--quick", "--loop", loop, "--plot", str(path)])
    assert f"{loop} loop, native backend" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
