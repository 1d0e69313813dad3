"""What the examples share: their command line, the digits, the two training loops
(Trainer.fit, or a Python loop of Executor.run and numpy updates) of a classifier on
them, the epoch progress bar (tqdm, optional) and the training curves (matplotlib,
optional)."""
import argparse
import contextlib
import importlib.util
import io
import math
import time

import numpy as np

import fastad as ad

LOOPS = ("trainer", "executor")  # Trainer.fit, or Executor.run and numpy updates


def example_parser(doc, quick_epochs, epochs, lr,
                   loop_help="Trainer.fit, or a loop of Executor.run and numpy updates"):
    """The options every example takes (the caller adds its own): --loop, --backend,
    --epochs, --quick (`quick_epochs` epochs), --lr, --seed, --plot."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--loop", choices=LOOPS, default="trainer", help=loop_help)
    p.add_argument("--backend", choices=ad.executor.BACKENDS, default="native")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--quick", action="store_true", help=f"{quick_epochs} epochs")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PATH", help="PNG of the loss and accuracy curves")
    p.set_defaults(quick_epochs=quick_epochs)
    return p


def parse_example_args(p, argv, needs_sklearn=False):
    """The parsed options, `epochs` set by --quick; an error when a package the run needs
    is missing."""
    args = p.parse_args(argv)
    if needs_sklearn and importlib.util.find_spec("sklearn") is None:
        p.error("this example needs scikit-learn: pip install fastad[examples]")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        p.error("--plot needs matplotlib: pip install fastad[examples]")
    if args.quick:
        args.epochs = args.quick_epochs
    return args


def print_result(result, args, accuracy_name, loss_name, *more):
    """The run's summary line (and `more` lines), and its curves when --plot asks."""
    print(f"{accuracy_name} {result['accuracy']:.3f}, {loss_name} "
          f"{result['losses'][-1]:.4f}, {len(result['losses'])} epochs in "
          f"{result['seconds']:.2f} s ({args.loop} loop, {args.backend} backend)")
    for line in more:
        print(line)
    if args.plot:
        plot_curves(result, args.plot, accuracy_name)
        print(f"wrote {args.plot}")


def load_digits(seed):
    """(x_train, y_train, x_test, y_test): scikit-learn's digits, pixels scaled to [0, 1],
    integer labels, 25 % held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data / 16, digits.target, test_size=0.25, random_state=seed,
        stratify=digits.target)
    return x_train, y_train, x_test, y_test


def rate(lr, epoch, epochs):
    """The learning rate of an epoch: it decays linearly, so that the last epochs settle."""
    return lr * (1 - epoch / epochs)


def train_classifier(title, X, logits, params, values, data, epochs, batch_size, lr,
                     momentum=0.0, backend="native", loop="trainer", seed=0, progress=False):
    """Trains the classifier `logits` (a node of the placeholder X; `params` its
    parameters, from `values`) on data = (x_train, y_train, x_test, y_test) by SGD on the
    softmax cross-entropy: shuffled batches, the rate decaying linearly per epoch.
    Returns the final test accuracy, the seconds taken, the mean training loss and the
    test accuracy after each epoch, the History (every step's loss) and the parameters."""
    x_train, y_train, x_test, y_test = data
    start = time.perf_counter()
    onehot = np.eye(10)[y_train]
    Y = ad.Variable("Y")
    loss = ad.softmax_cross_entropy_op(logits, Y)
    predict = ad.Executor([logits], backend=backend)
    steps = math.ceil(len(x_train) / batch_size)  # a step per batch; the last may be smaller

    def test_accuracy(values):
        scores, = predict.run({X: x_test, **values})
        return float(np.mean(scores.argmax(axis=1) == y_test))

    accuracies = []
    with epoch_bar(epochs, f"{title} ({loop}, {backend})", progress) as bar:
        if loop == "trainer":
            # the schedule's t counts steps from 1
            sgd = ad.optim.SGD(lambda t: rate(lr, (t - 1) // steps, epochs), momentum=momentum)
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
                        if momentum:
                            velocity[p] *= momentum
                            velocity[p] += g
                            g = velocity[p]
                        values[p] -= rate(lr, epoch, epochs) * g
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


def epoch_bar(epochs, desc, progress):
    """A tqdm bar of `epochs` epochs, to use in a `with`: shown when `progress` is set
    and stderr is a terminal; None without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        return contextlib.nullcontext()
    return tqdm(total=epochs, desc=desc, disable=None if progress else True)  # None: a tty only


def report(bar, **figures):
    """One epoch done: advances the bar, if there is one, and shows its figures."""
    if bar is not None:
        bar.set_postfix(**figures, refresh=False)
        bar.update()


def plot_curves(result, path, accuracy_title):
    """A PNG at `path`: result["history"] as ad.plot_history draws it (every step's loss
    and each epoch's mean) beside result["accuracies"] per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    ad.plot_history(result["history"], buffer)  # a figure of its own, at 120 dpi
    buffer.seek(0)
    history = plt.imread(buffer)
    height, width = history.shape[:2]
    right = 480  # pixels for the accuracy panel
    total = width + right
    fig = plt.figure(figsize=(total / 120, height / 120), dpi=120)
    fig.figimage(history)  # pixel for pixel, on the left
    # the panel's axes in figure fractions, with room for its labels
    ax = fig.add_axes([(width + 80) / total, 0.14, (right - 100) / total, 0.78])
    ax.plot(np.arange(1, len(result["accuracies"]) + 1), result["accuracies"], "o-", ms=3)
    ax.set(xlabel="epoch", ylabel="accuracy", title=accuracy_title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
