"""The accuracy curve of a run (train vs test per epoch), if matplotlib is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_accuracy(records: list[dict[str, Any]], path: Path) -> str | None:
    """Write ``path`` (PNG); returns a note instead when matplotlib is missing or there is nothing to plot."""
    if not records:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "darnax: matplotlib is not installed (pip install 'darnax[plot]'); skipping accuracy.png"
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [100 * r["train_accuracy"] for r in records], marker="o", label="train")
    ax.plot(epochs, [100 * r["test_accuracy"] for r in records], marker="s", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("darnax: train vs test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
