"""Full-batch logistic regression steps on a 2-worker Dask LocalCluster against one process.

Two problems: 200,000 × 100 (where splitting the work can pay) and 100 × 2 (where a
step is all overhead: the cluster's time per step minus one process's is what Dask
adds to a step).  Each repeat runs one fit of STEPS full-batch SGD steps per mode, the
modes taking turns; a step's time is the gap between two epoch callbacks (the fit's
setup, which scatters the data, is not timed).  Prints medians with the interquartile
range and the speedup of the cluster over one process, both from the same run.
Needs `pip install "fastad[distributed]"`.

    python benchmarks/dask_cluster.py [--repeats R] [--steps S] [--workers W]
"""
import argparse
import os
import time
import warnings

import numpy as np

import fastad as ad
from fastad.bench.machine import cpu_model

PROBLEMS = [(200_000, 100), (100, 2)]


def problem(rows, features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    y = (X @ rng.standard_normal(features) + 0.5 * rng.standard_normal(rows) > 0).astype(float)
    w, b, x, t = ad.Variable("w"), ad.Variable("b"), ad.Variable("x"), ad.Variable("y")
    p = ad.sigmoid_op(ad.matmul_op(x, w) + b)
    loss = ad.reduce_mean_op(-(t * ad.ln_op(p) + (1 - t) * ad.ln_op(1 - p)))
    return loss, {w: np.zeros(features), b: np.zeros(1)}, {x: X, t: y}


def step_times(loss, params, data, steps, client):
    """Seconds of each of `steps` full-batch steps (a first step, untimed, warms up)."""
    trainer = ad.Trainer(loss, params, ad.optim.SGD(0.5))
    rows = len(next(iter(data.values())))
    ends = []
    trainer.fit(data, epochs=steps + 1, batch_size=rows, client=client,
                callbacks=[lambda epoch, history: ends.append(time.perf_counter())])
    return np.diff(ends)


def summary(times):
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return med, q3 - q1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(cluster)
    print(f"{cpu_model()}, {os.cpu_count()} logical CPUs, load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"LocalCluster of {args.workers} processes x 1 thread")
    print(f"{'problem':>14} {'mode':>10} {'ms/step':>10} {'IQR':>8} {'speedup':>8}")
    try:
        for rows, features in PROBLEMS:
            loss, params, data = problem(rows, features)
            times = {"1 process": [], "cluster": []}
            for r in range(args.repeats):
                modes = list(times) if r % 2 == 0 else list(times)[::-1]
                for mode in modes:
                    on = client if mode == "cluster" else None
                    times[mode].extend(step_times(loss, params, data, args.steps, on))
            med = {mode: summary(t) for mode, t in times.items()}
            for mode, (m, iqr) in med.items():
                speedup = med["1 process"][0] / m
                print(f"{rows:>7,} x {features:<4} {mode:>10} {m * 1e3:10.3f} {iqr * 1e3:8.3f} "
                      f"{speedup:7.2f}x")
            print(f"{'':>14} {'overhead':>10} {(med['cluster'][0] - med['1 process'][0]) * 1e3:10.3f}"
                  "   (cluster minus one process, ms per step)")
    finally:
        client.close()
        cluster.close()
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
