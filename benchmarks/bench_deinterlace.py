"""What deinterlacing costs: bassl's decode of an interlaced PAL clip with FFmpeg's bwdif (what ingest does for an
interlaced file) beside the same decode without it, on the same file in the same run (a ratio, not a time).

    .venv/bin/python benchmarks/bench_deinterlace.py [--seconds 40] [--repeats 3]

The clip: 720x576 at 25 fps, H.264 interlaced (top field first), shots of moving bars whose two fields are caught
half a frame apart, as a TV camera films. Each decode scales every frame to 128 px wide (what shot detection
reads); runs alternate with and without so that load on the machine falls on both. Writes
benchmarks/results/deinterlace.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from results_files import measured_on, write_results

from bassl.video.decode import frames


def encode_video(path: Path, pictures: Iterable[np.ndarray], size: tuple[int, int], options: dict[str, str],
                 rate: int = 25) -> Path:
    """``pictures`` ([H, W, 3] rgb24, one per frame) as H.264 (libx264 with ``options``) into ``path``. Also used by
    bench_split.py."""
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=rate, options=options)
        st.width, st.height, st.pix_fmt = *size, "yuv420p"
        for i, img in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def write_bar_clip(path: Path, seconds: int, size: tuple[int, int] = (720, 576), rate: int = 25,
                   interlaced: bool = True, keyframe_seconds: int | None = None) -> Path:
    """H.264 shots of 3 s, each a colour with a bar of its complement moving 8 pixels a frame; ``interlaced``: top
    field first, the bottom field caught half a frame (4 px) later, as a TV camera films; ``keyframe_seconds``: a
    keyframe only that often (none at the cuts), else where x264 puts them. Also used by bench_split.py."""
    w, h = size
    rng = np.random.default_rng(0)
    options = {"preset": "veryfast", **({"x264-params": "interlaced=1:tff=1"} if interlaced else {}),
               **({"g": str(keyframe_seconds * rate), "sc_threshold": "0"} if keyframe_seconds else {})}

    def pictures() -> Iterator[np.ndarray]:
        colour = rng.integers(0, 256, 3)
        for i in range(seconds * rate):
            if i % (3 * rate) == 0:  # a cut every 3 s
                colour = rng.integers(0, 256, 3)
            img = np.empty((h, w, 3), np.uint8)
            img[:] = colour
            for field, late in ((0, 0), (1, 4)) if interlaced else ((0, 0),):
                x = (i * 8 + late) % (w - 40)
                img[field:: 2 if interlaced else 1, x: x + 40] = 255 - colour  # [rows of the field, bar columns]
            yield img

    return encode_video(path, pictures(), size, options, rate)


def decode_seconds(path: Path, deinterlace: bool) -> tuple[float, int]:
    """(seconds, frames decoded as interlaced)."""
    t0 = time.perf_counter()
    n = sum(f.interlaced for f in frames(path, 128, 102, fmt="rgb24", deinterlace=deinterlace))
    return time.perf_counter() - t0, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_bar_clip(Path(tmp) / "pal.mkv", args.seconds)
        times: dict[str, list[float]] = {"plain": [], "bwdif": []}
        for _ in range(args.repeats):
            for name, d in (("plain", False), ("bwdif", True)):
                s, n = decode_seconds(clip, d)
                assert n == args.seconds * 25, (name, n)  # every frame decoded, and flagged interlaced
                times[name].append(s)
    plain, bwdif = float(np.median(times["plain"])), float(np.median(times["bwdif"]))
    result = {**measured_on(),
              "clip": f"720x576, 25 fps, {args.seconds} s, H.264 interlaced", "repeats": args.repeats,
              "seconds": times, "video_s_per_s": {"plain": args.seconds / plain, "bwdif": args.seconds / bwdif},
              "bwdif_over_plain": bwdif / plain}
    md = [f"# Deinterlacing cost ({result['date']}, {result['machine']})", "",
          f"`.venv/bin/python benchmarks/bench_deinterlace.py --seconds {args.seconds} --repeats {args.repeats}`: "
          f"{result['clip']}, every frame decoded and scaled to 128 px wide (shot detection's pass); median of "
          f"{args.repeats} alternating runs.", "",
          "| decode | video seconds per second | time vs plain |", "|---|---|---|",
          f"| plain (no deinterlacing) | {result['video_s_per_s']['plain']:.1f} | 1.00x |",
          f"| through bwdif (bassl, interlaced files) | {result['video_s_per_s']['bwdif']:.1f} | "
          f"{result['bwdif_over_plain']:.2f}x |"]
    write_results("deinterlace", result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
