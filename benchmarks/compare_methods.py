"""The method comparison: the five pre-training methods under one budget, on one data set, at a size where
fine-tuning learns, each at the learning rate chosen on val; plus the rows that say why.

For every method (instance, temporal, shotcol, bassl, bassl_shotcol) and every seed, the real pipeline runs:
``pretrain`` (DeepSpeed loop) → ``extract`` (Parquet) → ``finetune`` with ``base_lr=auto`` (every lr of the
grid, each with its epoch chosen on val; the lr chosen on val; the spec lrs, 2.5e-6 and 2.5e-5, stay at chance at
this budget: README, "Fine-tuning recipe") → test metrics. The
synthetic movies are generated once (``synth.seed`` is fixed); the seed changes initial weights, data order,
augmentation and fine-tuning. Extra rows:

- ``none``: no pre-training (the encoder at its random initialisation), fine-tuned like a shot-level baseline;
- ``bassl, the paper's head``: bassl's features fine-tuned with the paper's boundary model (its pre-trained CRN +
  Linear, ``model.boundary.head=paper``; every other row fine-tunes the default similarity head);
- ``bassl, the paper's head, CRN re-initialised``: the same with a CRN from scratch (``finetune.crn_init=
  scratch``): the ablation of the pre-trained CRN, BaSSL's central claim;
- ``similarity probe``: a logistic regression on each window's cosine-similarity matrix of bassl's
  features (:mod:`bassl.train.similarity_probe`, C chosen on val).

Two columns need no fine-tuning and judge the frozen features alone (``bassl.eval.frozen_features``):
``adjacent AP`` and scene ``kNN@1``, on test.

    .venv/bin/python benchmarks/compare_methods.py [--seeds 0 1 2] [--methods ...] [--out runs/compare] [key=value ...]

Resumable: a finished stage (encoder.pt, features.json, report.json, probe.json) is not recomputed. Writes
benchmarks/results/<--name, default compare_methods>.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from results_files import RESULTS, measured_on, write_results

from bassl.config import load_config, settings_overrides
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.eval.frozen_features import feature_only_metrics
from bassl.eval.report import read_report

METHODS = ("instance", "temporal", "shotcol", "bassl", "bassl_shotcol")
CONTROL, PAPER, REINIT, PROBE = "none", "bassl_paper_head", "bassl_crn_reinit", "probe"
ROWS = (CONTROL, *METHODS, PAPER, REINIT, PROBE)
LABEL = {CONTROL: "none (random encoder, no pre-training)", PAPER: "bassl, the paper's head (pre-trained CRN)",
         REINIT: "bassl, the paper's head, CRN re-initialised (ablation)",
         PROBE: "similarity probe on bassl features (logistic regression)"}
PAPER_AP = {"instance": "51.51", "temporal": "50.05", "shotcol": "51.17", "bassl": "56.26 (10 ep) / 57.40 (40 ep)"}
METRICS = ("ap", "miou", "auc_roc", "f1")

# The budget, equal for every method: the short-run settings (bassl/configs/short_run.yaml, as the demo) on more
# test movies.
BUDGET = [
    *settings_overrides("short_run"),
    "synth.train_movies=80", "synth.val_movies=12", "synth.test_movies=16", "synth.pretrain_only_movies=4",
    "pretrain.log_every=48", "finetune.epochs=20",
]
# Base lrs at batch 256, per boundary head: the similarity head's are the demo's; the paper's CRN took 1e-3 or 2.5e-3
# on val in every earlier run (README, "A short run").
LR_GRID = {"similarity": (4e-3, 1.6e-2), "paper": (1e-3, 2.5e-3)}


def run_one(base: list[str], row: str, seed: int, out: Path) -> dict:
    from bassl.train.extract import extract
    from bassl.train.finetune import finetune
    from bassl.train.pretrain import pretrain
    from bassl.train.similarity_probe import similarity_probe

    # the control fine-tunes like a shot-level baseline; the paper-head rows and the probe use bassl's run
    method = {CONTROL: "instance", PAPER: "bassl", REINIT: "bassl", PROBE: "bassl"}.get(row, row)
    head = "paper" if row in (PAPER, REINIT) else "similarity"
    cfg = load_config([*base, f"method={method}", f"seed={seed}", f"model.boundary.head={head}",
                       f"finetune.lr_grid={list(LR_GRID[head])}", *(["finetune.crn_init=scratch"] if row == REINIT else [])])
    run = out / ("bassl" if row in (PAPER, REINIT, PROBE) else row) / f"seed{seed}"
    times_path = run / f"stage_seconds_{row}.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def stage(name: str, done: bool, work) -> None:
        if not done:
            t = time.perf_counter()
            work()
            times[f"{name}_s"] = time.perf_counter() - t
            times_path.parent.mkdir(parents=True, exist_ok=True)
            times_path.write_text(json.dumps(times, indent=1))

    stage("pretrain", (run / "pretrain" / "encoder.pt").is_file(),
          lambda: pretrain(cfg, run / "pretrain", resume=(run / "pretrain" / "checkpoints").is_dir(),
                           max_steps=0 if row == CONTROL else None))
    stage("extract", (run / "features" / "features.json").is_file(),
          lambda: extract(cfg, run / "pretrain" / "encoder.pt", run / "features"))
    fm = load_features(run / "features")
    frozen = feature_only_metrics(cfg, fm.rows)
    if row == PROBE:
        path = run / "probe.json"
        stage("probe", path.is_file(), lambda: path.write_text(json.dumps(
            similarity_probe(cfg, fm, MovieNetSource.from_config(cfg.data)), indent=1)))
        probe = json.loads(path.read_text())
        return {"row": row, "seed": seed, "test": {k: probe["test"][k] for k in METRICS},
                "val_ap": probe["val"]["ap"], "lr": None, "C": probe["C"], **frozen, **times}
    ft = run / {REINIT: "finetune_reinit", PAPER: "finetune_paper"}.get(row, "finetune")
    stage("finetune", read_report(ft) is not None, lambda: finetune(cfg, run / "features", ft))
    report = read_report(ft)
    return {"row": row, "seed": seed, "test": {k: report["test"][k] for k in METRICS},
            "val_ap": report["protocols"]["val_selected"]["val"]["ap"], "lr": report["lr"]["base_lr"],
            "lr_candidates": report["lr"]["candidates"], "selected_epoch": report["selected_epoch"], **frozen, **times}


def effective(overrides: list[str]) -> list[str]:
    """``key=value`` overrides as they act: each key once, at its first place, with its last value (later wins)."""
    last = {o.split("=", 1)[0]: o for o in overrides}  # a dict keeps each key's first place, takes its last value
    return list(last.values())


def prepare_movies(cfg, out: Path) -> float:
    """The synthetic movies and their shards under ``out`` (once; kept for later runs); returns the AP of chance on
    test (the share of test shots that end a scene, x100)."""
    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate

    if not (out / "shards" / "manifest.json").is_file():
        print(generate(out / "movienet", cfg.synth).describe())
        build_shards(cfg, out / "movienet", out / "shards")
    labels = np.concatenate([a.boundary_labels(cfg.data.negative_label)
                             for a in MovieNetSource.from_config(cfg.data).split("test").values()])
    return 100.0 * float(np.mean(labels[labels >= 0] == 1))


def cell(vals: list[float]) -> str:
    return f"{np.mean(vals):.2f} ± {np.std(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"


def table(rows: list[dict], names: list[str], chance: float) -> list[str]:
    lines = ["| method | paper AP | AP | × chance | mIoU | AUC-ROC | F1 | lr chosen on val | adjacent AP (no fine-tune) "
             "| kNN@1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        rs = [r for r in rows if r["row"] == name]
        if not rs:
            continue
        aps = [r["test"]["ap"] for r in rs]
        lrs = "C " + "/".join(str(r["C"]) for r in rs) if name == PROBE else "/".join(f"{r['lr']:g}" for r in rs)
        lines.append(f"| {LABEL.get(name, name)} | {PAPER_AP.get(name, '—')} | {cell(aps)} | {np.mean(aps) / chance:.1f} | "
                     + " | ".join(cell([r["test"][k] for r in rs]) for k in METRICS[1:])
                     + f" | {lrs} | {cell([r['adjacent_ap'] for r in rs])} | {cell([r['knn1'] for r in rs])} |")
    return lines


def plot(rows: list[dict], names: list[str], chance: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if any(r["row"] == n for r in rows)]
    aps = [[r["test"]["ap"] for r in rows if r["row"] == n] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    x = np.arange(len(names))
    ax.bar(x, [np.mean(a) for a in aps], yerr=[np.std(a) for a in aps], capsize=4, color="#4c78a8")
    for i, a in enumerate(aps):
        ax.scatter(np.full(len(a), i), a, color="black", s=10, zorder=3)
    ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.1f} % of shots end a scene)")
    ax.set_xticks(x, [LABEL.get(n, n).split(" (")[0] for n in names], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("test AP (epoch and lr chosen on val)")
    ax.set_title(f"Scene-boundary AP by method, mean ± std over {len(aps[0])} seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(ROWS), choices=ROWS,
                   help=f"rows; '{CONTROL}': no pre-training, '{PAPER}': bassl fine-tuned with the paper's CRN head, "
                        f"'{REINIT}': the same with its CRN re-initialised, '{PROBE}': the similarity probe on bassl's "
                        "features")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--name", default="compare_methods", help="results file stem in benchmarks/results/")
    p.add_argument("overrides", nargs="*", help="key=value, applied after the budget above")
    args = p.parse_args()
    out = args.out.resolve()
    base = [*BUDGET, f"data.root={out / 'movienet'}", f"data.shards={out / 'shards'}", *args.overrides]
    cfg = load_config(base)

    chance = prepare_movies(cfg, out)
    rows = []
    for seed in args.seeds:
        for row in args.methods:
            print(f"\n[compare] {row}, seed {seed}", flush=True)
            rows.append(run_one(base, row, seed, out))
            print(f"[compare] {row} seed {seed}: " + json.dumps({k: v for k, v in rows[-1].items()
                                                                  if k not in ("row", "seed", "lr_candidates")}), flush=True)
    result = {**measured_on(),
              "budget": effective(base[: len(BUDGET)] + list(args.overrides)), "seeds": args.seeds,
              "test_positive_share": chance, "rows": rows}
    plot(rows, args.methods, chance, RESULTS / f"{args.name}.png")
    lines = [f"# Method comparison ({result['date']}, {result['machine']})", "",
             f"Seeds {args.seeds}; mean ± std over seeds; test split of the synthetic movies ({chance:.1f} % of test "
             "shots end a scene: the AP of a random score). AP..F1: fine-tuned, the lr (of the grid) "
             "and the epoch chosen on val. Budget: `" + " ".join(result["budget"]) + "`.", "",
             *table(rows, args.methods, chance)]
    write_results(args.name, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
