"""Why does the PP head not find real scene boundaries while its pseudo-boundaries do? Measured on saved encoders.

For each ``encoder.pt`` that ``benchmarks/long_run.py`` saved (bassl, every seed and step), on the val movies'
eval-mode features that the run extracted, with the export's own CRN and heads:

- the monitors of method.md §6.10: pseudo-boundary hit rate, PP zero-shot AP read at the window's centre, PP's AP
  at its own task (the DTW pseudo-boundary among the window's shots), the mean PP probability at the centre and
  at the edge positions, and the share of windows whose pseudo-boundary is the centre shot;
- ``pp_ap_any_position``: each shot scored by the mean PP probability over every window position it occupies
  (not only the centre), to test whether reading PP at the centre is what fails;
- ``pp_position_share``: the share (%) of the PP probability's variance over all windows and positions that the
  position alone explains (the variance of the per-position means): high means PP answers "where in the window",
  not "what is there".

    .venv/bin/python benchmarks/pp_transfer.py [--runs runs/long_run]

Writes ``benchmarks/results/pp_transfer.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from bassl.config import config_from_dict
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.metrics import average_precision
from bassl.loaders.windows import neighbor_window
from bassl.models import build_pretrain_model
from bassl.models.weights import load_weights
from bassl.train.label_free import pp_probability
from bassl.train.pretext_monitor import split_monitors

RESULTS = Path(__file__).resolve().parent / "results"


def load_model(path: Path):
    doc = load_weights(path)
    cfg = config_from_dict(doc["config"], source=str(path))
    model = build_pretrain_model(cfg)
    for name, module in model.named_children():
        module.load_state_dict(doc[name], strict=True)
    return model.eval(), cfg


@torch.no_grad()
def window_probs(model, feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(``[n, S]`` window rows, ``[n, S]`` PP probability at every position of every shot's window)."""
    n = len(feats)
    rows = neighbor_window(np.arange(n), n, k)  # [n, S]
    x = torch.from_numpy(feats.astype(np.float32))[torch.from_numpy(rows)]  # [n, S, D]
    h, _ = model.crn(x)
    return rows, pp_probability(model.head_pp, h.flatten(0, 1)).view(n, -1).numpy()


def any_position_scores(rows: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """``[n]``: each shot's PP probability averaged over the 2K+1 windows (and positions) that hold it."""
    n = len(rows)
    total, count = np.zeros(n), np.zeros(n)
    np.add.at(total, rows.ravel(), prob.ravel())
    np.add.at(count, rows.ravel(), 1)
    return total / np.maximum(count, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs/long_run"))
    p.add_argument("--name", default="pp_transfer")
    args = p.parse_args()
    rows = []
    for enc in sorted(args.runs.glob("bassl/seed*/step*/encoder.pt")):
        at = enc.parent
        model, cfg = load_model(enc)
        fm = load_features(at / "features")
        source = MovieNetSource.from_config(cfg.data)
        movies = {v: fm.rows(v) for v in source.split("val")}
        m = split_monitors(cfg, model, movies, source, "val", torch.device("cpu"))
        gts, scores, probs = [], [], []
        for vid, ann in source.split("val").items():
            labels = ann.boundary_labels(cfg.data.negative_label)
            keep = labels >= 0
            windows, prob = window_probs(model, movies[vid], cfg.window.neighbor_size)
            gts.append(labels[keep])
            scores.append(any_position_scores(windows, prob)[ann.shot_ids[keep]])
            probs.append(prob)
        m["pp_ap_any_position"] = average_precision(np.concatenate(gts), np.concatenate(scores))
        prob = np.concatenate(probs)  # [N, S]
        # how much of PP's output is the position in the window rather than what the window holds
        m["pp_position_share"] = 100.0 * float(prob.mean(axis=0).var() / max(prob.var(), 1e-12))
        row = {"seed": int(at.parent.name.removeprefix("seed")), "step": int(at.name.removeprefix("step")), **m}
        print(json.dumps(row), flush=True)
        rows.append(row)
    keys = ["pb_exact", "pb_within1", "pb_at_centre", "pp_ap", "pp_ap_any_position", "pp_chance", "pp_self_ap",
            "pp_centre_mean", "pp_edge_mean", "pp_position_share", "cgm_acc", "adjacent_ap"]
    lines = [f"# Why PP does not transfer ({datetime.now().isoformat(timespec='seconds')})", "",
             f"bassl encoders saved by `benchmarks/long_run.py` ({args.runs}); val movies, eval-mode features. "
             "PP self AP: chance 1/17 = 5.9 %. `.venv/bin/python benchmarks/pp_transfer.py`", "",
             "| seed | step | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for r in sorted(rows, key=lambda r: (r["seed"], r["step"])):
        lines.append(f"| {r['seed']} | {r['step']} | " + " | ".join(f"{r.get(k, float('nan')):.2f}" for k in keys) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
