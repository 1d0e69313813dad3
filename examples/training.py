"""What the examples share: the two training loops' names, the epoch progress bar
(tqdm, optional) and the training curves (matplotlib, optional)."""
import contextlib
import io

import numpy as np

import fastad as ad

LOOPS = ("trainer", "executor")  # Trainer.fit, or Executor.run and numpy updates


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
