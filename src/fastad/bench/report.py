"""Output: the progress bar, the table of results, and the bar chart."""
import sys
from types import SimpleNamespace

import numpy as np


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


# the ratios of a table: (column, key in a result, format)
STEP_RATIOS = [("python/native", "python_over_native", "{:.1f}x"),
               ("native/numpy", "native_over_numpy", "{:.2f}")]
TRAINING_RATIOS = [("executor/native", "executor_over_native", "{:.1f}x"), *STEP_RATIOS]


def table(results, executors, ratios=STEP_RATIOS):
    head = ["workload"] + [f"{e} µs (IQR)" for e in executors] + \
        [column for column, _, _ in ratios] + ["agree"]
    rows = [head]
    for name, res in results.items():
        cells = [name]
        for e in executors:
            s = res["executors"][e]
            cells.append(f"{fmt_us(s['median_us'])} ({fmt_us(s['q1_us'])}–{fmt_us(s['q3_us'])})")
        cells += [form.format(res[key]) for _, key, form in ratios]
        cells.append("yes" if res["agree"] else "NO")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot(results, executors, path, subtitle):
    """A bar per executor and workload; a workload without an executor has a gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    width = 0.8 / len(executors)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 4.5))
    missing = dict.fromkeys(["median_us", "q1_us", "q3_us"], np.nan)
    for k, e in enumerate(executors):
        stats = [results[n]["executors"].get(e, missing) for n in names]
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
