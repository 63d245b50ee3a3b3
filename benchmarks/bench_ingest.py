"""Raw video: ingest speed beside PySceneDetect's own command, cut accuracy of each detector, `bassl segment` speed,
scene accuracy and peak memory, on synthetic movies rendered to H.264 MP4 (their cuts and scenes known exactly).

    .venv/bin/python benchmarks/bench_ingest.py [--movies 3] [--model D/segmenter.pt] [--encoder D/pretrain/encoder.pt]
        [--transnetv2-movies 1] [--data DIR]

- ingest: seconds of video per second of wall time (shot detection + keyframes written), `bassl ingest` with
  1 and 2 workers, against `scenedetect -i FILE detect-adaptive` (detection alone, its default OpenCV decoder)
  timed on the same files in the same run;
- cut precision / recall / F1 at +-1 frame against the rendered cuts, for adaptive, content and transnetv2;
- segment: wall time against the video's length with the small preset (a freshly initialised segmenter times the
  same work as a trained one), and peak memory (max RSS of the process) on a movie and on the same movie 10 times
  over, to show it does not grow with the length;
- with --model (a trained segmenter, e.g. the demo's) and/or --encoder (its pre-trained encoder.pt alone): scene AP
  and mIoU of `bassl segment` on the rendered movies.

Writes benchmarks/results/ingest.{json,md}. ``--memory-only``: just ingest's and segment's peak memory and speed on
the movie and on it 10 times over, with ``video.bound_heap`` on (the default) and off, side by side; writes
benchmarks/results/memory_vs_length.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_files import measured_on, write_results

from bassl.config import load_config, to_dict
from bassl.synth.plan import plan_dataset
from bassl.synth.video import render_video

BIN = Path(sys.executable).parent


def cut_scores(found: list[int], truth: list[int], tolerance: int = 1) -> dict[str, float]:
    tp = sum(any(abs(f - t) <= tolerance for t in truth) for f in found)
    hit = sum(any(abs(f - t) <= tolerance for f in found) for t in truth)
    p, r = tp / max(1, len(found)), hit / max(1, len(truth))
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9), "found": len(found), "true": len(truth)}


# Runs a command as the only child of a fresh interpreter, so RUSAGE_CHILDREN's max RSS is that command's alone
# (in this process it would be the largest of every child so far).
_PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def timed(cmd: list[str], **kw) -> tuple[float, int, str]:
    """(wall seconds, peak RSS of the command and its children in MB, output) of a command."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t
    if out.returncode:
        raise RuntimeError(f"{cmd[:3]} failed: {out.stderr[-2000:]}")
    rss_kb = int(out.stderr.strip().splitlines()[-1])
    return wall, rss_kb // 1024, out.stdout + out.stderr


def concat(src: Path, dst: Path, times: int) -> None:
    """The same video ``times`` over, by copying its packets (no re-encode)."""
    import av

    with av.open(str(src)) as first:
        stream = first.streams.video[0]
        packets = [p for p in first.demux(stream) if p.dts is not None]
        span = max(p.pts for p in packets) - min(p.pts for p in packets) + packets[0].duration
    with av.open(str(dst), "w", format="mp4") as out:
        with av.open(str(src)) as inp:
            ost = out.add_stream_from_template(inp.streams.video[0])
        for i in range(times):
            with av.open(str(src)) as inp:
                for p in inp.demux(inp.streams.video[0]):
                    if p.dts is None:
                        continue
                    p.pts += i * span
                    p.dts += i * span
                    p.stream = ost
                    out.mux(p)


def small_segmenter(path: Path, preset: str = "small") -> None:
    """A segmenter with initial weights (``preset``, small by default): the same work per shot as a trained one."""
    import torch

    from bassl.models import build_boundary_model, build_pretrain_model
    from bassl.models.weights import export_segmenter

    cfg = load_config([f"model_preset={preset}"])
    torch.manual_seed(0)
    pre = build_pretrain_model(cfg)
    export_segmenter(path, build_boundary_model(cfg, pre.feature_dim), to_dict(cfg), 0.5,
                     {"config": to_dict(cfg), "state": pre.encoder.state_dict()}, {"method": "bassl"})


def memory_vs_length(first: Path, work: Path) -> dict:
    """Peak RSS and speed of ``bassl ingest`` and ``bassl segment`` (small preset) on ``first`` and on it 10x,
    ``video.bound_heap`` on and off."""
    from bassl.video.decode import probe

    small = work / "small_segmenter.pt"
    small_segmenter(small)
    long_video = work / "long" / f"{first.stem}_x10.mp4"
    long_video.parent.mkdir(exist_ok=True)
    concat(first, long_video, 10)
    rows = {}
    for command in ("ingest", "segment"):
        for bound in ("true", "false"):
            for name, video in (("one movie", first), ("the same movie 10x", long_video)):
                length = probe(video).frames / 24
                out = work / f"{command}_{video.stem}_{bound}"
                cmd = ([str(BIN / "bassl"), "ingest", str(video), "--out", str(out), "--no-progress"] if command == "ingest"
                       else [str(BIN / "bassl"), "segment", str(video), "--model", str(small), "--out", str(out),
                             "model_preset=small"])
                wall, rss, _ = timed([*cmd, f"video.bound_heap={bound}"])
                rows[f"{command}, bound_heap={bound}, {name}"] = {
                    "command": command, "bound_heap": bound, "video_s": length, "wall_s": wall,
                    "x_realtime": length / wall, "peak_rss_mb": rss}
                print(f"[bench_ingest] {command}, bound_heap={bound}, {name}: {rss} MB, {length / wall:.1f}x real time",
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
    return {"memory_vs_length": rows}


def write_memory_vs_length(result: dict) -> None:
    rows = result["memory_vs_length"]
    lines = [f"# ingest and segment: peak memory against the video's length ({result['date']}, {result['machine']})", "",
             "`.venv/bin/python benchmarks/bench_ingest.py --memory-only`: `bassl ingest` and `bassl segment` (small "
             "preset) on one rendered 426x240 H.264 movie and on the same movie 10 times over, `video.bound_heap` on "
             "(the default) and off. Peak RSS: the largest of the command's processes.", "",
             "| command, setting, video | video | wall | x real time | peak RSS |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['video_s']:.0f} s | {v['wall_s']:.1f} s | {v['x_realtime']:.1f} | {v['peak_rss_mb']} MB |"
              for k, v in rows.items()]
    lines.append("")
    for command in ("ingest", "segment"):
        for bound in ("true", "false"):
            one = rows[f"{command}, bound_heap={bound}, one movie"]
            ten = rows[f"{command}, bound_heap={bound}, the same movie 10x"]
            lines.append(f"- {command}, bound_heap={bound}: 10x the length, "
                         f"{100 * (ten['peak_rss_mb'] / one['peak_rss_mb'] - 1):+.1f} % peak memory.")
    write_results("memory_vs_length", result, lines)
    print("\n".join(lines))


def scene_metrics(doc: dict, plan) -> dict[str, float]:
    """AP of the boundary probabilities and mIoU of the scenes `segment` found, against the rendered movie's."""
    from bassl.eval.metrics import average_precision, movie_miou

    ends = np.cumsum([s.num_shots for s in plan.scenes]) - 1
    true_scene_ends = set(int(plan.shot_frames[e, 1]) for e in ends[:-1])
    shots = doc["shots"]
    labels = np.array([int(any(abs(s["end_frame"] - e) <= 1 for e in true_scene_ends)) for s in shots])
    probs = np.array([s["boundary_prob"] for s in shots])
    pred = np.zeros(len(shots), dtype=np.int64)
    pred[[sc["shots"][1] for sc in doc["scenes"]]] = 1
    timing = {"m": np.array([[s["start_frame"], s["end_frame"]] for s in shots])}
    labels[-1], pred[-1] = 1, 1
    miou = movie_miou(["m"] * len(shots), np.arange(len(shots)), pred, labels, timing)
    ap = average_precision(labels[:-1], probs[:-1])
    return {"ap": ap, "miou": miou, "positives": int(labels[:-1].sum()), "scenes_found": len(doc["scenes"]),
            "scenes_true": len(plan.scenes)}


SCENE_MODES = (("segment_trained", "a fine-tuned segmenter"), ("segment_frozen", "an encoder alone (frozen features)"))


def segment_scenes(args: argparse.Namespace, plans: list, videos: Path, work: Path) -> dict:
    """Scene AP and mIoU of `bassl segment` on every rendered movie, with --model and with --encoder."""
    result = {}
    for key, model in (("segment_trained", args.model), ("segment_frozen", args.encoder)):
        if model is None:
            continue
        scenes = {}
        for m in plans:
            out = work / f"{key}_{m.video_id}"
            timed([str(BIN / "bassl"), "segment", str(videos / f"{m.video_id}.mp4"), "--model", str(model), "--out", str(out)])
            scenes[m.video_id] = scene_metrics(json.loads((out / "scenes.json").read_text()), m)
        result[key] = {"model": str(model), "movies": scenes, "mean_ap": float(np.mean([s["ap"] for s in scenes.values()])),
                       "mean_miou": float(np.mean([s["miou"] for s in scenes.values()]))}
    return result


def scene_lines(result: dict) -> list[str]:
    lines = []
    for key, what in SCENE_MODES:
        if key in result:
            t = result[key]
            lines += ["", f"Scenes through `bassl segment` with {what}, {t['model']}: mean AP {t['mean_ap']:.1f}, mean mIoU "
                          f"{t['mean_miou']:.1f} over {len(t['movies'])} movies."]
    return lines


def write_scenes_only(result: dict) -> None:
    lines = [f"# Scenes of rendered movies through `bassl segment` ({result['date']}, {result['machine']})", "",
             result["data"] + ".", "", "| movie | " + " | ".join(f"{k} AP / mIoU" for k, _ in SCENE_MODES if k in result) + " |",
             "|---|" + "---|" * sum(k in result for k, _ in SCENE_MODES)]
    movies = next(result[k]["movies"] for k, _ in SCENE_MODES if k in result)
    for vid in movies:
        lines.append(f"| {vid} | " + " | ".join(f"{result[k]['movies'][vid]['ap']:.1f} / {result[k]['movies'][vid]['miou']:.1f}"
                                                 for k, _ in SCENE_MODES if k in result) + " |")
    write_results("ingest_scenes", result, lines + scene_lines(result))
    print("\n".join(lines + scene_lines(result)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--movies", type=int, default=3)
    p.add_argument("--transnetv2-movies", type=int, default=1, help="TransNetV2 runs at ~45 frames/s on 2 cores")
    p.add_argument("--model", type=Path, help="a trained segmenter.pt for the scene metrics")
    p.add_argument("--encoder", type=Path, help="a pre-trained encoder.pt alone: scene metrics from frozen features")
    p.add_argument("--data", type=Path, help="reuse a directory of rendered movies made by an earlier run")
    p.add_argument("--memory-only", action="store_true",
                   help="only ingest's and segment's memory against length, bound_heap on and off; writes "
                        "results/memory_vs_length.{json,md}")
    p.add_argument("--scenes-only", action="store_true",
                   help="only the scene metrics of --model and --encoder; writes results/ingest_scenes.{json,md}")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    videos = args.data or work / "videos"
    cfg = load_config([f"synth.train_movies={max(1, args.movies - 1)}", "synth.val_movies=0", "synth.test_movies=1",
                       "synth.pretrain_only_movies=0", "synth.width=426", "synth.height=240"])
    plans = list(plan_dataset(cfg.synth).movies)
    videos.mkdir(parents=True, exist_ok=True)
    for m in plans:
        if not (videos / f"{m.video_id}.mp4").is_file():
            render_video(m, cfg.synth, videos / f"{m.video_id}.mp4")
    seconds = sum((int(m.shot_frames[-1, 1]) + 1) / 24 for m in plans)
    result: dict = {**measured_on(),
                    "data": f"{len(plans)} synthetic movies rendered to 426x240 H.264 MP4 at 24 fps, {seconds / 60:.1f} min",
                    "video_seconds": seconds}

    if args.memory_only:
        write_memory_vs_length({**result, **memory_vs_length(videos / f"{plans[0].video_id}.mp4", work)})
        shutil.rmtree(work, ignore_errors=True)
        return

    if args.scenes_only:
        result.update(segment_scenes(args, plans, videos, work))
        write_scenes_only(result)
        shutil.rmtree(work, ignore_errors=True)
        return

    # ---- ingest speed against PySceneDetect's command ----------------------------------------------------
    speed = {}
    for workers in (1, 2):
        out = work / f"ingest{workers}"
        wall, _, _ = timed([str(BIN / "bassl"), "ingest", str(videos), "--out", str(out), "--no-progress",
                            f"video.workers={workers}"])
        speed[f"bassl ingest, {workers} worker(s)"] = seconds / wall
    wall = 0.0
    for m in plans:
        w, _, _ = timed([str(BIN / "scenedetect"), "-i", str(videos / f"{m.video_id}.mp4"), "-q", "-o", str(work),
                         "detect-adaptive", "list-scenes", "-n"])
        wall += w
    speed["scenedetect detect-adaptive (detection alone, 1 process)"] = seconds / wall
    result["speed_x_realtime"] = speed

    # ---- cut accuracy per detector -------------------------------------------------------------------
    from bassl.video.decode import probe
    from bassl.video.ingest import detect_shots

    cuts = {}
    for detector in ("adaptive", "content", "transnetv2"):
        chosen = plans[: args.transnetv2_movies] if detector == "transnetv2" else plans
        found, truth, offset = [], [], 0
        for m in chosen:
            path = videos / f"{m.video_id}.mp4"
            d = detect_shots(path, probe(path), load_config([f"video.detector={detector}"]).video)
            shots, count = d.frames, d.count
            found += [int(c) + offset for c in shots[1:, 0]]
            truth += [int(c) + offset for c in m.shot_frames[1:, 0]]
            offset += count + 100
        cuts[detector] = {**cut_scores(found, truth), "movies": len(chosen)}
    result["cuts"] = cuts

    # ---- segment: speed and memory (small preset), scene accuracy with a trained model ----------------------
    small = work / "small_segmenter.pt"
    small_segmenter(small)
    first = videos / f"{plans[0].video_id}.mp4"
    long_video = work / "long" / f"{plans[0].video_id}_x10.mp4"
    long_video.parent.mkdir()
    concat(first, long_video, 10)
    seg = {}
    for name, video in (("one movie", first), ("the same movie 10x", long_video)):
        length = probe(video).frames / 24
        wall, rss, _ = timed([str(BIN / "bassl"), "segment", str(video), "--model", str(small), "--out",
                              str(work / f"seg_{video.stem}"), "model_preset=small"])
        seg[name] = {"video_s": length, "wall_s": wall, "x_realtime": length / wall, "peak_rss_mb": rss}
    result["segment_small"] = seg
    result.update(segment_scenes(args, plans, videos, work))

    lines = [f"# Raw video ({result['date']}, {result['machine']})", "", result["data"] + ".", "",
             "| ingest | x real time |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in speed.items()]
    lines += ["", "| detector | cut precision | recall | F1 (+-1 frame) | movies |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['movies']} |" for k, v in cuts.items()]
    lines += ["", "| segment (small preset) | video | wall | x real time | peak RSS |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['video_s']:.0f} s | {v['wall_s']:.1f} s | {v['x_realtime']:.1f} | {v['peak_rss_mb']} MB |"
              for k, v in seg.items()]
    lines += scene_lines(result)
    write_results("ingest", result, lines)
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
