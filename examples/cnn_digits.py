"""A small convolutional net trained with fastad on scikit-learn's handwritten digits
(8x8 images, 1797 samples, 25 % held out, as in mlp_digits.py):

    conv(8, 3x3, pad 1) -> relu -> max-pool 2 -> conv(16, 3x3, pad 1) -> relu
    -> max-pool 2 -> dense 10 -> softmax cross-entropy

By default `Trainer.fit` trains it (SGD with momentum 0.9, shuffled batches of 16, the
learning rate decaying linearly per epoch); `--loop executor` runs the same training as
a Python loop of `Executor.run` and numpy updates (the course way), and ends at the same
parameters, bit for bit.

    python examples/cnn_digits.py [--loop trainer|executor] [--backend native|python]
                                  [--epochs N] [--quick] [--plot PATH]

Needs scikit-learn; tqdm (progress bar) and matplotlib (--plot) are optional:
`pip install fastad[examples]`.
"""
import numpy as np

import fastad as ad
from training import (example_parser, load_digits, parse_example_args, print_result,
                      train_classifier)


QUICK_EPOCHS = 4
MOMENTUM = 0.9


def network(X):
    """The logits node of the net on images X (N, 1, 8, 8), and its parameters."""
    K1, c1, K2, c2, W, b = (ad.Variable(n) for n in ("K1", "c1", "K2", "c2", "W", "b"))
    h = ad.max_pool2d_op(ad.relu_op(ad.conv2d_op(X, K1, stride=1, padding=1) + c1), 2)
    h = ad.max_pool2d_op(ad.relu_op(ad.conv2d_op(h, K2, stride=1, padding=1) + c2), 2)
    logits = ad.matmul_op(ad.reshape_op(h, (-1, 16 * 2 * 2)), W) + b  # (N, 16, 2, 2) flat
    return logits, [K1, c1, K2, c2, W, b]


def initial_values(params, rng):
    """He initialisation for the convolutions (fan-in C*3*3), zero biases."""
    K1, c1, K2, c2, W, b = params
    return {K1: rng.standard_normal((8, 1, 3, 3)) * np.sqrt(2 / 9),
            c1: np.zeros((8, 1, 1)),  # one bias per channel, broadcast over the image
            K2: rng.standard_normal((16, 8, 3, 3)) * np.sqrt(2 / 72),
            c2: np.zeros((16, 1, 1)),
            W: rng.standard_normal((64, 10)) * np.sqrt(1 / 64),
            b: np.zeros(10)}


def train(epochs=30, batch_size=16, lr=0.05, backend="native", loop="trainer", seed=0,
          progress=False):
    """Trains on the digits (training.train_classifier says what it returns)."""
    x_train, y_train, x_test, y_test = load_digits(seed)
    data = x_train.reshape(-1, 1, 8, 8), y_train, x_test.reshape(-1, 1, 8, 8), y_test
    X = ad.Variable("X")
    logits, params = network(X)
    values = initial_values(params, np.random.default_rng(seed))
    return train_classifier("CNN on digits", X, logits, params, values, data, epochs,
                            batch_size, lr, momentum=MOMENTUM, backend=backend, loop=loop,
                            seed=seed, progress=progress)


def main(argv=None):
    p = example_parser(__doc__, QUICK_EPOCHS, epochs=30, lr=0.05)
    p.add_argument("--batch-size", type=int, default=16)
    args = parse_example_args(p, argv, needs_sklearn=True)
    result = train(args.epochs, args.batch_size, args.lr, args.backend, args.loop, args.seed,
                   progress=True)
    print_result(result, args, "test accuracy", "final mean training loss")


if __name__ == "__main__":
    main()
