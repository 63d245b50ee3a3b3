"""Pre-training throughput with the DALI loader vs the pure-torch reference loader, same data, same model.

Runs `bassl pretrain` (the real DeepSpeed engine loop) for a few steps with each loader on the same
synthetic shards and reports steps/s, images/s and the share of step time spent waiting for data.

    .venv/bin/python benchmarks/bench_pretrain.py [--steps 12] [key=value ...]     # default: small preset, batch 16

Writes benchmarks/results/pretrain.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from results_files import measured_on, write_results

from bassl.config import load_config
from bassl.sharding.run import build_shards
from bassl.synth.generate import generate
from bassl.train.pretrain import pretrain


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    base = ["model_preset=small", "pretrain.effective_batch=16", "pretrain.knn_every_epoch=false",
            "pretrain.log_every=1000", "pretrain.checkpoint_every=100000", "synth.train_movies=4", "synth.val_movies=1",
            "synth.test_movies=1", "synth.pretrain_only_movies=1", *args.overrides]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = load_config(base)
        generate(tmp / "movienet", cfg.synth, progress=False)
        build_shards(cfg, tmp / "movienet", tmp / "shards", progress=False)
        for loader in ("dali", "torch"):
            cfg = load_config([*base, f"data.root={tmp / 'movienet'}", f"data.shards={tmp / 'shards'}",
                               f"pretrain.loader={loader}"])
            pretrain(cfg, tmp / f"run_{loader}", max_steps=2)  # warm-up: first steps allocate and compile
            run = pretrain(cfg, tmp / f"run_{loader}", resume=True, max_steps=2 + args.steps)
            rows[loader] = run["throughput"]
    result = {**measured_on(),
              "setup": f"{cfg.method}, {cfg.model_preset} preset ({cfg.model.encoder.arch}, {cfg.augment.image_size} px), "
                       f"effective batch {cfg.pretrain.effective_batch}, {args.steps} timed steps after 2 warm-up steps",
              "loaders": rows}
    lines = [f"# Pre-training throughput ({result['date']})", "", f"{result['machine']}; {result['setup']}.", "",
             "| loader | steps/s | images/s | data-wait share |", "|---|---|---|---|"]
    for k, r in rows.items():
        lines.append(f"| {k} | {r['steps_per_s']:.3f} | {r['images_per_s']:.1f} | {100 * r['data_wait_share']:.0f} % |")
    write_results("pretrain", result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
