"""Keyframes per second of `bassl synth`, end to end (plan, paint, render, encode, write), on this machine.

    .venv/bin/python benchmarks/bench_synth.py                      # the default SynthConfig, all cores
    .venv/bin/python benchmarks/bench_synth.py synth.workers=1 synth.train_movies=4

Writes into a temporary directory and deletes it afterwards; prints the summary and the JPEG size spread.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from bassl.config import load_config
from bassl.synth.generate import generate


def main(overrides: list[str]) -> None:
    cfg = load_config(overrides).synth
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        summary = generate(Path(tmp), cfg, progress=False)
        sizes = np.array([e.stat().st_size for d in os.scandir(Path(tmp) / "240P_frames") for e in os.scandir(d.path)])
    print(summary.describe())
    p5, p50, p95 = np.percentile(sizes, [5, 50, 95]) / 1024
    print(f"  JPEG KiB: p5 {p5:.1f}, median {p50:.1f}, p95 {p95:.1f}")
    print(f"  cores: {os.cpu_count()}, workers: {cfg.workers or os.cpu_count()}")


if __name__ == "__main__":
    main(sys.argv[1:])
