"""The examples in their short mode reach their accuracy targets with both loops
(Trainer.fit and the Executor.run loop) on both backends, the two loops end at the same
parameters, and --plot writes a PNG."""
import importlib.util
import os
import re
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
NEEDS_SKLEARN = "the digits examples need scikit-learn (pip install fastad[examples])"


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


@pytest.mark.parametrize("name, accuracy", [("mlp_digits", 0.95), ("cnn_digits", 0.9)])
def test_digits_examples(name, accuracy, backend):
    pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    example = load_example(name)
    results = {loop: example.train(epochs=example.QUICK_EPOCHS, backend=backend, loop=loop)
               for loop in ("trainer", "executor")}
    for result in results.values():
        assert result["accuracy"] >= accuracy, result["accuracies"]
        assert result["losses"][-1] < result["losses"][0] / 2
    assert_same_training(results["trainer"], results["executor"])


def test_cnn_digits_full_run_reaches_97_percent():
    """The default training (30 epochs, about a second natively) meets the example's claim."""
    pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    result = load_example("cnn_digits").train()
    assert result["accuracy"] >= 0.97, result["accuracies"]


def test_cnn_digits_quick_run_prints_its_accuracy(capsys):
    pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    load_example("cnn_digits").main(["--quick"])
    out = capsys.readouterr().out
    match = re.search(r"test accuracy (\d\.\d+), .* 4 epochs .*\(trainer loop, native backend\)",
                      out)
    assert match and float(match.group(1)) >= 0.9, out


@pytest.mark.parametrize("name", ["logistic_regression", "mlp_digits", "cnn_digits"])
@pytest.mark.parametrize("loop", ["trainer", "executor"])
def test_plot_writes_a_png(name, loop, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    if name.endswith("_digits"):
        pytest.importorskip("sklearn", reason=NEEDS_SKLEARN)
    path = tmp_path / "curves.png"
    load_example(name).main(["--quick", "--loop", loop, "--plot", str(path)])
    assert f"{loop} loop, native backend" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
