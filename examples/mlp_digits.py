"""An MLP (64-128-10, relu, softmax cross-entropy) trained by minibatch SGD with fastad
on scikit-learn's handwritten digits (8x8 images, 1797 samples, 25 % held out).

By default `Trainer.fit` trains it (shuffled batches of 32, the learning rate decaying
linearly per epoch as a schedule); `--loop executor` runs the same training as a
Python loop of `Executor.run` and numpy updates (the course way), and ends at the same
parameters, bit for bit.

    python examples/mlp_digits.py [--loop trainer|executor] [--backend native|python]
                                  [--epochs N] [--quick] [--plot PATH]

Needs scikit-learn; tqdm (progress bar) and matplotlib (--plot) are optional:
`pip install fastad[examples]`.
"""
import argparse
import importlib.util

import numpy as np

import fastad as ad
from training import LOOPS, load_digits, plot_curves, train_classifier


QUICK_EPOCHS = 12


def train(epochs=30, batch_size=32, lr=0.2, hidden=128, backend="native", loop="trainer",
          seed=0, progress=False):
    """Trains on the digits (training.train_classifier says what it returns)."""
    data = load_digits(seed)
    X = ad.Variable("X")
    W1, b1, W2, b2 = (ad.Variable(n) for n in ("W1", "b1", "W2", "b2"))
    logits = ad.matmul_op(ad.relu_op(ad.matmul_op(X, W1) + b1), W2) + b2
    rng = np.random.default_rng(seed)
    values = {W1: rng.standard_normal((64, hidden)) * np.sqrt(2 / 64),  # He initialisation
              b1: np.zeros(hidden),
              W2: rng.standard_normal((hidden, 10)) * np.sqrt(1 / hidden),
              b2: np.zeros(10)}
    return train_classifier("MLP on digits", X, logits, [W1, b1, W2, b2], values, data,
                            epochs, batch_size, lr, backend=backend, loop=loop, seed=seed,
                            progress=progress)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loop", choices=LOOPS, default="trainer",
                   help="Trainer.fit, or a loop of Executor.run and numpy updates")
    p.add_argument("--backend", choices=ad.executor.BACKENDS, default="native")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PATH", help="PNG of the loss and accuracy curves")
    args = p.parse_args(argv)
    if importlib.util.find_spec("sklearn") is None:
        p.error("this example needs scikit-learn: pip install fastad[examples]")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[examples]")

    result = train(QUICK_EPOCHS if args.quick else args.epochs, args.batch_size, args.lr,
                   args.hidden, args.backend, args.loop, args.seed, progress=True)
    print(f"test accuracy {result['accuracy']:.3f}, final mean training loss "
          f"{result['losses'][-1]:.4f}, {len(result['losses'])} epochs in "
          f"{result['seconds']:.2f} s ({args.loop} loop, {args.backend} backend)")
    if args.plot:
        plot_curves(result, args.plot, "test accuracy")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
