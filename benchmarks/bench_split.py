"""What ``--split`` costs where clips must be re-encoded: bassl's one decode of the video for every clip
(``reencode_clips``) beside a decode from the start for each clip (what it did before, ``reencode_clip`` per clip),
on the same file in the same run (a ratio, not a time).

    .venv/bin/python benchmarks/bench_split.py [--seconds 120] [--scenes 24] [--repeats 2]

The video: 640x360 at 25 fps, H.264 shots of a moving bar (``bench_deinterlace.write_bar_clip``, progressive) with a
keyframe only every 10 s (so scenes do not start on one), cut into
``--scenes`` equal scenes, each re-encoded with libx264 (veryfast, CRF 18) as --split does. Runs alternate so that
load on the machine falls on both; both write byte-identical clips (checked). Writes
benchmarks/results/split.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from bench_deinterlace import write_bar_clip

from bassl.video.scene_files import reencode_clip, reencode_clips

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    frames = args.seconds * 25
    bounds = np.linspace(0, frames, args.scenes + 1).astype(int)
    times: dict[str, list[float]] = {"one pass": [], "per clip": []}
    with tempfile.TemporaryDirectory() as tmp:
        video = write_bar_clip(Path(tmp) / "film.mp4", args.seconds, (640, 360), interlaced=False, keyframe_seconds=10)
        for r in range(args.repeats):
            for name in times:
                d = Path(tmp) / f"{name.replace(' ', '_')}_{r}"
                d.mkdir()
                spans = zip(bounds[:-1], bounds[1:], strict=True)
                clips = [(d / f"scene_{i:03d}.mp4", int(a), int(b)) for i, (a, b) in enumerate(spans)]
                t0 = time.perf_counter()
                if name == "one pass":
                    reencode_clips(video, clips)
                else:
                    for dst, a, b in clips:
                        reencode_clip(video, dst, a, b)
                times[name].append(time.perf_counter() - t0)
        a, b = Path(tmp) / "one_pass_0", Path(tmp) / "per_clip_0"
        same = all((a / f.name).read_bytes() == f.read_bytes() for f in sorted(b.iterdir()))
        assert same, "the two ways should write the same clips"
    one, per = float(np.median(times["one pass"])), float(np.median(times["per clip"]))
    result = {"date": datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
              "video": f"640x360, 25 fps, {args.seconds} s, H.264, keyframe every 10 s", "scenes": args.scenes,
              "repeats": args.repeats, "seconds": times, "identical_clips": same, "per_clip_over_one_pass": per / one}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "split.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Re-encoded --split clips ({result['date']}, {result['machine']})", "",
          f"`.venv/bin/python benchmarks/bench_split.py --seconds {args.seconds} --scenes {args.scenes} "
          f"--repeats {args.repeats}`: {result['video']}, cut into {args.scenes} equal scenes, every clip "
          f"re-encoded (libx264 veryfast, CRF 18); median of {args.repeats} alternating runs; the clips are "
          "byte-identical both ways.", "",
          "| clips re-encoded | seconds | time vs one pass |", "|---|---|---|",
          f"| one decode of the video for all clips (bassl, `reencode_clips`) | {one:.1f} | 1.00x |",
          f"| a decode from the start per clip (before) | {per:.1f} | {per / one:.2f}x |"]
    (RESULTS / "split.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
