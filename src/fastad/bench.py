"""`python -m fastad.bench`: fastad's native executor against its pure-Python reference
executor and a hand-written numpy forward+backward, on six workloads.

One step is one evaluation of a loss and its gradients w.r.t. the parameters, in float64
(W5f: the loss only).  Every executor first computes one step on the same inputs and
must agree with the reference executor (`np.allclose`, loss and every gradient); a
disagreement is reported and makes the exit status 1.  Then each executor runs `repeats`
timed loops of steps, the executors interleaved in a rotating order so that a noisy
machine slows them alike; the table gives the median µs per step and the quartiles.

Each workload's loss is written once, against a small op namespace (`xp`), so the same
function builds the fastad graph and, with `--peers`, the PyTorch or JAX computation.
"""
import argparse
import gc
import importlib.util
import itertools
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

import fastad as ad
from fastad import vm

EXECUTORS = ("native", "python", "numpy")  # python is the reference the others must match
PEERS = ("torch", "jax")
RTOL, ATOL = 1e-6, 1e-9  # ATOL is relative to the largest magnitude of the compared arrays


@dataclass
class Settings:
    repeats: int      # timed loops per executor
    target_s: float   # aimed duration of one loop (sets its number of steps)
    warmup_s: float   # untimed running first; it also estimates the time of a step
    w5_size: int


FULL = Settings(repeats=15, target_s=0.05, warmup_s=0.1, w5_size=1_000_000)
QUICK = Settings(repeats=5, target_s=0.004, warmup_s=0.01, w5_size=100_000)


# --- workloads ---------------------------------------------------------------------------

@dataclass
class Case:
    """One workload, ready to run.

    loss(xp, **arrays) builds the loss from the ops in `xp`; `params` are the arrays it is
    differentiated against (in this order) and `data` the other inputs: a list that the
    steps cycle through.  numpy_step(arrays) is the hand-written numpy equivalent and
    returns [loss, *gradients]."""
    loss: object
    params: dict
    data: list
    numpy_step: object
    grad: bool = True

    def outputs(self):
        return ["loss"] + ([f"d/d{name}" for name in self.params] if self.grad else [])


@dataclass
class Workload:
    name: str
    title: str
    build: object  # Settings -> Case


def logreg_one_loss(xp, w, x, b, y):
    # the seed's graph, node for node
    o = xp.sum(w * x) + b
    h = 1 / (xp.exp(-o) + 1)
    return -(y * xp.log(h) + (1 - y) * xp.log(1 - h))


def logreg_one_numpy(a):
    w, x, b, y = a["w"], a["x"], a["b"], a["y"]
    h = 1 / (np.exp(-(np.dot(w, x) + b)) + 1)
    loss = -(y * np.log(h) + (1 - y) * np.log(1 - h))
    d = h - y
    return [loss, d * x, d]


def build_w1(settings):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (100, 3))
    y = (x.sum(axis=1) >= 1.5).astype(np.float64)
    # like the seed's training loop: each step feeds the next sample, and y[i] is a
    # numpy float64 scalar
    data = [{"x": x[i], "y": y[i]} for i in range(len(x))]
    params = {"w": rng.uniform(-1, 1, 3), "b": rng.uniform(-1, 1, 1)}
    return Case(logreg_one_loss, params, data, logreg_one_numpy)


def logreg_batch_loss(xp, W, b, X, y):
    p = xp.sigmoid(X @ W + b)
    return -xp.mean(y * xp.log(p) + (1 - y) * xp.log(1 - p))


def logreg_batch_numpy(a):
    W, b, X, y = a["W"], a["b"], a["X"], a["y"]
    p = 1 / (1 + np.exp(-(X @ W + b)))
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    d = (p - y) / len(X)
    return [loss, X.T @ d, d.sum(axis=0)]


def build_w2(settings):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 100))
    w_true = rng.standard_normal((100, 1))
    y = (X @ w_true > 0).astype(np.float64)
    params = {"W": rng.standard_normal((100, 1)) * 0.1, "b": np.zeros(1)}
    return Case(logreg_batch_loss, params, [{"X": X, "y": y}], logreg_batch_numpy)


def mlp_loss(xp, W1, b1, W2, b2, X, Y):
    h = xp.relu(X @ W1 + b1)
    return xp.softmax_cross_entropy(h @ W2 + b2, Y)


def mlp_numpy(a):
    W1, b1, W2, b2, X, Y = a["W1"], a["b1"], a["W2"], a["b2"], a["X"], a["Y"]
    pre = X @ W1 + b1
    h = np.maximum(pre, 0)
    z = h @ W2 + b2
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    n = len(X)
    loss = -np.sum(Y * (z - np.log(s))) / n
    dz = (e / s - Y) / n
    dh = dz @ W2.T
    dh *= pre > 0
    return [loss, X.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]


def digits_batch(n, rng):
    """n digits images (64 pixels scaled to [0, 1]) and one-hot labels: scikit-learn's
    digits when installed, else random data of the same shape.  The digits are read from
    the file scikit-learn ships, as importing scikit-learn takes seconds."""
    spec = importlib.util.find_spec("sklearn")
    path = spec and os.path.join(spec.submodule_search_locations[0],
                                 "datasets", "data", "digits.csv.gz")
    if path and os.path.exists(path):
        data = np.loadtxt(path, delimiter=",", max_rows=n)
        X, labels = data[:, :-1] / 16, data[:, -1].astype(int)
    elif spec:
        from sklearn.datasets import load_digits
        digits = load_digits()
        X, labels = digits.data[:n] / 16, digits.target[:n]
    else:
        X, labels = rng.uniform(0, 1, (n, 64)), rng.integers(0, 10, n)
    return X, np.eye(10)[labels]


def build_w3(settings):
    rng = np.random.default_rng(3)
    X, Y = digits_batch(128, rng)
    params = {"W1": rng.standard_normal((64, 128)) * math.sqrt(2 / 64),
              "b1": rng.uniform(-0.1, 0.1, 128),
              "W2": rng.standard_normal((128, 10)) * math.sqrt(1 / 128),
              "b2": np.zeros(10)}
    return Case(mlp_loss, params, [{"X": X, "Y": Y}], mlp_numpy)


# The chains cycle through v*a, v+0.5, sigmoid(v), exp(v).  For x in [-1, 1] and a in
# [0.5, 1] every value stays within [-1, e + 0.5]; the gradient w.r.t. x shrinks along the
# chain (hence the relative tolerance).

def chain_loss(n_ops):
    def loss(xp, x, a):
        v = x
        for i in range(n_ops):
            op = i % 4
            if op == 0:
                v = v * a
            elif op == 1:
                v = v + 0.5
            elif op == 2:
                v = xp.sigmoid(v)
            else:
                v = xp.exp(v)
        return xp.sum(v)
    return loss


def chain_numpy(n_ops):
    def step(arrays):
        x, a = arrays["x"], arrays["a"]
        v, saved = x, []  # saved: each product's left input, each sigmoid's and exp's output
        for i in range(n_ops):
            op = i % 4
            if op == 0:
                saved.append(v)
                v = v * a
            elif op == 1:
                v += 0.5  # v is the product just made and saved nowhere: reuse it
            elif op == 2:
                np.negative(v, out=v)  # in place, as for + 0.5
                np.exp(v, out=v)
                v += 1
                np.reciprocal(v, out=v)
                saved.append(v)
            else:
                v = np.exp(v)
                saved.append(v)
        loss = v.sum()
        g, ga = np.ones_like(v), np.zeros_like(a)
        for i in reversed(range(n_ops)):
            op = i % 4
            if op == 0:
                ga += g * saved.pop()
                g *= a
            elif op == 2:
                s = saved.pop()
                g *= s
                g *= 1 - s
            elif op == 3:
                g *= saved.pop()
        return [loss, g, ga]
    return step


def chain_forward_numpy(n_ops):
    def step(arrays):
        x, a = arrays["x"], arrays["a"]
        v = x * a  # the first op; then everything in place in this one buffer
        for i in range(1, n_ops):
            op = i % 4
            if op == 0:
                v *= a
            elif op == 1:
                v += 0.5
            elif op == 2:
                np.negative(v, out=v)
                np.exp(v, out=v)
                v += 1
                np.reciprocal(v, out=v)
            else:
                np.exp(v, out=v)
        return [v.sum()]
    return step


def chain_case(n, n_ops, seed, grad=True):
    rng = np.random.default_rng(seed)
    params = {"x": rng.uniform(-1, 1, n), "a": rng.uniform(0.5, 1, n)}
    numpy_step = chain_numpy(n_ops) if grad else chain_forward_numpy(n_ops)
    return Case(chain_loss(n_ops), params, [{}], numpy_step, grad)


WORKLOADS = [
    Workload("W1", "seed logistic regression, 1 sample x 3 features, the seed's graph "
             "(reduce_sum, exp, ln); steps cycle through 100 samples",
             build_w1),
    Workload("W2", "logistic regression, batch 1000 x 100: matmul, bias broadcast, "
             "sigmoid_op, mean cross-entropy from ln_op",
             build_w2),
    Workload("W3", "MLP 64-128-10, relu, softmax_cross_entropy_op, batch 128 of the digits "
             "(random pixels without scikit-learn)",
             build_w3),
    Workload("W4", "chain of 200 elementwise ops (x*a, +0.5, sigmoid, exp) on length 16, "
             "grads w.r.t. x and a",
             lambda s: chain_case(16, 200, seed=4)),
    Workload("W5", "chain of 20 elementwise ops on length {n:,}, grads w.r.t. x and a",
             lambda s: chain_case(s.w5_size, 20, seed=5)),
    Workload("W5f", "W5 forward only (the loss, no gradients)",
             lambda s: chain_case(s.w5_size, 20, seed=5, grad=False)),
]


# --- executors ---------------------------------------------------------------------------

@dataclass
class Runner:
    """`run(inp)` computes one step for `inp`, one of `inputs`; `to_numpy` converts an
    output for the agreement check."""
    run: object
    inputs: list
    to_numpy: object = np.asarray


FASTAD_XP = SimpleNamespace(
    exp=ad.exp_op, log=ad.ln_op, sigmoid=ad.sigmoid_op, relu=ad.relu_op,
    sum=ad.reduce_sum_op, mean=ad.reduce_mean_op,
    softmax_cross_entropy=ad.softmax_cross_entropy_op)


def fastad_runners(case):
    """Runners for the native and the python executor, both of one graph."""
    arrays = [{**case.params, **d} for d in case.data]
    nodes = {name: ad.Variable(name) for name in arrays[0]}
    loss = case.loss(FASTAD_XP, **nodes)
    grads = ad.gradients(loss, [nodes[n] for n in case.params]) if case.grad else []
    feeds = [{nodes[n]: v for n, v in a.items()} for a in arrays]
    return {backend: Runner(ad.Executor([loss, *grads], backend=backend).run, feeds)
            for backend in ("native", "python")}


def numpy_runner(case):
    return Runner(case.numpy_step, [{**case.params, **d} for d in case.data])


def n_rows(z):
    return math.prod(z.shape[:-1])


def torch_runner(case, threads):
    import torch

    torch.set_num_threads(threads)
    log_softmax = torch.nn.functional.log_softmax
    xp = SimpleNamespace(
        exp=torch.exp, log=torch.log, sigmoid=torch.sigmoid, relu=torch.relu,
        sum=torch.sum, mean=torch.mean,
        softmax_cross_entropy=lambda z, t: -(t * log_softmax(z, dim=-1)).sum() / n_rows(z))

    def tensors(arrays):
        return {n: torch.tensor(v, requires_grad=case.grad and n in case.params)
                for n, v in arrays.items()}

    def run(t):
        if not case.grad:
            with torch.no_grad():
                return [case.loss(xp, **t)]
        loss = case.loss(xp, **t)
        return [loss, *torch.autograd.grad(loss.sum(), [t[n] for n in case.params])]

    return Runner(run, [tensors({**case.params, **d}) for d in case.data],
                  lambda out: out.detach().numpy())


def jax_runner(case, threads):
    import jax

    jax.config.update("jax_enable_x64", True)  # before any array is made: float64
    import jax.numpy as jnp

    xp = SimpleNamespace(
        exp=jnp.exp, log=jnp.log, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu,
        sum=jnp.sum, mean=jnp.mean,
        softmax_cross_entropy=lambda z, t: -jnp.sum(t * jax.nn.log_softmax(z)) / n_rows(z))
    names = list(case.params)

    def loss(params, data):
        return case.loss(xp, **dict(zip(names, params)), **data)

    def summed(params, data):  # grad needs a scalar; W1's loss has shape (1,)
        value = loss(params, data)
        return jnp.sum(value), value

    def step(params, data):
        if not case.grad:
            return [loss(params, data)]
        (_, value), grads = jax.value_and_grad(summed, has_aux=True)(params, data)
        return [value, *grads]

    step = jax.jit(step)
    params = tuple(jnp.asarray(v) for v in case.params.values())
    inputs = [(params, {n: jnp.asarray(v) for n, v in d.items()}) for d in case.data]
    return Runner(lambda inp: jax.block_until_ready(step(*inp)), inputs)


def make_runners(case, peers, threads):
    runners = {**fastad_runners(case), "numpy": numpy_runner(case)}
    for peer in peers:
        runners[peer] = (torch_runner if peer == "torch" else jax_runner)(case, threads)
    return runners


def mismatches(outs, ref, names, strict_shapes):
    """What differs between `outs` and the reference outputs `ref`, one line each."""
    found = []
    for name, out, want in zip(names, outs, ref):
        if out.shape != want.shape and (strict_shapes or out.size != want.size):
            found.append(f"{name}: shape {out.shape}, expected {want.shape}")
            continue
        out = out.reshape(want.shape)
        scale = max(np.abs(want).max(initial=0), np.abs(out).max(initial=0))
        if not np.allclose(out, want, rtol=RTOL, atol=ATOL * scale):
            found.append(f"{name}: max |difference| {np.max(np.abs(out - want)):.3g} "
                         f"(values up to {scale:.3g})")
    if len(outs) != len(ref):
        found.append(f"{len(outs)} outputs, expected {len(ref)}")
    return found


def check(runners, case):
    """The executors that disagree with the reference, each with what differs."""
    results = {}
    for name, r in runners.items():
        with np.errstate(all="ignore"):
            results[name] = [np.asarray(r.to_numpy(o)) for o in r.run(r.inputs[0])]
    ref = results["python"]
    bad = {}
    for name, outs in results.items():
        found = mismatches(outs, ref, case.outputs(), strict_shapes=name not in PEERS)
        if found:
            bad[name] = found
    return bad


# --- timing ------------------------------------------------------------------------------

def step_function(runner):
    """A no-argument function computing one step, on the next of the runner's inputs."""
    run, inputs = runner.run, runner.inputs
    if len(inputs) == 1:
        only = inputs[0]
        return lambda: run(only)
    next_input = itertools.cycle(inputs).__next__
    return lambda: run(next_input())


def time_per_step(fn, budget_s):
    """Warms `fn` up (its first call builds plans and fills caches) and returns the mean
    time of the calls made within `budget_s` after the first."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return elapsed / calls


def measure(steps, settings, on_repeat):
    """{executor: (seconds per step of each timed loop, steps per loop)}.

    Each timed loop runs enough steps to last about `settings.target_s`; the executors
    take turns, in an order that rotates every repeat.  The garbage collector is off
    while timing, as in `timeit`."""
    counts = {name: max(1, round(settings.target_s / time_per_step(fn, settings.warmup_s)))
              for name, fn in steps.items()}
    samples = {name: [] for name in steps}
    names = list(steps)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with np.errstate(all="ignore"):
            for r in range(settings.repeats):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    fn, count = steps[name], counts[name]
                    start = time.perf_counter()
                    for _ in range(count):
                        fn()
                    samples[name].append((time.perf_counter() - start) / count)
                on_repeat()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: (samples[name], counts[name]) for name in names}


def summary(samples, count):
    q1, median, q3 = np.percentile(np.array(samples) * 1e6, [25, 50, 75])
    return {"median_us": median, "q1_us": q1, "q3_us": q3,
            "min_us": min(samples) * 1e6, "max_us": max(samples) * 1e6,
            "repeats": len(samples), "steps_per_repeat": count}


# --- machine and threads -----------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pin_threads(n):
    """Sets the BLAS threads of fastad (its own OpenBLAS) and, through threadpoolctl when
    installed, of numpy; returns notes on what is pinned and the BLAS libraries seen."""
    vm.set_blas_threads(n)
    try:
        import threadpoolctl
    except ImportError:
        env = os.environ.get("OPENBLAS_NUM_THREADS")
        return ({"fastad_blas": n, "numpy_blas": f"OPENBLAS_NUM_THREADS={env}" if env else None},
                [], "numpy's BLAS threads are not pinned: pip install threadpoolctl, or set "
                    "OPENBLAS_NUM_THREADS before Python starts")
    threadpoolctl.threadpool_limits(limits=n, user_api="blas")  # for the whole process
    libs = [{"library": os.path.basename(info["filepath"]), "api": info["internal_api"],
             "num_threads": info["num_threads"]}
            for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    return {"fastad_blas": n, "numpy_blas": n}, libs, None


def machine_info():
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "fastad": ad.__version__}


def available_peers(requested):
    """(peers to run, notes on the ones skipped)."""
    peers, skipped = [], {}
    for peer in requested:
        if importlib.util.find_spec(peer) is None:
            skipped[peer] = f"not installed (pip install {peer})"
        else:
            peers.append(peer)
    return peers, skipped


# --- output ------------------------------------------------------------------------------

def progress(total):
    """A tqdm bar on stderr when tqdm is installed; otherwise a line per workload."""
    try:
        from tqdm import tqdm
    except ImportError:
        return SimpleNamespace(
            update=lambda n=1: None, close=lambda: None,
            set_description=lambda s: print(f"timing {s} (pip install fastad[bench] for a "
                                            "progress bar)", file=sys.stderr, flush=True))
    return tqdm(total=total, unit="repeat", file=sys.stderr, leave=False, disable=None)


def fmt_us(us):
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}" if us >= 10 else f"{us:.2f}"


def table(results, executors):
    head = ["workload"] + [f"{e} µs (IQR)" for e in executors] + \
        ["python/native", "native/numpy", "agree"]
    rows = [head]
    for name, res in results.items():
        cells = [name]
        for e in executors:
            s = res["executors"][e]
            cells.append(f"{fmt_us(s['median_us'])} ({fmt_us(s['q1_us'])}–{fmt_us(s['q3_us'])})")
        cells += [f"{res['python_over_native']:.1f}x", f"{res['native_over_numpy']:.2f}",
                  "yes" if res["agree"] else "NO"]
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot(results, executors, path, subtitle):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    width = 0.8 / len(executors)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 4.5))
    for k, e in enumerate(executors):
        stats = [results[n]["executors"][e] for n in names]
        med = np.array([s["median_us"] for s in stats])
        err = [med - [s["q1_us"] for s in stats], [s["q3_us"] for s in stats] - med]
        ax.bar(np.arange(len(names)) + (k - (len(executors) - 1) / 2) * width, med, width,
               yerr=err, label=e, capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("µs per step (median, IQR bars; log scale)")
    ax.set_title(f"fastad.bench — {subtitle}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main --------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastad.bench", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads:\n" + "\n".join(f"  {w.name:4} {w.title.format(n=FULL.w5_size)}"
                                          for w in WORKLOADS))
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a few seconds: fewer repeats and steps, W5 on "
                        f"{QUICK.w5_size:,} elements; not for reporting")
    p.add_argument("--workload", action="append", metavar="NAME",
                   help="run only these workloads (repeatable, or a comma list)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="BLAS threads for fastad and numpy (default 1)")
    p.add_argument("--peers", default="", metavar="LIST",
                   help=f"extra columns from installed frameworks: {','.join(PEERS)}")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    args = p.parse_args(argv)

    known = {w.name.lower(): w for w in WORKLOADS}
    wanted = [n.strip().lower() for item in args.workload or [] for n in item.split(",")]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        p.error(f"unknown workload {', '.join(unknown)}; choose from "
                f"{', '.join(w.name for w in WORKLOADS)}")
    args.workloads = [w for w in WORKLOADS if not wanted or w.name.lower() in wanted]
    args.peers = [n.strip().lower() for n in args.peers.split(",") if n.strip()]
    bad = [n for n in args.peers if n not in PEERS]
    if bad:
        p.error(f"unknown peer {', '.join(bad)}; choose from {', '.join(PEERS)}")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[bench]")
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    pinned, blas_libs, thread_note = pin_threads(args.threads)
    peers, skipped = available_peers(args.peers)
    executors = list(EXECUTORS) + peers

    machine = machine_info()
    print(f"fastad.bench: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
          f"numpy {machine['numpy']}, float64")
    print(f"BLAS threads: {args.threads} for fastad"
          + (" and numpy" if pinned["numpy_blas"] == args.threads else "")
          + "; fastad's elementwise kernels run on one thread")
    if thread_note:
        print(f"note: {thread_note}")
    if "jax" in peers:
        print("note: jax's threads are not pinned (XLA chooses them)")
    for peer, why in skipped.items():
        print(f"note: peer {peer} skipped: {why}")
    if args.quick:
        print(f"QUICK mode: {settings.repeats} repeats of ~{settings.target_s * 1e3:g} ms, "
              f"W5 on {settings.w5_size:,} elements instead of {FULL.w5_size:,}; "
              "a smoke test, not numbers to report")
    print()

    results = {}
    bar = progress(len(args.workloads) * settings.repeats)
    try:
        for w in args.workloads:
            bar.set_description(w.name)
            case = w.build(settings)
            runners = make_runners(case, peers, args.threads)
            bad = check(runners, case)
            timings = measure({n: step_function(r) for n, r in runners.items()}, settings,
                              bar.update)
            stats = {n: summary(*timings[n]) for n in executors}
            results[w.name] = {
                "title": w.title.format(n=settings.w5_size),
                "parameters": list(case.params) if case.grad else [],
                "agree": not bad, "mismatches": bad, "executors": stats,
                "python_over_native": stats["python"]["median_us"] / stats["native"]["median_us"],
                "native_over_numpy": stats["native"]["median_us"] / stats["numpy"]["median_us"],
            }
    finally:
        bar.close()

    print(table(results, executors))
    print("python/native: the native executor's speedup over the pure-Python one; "
          "native/numpy: its time over hand-written numpy's (below 1: faster)\n")
    for name, res in results.items():
        print(f"{name:4} {res['title']}")

    failed = {name: res["mismatches"] for name, res in results.items() if not res["agree"]}
    for name, bad in failed.items():
        for executor, found in bad.items():
            for line in found:
                print(f"FAILED {name}: {executor} disagrees with the python executor: {line}",
                      file=sys.stderr)

    if args.json:
        report = {"quick": args.quick, "settings": vars(settings), "machine": machine,
                  "threads": {**pinned, "blas_libraries": blas_libs},
                  "peers_skipped": skipped, "workloads": results}
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}")
    if args.plot:
        subtitle = (f"{machine['cpu']}, BLAS threads {args.threads}"
                    + (", QUICK mode" if args.quick else ""))
        plot(results, executors, args.plot, subtitle)
        print(f"wrote {args.plot}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
