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
import argparse
import importlib.util
import math
import time

import numpy as np

import fastad as ad
from mlp_digits import load_data, rate
from training import LOOPS, epoch_bar, plot_curves, report


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
    """Trains on the digits; returns the final test accuracy, the seconds taken (after
    loading the data), the mean training loss and the test accuracy after each epoch,
    the History (the loss of every step) and the final parameters."""
    x_train, y_train, x_test, y_test = load_data(seed)
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    start = time.perf_counter()
    onehot = np.eye(10)[y_train]

    X, Y = ad.Variable("X"), ad.Variable("Y")
    logits, params = network(X)
    loss = ad.softmax_cross_entropy_op(logits, Y)
    predict = ad.Executor([logits], backend=backend)
    values = initial_values(params, np.random.default_rng(seed))
    steps = math.ceil(len(x_train) / batch_size)  # a step per batch; the last may be smaller

    def test_accuracy(values):
        scores, = predict.run({X: x_test, **values})
        return float(np.mean(scores.argmax(axis=1) == y_test))

    accuracies = []
    with epoch_bar(epochs, f"CNN on digits ({loop}, {backend})", progress) as bar:
        if loop == "trainer":
            # the schedule's t counts steps from 1
            sgd = ad.optim.SGD(lambda t: rate(lr, (t - 1) // steps, epochs), momentum=MOMENTUM)
            trainer = ad.Trainer(loss, values, sgd, backend=backend)

            def after_epoch(epoch, history):
                accuracies.append(test_accuracy(dict(trainer.params.items())))
                report(bar, loss=f"{history.epoch_means[-1]:.4f}",
                       test_acc=f"{accuracies[-1]:.3f}")

            history = trainer.fit({X: x_train, Y: onehot}, epochs, batch_size=batch_size,
                                  shuffle=True, seed=seed, callbacks=[after_epoch],
                                  progress=False)
            values = dict(trainer.params.items())
        else:
            step = ad.Executor([loss, *ad.gradients(loss, params)], backend=backend)
            velocity = {p: np.zeros_like(values[p]) for p in params}
            orders = np.random.default_rng(seed)  # the permutations fit(shuffle=True, seed) draws
            losses = []
            for epoch in range(epochs):
                order = orders.permutation(len(x_train))
                for lo in range(0, len(order), batch_size):
                    batch = order[lo:lo + batch_size]
                    l_val, *grads = step.run({**values, X: x_train[batch], Y: onehot[batch]})
                    for p, g in zip(params, grads):  # fastad.optim.SGD's rule, in numpy
                        velocity[p] *= MOMENTUM
                        velocity[p] += g
                        values[p] -= rate(lr, epoch, epochs) * velocity[p]
                    losses.append(float(l_val))
                accuracies.append(test_accuracy(values))
                report(bar, loss=f"{np.mean(losses[-steps:]):.4f}",
                       test_acc=f"{accuracies[-1]:.3f}")
            losses = np.array(losses)
            history = ad.History(losses, losses.reshape(epochs, steps).mean(axis=1),
                                 [steps] * epochs)
    return {"accuracy": accuracies[-1], "seconds": time.perf_counter() - start,
            "losses": list(history.epoch_means), "accuracies": accuracies,
            "history": history, "params": {p.name: values[p] for p in params}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loop", choices=LOOPS, default="trainer",
                   help="Trainer.fit, or a loop of Executor.run and numpy updates")
    p.add_argument("--backend", choices=ad.executor.BACKENDS, default="native")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PATH", help="PNG of the loss and accuracy curves")
    args = p.parse_args(argv)
    if importlib.util.find_spec("sklearn") is None:
        p.error("this example needs scikit-learn: pip install fastad[examples]")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[examples]")

    result = train(QUICK_EPOCHS if args.quick else args.epochs, args.batch_size, args.lr,
                   args.backend, args.loop, args.seed, progress=True)
    print(f"test accuracy {result['accuracy']:.3f}, final mean training loss "
          f"{result['losses'][-1]:.4f}, {len(result['losses'])} epochs in "
          f"{result['seconds']:.2f} s ({args.loop} loop, {args.backend} backend)")
    if args.plot:
        plot_curves(result, args.plot, "test accuracy")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
