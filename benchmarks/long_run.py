"""Boundary-aware pre-training, measured over a long run: does BaSSL pull ahead of a shot-level baseline with length?

The method comparison's budget (``compare_methods.BUDGET``: tiny preset, 32 windows per step, LARS trust 0.02) with
pre-training 10x longer (21 epochs of 72 steps = 1,512 steps, the schedule spanning all of them). The run stops
at log-spaced steps (144, 432, 1,512 by default) and, at each, exports the encoder and measures on the synthetic
movies:

- kNN@1 and the adjacent-shot AP of the frozen features (test, no training);
- fine-tuned test AP (``finetune.base_lr=auto``, lr and epoch chosen on val) with the similarity head (the default),
  and with the paper's head on the pre-trained CRN and on a re-initialised one (``finetune.crn_init=scratch``);
- the pretext monitors of method.md §6.10 (val, every epoch, from the run's metrics.jsonl): pseudo-boundary hit
  rate, PP zero-shot AP, CGM balanced accuracy.

    .venv/bin/python benchmarks/long_run.py [--methods bassl instance] [--seeds 0 1] [--source drawn|photos]
        [--steps 144 432 1512] [--out DIR] [--stem NAME] [--finished-only] [key=value ...]

Resumable (each stage's output is kept). Writes ``benchmarks/results/long_run[_photos].{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from compare_methods import BUDGET, LR_GRID, effective, prepare_movies
from results_files import RESULTS, measured_on, write_results

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.eval.frozen_features import feature_only_metrics
from bassl.eval.report import read_report

LONG = ["pretrain.epochs=21", "pretrain.monitor_every_epoch=true", "pretrain.checkpoint_every=100000"]
FINETUNES = {  # name -> overrides; the paper's head rows need a CRN from pre-training (bassl, bassl_shotcol)
    "similarity": ["model.boundary.head=similarity", f"finetune.lr_grid={list(LR_GRID['similarity'])}"],
    "paper": ["model.boundary.head=paper", f"finetune.lr_grid={list(LR_GRID['paper'])}"],
    "paper_reinit": ["model.boundary.head=paper", f"finetune.lr_grid={list(LR_GRID['paper'])}", "finetune.crn_init=scratch"],
}
CRN_METHODS = ("bassl", "bassl_shotcol")


def run_one(base: list[str], method: str, seed: int, steps: list[int], out: Path, train: bool = True) -> list[dict]:
    from bassl.train.extract import extract
    from bassl.train.finetune import finetune
    from bassl.train.pretrain import pretrain
    from bassl.train.run_log import read_metrics

    cfg = load_config([*base, f"method={method}", f"seed={seed}"])
    run = out / method / f"seed{seed}"
    rows = []
    for step in steps:
        at = run / f"step{step:05d}"
        result_path = at / "result.json"
        if result_path.is_file():
            rows.append(json.loads(result_path.read_text()))
            continue
        if not train:
            continue
        at.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if not (at / "encoder.pt").is_file():
            pretrain(cfg, run / "pretrain", resume=(run / "pretrain" / "checkpoints").is_dir(), max_steps=step)
            shutil.copyfile(run / "pretrain" / "encoder.pt", at / "encoder.pt")
        t1 = time.perf_counter()
        if not (at / "features" / "features.json").is_file():
            extract(cfg, at / "encoder.pt", at / "features")
        row = {"method": method, "seed": seed, "step": step, **feature_only_metrics(cfg, load_features(at / "features").rows)}
        _, evals = read_metrics(run / "pretrain" / "metrics.jsonl")
        row["monitors"] = next((e["eval"] for e in evals if e["step"] == step), None)
        for name, extra in FINETUNES.items():
            if name == "paper" and method not in CRN_METHODS:
                continue  # no pre-trained CRN: paper_reinit is the shot-level method's paper-head row
            ft = at / f"finetune_{name}"
            if read_report(ft) is None:
                finetune(load_config([*base, f"method={method}", f"seed={seed}", *extra]), at / "features", ft)
            report = read_report(ft)
            row[name] = {"test_ap": report["test"]["ap"], "val_ap": report["protocols"]["val_selected"]["val"]["ap"],
                         "lr": report["lr"]["base_lr"], "epoch": report["selected_epoch"]}
        row["seconds"] = {"pretrain": t1 - t0, "evaluate": time.perf_counter() - t1}
        result_path.write_text(json.dumps(row, indent=1))
        print(f"[long_run] {method} seed {seed} step {step}: " + json.dumps(row), flush=True)
        rows.append(row)
    return rows


def cell(vals: list[float]) -> str:
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "—"
    return f"{np.mean(vals):.1f} ± {np.std(vals):.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"


def table(rows: list[dict]) -> list[str]:
    lines = ["| method | step | kNN@1 | adjacent AP | PB hit exact / ±1 (%) | PP zero-shot AP | CGM bal. acc. | "
             "FT similarity | FT paper head, pre-trained CRN | FT paper head, re-init CRN |", "|---" * 10 + "|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        for step in sorted({r["step"] for r in rows if r["method"] == method}):
            rs = [r for r in rows if r["method"] == method and r["step"] == step]

            def mon(key: str, rs: list[dict] = rs) -> list[float]:
                return [(r["monitors"] or {}).get(key) for r in rs]

            def ft(name: str, rs: list[dict] = rs) -> str:
                return cell([r[name]["test_ap"] for r in rs if name in r])

            seeds = "/".join(str(r["seed"]) for r in rs)
            lines.append(f"| {method}, seed {seeds} | {step} | {cell([r['knn1'] for r in rs])} | "
                         f"{cell([r['adjacent_ap'] for r in rs])} | "
                         f"{cell(mon('pb_exact'))} / {cell(mon('pb_within1'))} | {cell(mon('pp_ap'))} | "
                         f"{cell(mon('cgm_acc'))} | {ft('similarity')} | {ft('paper')} | {ft('paper_reinit')} |")
    return lines


def plot(rows: list[dict], monitor_curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        steps = sorted({r["step"] for r in rows if r["method"] == method})
        for name, style in (("similarity", "-o"), ("paper", "--s"), ("paper_reinit", ":^")):
            ys = [np.mean([r[name]["test_ap"] for r in rows if r["method"] == method and r["step"] == s and name in r]
                          or [np.nan]) for s in steps]
            if not all(np.isnan(ys)):
                axes[0].plot(steps, ys, style, label=f"{method} {name}")
        axes[0].plot(steps, [np.mean([r["adjacent_ap"] for r in rows if r["method"] == method and r["step"] == s])
                             for s in steps], ":", label=f"{method} adjacent (no training)")
    axes[0].set(xscale="log", xlabel="pre-training step", ylabel="test AP", title="fine-tuned test AP (mean over seeds)")
    axes[0].legend(fontsize=7)
    for key, title, ax in (("pp_ap", "PP zero-shot AP (val)", axes[1]),
                           ("pb_exact", "pseudo-boundary exact hits % (val)", axes[2])):
        for label, evals in monitor_curves.items():
            pts = [(e["step"], e["eval"][key]) for e in evals if key in e["eval"]]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=label)
        ax.set(xscale="log", xlabel="pre-training step", title=title)
        ax.legend(fontsize=7)
    if monitor_curves:
        first = next(iter(monitor_curves.values()))
        chance = [e["eval"].get("pp_chance") for e in first if "pp_chance" in e["eval"]]
        if chance:
            axes[1].axhline(chance[0], color="grey", lw=0.8, ls="--", label="chance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    from bassl.train.run_log import read_metrics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["bassl", "instance"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, nargs="+", default=[144, 432, 1512], help="where to stop and measure")
    p.add_argument("--source", choices=("drawn", "photos"), default="drawn", help="synth.source of the movies")
    p.add_argument("--out", type=Path, default=None, help="default runs/long_run[_photos]")
    p.add_argument("--stem", default=None, help="results file name (default long_run[_photos])")
    p.add_argument("--finished-only", action="store_true",
                   help="train nothing: the table of the runs already finished under --out (e.g. seeds run side by side)")
    p.add_argument("overrides", nargs="*", help="key=value, applied after the budget")
    args = p.parse_args()
    stem = args.stem or "long_run" + ("" if args.source == "drawn" else f"_{args.source}")
    out = (args.out or Path("runs") / stem).resolve()
    base = [*BUDGET, *LONG, f"synth.source={args.source}", f"data.root={out / 'movienet'}",
            f"data.shards={out / 'shards'}", *args.overrides]
    if args.finished_only and not (out / "shards" / "manifest.json").is_file():
        raise SystemExit(f"--finished-only: no runs under {out} (no shards/manifest.json); check --out and --source")
    chance = prepare_movies(load_config(base), out)
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            print(f"\n[long_run] {method}, seed {seed}", flush=True)
            rows += run_one(base, method, seed, sorted(args.steps), out, train=not args.finished_only)
    done = sorted({(r["method"], r["seed"]) for r in rows})
    if not done:
        raise SystemExit(f"no finished run of {args.methods} seeds {args.seeds} at steps {args.steps} under {out}")
    curves = {f"{m} seed {s}": read_metrics(out / m / f"seed{s}" / "pretrain" / "metrics.jsonl")[1] for m, s in done}
    result = {**measured_on(), "source": args.source,
              "settings": effective(base[: len(BUDGET) + len(LONG) + 1] + list(args.overrides)),
              "seeds": sorted({s for _, s in done}),
              "test_positive_share": chance, "rows": rows, "monitor_curves": curves}
    plot(rows, curves, RESULTS / f"{stem}.png")
    lines = [f"# Long pre-training run ({result['date']}, {result['machine']}, {args.source} movies)", "",
             f"Seeds {result['seeds']}; mean ± std over seeds; test AP on the synthetic test movies ({chance:.1f} % of test "
             "shots end a scene: the AP of a random score); the monitors on val at that step. Fine-tuning picks lr and "
             "epoch on val. Settings: `" + " ".join(result["settings"]) + "`.", "", *table(rows)]
    write_results(stem, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
