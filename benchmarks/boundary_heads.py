"""Which boundary model learns what the frozen features hold: every ``model.boundary`` variant on the same features.

For each finished ``bassl demo`` output given (its synthetic movies, ``features/`` and ``pretrain/encoder.pt``),
fine-tune each variant below with the demo's fine-tuning settings through the real ``bassl finetune`` (epoch
chosen on val, test reported there), beside the two references that need no fine-tuning of a network: the
training-free adjacent-shot dissimilarity and the similarity probe (logistic regression on the window's cosines,
its C chosen on val).

    .venv/bin/python benchmarks/boundary_heads.py --demos runs/demo0 runs/demo1 runs/demo2 [--name boundary_heads]

Each demo output is one seed (the seed of its pre-training and of every fine-tuning here). Resumable: finished
runs are read back. Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from results_files import measured_on, write_results

from bassl.config import load_config
from bassl.data.features import load_features
from bassl.data.movienet import MovieNetSource
from bassl.demo import DEMO_OVERRIDES
from bassl.eval.frozen_features import feature_only_metrics
from bassl.eval.report import read_report

# Learning rates chosen on val: the similarity MLP's by the demo's own finetune.base_lr=auto; a model with a CRN at
# 1e-3, the rate auto over {1e-3, 2.5e-3} chose on val for the paper's CRN on each of the demo's seeds 0, 1 and 2
# (README, "A short run"; one run instead of two keeps the benchmark to ~30 minutes).
CRN_GRID = "finetune.base_lr=1e-3"
VARIANTS = {  # name -> overrides on top of the demo's
    "paper (CRN, raw input, pre-trained)": ["model.boundary.head=paper", CRN_GRID],
    "paper, CRN from scratch": ["model.boundary.head=paper", "finetune.crn_init=scratch", CRN_GRID],
    "paper, L2 input": ["model.boundary.head=paper", "model.boundary.crn_input=l2", CRN_GRID],
    "paper, centred input": ["model.boundary.head=paper", "model.boundary.crn_input=centred", CRN_GRID],
    "hybrid (CRN + similarity MLP)": ["model.boundary.head=hybrid", CRN_GRID],
    "similarity MLP": ["model.boundary.head=similarity"],
    # model.boundary.head=auto over both heads and the union of their rates: it trains the runs of the paper row
    # (1e-3) and of the similarity MLP row (the demo's 4e-3 and 1.6e-2), same seed, plus three more, and keeps the one
    # best on val
    "auto (similarity MLP or paper, chosen on val)": ["model.boundary.head=auto", "finetune.auto_heads=[similarity, paper]",
                                                      "finetune.base_lr=auto", "finetune.lr_grid=[1e-3, 4e-3, 1.6e-2]"],
}


def shared_direction(features: np.ndarray, pairs: int = 20000) -> dict[str, float]:
    """How much the features share one direction: their mean norm, the norm of their mean, and the mean cosine of
    random pairs of shots (post-ReLU pooled features are non-negative, so unrelated shots still point alike)."""
    x = np.asarray(features, dtype=np.float64)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(x), (2, pairs))
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return {"mean_norm": float(np.linalg.norm(x, axis=1).mean()), "norm_of_mean": float(np.linalg.norm(x.mean(0))),
            "mean_cos_random_pairs": float((u[i] * u[j]).sum(1).mean())}


def resnet50_shared_direction(root: Path, images: int) -> dict[str, float]:
    """The same statistics for torchvision's ResNet-50 (random init: no weights can be downloaded here) on keyframes
    of the layout at ``root``, eval transform at 224."""
    import torch
    import torchvision
    from PIL import Image

    paths = sorted((root / "240P_frames").rglob("*_img_1.jpg"))
    paths = [paths[k] for k in np.random.default_rng(0).choice(len(paths), min(images, len(paths)), replace=False)]
    t = torchvision.transforms.Compose([torchvision.transforms.Resize(256), torchvision.transforms.CenterCrop(224),
                                        torchvision.transforms.ToTensor(),
                                        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None, zero_init_residual=True)
    net.fc = torch.nn.Identity()
    net.eval()
    with torch.no_grad():
        feats = torch.cat([net(torch.stack([t(Image.open(p).convert("RGB")) for p in paths[k:k + 32]]))
                           for k in range(0, len(paths), 32)])  # [N, 2048]
    return shared_direction(feats.numpy())


def seed_of(demo: Path) -> int:
    report = read_report(demo / "finetune")
    return int(report["config"]["seed"]) if report is not None else 0


def main() -> None:
    from bassl.train.finetune import finetune
    from bassl.train.similarity_probe import similarity_probe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demos", type=Path, nargs="+", required=True)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--all-variants-on-first", action="store_true",
                   help="run every variant on the first demo and only --variants on the others")
    p.add_argument("--name", default="boundary_heads")
    p.add_argument("--resnet50-images", type=int, default=256,
                   help="keyframes of the first demo's movies through a random-init ResNet-50 (0: skip)")
    p.add_argument("overrides", nargs="*", help="key=value on top of the demo's settings, for every run")
    args = p.parse_args()
    rows = []
    for demo in (d.resolve() for d in args.demos):
        seed = seed_of(demo)
        base = [*DEMO_OVERRIDES, f"seed={seed}", f"data.root={demo / 'movienet'}", f"data.shards={demo / 'shards'}",
                *args.overrides]
        cfg = load_config(base)
        fm = load_features(demo / "features")
        source = MovieNetSource.from_config(cfg.data)
        ref_path = demo / "boundary_heads" / "references.json"
        if not ref_path.is_file():
            probe = similarity_probe(cfg, fm, source)
            ref = {"adjacent_val_ap": feature_only_metrics(cfg, fm.rows, "val")["adjacent_ap"],
                   "adjacent_test_ap": feature_only_metrics(cfg, fm.rows, "test")["adjacent_ap"],
                   "probe_val_ap": probe["val"]["ap"], "probe_test_ap": probe["test"]["ap"],
                   **shared_direction(fm.features)}
            ref_path.parent.mkdir(parents=True, exist_ok=True)
            ref_path.write_text(json.dumps(ref))
        ref = json.loads(ref_path.read_text())
        labels = np.concatenate([a.boundary_labels(cfg.data.negative_label) for a in source.split("test").values()])
        ref["chance"] = 100.0 * float(np.mean(labels[labels >= 0] == 1))
        first = demo == args.demos[0].resolve()
        for name in VARIANTS if first and args.all_variants_on_first else args.variants:
            run = demo / "boundary_heads" / name.split(" (")[0].replace(",", "").replace(" ", "_")
            if read_report(run) is None:
                finetune(load_config([*base, *VARIANTS[name]]), demo / "features", run, demo / "pretrain" / "encoder.pt")
            rep = read_report(run)
            rows.append({"seed": seed, "variant": name, "selected_epoch": rep["selected_epoch"],
                         "val_ap": rep["protocols"]["val_selected"]["val"]["ap"], "test_ap": rep["test"]["ap"],
                         "test_miou": rep["test"]["miou"], "kept": f"{rep['boundary_head']} {rep['lr']['base_lr']:g}",
                         **ref})
            print(rows[-1], flush=True)
    resnet50 = None
    if args.resnet50_images:
        resnet50 = resnet50_shared_direction(args.demos[0].resolve() / "movienet", args.resnet50_images)
    result = {**measured_on(),
              "command": "benchmarks/boundary_heads.py --demos " + " ".join(str(d) for d in args.demos)
                         + "".join(f" {o}" for o in args.overrides),
              "settings": [*DEMO_OVERRIDES, *args.overrides], "runs": rows, "resnet50_random_init": resnet50}
    write_results(args.name, result, markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    rows = result["runs"]
    seeds = sorted({r["seed"] for r in rows})

    def ms(values: list[float]) -> str:
        return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else f"{values[0]:.1f}"

    def each(values: list[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    lines = [f"# Boundary heads on the demo's frozen features ({result['date']}, {result['machine']})", "",
             f"`{result['command']}`. Seeds {', '.join(map(str, seeds))} (pre-training and fine-tuning); epoch chosen "
             "on val, test reported there; mean ± std over seeds.", "",
             "| boundary model | val AP | test AP | test mIoU | per seed (test AP) | kept on val (head, base lr) |",
             "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == name]
        lines.append(f"| {name} | {ms([r['val_ap'] for r in rs])} | {ms([r['test_ap'] for r in rs])} | "
                     f"{ms([r['test_miou'] for r in rs])} | {each([r['test_ap'] for r in rs])} | "
                     + " / ".join(r.get("kept", "") for r in rs) + " |")
    refs = {r["seed"]: r for r in rows}.values()
    references = (("similarity probe (logistic regression)", "probe"), ("adjacent-shot dissimilarity, no training", "adjacent"))
    for label, key in references:
        val, test = [r[key + "_val_ap"] for r in refs], [r[key + "_test_ap"] for r in refs]
        lines.append(f"| *{label}* | {ms(val)} | {ms(test)} | | {each(test)} | |")
    lines.append(f"| *chance* | | {ms([r['chance'] for r in refs])} | | | |")
    norm, mean = np.mean([r["mean_norm"] for r in refs]), np.mean([r["norm_of_mean"] for r in refs])
    lines += ["", f"How much the features share one direction (mean over seeds): mean norm {norm:.2f}, norm of the mean "
              f"{mean:.2f}, mean cosine of random shot pairs {np.mean([r['mean_cos_random_pairs'] for r in refs]):.3f}."]
    if result.get("resnet50_random_init"):
        r = result["resnet50_random_init"]
        lines.append(f"torchvision ResNet-50 at random init on the same keyframes (2048-d, post-ReLU): mean norm "
                     f"{r['mean_norm']:.2f}, norm of the mean {r['norm_of_mean']:.2f}, mean cosine of random pairs "
                     f"{r['mean_cos_random_pairs']:.3f}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
