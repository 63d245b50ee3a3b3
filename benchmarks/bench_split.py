"""What ``--split`` costs: where clips must be re-encoded, bassl's one decode of the video for every clip
(``reencode_clips``) beside a decode from the start for each clip (what it did before, ``reencode_clip`` per clip);
where they are stream copies, one read of the packets for every clip (``copy_clips``) beside the code before, which
read and held every packet of the file for each clip (``copy_clip_before``, kept here). On the same file in the same
run (ratios, not times).

    .venv/bin/python benchmarks/bench_split.py [--seconds 120] [--scenes 24] [--repeats 2]

The video: 640x360 at 25 fps, H.264 shots of a moving bar (``bench_deinterlace.write_bar_clip``, progressive) with a
keyframe at the start of each of ``--scenes`` equal scenes, so every clip can be copied; ``reencode_clips``
re-encodes them all the same (libx264 veryfast, CRF 18, as --split does where a clip cannot be copied). Runs
alternate so that load on the machine falls on both ways; both ways write the same clips (checked: a packet or
frame routed to the wrong clip would show; re-encodes byte for byte, copies packet for packet, as the code before
started a copy's timestamps one B-frame delay late).

``--sound``: what the sound adds to a split where every clip is copied: ``split_clips`` of the same film with no
sound, with AAC (its packets copied into each clip) and with PCM in MOV (encoded to AAC for each clip), alternating;
writes benchmarks/results/split_sound.{json,md}.

``--memory``: peak memory of ``split_clips`` (as ``bassl segment --split`` calls it) copying 10-s clips out of a
grainy 320x180 video of ``--seconds`` (hundreds of MB) and out of the same video 4x over; writes
benchmarks/results/split_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_deinterlace import encode_video, write_bar_clip
from bench_ingest import concat, timed
from results_files import measured_on, write_results

from bassl.scenes.clips import copy_clips, reencode_clip, reencode_clips

SPLIT = ("import json, sys; from pathlib import Path; from bassl.scenes.clips import split_clips; "
         "doc = {'frames': int(sys.argv[2]), "
         "'scenes': [{'start_frame': a, 'end_frame': a + 249} for a in range(0, int(sys.argv[2]), 250)]}; "
         "clips = split_clips(Path(sys.argv[1]), doc, Path(sys.argv[3])); "
         "print(json.dumps(sorted({c['method'] for c in clips})))")


def copy_clip_before(src: Path, dst: Path, first: int, stop: int) -> None:
    """bassl's ``copy_clip`` before 2026-12-07 (commit 03e2180), kept here as the baseline: every packet of the file
    read and held, sorted, for each clip. (Right on this MP4; it dropped Matroska's dts-less first packets.)"""
    import av

    from bassl.data.atomic import atomic_path
    from bassl.video.decode import video_stream

    with atomic_path(dst) as tmp, av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        ist = video_stream(inp)
        ost = out.add_stream_from_template(ist)
        packets = sorted((p for p in inp.demux(ist) if p.pts is not None and p.dts is not None), key=lambda p: p.dts)
        pts_order = sorted(p.pts for p in packets)
        lo, hi = pts_order[first], pts_order[stop] if stop < len(pts_order) else None
        offset = None
        for p in packets:
            if p.pts < lo or (hi is not None and p.pts >= hi):
                continue
            if offset is None:
                offset = p.dts
            p.pts -= offset
            p.dts -= offset
            p.stream = ost
            out.mux(p)


def payloads(path: Path) -> list[bytes]:
    """The bytes of every video packet of ``path``, in file order."""
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def write_grainy(path: Path, seconds: int) -> Path:
    """320x180 at 25 fps, a still picture under fresh grain every frame (megabytes a second, like a film), a keyframe
    every 10 s."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 192, (180, 320, 3), dtype=np.uint8)
    grain = (base + rng.integers(0, 64, (180, 320, 3), dtype=np.uint8) for _ in range(seconds * 25))
    return encode_video(path, grain, (320, 180), {"preset": "ultrafast", "crf": "8", "g": "250", "sc_threshold": "0"})


def split_memory(seconds: int) -> None:
    """Peak RSS of copying every 10-s scene of a grainy video, and of the same video 4x over."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        one = write_grainy(Path(tmp) / "grainy.mp4", seconds)
        four = Path(tmp) / "grainy_x4.mp4"
        concat(one, four, 4)
        for video, n in ((one, seconds * 25), (four, 4 * seconds * 25)):
            wall, rss, out = timed([sys.executable, "-c", SPLIT, str(video), str(n), str(Path(tmp) / f"clips_{video.stem}")])
            assert json.loads(out.splitlines()[0]) == ["copy"], out
            rows.append({"video": video.name, "seconds": n / 25, "file_mib": video.stat().st_size / 2**20,
                         "clips": n // 250, "wall_s": wall, "peak_rss_mb": rss})
            print(rows[-1], flush=True)
            shutil.rmtree(Path(tmp) / f"clips_{video.stem}")
    result = {**measured_on(), "rows": rows}
    md = [f"# --split copies: peak memory against the file's size ({result['date']}, {result['machine']})", "",
          f"`.venv/bin/python benchmarks/bench_split.py --memory --seconds {seconds}`: `split_clips` (what `bassl "
          "segment --split` calls) in a fresh process, every 10-s scene a stream copy, on a grainy 320x180 H.264 "
          "video and on the same video 4x over. Peak RSS of the process.", "",
          "| video | length | file | clips | wall | peak RSS |", "|---|---|---|---|---|---|"]
    md += [f"| {r['video']} | {r['seconds']:.0f} s | {r['file_mib']:.0f} MiB | {r['clips']} | {r['wall_s']:.1f} s | "
           f"{r['peak_rss_mb']} MB |" for r in rows]
    write_results("split_memory", result, md)
    print("\n".join(md))


def with_sound(video: Path, dst: Path, codec: str) -> Path:
    """``video``'s packets beside a stereo 48 kHz sound track in ``codec`` as long as the picture: noise under a
    tone that changes every second, so that an encoder has as much to do as with real sound."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(video)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream(codec, rate=48000, layout="stereo")
        if codec == "aac":
            aout.bit_rate = 128000
        sample = 0
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            while sample / 48000 <= float(packet.dts * packet.time_base) + 0.1:  # the sound a little ahead
                t = (sample + np.arange(1024)) / 48000
                wave = 0.3 * np.sin(2 * np.pi * (220 + 110 * (t.astype(int) % 5)) * t) + 0.05 * rng.standard_normal(1024)
                frame = av.AudioFrame.from_ndarray((np.stack([wave, wave]) * 32767).astype(np.int16).T.reshape(1, -1),
                                                   format="s16", layout="stereo")
                frame.sample_rate, frame.pts = 48000, sample
                for p in aout.encode(frame):
                    out.mux(p)
                sample += 1024
            packet.stream = vout
            out.mux(packet)
        for p in aout.encode():
            out.mux(p)
    return dst


def split_sound(seconds: int, scenes: int, repeats: int) -> None:
    """``split_clips`` of one film silent, with AAC and with PCM; every clip a stream copy."""
    from bassl.scenes.clips import split_clips

    frames = seconds * 25
    bounds = np.linspace(0, frames, scenes + 1).astype(int)
    doc = {"frames": frames, "scenes": [{"start_frame": int(a), "end_frame": int(b) - 1}
                                        for a, b in zip(bounds[:-1], bounds[1:], strict=True)]}
    with tempfile.TemporaryDirectory() as tmp:
        silent = write_bar_clip(Path(tmp) / "film.mp4", seconds, (640, 360), interlaced=False,
                                keyframe_seconds=seconds // scenes)
        films = {"silent": silent, "AAC (copied)": with_sound(silent, Path(tmp) / "film_aac.mp4", "aac"),
                 "PCM in MOV (encoded to AAC)": with_sound(silent, Path(tmp) / "film_pcm.mov", "pcm_s16le")}
        times: dict[str, list[float]] = {name: [] for name in films}
        for r in range(repeats):
            for name, film in films.items():
                out = Path(tmp) / f"clips_{r}_{film.stem}"
                t0 = time.perf_counter()
                clips = split_clips(film, doc, out)
                times[name].append(time.perf_counter() - t0)
                assert {c["method"] for c in clips} == {"copy"}, clips
                shutil.rmtree(out)
        sizes = {name: film.stat().st_size / 2**20 for name, film in films.items()}
    med = {name: float(np.median(t)) for name, t in times.items()}
    result = {**measured_on(), "scenes": scenes,
              "video": f"640x360, 25 fps, {seconds} s, H.264, a keyframe at each scene; sound 48 kHz stereo",
              "file_mib": sizes, "seconds": times, "over_silent": {n: med[n] / med["silent"] for n in films}}
    md = [f"# --split with sound ({result['date']}, {result['machine']})", "",
          f"`.venv/bin/python benchmarks/bench_split.py --sound --seconds {seconds} --scenes {scenes} --repeats "
          f"{repeats}`: `split_clips` of {result['video']}, cut into {scenes} equal scenes, every clip a stream copy; "
          f"median of {repeats} alternating runs.", "",
          "| the film's sound | file | seconds | film seconds split per second | time vs silent |",
          "|---|---|---|---|---|"]
    md += [f"| {n} | {sizes[n]:.1f} MiB | {med[n]:.2f} | {seconds / med[n]:.0f} | {med[n] / med['silent']:.1f}x |"
           for n in films]
    write_results("split_sound", result, md)
    print("\n".join(md))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--scenes", type=int, default=24)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--memory", action="store_true", help="peak memory of copies only: results/split_memory.*")
    p.add_argument("--sound", action="store_true", help="what the sound adds: results/split_sound.*")
    args = p.parse_args()
    if args.memory:
        split_memory(args.seconds)
        return
    if args.sound:
        split_sound(args.seconds, args.scenes, args.repeats)
        return
    frames = args.seconds * 25
    bounds = np.linspace(0, frames, args.scenes + 1).astype(int)
    ways = {"re-encode, one pass": lambda clips: reencode_clips(film, clips),
            "re-encode, per clip": lambda clips: [reencode_clip(film, *c) for c in clips],
            "copy, one pass": lambda clips: copy_clips(film, clips),
            "copy, per clip": lambda clips: [copy_clip_before(film, *c) for c in clips]}
    times: dict[str, list[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        scene_seconds = args.seconds // args.scenes
        assert scene_seconds * args.scenes == args.seconds, "--seconds must be a multiple of --scenes"
        film = write_bar_clip(Path(tmp) / "film.mp4", args.seconds, (640, 360), interlaced=False,
                              keyframe_seconds=scene_seconds)
        for r in range(args.repeats):
            for name, way in ways.items():
                d = Path(tmp) / f"{name.replace(' ', '_').replace(',', '')}_{r}"
                d.mkdir()
                spans = zip(bounds[:-1], bounds[1:], strict=True)
                clips = [(d / f"scene_{i:03d}.mp4", int(a), int(b)) for i, (a, b) in enumerate(spans)]
                t0 = time.perf_counter()
                way(clips)
                times[name].append(time.perf_counter() - t0)
        a, b = Path(tmp) / "re-encode_one_pass_0", Path(tmp) / "re-encode_per_clip_0"
        same = all((a / f.name).read_bytes() == f.read_bytes() for f in sorted(b.iterdir()))
        a, b = Path(tmp) / "copy_one_pass_0", Path(tmp) / "copy_per_clip_0"  # the same packets (the code before
        same &= all(payloads(a / f.name) == payloads(f) for f in sorted(b.iterdir()))  # started them 2 frames late)
        assert same, "the two ways should write the same clips"
        size = film.stat().st_size / 2**20
    med = {name: float(np.median(t)) for name, t in times.items()}
    ratios = {kind: med[f"{kind}, per clip"] / med[f"{kind}, one pass"] for kind in ("re-encode", "copy")}
    result = {**measured_on(),
              "video": f"640x360, 25 fps, {args.seconds} s, H.264, a keyframe at each scene", "scenes": args.scenes,
              "file_mib": size, "repeats": args.repeats, "seconds": times,
              "identical_clips": same, "per_clip_over_one_pass": ratios}
    md = [f"# --split clips ({result['date']}, {result['machine']})", "",
          f"`.venv/bin/python benchmarks/bench_split.py --seconds {args.seconds} --scenes {args.scenes} "
          f"--repeats {args.repeats}`: {result['video']} ({size:.1f} MiB), cut into {args.scenes} equal scenes; "
          f"median of {args.repeats} alternating runs; the clips are the same both ways (bassl's one pass against "
          "one clip at a time; for copies, against the code before; re-encodes byte for byte, copies packet for "
          "packet). Re-encoded with libx264 veryfast, "
          "CRF 18.", "",
          "| clips | seconds | time vs one pass |", "|---|---|---|",
          f"| re-encoded in one decode of the video (bassl, `reencode_clips`) | {med['re-encode, one pass']:.1f} | 1.00x |",
          f"| re-encoded, `reencode_clip` per clip: a decode from the start each (the code before) | "
          f"{med['re-encode, per clip']:.1f} | {ratios['re-encode']:.2f}x |",
          f"| copied in one read of the packets (bassl, `copy_clips`) | {med['copy, one pass']:.2f} | 1.00x |",
          f"| copied, the code before (`copy_clip` of 03e2180, kept in this script): every packet read, held and "
          "sorted per clip | "
          f"{med['copy, per clip']:.2f} | {ratios['copy']:.2f}x |"]
    write_results("split", result, md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
