"""`python -m fastad.bench` in its quick mode: every workload and executor is timed, and
every executor agrees with the reference; the training workloads end where the pure-Python
loop does."""
import importlib.util
import json
import subprocess
import sys

import pytest

import fastad as ad
from fastad import bench
from fastad.bench import runners, workloads


def test_quick_run_writes_full_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["--quick", "--json", str(path)]
    have_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if have_matplotlib:
        argv += ["--plot", str(tmp_path / "bench.png")]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "QUICK mode" in out and "W5 on 100,000 elements" in out
    assert "executor/native" in out and "W6 2 epochs instead of 20" in out

    report = json.loads(path.read_text())
    assert report["quick"] is True
    assert report["machine"]["cpu"] and report["machine"]["numpy"]
    assert report["threads"]["fastad_blas"] == 1
    assert set(report["workloads"]) == {w.name for w in bench.WORKLOADS}
    for name, res in report["workloads"].items():
        assert res["agree"] is True, (name, res["mismatches"])
        assert res["training"] is (name in ("W6", "W7"))
        executors = bench.TRAINING_EXECUTORS if res["training"] else bench.EXECUTORS
        assert set(res["executors"]) == set(executors)
        for executor, stats in res["executors"].items():
            assert 0 < stats["q1_us"] <= stats["median_us"] <= stats["q3_us"], (name, executor)
            assert stats["repeats"] == bench.QUICK.repeats and stats["steps_per_repeat"] >= 1
        assert res["python_over_native"] > 0 and res["native_over_numpy"] > 0
    # a training run: W6 2 epochs of 100 samples, W7 256 digits in batches of 32
    for name, steps in (("W6", 200), ("W7", 8)):
        res = report["workloads"][name]
        assert res["steps_per_run"] == steps and res["executor_over_native"] > 0
        for stats in res["executors"].values():
            assert stats["steps_per_repeat"] % steps == 0
    if have_matplotlib:
        assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_disagreement_fails_clearly(monkeypatch, capsys):
    right = workloads.logreg_one_numpy

    def wrong(arrays):
        loss, grad_w, grad_b = right(arrays)
        return [loss, grad_w * 1.01, grad_b]

    monkeypatch.setattr(workloads, "logreg_one_numpy", wrong)  # the name build_w1 reads
    assert bench.main(["--quick", "--workload", "w1"]) == 1
    captured = capsys.readouterr()
    assert "FAILED W1: numpy disagrees with the python executor: d/dw" in captured.err
    assert " NO" in captured.out


def test_training_disagreements_fail_clearly(monkeypatch, capsys):
    right = workloads.logreg_one_numpy

    def wrong(arrays):
        loss, grad_w, grad_b = right(arrays)
        return [loss, grad_w, grad_b * 1.01]

    monkeypatch.setattr(workloads, "logreg_one_numpy", wrong)  # W6's numpy loop
    # a learning rate a hair off: within the tolerance, but not the executor loop's bits
    monkeypatch.setitem(runners.OPTIMIZERS, "sgd", lambda lr: ad.optim.SGD(lr * (1 + 1e-15)))
    assert bench.main(["--quick", "--workload", "W6"]) == 1
    err = capsys.readouterr().err
    assert "FAILED W6: numpy differs from the python loop: b:" in err
    assert "FAILED W6: executor differs from native bit for bit: losses, w, b" in err
    assert "FAILED W6: native differs" not in err


def test_missing_peer_and_tqdm_are_skipped(monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "torch" else find_spec(name))
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    assert bench.main(["--quick", "--workload", "W1", "--peers", "torch"]) == 0
    out, err = capsys.readouterr()
    assert "note: peer torch skipped: not installed (pip install torch)" in out
    assert "timing W1 (pip install fastad[bench] for a progress bar)" in err


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--workload", "W9"])
    assert exit_.value.code == 2
    assert "unknown workload w9" in capsys.readouterr().err


def test_module_runs_as_a_script():
    done = subprocess.run([sys.executable, "-m", "fastad.bench", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "W5f" in done.stdout and "W8" in done.stdout
