"""``bassl demo``: the README's first command. Runs every working stage on built-in synthetic data."""

from __future__ import annotations

import time
from pathlib import Path

from bassl.config import Config, save_config


def run_demo(out: Path, cfg: Config) -> int:
    """Generate the synthetic movies, validate them as a MovieNet-SSeg layout, then run the later stages."""
    from bassl.sharding.movienet import MovieNetSource
    from bassl.sharding.synthetic import generate

    out = Path(out)
    data_root = out / "movienet"
    start = time.perf_counter()
    print(f"[demo] 1/2 synthetic movies -> {data_root}")
    summary = generate(data_root, cfg.synth)
    print(summary.describe())
    print(f"[demo] 2/2 validating {data_root} as a MovieNet-SSeg layout")
    report = MovieNetSource.from_config(cfg.data, root=data_root).validate(window_size=cfg.window_size)
    print(report.describe())
    save_config(cfg, out)
    print(f"[demo] done in {time.perf_counter() - start:.1f} s; resolved config in {out / 'config.yaml'}")
    return 0 if report.ok else 1
