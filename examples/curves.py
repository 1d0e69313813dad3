"""The loss and accuracy curves both examples draw (matplotlib, optional)."""


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
