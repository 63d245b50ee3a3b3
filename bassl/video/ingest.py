"""``bassl ingest``: video files -> shots -> the MovieNet-SSeg layout, so ``bassl shard`` and ``pretrain`` take them.

Per video, two streaming passes (memory never depends on its length):

1. decode every frame at the detector's size and find the cuts (:mod:`bassl.video.shots`);
2. decode again and keep only each shot's three keyframes, as MovieNet picks them: start, middle and end of the
   shot (start and end inset by up to 2 frames, so a cut found a frame late never lends the previous shot's last
   frame), scaled to ``video.keyframe_height`` pixels and written as JPEGs.

A video's keyframes are written into a hidden directory that is renamed into place when the video is done, then
its record (``.ingest/<id>.json``: shots with their start and end times from the frames' presentation
timestamps, so variable-frame-rate files are timed right; frame rates, source); a finished video is kept by the next run. The
annotation files (``anno.pretrain.ndjson``, ``vid2idx.json``, ``videos.json`` with each video's real frame
rate) are written last, from every finished video. Video ids come from the file names.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bassl.config import VideoConfig, to_dict
from bassl.data.atomic import remove_dead_temps, temp_path, write_json
from bassl.data.movienet import ANNO_DIR, INGEST_RECORDS, LayoutWriter, annotation_row
from bassl.errors import DataError
from bassl.memory import bound_heap
from bassl.video.decode import VideoInfo, frames, probe
from bassl.video.names import video_id
from bassl.video.shots import DEFAULT_THRESHOLD, make_detector
from bassl.workers import process_maps, resolve_workers

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv"}
REPORT = "ingest_report.json"
RECORD_VERSION = 4  # 2: shot times from presentation timestamps ("shot_times"); 3: interlaced video deinterlaced;
# 4: interlaced frames deinterlaced wherever they are ("interlaced_frames"), times go on across a timestamp splice.
# Older records are ingested again.


# --------------------------------------------------------------------------------------------------
# Inputs and ids
# --------------------------------------------------------------------------------------------------


def find_videos(inputs: list[str | Path]) -> list[Path]:
    """Files as given, and the video files (by extension) under directories, sorted; a missing path is an error."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such file or directory")
    if not found:
        raise DataError(f"no video files in {', '.join(map(str, inputs))} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return list(dict.fromkeys(p.resolve() for p in found))


def assign_ids(paths: list[Path]) -> dict[Path, str]:
    """Each file's id; two files that would share one is an error naming both."""
    seen: dict[str, Path] = {}
    for p in paths:
        vid = video_id(p)
        if vid in seen:
            raise DataError(f"{seen[vid]} and {p} both become video id {vid!r}; rename one of them "
                            "(ids come from the file names, so a movie keeps its id across runs)")
        seen[vid] = p
    return {p: v for v, p in seen.items()}


# --------------------------------------------------------------------------------------------------
# One video
# --------------------------------------------------------------------------------------------------


def keyframe_frames(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``[N, 3]`` frame indices of each shot's start, middle and end keyframes (start/end inset up to 2 frames)."""
    n = ends - starts + 1
    inset = np.minimum(2, (n - 1) // 4)
    return np.stack([starts + inset, (starts + ends) // 2, ends - inset], axis=1)


@dataclass
class DetectedShots:
    frames: np.ndarray  # [N, 5] start, end, kf0, kf1, kf2 frame indices per shot
    times: np.ndarray  # [N, 2] start, end in seconds from the frames' presentation times (end = when the next shot starts)
    count: int  # frames decoded
    nominal_fps: float
    interlaced: int = 0  # of them decoded as two fields (and deinterlaced)
    splices: int = 0  # where the timestamps jumped back (recordings joined end to end)
    losses: list[tuple[float, float]] = field(default_factory=list)  # (time, seconds skipped) where frames went
    #   missing after packets the demuxer flagged corrupt

    @property
    def vfr(self) -> bool:
        """Whether the frames' durations differ from the nominal rate's by more than 1 % somewhere."""
        spans = np.diff(self.times, axis=1)[:, 0] / np.maximum(self.frames[:, 1] - self.frames[:, 0] + 1, 1)
        return bool(np.any(np.abs(spans * self.nominal_fps - 1) > 0.01))


def frame_end_times(starts: array, last_duration: float, fps: float) -> np.ndarray:
    """``[F + 1]``: each frame's presentation time (never decreasing: :func:`bassl.video.decode.frames` sees to
    it, so a broken pts order cannot make a shot end before it starts), then when the last one ends."""
    t = np.frombuffer(starts, dtype=np.float64) if len(starts) else np.zeros(0)
    step = last_duration or (float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / fps)
    return np.append(t, (t[-1] if len(t) else 0.0) + step)


def detect_shots(path: Path, info: VideoInfo, cfg: VideoConfig) -> DetectedShots:
    """Shots (frame ranges, keyframes, times). Pass 1 of 2; memory is 8 bytes per frame (the times)."""
    detector = make_detector(cfg, info.fps, info.width, info.height)
    cuts: list[int] = []
    starts_s = array("d")
    last_duration, interlaced, splices, flagged = 0.0, 0, 0, []
    for f in frames(path, *detector.size, fmt=detector.fmt, fps=info.fps):
        cuts += detector.process(f.index, f.image)
        starts_s.append(f.time)
        last_duration, interlaced, splices = f.duration, interlaced + f.interlaced, splices + f.splice
        if f.damaged:
            flagged.append(f.index)
    count = len(starts_s)
    if count == 0:
        raise DataError(f"{path}: the video stream has no frames")
    cuts += detector.finish(count - 1)
    bounds = np.array(sorted({c for c in cuts if 0 < c < count}), dtype=np.int64)
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds - 1, [count - 1]])
    t = frame_end_times(starts_s, last_duration, info.fps)
    return DetectedShots(np.concatenate([np.stack([starts, ends], axis=1), keyframe_frames(starts, ends)], axis=1),
                         np.stack([t[starts], t[ends + 1]], axis=1), count, info.nominal_fps, interlaced, splices,
                         frames_lost(t[:-1], flagged))


LOSS_WINDOW = (2, 8)  # frames before and after the one a corrupt packet is timed at, searched for a skip in time


def frames_lost(times: np.ndarray, flagged: list[int]) -> list[tuple[float, float]]:
    """(time, seconds skipped) for each flag of a corrupt packet near which the picture skips ahead by over 1.5
    frame steps (the median step). The demuxer flags a packet corrupt when its stream's counter breaks, which a lost
    packet does, and so does a join of recordings end to end: only a skip in time says frames went missing (a join
    whose clocks run on skips too)."""
    steps = np.diff(times)
    if not len(steps) or not flagged:
        return []
    typical = float(np.median(steps))
    found: dict[int, tuple[float, float]] = {}
    for i in flagged:
        near = range(max(i - LOSS_WINDOW[0], 0), min(i + LOSS_WINDOW[1], len(steps)))
        skips = [j for j in near if steps[j] > 1.5 * typical]
        if skips:
            j = max(skips, key=lambda j: steps[j])
            found[j] = (float(times[j + 1]), float(steps[j] - typical))
    return [found[j] for j in sorted(found)]


def short_decode_warning(path: Path, info: VideoInfo, decoded_s: float, count: int) -> str | None:
    """A damaged file usually decodes until the damage and then stops without an error (FFmpeg conceals it), and a
    stream cut at its start loses the frames before its first keyframe. The shots of what decoded are kept; this
    says so when the decoded length falls short of what the container states (by over 5 % and 1 s, or by frames
    the header counts)."""
    short_s = info.duration - decoded_s
    if info.duration and short_s > max(1.0, 0.05 * info.duration):
        return (f"{path}: decoded {decoded_s:.1f} s of the {info.duration:.1f} s the container states; the file is "
                "probably damaged or cut short, and only the shots of what decoded were kept")
    if info.frames and count < 0.95 * info.frames:
        return (f"{path}: decoded {count} of the {info.frames} frames the header counts; the file is probably damaged, "
                "and only the shots of what decoded were kept")
    return None


def loss_warning(path: Path, losses: list[tuple[float, float]]) -> str | None:
    """A transport stream that lost packets (a broadcast capture's reception errors) decodes on past the loss with no
    error and its length whole, its timestamps going on: the demuxer's corrupt-packet flags and a skip in time tell."""
    if not losses:
        return None
    at = ", ".join(f"{t:.1f} s ({skip:.2f} s skipped)" for t, skip in losses[:5]) + (", ..." if len(losses) > 5 else "")
    return (f"{path}: the picture skips ahead after damaged packets near {at}: frames lost to reception errors (or "
            "recordings joined end to end); a cut near there may be missed or found where there is none")


def several_streams_warning(path: Path, info: VideoInfo) -> str | None:
    """Of several video streams (camera angles, a preview track) one is read: say which, and how to get another."""
    if info.streams < 2:
        return None
    return (f"{path}: {info.streams} video streams; read video stream {info.stream} (FFmpeg's choice, as a player "
            f"shows it); to segment another, extract it first: ffmpeg -i IN -map 0:V:N -c copy OUT.mkv")


def splice_warning(path: Path, splices: int) -> str | None:
    """Timestamps that jump back are read as joins (:data:`bassl.video.decode.TIMESTAMP_SPLICE_S`): say so, since
    the times written are then continued, not the file's own."""
    if not splices:
        return None
    return (f"{path}: the timestamps jump back {splices} time(s), as where recordings are joined end to end; times "
            "go on across each join, and --split re-encodes every clip")


@dataclass(frozen=True)
class IngestTask:
    path: Path
    video_id: str
    root: Path
    cfg: VideoConfig
    on_error: str


@dataclass
class IngestResult:
    record: dict[str, Any] | None = None
    kept: bool = False
    skipped: dict[str, str] | None = None
    seconds: float = 0.0


def source_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"source": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def ingest_record_path(root: Path, vid: str) -> Path:
    return root / INGEST_RECORDS / f"{vid}.json"


# the video.* settings that make a video's shots and keyframes (workers, and what only segment reads, do not)
SHOT_SETTINGS = ("detector", "threshold", "min_shot_seconds", "detect_width", "keyframe_height", "jpeg_quality")


def shot_settings(video_settings: dict[str, Any]) -> dict[str, Any]:
    return {k: video_settings.get(k) for k in SHOT_SETTINGS}


def read_record(path: Path) -> dict[str, Any] | None:
    """An ingest record whose video's keyframes are in place (a record is written last, but a crash can leave one
    whose keyframes a later run took away); None for none, or one cut short."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    root = path.parent.parent  # records are ROOT/.ingest/<video id>.json
    return rec if (LayoutWriter(root).frames_root / rec["video_id"]).is_dir() else None


def finished(task: IngestTask) -> dict[str, Any] | None:
    """The record of a video this run can keep: same file (size, mtime) and settings, keyframes in place."""
    rec = read_record(ingest_record_path(task.root, task.video_id))
    same = rec is not None and (rec.get("version") == RECORD_VERSION and rec.get("key") == source_key(task.path)
                                and shot_settings(rec.get("settings") or {}) == shot_settings(to_dict(task.cfg)))
    return rec if same else None


def ingest_one(task: IngestTask) -> IngestResult:
    """Ingest one video (or keep it from an earlier run); in skip mode a bad file becomes a recorded skip."""
    start = time.perf_counter()
    rec = finished(task)
    if rec is not None:
        return IngestResult(rec, kept=True)
    if task.cfg.bound_heap:
        bound_heap()  # in the process that decodes (a pool worker or this one): memory independent of length
    try:
        rec = _ingest(task)
    except DataError as e:
        if task.on_error != "skip":
            raise
        return IngestResult(skipped={"path": str(task.path), "video_id": task.video_id, "reason": str(e)})
    return IngestResult(rec, seconds=time.perf_counter() - start)


def _ingest(task: IngestTask) -> dict[str, Any]:
    from PIL import Image

    path, vid, cfg = task.path, task.video_id, task.cfg
    layout = LayoutWriter(task.root)
    ingest_record_path(task.root, vid).unlink(missing_ok=True)  # an older record must not vouch for what is replaced
    info = probe(path)
    detected = detect_shots(path, info, cfg)
    shots, count = detected.frames, detected.count
    wanted: dict[int, list[tuple[int, int]]] = {}
    for s, row in enumerate(shots):
        for k in range(3):
            wanted.setdefault(int(row[2 + k]), []).append((s, k))
    # Pass 2: the keyframes, into a hidden directory renamed into place once complete.
    final = layout.frames_root / vid
    work = temp_path(final)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    w, h = info.scaled(cfg.keyframe_height)
    written = 0
    try:
        for f in frames(path, w, h, fmt="rgb24", only=set(wanted), rotation=info.rotation):
            if f.image is None:
                continue
            buf = io.BytesIO()
            Image.fromarray(f.image).save(buf, "JPEG", quality=cfg.jpeg_quality)
            for s, k in wanted[f.index]:
                (work / layout.keyframe_path(vid, s, k).name).write_bytes(buf.getvalue())
                written += 1
        if written != 3 * len(shots):
            raise DataError(f"{path}: decoded {count} frames in the first pass but the second pass ended early "
                            f"({written} of {3 * len(shots)} keyframes); the file may be damaged")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    layout.write_shot_timing(vid, shots)
    warning = " ".join(w for w in (several_streams_warning(path, info), splice_warning(path, detected.splices),
                                   loss_warning(path, detected.losses),
                                   short_decode_warning(path, info, float(detected.times[-1, 1]), count)) if w)
    rec = {"version": RECORD_VERSION, "video_id": vid, "key": source_key(path), "settings": to_dict(cfg),
           "fps": info.fps, "nominal_fps": info.nominal_fps, "vfr": detected.vfr, "frames": count,
           "duration": float(detected.times[-1, 1]), "start": info.start, "width": info.width, "height": info.height,
           "rotation": info.rotation, "codec": info.codec, "interlaced_frames": detected.interlaced,
           "timestamp_splices": detected.splices, "frames_lost_near": [round(t, 3) for t, _ in detected.losses],
           "video_stream": [info.stream, info.streams],
           "shots": len(shots), "detector": cfg.detector, "threshold": cfg.threshold or DEFAULT_THRESHOLD[cfg.detector],
           "keyframe_size": [w, h], "shot_times": np.round(detected.times, 6).tolist(),
           **({"warning": warning} if warning else {})}
    write_json(ingest_record_path(task.root, vid), rec)
    return rec


# --------------------------------------------------------------------------------------------------
# Many videos
# --------------------------------------------------------------------------------------------------


@dataclass
class IngestSummary:
    root: Path
    videos: int = 0
    ingested: int = 0
    kept: int = 0
    shots: int = 0
    video_seconds: float = 0.0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    parts: int = 0  # a --merge of this many parts
    part: tuple[int, int] | None = None  # this run's --part I/N

    def report(self) -> dict[str, Any]:
        """``ingest_report.json`` (a part's: its ``report.part-*.json``, with ``part`` added)."""
        return {"videos": self.videos, "skipped": self.skipped, "warnings": self.warnings}

    def describe(self) -> str:
        speed = f", {self.video_seconds / max(self.seconds, 1e-9):.1f}x real time" if self.ingested else ""
        if self.parts:
            lines = [f"{self.videos} video(s) in {self.root}, merged from {self.parts} parts: {self.shots} shots from "
                     f"{self.video_seconds / 60:.1f} min of video"]
        else:
            lines = [f"{self.videos} video(s) in {self.root} ({self.ingested} ingested, {self.kept} kept from an "
                     f"earlier run): {self.shots} shots from {self.video_seconds / 60:.1f} min of video in "
                     f"{self.seconds:.1f} s{speed}"]
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} (see {REPORT}), e.g. {self.skipped[0]['reason']}")
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.part is not None:  # the annotation files come with the merge
            lines.append(f"  next: when all {self.part[1]} parts are done: bassl ingest --out {self.root} --merge")
        else:
            lines.append(f"  next: bassl shard --source {self.root} --out SHARDS, then bassl pretrain data.shards=SHARDS")
        return "\n".join(lines)


def part_report(root: Path, part: tuple[int, int]) -> Path:
    return root / INGEST_RECORDS / f"report.part-{part[0]:05d}-of-{part[1]:05d}.json"


def refuse_foreign_layout(root: Path) -> None:
    """Ingest writes the annotation files from its own records; a layout it did not write (MovieNet-SSeg, `bassl
    synth`) would lose its annotations, so it is refused."""
    anno = root / ANNO_DIR
    if not (root / INGEST_RECORDS).is_dir() and anno.is_dir() and any(anno.glob("anno.*.ndjson")):
        raise DataError(f"{root} holds annotations that `bassl ingest` did not write ({anno}); ingesting into it would "
                        "replace them: give ingest a new --out (pre-training reads one layout per run)")


def remove_renamed(root: Path, ids: dict[str, str]) -> list[str]:
    """Videos of this run kept under another id by an earlier bassl (the id rule for names beyond ASCII changed on
    2026-12-08: été.mp4 was 't', now 'ete'): removed, so that no video is in the layout twice. ``ids``: source path
    -> this run's id. Returns a line per video removed."""
    layout, lines = LayoutWriter(root), []
    for path in sorted((root / INGEST_RECORDS).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            source, old = rec["key"]["source"], rec["video_id"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a report, or not a record of ours
        if source in ids and ids[source] != old:
            path.unlink()
            layout.remove_movie(old)
            lines.append(f"{source}: ingested earlier as video id {old!r}, now {ids[source]!r}; the old one was removed")
    return lines


def ingest_videos(inputs: list[str | Path], out: str | Path, cfg: VideoConfig, on_error: str = "error",
                  progress: bool = True, part: tuple[int, int] | None = None) -> IngestSummary:
    """Ingest every video of ``inputs`` (files or directories) into the layout at ``out``; resumable.

    ``part=(I, N)``: only every N-th file of the sorted list from the I-th (a Slurm array task); ids still come from
    the whole list, so the parts agree. A part writes its videos and its report, not the annotation files:
    :func:`merge_ingest` writes those once every part is done."""
    if on_error not in ("error", "skip"):
        raise DataError(f"on_error {on_error!r}: choose error or skip")
    start = time.perf_counter()
    root = Path(out).expanduser().resolve()
    ids = assign_ids(find_videos(inputs))
    refuse_foreign_layout(root)
    (root / INGEST_RECORDS).mkdir(parents=True, exist_ok=True)
    tasks = [IngestTask(p, v, root, cfg, on_error) for p, v in ids.items()]
    if part is not None:
        tasks = tasks[part[0] :: part[1]]
    summary = IngestSummary(root, videos=len(tasks), part=part)
    summary.warnings += remove_renamed(root, {str(t.path): t.video_id for t in tasks})
    for folder in (LayoutWriter(root).frames_root, root / INGEST_RECORDS):  # what killed runs left half-written
        remove_dead_temps(folder)
    with process_maps(min(resolve_workers(cfg.workers), len(tasks))) as maps, \
            tqdm(total=len(tasks), unit="video", desc="ingest", disable=not progress) as bar:
        for result in maps.unordered(ingest_one, tasks):
            bar.update(1)
            if result.skipped:
                summary.skipped.append(result.skipped)
                continue
            rec = result.record
            if rec.get("warning"):
                summary.warnings.append(rec["warning"])
            summary.kept += result.kept
            summary.ingested += not result.kept
            summary.shots += rec["shots"]
            if not result.kept:
                summary.video_seconds += rec["duration"]
            bar.set_postfix_str(f"{rec['video_id']}: {rec['shots']} shots", refresh=False)
    if part is None:
        write_annotations(root)
        write_json(root / REPORT, summary.report())
    else:
        write_json(part_report(root, part), {**summary.report(), "part": list(part)})
    summary.seconds = time.perf_counter() - start
    return summary


def merge_ingest(out: str | Path) -> IngestSummary:
    """After every ``--part`` finished: the annotation files from all finished videos and one report from the parts'."""
    root = Path(out).expanduser().resolve()
    reports = [json.loads(p.read_text()) for p in sorted((root / INGEST_RECORDS).glob("report.part-*.json"))]
    if not reports:
        raise DataError(f"{root}: no ingest parts to merge (run `bassl ingest ... --out {root} --part I/N` first)")
    counts = {r["part"][1] for r in reports}
    if len(counts) != 1 or len(reports) != counts.pop():
        got = sorted(tuple(r["part"]) for r in reports)
        raise DataError(f"{root}: the parts on disk are {got}; every part 0..N-1 of one N must finish before --merge "
                        "(run the missing ones again: finished videos are kept)")
    records = finished_records(root)
    by_settings: dict[str, list[str]] = {}
    for rec in records:
        by_settings.setdefault(json.dumps(shot_settings(rec["settings"]), sort_keys=True), []).append(rec["video_id"])
    if len(by_settings) > 1:
        sets = "; ".join(f"{', '.join(v[:3])}{' ...' if len(v) > 3 else ''}: {k}" for k, v in by_settings.items())
        raise DataError(f"{root}: the parts cut shots with different video.* settings ({sets}); run the odd part(s) "
                        "again with the same overrides as the others (their videos are ingested again), then --merge")
    write_annotations(root, records)
    summary = IngestSummary(root, videos=sum(r["videos"] for r in reports),
                            skipped=[s for r in reports for s in r["skipped"]],
                            warnings=[w for r in reports for w in r.get("warnings", [])])
    write_json(root / REPORT, summary.report())
    summary.parts, summary.shots = len(reports), sum(r["shots"] for r in records)
    summary.video_seconds = sum(r["duration"] for r in records)
    return summary


def finished_records(root: Path) -> list[dict[str, Any]]:
    """The ingest records of the videos under ``root`` whose keyframes are in place, in file order."""
    return [rec for p in sorted((root / INGEST_RECORDS).glob("*.json"))
            if not p.name.startswith("report.") and (rec := read_record(p)) is not None]


def write_annotations(root: Path, records: list[dict[str, Any]] | None = None) -> None:
    """``anno.pretrain.ndjson``, ``vid2idx.json`` and ``videos.json`` from every finished video under ``root``
    (``records``: those :func:`finished_records` gives, when the caller has them already)."""
    layout = LayoutWriter(root)
    records = finished_records(root) if records is None else records
    rows = [annotation_row(r["video_id"], s, r["shots"]) for r in records for s in range(r["shots"])]
    info = {r["video_id"]: {k: r[k] for k in ("fps", "nominal_fps", "vfr", "frames", "duration", "width", "height",
                                              "codec", "detector", "threshold")}
            | {"source": r["key"]["source"]} for r in records}
    layout.write_annotations({"pretrain": rows}, {r["video_id"]: i for i, r in enumerate(records)}, info)
