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
import numpy as np

import fastad as ad
from training import (example_parser, load_digits, parse_example_args, print_result,
                      train_classifier)


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
    p = example_parser(__doc__, QUICK_EPOCHS, epochs=30, lr=0.2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    args = parse_example_args(p, argv, needs_sklearn=True)
    result = train(args.epochs, args.batch_size, args.lr, args.hidden, args.backend,
                   args.loop, args.seed, progress=True)
    print_result(result, args, "test accuracy", "final mean training loss")


if __name__ == "__main__":
    main()
