"""Keyframes per second of `bassl synth`, end to end (plan, paint, render, encode, write), at MovieNet's 432x240
and at the demo's 216x120, the same movies in the same run.

Where the time goes (cProfile, one worker): resampling the set canvas (twice the frame in each direction) into
each keyframe, the float vignette and film grain, JPEG encoding, and per movie painting its sets and cast. All
but the last scale with the frame's pixels, so the demo renders half-size frames: the tiny model sees 64-pixel
crops of them anyway.

    .venv/bin/python benchmarks/bench_synth.py [--movies 6] [--baseline b3492ac] [key=value ...]

``--baseline REV`` also runs the generator as it was at git revision REV (default: the commit before the
speed-ups), at 432x240, in the same run: the competitor is bassl's own earlier code.

Writes benchmarks/results/synth.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from results_files import measured_on, write_results

from bassl.config import load_config
from bassl.synth.generate import generate

REPO = Path(__file__).resolve().parent.parent
_RUN = ("import json, sys, tempfile; from pathlib import Path; from bassl.config import load_config; "
        "from bassl.synth.generate import generate; d = tempfile.mkdtemp(); "
        "s = generate(Path(d), load_config(sys.argv[1:]).synth, progress=False); "
        "print(json.dumps([s.keyframes, s.seconds, s.keyframes_per_second, s.bytes]))")


def generate_at(rev: str, overrides: list[str]) -> dict:
    """The generator of git revision ``rev``, run from a temporary worktree in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="bench_synth_rev_") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            out = subprocess.run([sys.executable, "-c", _RUN, *overrides], env={**os.environ, "PYTHONPATH": str(tree)},
                                 capture_output=True, text=True, check=True).stdout
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)
    keyframes, seconds, kps, size = json.loads(out.strip().splitlines()[-1])
    return {"keyframes": keyframes, "seconds": seconds, "keyframes_per_s": kps, "mean_kib": size / keyframes / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--movies", type=int, default=6)
    p.add_argument("--baseline", default="b3492ac", help="git revision of the earlier generator ('' to skip)")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    base = [f"synth.train_movies={args.movies}", "synth.val_movies=0", "synth.test_movies=1", "synth.pretrain_only_movies=0",
            *args.overrides]
    rows = {}
    if args.baseline:
        rows[f"432x240, the generator at {args.baseline}"] = generate_at(args.baseline, base)
        print(rows, flush=True)
    sizes = (("432x240 (MovieNet 240P, the default)", []), ("216x120 (the demo)", ["synth.width=216", "synth.height=120"]))
    for name, size in sizes:
        cfg = load_config([*base, *size]).synth
        with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
            summary = generate(Path(tmp), cfg, progress=False)
        rows[name] = {"keyframes": summary.keyframes, "seconds": summary.seconds,
                      "keyframes_per_s": summary.keyframes_per_second, "mean_kib": summary.bytes / summary.keyframes / 1024}
        print(name, rows[name], flush=True)
    first = next(iter(rows.values()))["keyframes_per_s"]  # the baseline's, or the default size's
    result = {**measured_on(), "movies": args.movies + 1, "rows": rows}
    lines = [f"# `bassl synth` speed ({result['date']}, {result['machine']}, all cores)", "",
             f"{args.movies + 1} movies, end to end.", "", "| generator, frame size | keyframes/s | vs first row | mean JPEG |",
             "|---|---|---|---|"]
    lines += [f"| {k} | {v['keyframes_per_s']:.0f} | {v['keyframes_per_s'] / first:.2f}x | {v['mean_kib']:.1f} KiB |"
              for k, v in rows.items()]
    write_results("synth", result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
