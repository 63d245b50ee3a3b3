"""Pre-training windows/s from shards in an S3-compatible server on this machine (moto in server mode) against the
same shards on local disk, in one run; and the two ways of reading remote shards side by side:
``data.remote_fetch=ranges`` (a step's keyframes in a few concurrent ranged reads, one per window of shots) and
``shards`` (whole shards into a small in-memory cache).

    .venv/bin/python benchmarks/bench_object_storage.py [--steps 30] [--movies 12] [--shard-sizes 16MB 2MB]

Only the input side is timed (the torch reference loader, decode and augment included, no model), so the
difference is the storage. moto copies a whole object for every ranged GET, which makes each request cost more
the larger the shard (see the notes in the results); real S3 has ~10-30 ms to first byte instead.
Writes benchmarks/results/object_storage.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from results_files import measured_on, write_results
from s3_server import MotoServer  # noqa: E402  (the tests' server: a real moto process on localhost)

from bassl.config import load_config  # noqa: E402
from bassl.loaders import build_pretrain_loader  # noqa: E402
from bassl.loaders.shards import SHARD_CACHE  # noqa: E402


def windows_per_s(cfg, source: str, steps: int) -> float:
    h = build_pretrain_loader(cfg, source, loader="torch", batch_size=cfg.pretrain.effective_batch)
    h.set_epoch(0)
    it = iter(h)
    next(it)  # warm-up: connections, first reads
    t = time.perf_counter()
    n = 0
    for _ in range(steps):
        n += next(it)["images"].shape[0]
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--movies", type=int, default=12)
    p.add_argument("--shard-sizes", nargs="+", default=["16MB", "2MB"],
                   help="one table per size: 16MB shards all fit the 4-shard cache, 2MB ones do not")
    args = p.parse_args()
    base = ["model_preset=tiny", "pretrain.effective_batch=16", "pretrain.num_workers=2", "synth.width=216",
            "synth.height=120", f"synth.train_movies={args.movies}", "synth.val_movies=0", "synth.test_movies=1",
            "synth.pretrain_only_movies=0"]
    server = MotoServer()
    for k, v in server.env().items():
        os.environ[k] = v
    import boto3

    boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1").create_bucket(Bucket="bench")
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            from bassl.sharding.run import build_shards
            from bassl.synth.generate import generate

            cfg = load_config(base)
            generate(tmp / "movienet", cfg.synth, progress=False)
            for size in args.shard_sizes:
                local_dir, remote = tmp / f"shards_{size}", f"s3://bench/shards_{size}"
                build_shards(cfg, tmp / "movienet", local_dir, shard_bytes=size, progress=False)
                t = time.perf_counter()
                build_shards(cfg, tmp / "movienet", remote, shard_bytes=size, progress=False, staging=tmp / f"staging_{size}")
                tars = list(local_dir.glob("*.tar"))
                row = {"shards": len(tars), "mb": sum(f.stat().st_size for f in tars) / 1e6,
                       "publish_s": time.perf_counter() - t, "windows_per_s": {}}
                for name, source, fetch in (("local disk", str(local_dir), "ranges"),
                                            ("S3, ranged reads per window", remote, "ranges"),
                                            ("S3, whole shards cached", remote, "shards")):
                    row["windows_per_s"][name] = windows_per_s(load_config([*base, f"data.remote_fetch={fetch}"]), source,
                                                               args.steps)
                rows[size] = row
                print(size, row, flush=True)
    finally:
        server.stop()
    result = {**measured_on(),
              "setup": f"{args.movies + 1} synthetic movies at 216x120; bassl windows (19 images) through the torch loader "
                       f"with 2 workers, batch 16, {args.steps} steps; moto server on localhost; whole-shard cache of "
                       f"{SHARD_CACHE} shards", "by_shard_size": rows}
    lines = [f"# Shards in object storage ({result['date']}, {result['machine']})", "", result["setup"] + ".", "",
             "| shard size (shards, MB) | shards read from | windows/s | vs local disk |", "|---|---|---|---|"]
    for size, row in rows.items():
        local = row["windows_per_s"]["local disk"]
        lines += [f"| {size} ({row['shards']}, {row['mb']:.0f} MB) | {k} | {v:.1f} | {v / local:.2f}x |"
                  for k, v in row["windows_per_s"].items()]
    lines += ["", "`bassl shard --out s3://...` (build in staging, then publish): "
              + ", ".join(f"{size} shards {row['publish_s']:.1f} s" for size, row in rows.items()) + "."]
    write_results("object_storage", result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
