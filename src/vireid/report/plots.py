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


def plot_robustness(res: dict, out: Path, metric: str = "mAP") -> Path:
    """``metric`` against severity, one line per corruption type, starting from the clean
    value at severity 0; ``res`` is a ``robustness.json`` dict with a sweep."""
    sevs = [int(s) for s in res["plan"]["severities"]]
    clean = res["clean"]["mean"][metric]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("tab20")
    for i, (name, by_sev) in enumerate(res["sweep"].items()):
        ys = [clean] + [by_sev[str(s)][metric] for s in sevs]
        style = "-" if i < 10 else "--"  # tab20 has 20 colours; styles split the legend
        ax.plot([0, *sevs], ys, style, marker="o", ms=3, color=colors(i % 20), label=name)
    ax.axhline(clean, color="k", lw=0.8, ls=":", label="clean")
    ax.set_xticks([0, *sevs], ["clean", *map(str, sevs)])
    ax.set_xlabel("severity")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{res['protocol']}: {metric} under corruption of the visible side")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
