"""The seed's program: logistic regression trained by per-sample SGD with fastad.

The data are the seed's `generate_data`: 2 features uniform in [0, 1), label 1 when
their sum is at least 1; the features are min-max normalised, and w and b start
uniform in [0, 1).  The graph is the seed's, node for node.

By default `Trainer.fit` trains it, every epoch in the C kernel; `--loop executor` runs
the seed's own loop instead (the course way: `Executor.run` for the loss and gradients,
the update in numpy), which ends at the same parameters, bit for bit.

    python examples/logistic_regression.py [--loop trainer|executor]
                                           [--backend native|python] [--epochs N]
                                           [--quick] [--plot PATH]

Optional: tqdm (progress bar), matplotlib (--plot): `pip install fastad[examples]`.
"""
import time

import numpy as np

import fastad as ad
from training import epoch_bar, example_parser, parse_example_args, print_result, report


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


def train(n=100, lr=0.1, epochs=100, backend="native", loop="trainer", seed=0,
          progress=False):
    """Trains on n samples; returns the final training accuracy, the seconds taken, the
    mean loss and the accuracy after each epoch, the History (the loss of every step)
    and the final w and b."""
    start = time.perf_counter()
    w, x, b, y = ad.Variable("w"), ad.Variable("x"), ad.Variable("b"), ad.Variable("y")
    o = ad.reduce_sum_op(w * x) + b
    h = 1 / (ad.exp_op(-o) + 1)
    loss = -(y * ad.ln_op(h) + (1 - y) * ad.ln_op(1 - h))

    rng = np.random.default_rng(seed)
    x_in, y_in = generate_data(n, rng)
    x_in = normalize(x_in)
    w_in, b_in = rng.random(2), rng.random(1)

    accuracies = []
    with epoch_bar(epochs, f"logistic regression ({loop}, {backend})", progress) as bar:
        if loop == "trainer":
            trainer = ad.Trainer(loss, {w: w_in, b: b_in}, ad.optim.SGD(lr), backend=backend)

            def after_epoch(epoch, history):
                accuracies.append(accuracy(trainer.params[w], trainer.params[b], x_in, y_in))
                report(bar, loss=f"{history.epoch_means[-1]:.4f}", acc=f"{accuracies[-1]:.3f}")

            # batch_size None: one sample a step, x (2,) and a 0-d y, as the seed feeds them
            history = trainer.fit({x: x_in, y: y_in}, epochs, callbacks=[after_epoch],
                                  progress=False)
            w_in, b_in = trainer.params[w], trainer.params[b]
        else:
            grad_w, grad_b = ad.gradients(loss, [w, b])
            executor = ad.Executor([loss, grad_w, grad_b], backend=backend)
            losses = []
            for _ in range(epochs):
                for i in range(n):
                    # y_in[i] is a numpy float64 scalar, as in the seed
                    l_val, gw, gb = executor.run({w: w_in, x: x_in[i], b: b_in, y: y_in[i]})
                    w_in -= lr * gw
                    b_in -= lr * gb
                    losses.append(l_val[0])
                accuracies.append(accuracy(w_in, b_in, x_in, y_in))
                report(bar, loss=f"{np.mean(losses[-n:]):.4f}", acc=f"{accuracies[-1]:.3f}")
            losses = np.array(losses)
            history = ad.History(losses, losses.reshape(epochs, n).mean(axis=1), [n] * epochs)
    return {"accuracy": accuracies[-1], "seconds": time.perf_counter() - start,
            "losses": list(history.epoch_means), "accuracies": accuracies,
            "history": history, "params": {"w": w_in, "b": b_in}}


def main(argv=None):
    p = example_parser(__doc__, QUICK_EPOCHS, epochs=100, lr=0.1,
                       loop_help="Trainer.fit, or the seed's loop of Executor.run and numpy "
                                 "updates")
    p.add_argument("--n", type=int, default=100, help="number of samples")
    args = parse_example_args(p, argv)
    result = train(args.n, args.lr, args.epochs, args.backend, args.loop, args.seed,
                   progress=True)
    print_result(result, args, "training accuracy", "final mean loss",
                 f"w = {result['params']['w']}, b = {result['params']['b']}")


if __name__ == "__main__":
    main()
