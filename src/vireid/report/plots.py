"""CMC curve and positive/negative distance histograms (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_cmc(cmcs: dict[str, np.ndarray], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, cmc in cmcs.items():
        ax.plot(np.arange(1, len(cmc) + 1), cmc * 100, marker="o", ms=3, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_distance_histogram(pos: np.ndarray, neg: np.ndarray, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if len(pos) == 0 or len(neg) == 0:
        pos = neg = np.concatenate([pos, neg, [0.0]])
    bins = np.linspace(min(pos.min(), neg.min()), max(pos.max(), neg.max()), 60)
    ax.hist(neg, bins=bins, alpha=0.6, density=True, label=f"different id ({len(neg)})")
    ax.hist(pos, bins=bins, alpha=0.6, density=True, label=f"same id ({len(pos)})")
    ax.set_xlabel("distance  -(q·g)")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
