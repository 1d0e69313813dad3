"""The seed's program: logistic regression trained by per-sample SGD with fastad.

The data are the seed's `generate_data`: 2 features uniform in [0, 1), label 1 when
their sum is at least 1; the features are min-max normalised, and w and b start
uniform in [0, 1).  The graph is the seed's, node for node.

    python examples/logistic_regression.py [--backend native|python] [--epochs N]
                                           [--quick] [--plot PATH]

Optional: tqdm (progress bar), matplotlib (--plot): `pip install fastad[examples]`.
"""
import argparse
import importlib.util
import time

import numpy as np

import fastad as ad
from training import epoch_bar, plot_curves, report


QUICK_EPOCHS = 20


def generate_data(n, rng):
    x = rng.random((n, 2))
    y = (x.sum(axis=1) >= 1).astype(np.float64)
    return x, y


def normalize(x):
    """Each column scaled to [0, 1] (min-max)."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    return (x - lo) / (hi - lo)


def accuracy(w, b, x, y):
    h = 1 / (np.exp(-(x @ w + b)) + 1)
    return float(np.mean((h >= 0.5) == (y == 1)))


def train(n=100, lr=0.1, epochs=100, backend="native", seed=0, progress=False):
    """Trains on n samples; returns the final training accuracy, the seconds taken and
    the mean loss and the accuracy after each epoch."""
    start = time.perf_counter()
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(w * x) + b
    h = 1 / (ad.exp_op(-o) + 1)
    loss = -(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))
    grad_w, grad_b = ad.gradients(loss, [w, b])
    executor = ad.Executor([loss, grad_w, grad_b], backend=backend)

    rng = np.random.default_rng(seed)
    x_in, y_in = generate_data(n, rng)
    x_in = normalize(x_in)
    w_in, b_in = rng.random(2), rng.random(1)

    losses, accuracies = [], []
    epoch_range = epoch_bar(epochs, f"logistic regression ({backend})", progress)
    for _ in epoch_range:
        total = 0.0
        for i in range(n):
            # y_in[i] is a numpy float64 scalar, as in the seed
            l_val, gw, gb = executor.run({w: w_in, x: x_in[i], b: b_in, y: y_in[i]})
            w_in -= lr * gw
            b_in -= lr * gb
            total += l_val[0]
        losses.append(total / n)
        accuracies.append(accuracy(w_in, b_in, x_in, y_in))
        report(epoch_range, loss=f"{losses[-1]:.4f}", acc=f"{accuracies[-1]:.3f}")
    return {"accuracy": accuracies[-1], "seconds": time.perf_counter() - start,
            "losses": losses, "accuracies": accuracies, "w": w_in, "b": b_in}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=ad.executor.BACKENDS, default="native")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    p.add_argument("--n", type=int, default=100, help="number of samples")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PATH", help="PNG of the loss and accuracy curves")
    args = p.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[examples]")

    result = train(args.n, args.lr, QUICK_EPOCHS if args.quick else args.epochs,
                   args.backend, args.seed, progress=True)
    print(f"training accuracy {result['accuracy']:.3f}, final mean loss "
          f"{result['losses'][-1]:.4f}, {len(result['losses'])} epochs in "
          f"{result['seconds']:.2f} s ({args.backend} backend)")
    print(f"w = {result['w']}, b = {result['b']}")
    if args.plot:
        plot_curves(result, args.plot, "training accuracy")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
