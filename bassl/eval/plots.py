"""The two plots of an evaluation report, read at a glance.

- ``pr_curve.png``: pooled precision–recall curve with the AP in the title.
- ``timeline.png``: one row per movie, true scene boundaries above the axis, predicted ones below, the
  predicted probability as a faint trace, so misses and false alarms stand out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bassl.data.atomic import atomic_path
from bassl.eval.metrics import average_precision


def plot_pr_curve(path: str | Path, gt: np.ndarray, prob: np.ndarray, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(gt, prob)
    ap = average_precision(gt, prob)  # the report's own AP, so the title and report.json agree
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    ax.step(recall, precision, where="post", color="#1f5fa8", lw=1.8)
    ax.axhline(float(np.mean(gt)), color="grey", ls="--", lw=1, label=f"chance ({100 * np.mean(gt):.1f} % boundaries)")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set_title(f"{title} AP {ap:.2f}".strip())
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def plot_timeline(
    path: str | Path,
    video_ids: Sequence[str],
    shot_ids: np.ndarray,
    prob: np.ndarray,
    gt: np.ndarray,
    pred: np.ndarray,
    max_movies: int = 12,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vids = np.asarray(video_ids)
    movies = list(dict.fromkeys(vids.tolist()))[:max_movies]
    fig, axes = plt.subplots(len(movies), 1, figsize=(11, 0.9 * len(movies) + 0.8), dpi=110, squeeze=False)
    for ax, vid in zip(axes[:, 0], movies, strict=True):
        sel = vids == vid
        order = np.argsort(shot_ids[sel])
        s, p, g, d = shot_ids[sel][order], prob[sel][order], gt[sel][order], pred[sel][order]
        hit = (g == 1) & (d == 1)
        ax.fill_between(s, 0, -p, color="#f4a259", alpha=0.35, lw=0)
        ax.vlines(s[(g == 1) & ~hit], 0, 1, color="#2a9d8f", lw=1.6, label="missed")
        ax.vlines(s[hit], -1, 1, color="#264653", lw=1.6, label="found")
        ax.vlines(s[(d == 1) & (g == 0)], -1, 0, color="#e76f51", lw=1.6, label="false alarm")
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xlim(s.min() - 0.5, s.max() + 0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([])
        tp, fn, fp = int(hit.sum()), int(((g == 1) & ~hit).sum()), int(((d == 1) & (g == 0)).sum())
        ax.set_ylabel(vid, rotation=0, ha="right", va="center", fontsize=8)
        ax.text(1.005, 0.5, f"found {tp}\nmissed {fn}\nfalse {fp}", transform=ax.transAxes, fontsize=7, va="center")
    axes[0, 0].set_title("scene boundaries per movie: true above the line, predicted below (shaded: probability)", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    axes[-1, 0].set_xlabel("shot index")
    fig.tight_layout(rect=(0, 0.04, 0.95, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
