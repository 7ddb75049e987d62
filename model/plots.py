"""PNG figures for training runs and evaluations (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_training(log: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch from the training log."""
    epochs = [r["epoch"] for r in log]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in log], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    ax_acc.plot(epochs, [r["train_acc"] for r in log], marker="o", label="train")
    ax_acc.plot(epochs, [r["test_acc"] for r in log], marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> None:
    """Row-normalised confusion matrix (true class down, predicted across)."""
    import numpy as np

    m = np.asarray(confusion, dtype=float)
    m = m / np.maximum(m.sum(1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_early_accuracy(curves: dict[str, dict[str, float]], path: Path) -> None:
    """Accuracy against the fraction of the recording seen, one line per model."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, points in curves.items():
        xs = [float(f) for f in points]
        ax.plot(xs, list(points.values()), marker="o", label=name)
    ax.set(xlabel="fraction of the recording seen", ylabel="accuracy", ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
