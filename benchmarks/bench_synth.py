"""Keyframes per second of `bassl synth`, end to end (plan, paint, render, encode, write), at MovieNet's 432x240
and at the demo's 216x120, the same movies in the same run.

Where the time goes (cProfile, one worker): resampling the set canvas (twice the frame in each direction) into
each keyframe, the float vignette and film grain, JPEG encoding, and per movie painting its sets and cast. All
but the last scale with the frame's pixels, so the demo renders half-size frames: the tiny model sees 64-pixel
crops of them anyway.

    .venv/bin/python benchmarks/bench_synth.py [--movies 6] [key=value ...]

Writes benchmarks/results/synth.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime
from pathlib import Path

from bassl.config import load_config
from bassl.synth.generate import generate

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--movies", type=int, default=6)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    base = [f"synth.train_movies={args.movies}", "synth.val_movies=0", "synth.test_movies=1", "synth.pretrain_only_movies=0",
            *args.overrides]
    rows = {}
    sizes = (("432x240 (MovieNet 240P, the default)", []), ("216x120 (the demo)", ["synth.width=216", "synth.height=120"]))
    for name, size in sizes:
        cfg = load_config([*base, *size]).synth
        with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
            summary = generate(Path(tmp), cfg, progress=False)
        rows[name] = {"keyframes": summary.keyframes, "seconds": summary.seconds,
                      "keyframes_per_s": summary.keyframes_per_second, "mean_kib": summary.bytes / summary.keyframes / 1024}
        print(name, rows[name], flush=True)
    first = next(iter(rows.values()))["keyframes_per_s"]
    result = {"date": datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU", "movies": args.movies + 1, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# `bassl synth` speed ({result['date']}, {result['machine']}, all cores)", "",
             f"{args.movies + 1} movies, end to end.", "", "| frame size | keyframes/s | vs 432x240 | mean JPEG |",
             "|---|---|---|---|"]
    lines += [f"| {k} | {v['keyframes_per_s']:.0f} | {v['keyframes_per_s'] / first:.2f}x | {v['mean_kib']:.1f} KiB |"
              for k, v in rows.items()]
    (RESULTS / "synth.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
