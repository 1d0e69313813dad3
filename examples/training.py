"""What both examples share: the epoch loop's progress bar (tqdm, optional) and the
loss and accuracy curves (matplotlib, optional)."""


def epoch_bar(epochs, desc, progress):
    """range(epochs), shown as a tqdm bar when tqdm is installed and `progress` is set."""
    try:
        from tqdm import tqdm
    except ImportError:
        return range(epochs)
    return tqdm(range(epochs), desc=desc, disable=None if progress else True)  # None: a tty only


def report(bar, **figures):
    """Shows the latest epoch's figures beside the bar, if there is one."""
    if hasattr(bar, "set_postfix"):
        bar.set_postfix(**figures)


def plot_curves(result, path, accuracy_title):
    """A PNG at `path` of result["losses"] and result["accuracies"] per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(result["losses"])
    ax1.set(xlabel="epoch", ylabel="mean loss", title="training loss")
    ax2.plot(result["accuracies"])
    ax2.set(xlabel="epoch", ylabel="accuracy", title=accuracy_title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
