"""``bassl synth``: synthetic movies written in exactly the MovieNet-SSeg layout (method.md §3), our built-in benchmark.

A movie is a sequence of scenes (:mod:`bassl.synth.plan`) shot in procedurally painted sets with a recurring
cast (:mod:`bassl.synth.art`, :mod:`bassl.synth.camera`), with the cases that make real scene segmentation hard:
close-ups that look alike across scenes, sets that come back, lighting changes within a scene, characters
carried over and similar-looking places next to each other.

Writing order: keyframes (in parallel over movies), shot timing, then the annotation files last, each file
written through :class:`bassl.data.movienet.LayoutWriter` (atomically). A crashed run has no annotation files, so it is never
mistaken for a complete dataset; the same seed gives byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.queues
import os
import queue
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from bassl.config import SynthConfig
from bassl.data.atomic import write_atomic
from bassl.data.movienet import ANNO_DIR, FRAMES_DIR, SHOT_TIMING_DIR, LayoutWriter, annotation_row, keyframe_name
from bassl.errors import DataError
from bassl.synth.camera import MovieShoot
from bassl.synth.photos import PhotoShoot, photo_paths
from bassl.synth.plan import SPLITS, DatasetPlan, MoviePlan, plan_dataset

MARKER = ".bassl-synth"  # marks a directory as ours, so stale synthetic movies in it may be removed
SYNTH_ID = re.compile(r"^tt9\d{6}$")
ANNO_SPLITS = {"pretrain": ("pretrain_only", "train", "val"), "train": ("train",), "val": ("val",),
               "test": ("test",), "trainvaltest": ("train", "val", "test")}
PROGRESS_EVERY = 8  # shots between progress messages from a worker


@dataclass
class SynthSummary:
    root: Path
    movies: dict[str, int] = field(default_factory=dict)  # split -> movies
    shots: int = 0
    scenes: int = 0
    keyframes: int = 0
    labelled_shots: int = 0
    positives: int = 0  # boundary_label == 1
    movie_ends: int = 0  # boundary_label == -1 (the final shot of each labelled movie)
    bytes: int = 0  # keyframe JPEGs
    seconds: float = 0.0

    @property
    def positive_share(self) -> float:
        return self.positives / max(1, self.labelled_shots)

    @property
    def mean_scene_shots(self) -> float:
        return self.shots / max(1, self.scenes)

    @property
    def keyframes_per_second(self) -> float:
        return self.keyframes / max(self.seconds, 1e-9)

    def describe(self) -> str:
        splits = ", ".join(f"{n} {name}" for name, n in self.movies.items())
        kb = self.bytes / max(1, self.keyframes) / 1024
        return "\n".join([
            f"synthetic MovieNet-SSeg layout in {self.root}",
            f"  movies: {sum(self.movies.values())} ({splits})",
            f"  shots: {self.shots}, scenes: {self.scenes} (mean {self.mean_scene_shots:.1f} shots per scene)",
            f"  labelled shots: {self.labelled_shots}, scene ends: {self.positives} ({100 * self.positive_share:.1f} %; "
            f"{100 * (self.positives + self.movie_ends) / max(1, self.labelled_shots):.1f} % counting the "
            f"{self.movie_ends} movie ends labelled -1)",
            f"  keyframes: {self.keyframes}, {self.bytes / 2**20:.1f} MiB (mean {kb:.1f} KiB per JPEG)",
            f"  {self.seconds:.1f} s, {self.keyframes_per_second:.0f} keyframes/s",
        ])


def generate(out_dir: Path, cfg: SynthConfig, progress: bool = True) -> SynthSummary:
    """Write the synthetic dataset under ``out_dir`` (MovieNet-SSeg layout) and return its counts."""
    start = time.perf_counter()
    root = Path(out_dir).expanduser().resolve()
    if cfg.source == "photos":
        photo_paths()  # fails here, naming the package to install, rather than in every worker
    plan = plan_dataset(cfg)
    _prepare(root, plan)
    layout = LayoutWriter(root)
    summary = SynthSummary(root, movies={name: len(plan.split(name)) for name in SPLITS})
    summary.keyframes = 3 * sum(m.num_shots for m in plan.movies)
    with tqdm(total=summary.keyframes, unit="kf", desc="synth", disable=not progress, smoothing=0.1) as bar:
        summary.bytes = _render_all(layout, plan, cfg, lambda shots: bar.update(3 * shots))
    for m in plan.movies:
        summary.shots += m.num_shots
        summary.scenes += len(m.scenes)
        if m.labelled:
            summary.labelled_shots += m.num_shots
            summary.positives += int((m.boundary_labels == 1).sum())
            summary.movie_ends += int((m.boundary_labels == -1).sum())
            layout.write_shot_timing(m.video_id, m.shot_frames)  # start, end, keyframes, at 24 fps
    layout.write_annotations(_annotations(plan, cfg), plan.vid2idx)
    summary.seconds = time.perf_counter() - start
    return summary


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _prepare(root: Path, plan: DatasetPlan) -> None:
    """Invalidate a previous run's annotations first; never touch a directory that `bassl synth` did not write."""
    frames, anno, timing = root / FRAMES_DIR, root / ANNO_DIR, root / SHOT_TIMING_DIR
    ours = {m.video_id for m in plan.movies}
    foreign = sorted(e.name for e in os.scandir(frames) if e.is_dir() and e.name not in ours) if frames.is_dir() else []
    annotated = anno.is_dir() and any(anno.glob("anno.*.ndjson"))
    if (foreign or annotated) and not (root / MARKER).is_file() or not all(SYNTH_ID.match(v) for v in foreign):
        raise DataError(f"{root} holds a dataset that `bassl synth` did not write (or movies it would not write: "
                        f"{', '.join(foreign[:3]) or 'annotation files'}); pass an empty directory to --out or delete it")
    for path in [anno / "vid2idx.json", *(anno / f"anno.{name}.ndjson" for name in ANNO_SPLITS)]:
        path.unlink(missing_ok=True)
    for vid in foreign:  # a previous synthetic run with another seed or size
        shutil.rmtree(frames / vid)
    if timing.is_dir():
        labelled = {m.video_id for m in plan.movies if m.labelled}
        for path in timing.glob("tt9*.txt"):
            if SYNTH_ID.match(path.stem) and path.stem not in labelled:
                path.unlink()
    for d in (frames, anno, timing):
        d.mkdir(parents=True, exist_ok=True)
    write_atomic(root / MARKER, "written by `bassl synth`; the next run may replace the synthetic movies here\n")


def _annotations(plan: DatasetPlan, cfg: SynthConfig) -> dict[str, list[dict]]:
    """The rows of every annotation file: ids only for the pre-training split, labels and scenes for the rest."""
    vid2idx, offsets = plan.vid2idx, plan.scene_offsets
    out: dict[str, list[dict]] = {}
    for name, splits in ANNO_SPLITS.items():
        rows = out[name] = []
        for m in plan.movies:
            if m.split not in splits:
                continue
            num_shot = m.num_shots if cfg.num_shot_convention == "count" else m.num_shots - 1
            for shot in range(m.num_shots):
                if name == "pretrain":
                    rows.append(annotation_row(m.video_id, shot, num_shot))
                else:
                    scene = int(m.scene_of_shot[shot])
                    rows.append(annotation_row(m.video_id, shot, num_shot, int(m.boundary_labels[shot]), vid2idx[m.video_id],
                                               scene, offsets[m.video_id] + scene))
    return out


# --------------------------------------------------------------------------------------------------
# Rendering, parallel over movies
# --------------------------------------------------------------------------------------------------


def render_movie(plan: MoviePlan, cfg: SynthConfig, layout: LayoutWriter, tick: Callable[[int], None]) -> int:
    """Write one movie's keyframes (replacing what a previous run left there); returns the bytes written."""
    directory = layout.frames_root / plan.video_id
    directory.mkdir(parents=True, exist_ok=True)
    stale = {e.name for e in os.scandir(directory)}
    total, pending = 0, 0
    shoot = PhotoShoot(plan, cfg) if cfg.source == "photos" else MovieShoot(plan, cfg)
    for shot, k, jpeg in shoot.keyframes():
        layout.write_keyframe(plan.video_id, shot, k, jpeg)
        stale.discard(keyframe_name(shot, k))
        total += len(jpeg)
        if k == 2:
            pending += 1
            if pending == PROGRESS_EVERY:
                tick(pending)
                pending = 0
    tick(pending)
    for name in stale:
        os.remove(directory / name)
    return total


_progress_queue: multiprocessing.queues.Queue | None = None  # set in each worker by _init_worker


def _init_worker(progress: multiprocessing.queues.Queue) -> None:
    global _progress_queue
    _progress_queue = progress


def _render_in_worker(plan: MoviePlan, cfg: SynthConfig, layout: LayoutWriter) -> int:
    assert _progress_queue is not None
    return render_movie(plan, cfg, layout, _progress_queue.put)


def _render_all(layout: LayoutWriter, plan: DatasetPlan, cfg: SynthConfig, tick: Callable[[int], None]) -> int:
    # Longest movies first, so no worker is left with a long one at the end.
    movies = sorted(plan.movies, key=lambda m: -m.num_shots)
    workers = min(cfg.workers or os.cpu_count() or 1, len(movies))
    if workers == 1:
        return sum(render_movie(m, cfg, layout, tick) for m in movies)
    ctx = mp.get_context("spawn")  # no fork: the parent may hold threads (torch, tqdm's monitor)
    progress = ctx.Queue()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(progress,)) as pool:
        results = [pool.apply_async(_render_in_worker, (m, cfg, layout)) for m in movies]
        while not all(r.ready() for r in results):
            try:
                tick(progress.get(timeout=0.2))
            except queue.Empty:
                pass
        total = sum(r.get() for r in results)  # re-raises a worker's exception here
    while True:
        try:
            tick(progress.get_nowait())
        except queue.Empty:
            return total
