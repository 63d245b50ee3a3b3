"""The MovieNet-SSeg layout (method.md §3): its names, its one reader (:class:`MovieNetSource`, a download unchanged)
and its one writer (:class:`LayoutWriter`, used by the synthetic movies and by video ingest).

Layout under any root (nothing depends on the working directory)::

    240P_frames/<vid>/shot_<XXXX>_img_<K>.jpg     keyframes, K in 0..2
    anno/anno.<split>.ndjson                      one JSON object per shot
    anno/vid2idx.json                             video id -> int
    scene318/shot_movie318/<vid>.txt              "start_frame end_frame ..." per shot (line = shot index)

The annotation field ``num_shot`` is ambiguous in the original (count, or last index: method.md §3.2); we never
trust it for indexing. The number of shots of a movie is what is on disk, and the convention the file
uses is reported by :meth:`MovieNetSource.num_shot_convention`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bassl.data.atomic import write_atomic, write_json
from bassl.data.shard_format import jpeg_file_problem
from bassl.errors import DataError

if TYPE_CHECKING:
    from bassl.config import DataConfig

FRAMES_DIR, ANNO_DIR, SHOT_TIMING_DIR = "240P_frames", "anno", "scene318/shot_movie318"
INGEST_RECORDS = ".ingest"  # bassl ingest's per-video records, under the root of a layout it wrote
VIDEO_INFO = "videos.json"  # in anno/: per video its frame rate and source (bassl ingest); MovieNet has none
KEYFRAME_RE = re.compile(r"^shot_(\d{4,})_img_(\d+)\.jpg$")
SPLITS = ("pretrain", "train", "val", "test", "trainvaltest")


def keyframe_name(shot: int, k: int) -> str:
    return f"shot_{shot:04d}_img_{k}.jpg"


def shot_pattern(shot: int) -> str:
    """Every keyframe of a shot, as a glob (names a whole shot in messages)."""
    return f"shot_{shot:04d}_img_*.jpg"


@dataclass(frozen=True)
class MovieAnnotation:
    """One movie's rows of one annotation file, ordered by shot index."""

    video_id: str
    shot_ids: np.ndarray  # [N] int64, sorted, as annotated
    num_shot_field: int  # the file's num_shot (count or last index; see num_shot_convention)
    labels: np.ndarray | None  # [N] int8 raw boundary_label (1 = last shot of a scene; may be -1)
    scene_ids: np.ndarray | None  # [N] int64 invideo_scene_id
    global_video_id: int | None = None

    def boundary_labels(self, negative_label: str = "positive") -> np.ndarray:
        """Targets in {0, 1}: -1 counts as a boundary (method.md §3.5) or, with "ignore", is masked to -100."""
        if self.labels is None:
            raise DataError(f"movie {self.video_id}: this split has no boundary_label field")
        if negative_label == "positive":
            return np.abs(self.labels).astype(np.int64)
        out = self.labels.astype(np.int64)
        out[out < 0] = -100
        return out


@dataclass
class ValidationReport:
    root: Path
    movies_on_disk: int = 0
    shots_on_disk: int = 0
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)  # split -> (movies, shots)
    num_shot_convention: str = "unknown"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        lines = [f"dataset {self.root}: {self.movies_on_disk} movies, {self.shots_on_disk} shots on disk"]
        for name, (movies, shots) in self.splits.items():
            lines.append(f"  anno.{name}.ndjson: {movies} movies, {shots} shots")
        if self.num_shot_convention != "unknown":  # no annotation rows to tell it from
            lines.append(f"  num_shot in the annotation files holds the shot {self.num_shot_convention.replace('_', ' ')}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  error: {p}" for p in self.problems]
        lines.append("OK" if self.ok else f"{len(self.problems)} problem(s) found")
        return "\n".join(lines)


def _first_and_count(items: list[str], limit: int = 5) -> str:
    head = ", ".join(items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)}: {head}{more}"


class MovieNetSource:
    """A MovieNet-SSeg dataset on disk. Cheap to build; directory scans happen on first use and are cached."""

    def __init__(
        self,
        root: str | Path,
        frames_dir: str = FRAMES_DIR,
        anno_dir: str = ANNO_DIR,
        shot_timing_dir: str = SHOT_TIMING_DIR,
        keyframes_per_shot: int = 3,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.frames_root = self.root / frames_dir
        self.anno_root = self.root / anno_dir
        self.timing_root = self.root / shot_timing_dir
        self.keyframes_per_shot = keyframes_per_shot
        self._shots: dict[str, dict[int, set[int]]] = {}
        self._splits: dict[str, dict[str, MovieAnnotation]] = {}
        if not self.root.is_dir():
            raise DataError(f"dataset root {self.root} does not exist; pass the MovieNet-SSeg root (data.root=...)")

    @classmethod
    def from_config(cls, data: DataConfig, root: str | Path | None = None) -> MovieNetSource:
        return cls(root if root is not None else data.root, data.frames_dir, data.anno_dir,
                   data.shot_timing_dir, data.keyframes_per_shot)

    # ---- frames ---------------------------------------------------------------------------------

    def keyframe_path(self, video_id: str, shot: int, k: int) -> Path:
        return self.frames_root / video_id / keyframe_name(shot, k)

    def movies_on_disk(self) -> list[str]:
        if not self.frames_root.is_dir():
            raise DataError(f"{self.frames_root} does not exist: no keyframes (expected 240P_frames/<vid>/shot_XXXX_img_K.jpg)")
        # a hidden directory is a writer's work in progress (bassl ingest builds a movie there, then renames it)
        return sorted(e.name for e in os.scandir(self.frames_root) if e.is_dir() and not e.name.startswith("."))

    def _scan(self, video_id: str) -> dict[int, set[int]]:
        """shot index -> keyframe indices present, for one movie (one directory listing)."""
        if video_id not in self._shots:
            shots: dict[int, set[int]] = {}
            directory = self.frames_root / video_id
            if directory.is_dir():
                for entry in os.scandir(directory):
                    m = KEYFRAME_RE.match(entry.name)
                    if m:
                        shots.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
            self._shots[video_id] = shots
        return self._shots[video_id]

    def shot_count(self, video_id: str) -> int:
        """Shots of a movie on disk: highest shot index with a keyframe, plus one (0 if none)."""
        shots = self._scan(video_id)
        return max(shots) + 1 if shots else 0

    def missing_keyframes(self, video_id: str) -> list[Path]:
        """Keyframes absent for shots 0..count-1 (a gap in the shot indices counts as missing too)."""
        shots = self._scan(video_id)
        want = set(range(self.keyframes_per_shot))
        return [
            self.keyframe_path(video_id, s, k)
            for s in range(self.shot_count(video_id))
            for k in sorted(want - shots.get(s, set()))
        ]

    # ---- annotations ------------------------------------------------------------------------------

    def available_splits(self) -> list[str]:
        if not self.anno_root.is_dir():
            return []
        found = {p.name[len("anno."):-len(".ndjson")] for p in self.anno_root.glob("anno.*.ndjson")}
        return [s for s in SPLITS if s in found] + sorted(found - set(SPLITS))

    def split(self, name: str) -> dict[str, MovieAnnotation]:
        """video_id -> annotation, in the order movies first appear in ``anno.<name>.ndjson``."""
        if name not in self._splits:
            self._splits[name] = self._read_split(name)
        return self._splits[name]

    def _read_split(self, name: str) -> dict[str, MovieAnnotation]:
        path = self.anno_root / f"anno.{name}.ndjson"
        if not path.is_file():
            have = ", ".join(self.available_splits()) or "none"
            raise DataError(f"{path} does not exist (annotation files present: {have})")
        rows: dict[str, list[tuple[int, int, int | None, int | None, int | None]]] = {}
        with path.open() as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    vid = row["video_id"]
                    shot = int(row["shot_id"])
                    num_shot = int(row["num_shot"])
                    label = int(row["boundary_label"]) if "boundary_label" in row else None
                    scene = int(row["invideo_scene_id"]) if "invideo_scene_id" in row else None
                    gvid = int(row["global_video_id"]) if "global_video_id" in row else None
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: not a JSON object ({e.msg}); each line must be one shot's JSON") from e
                except KeyError as e:
                    raise DataError(f"{path}:{lineno}: missing field {e.args[0]!r} (need video_id, shot_id, num_shot)") from e
                except (TypeError, ValueError) as e:
                    raise DataError(f"{path}:{lineno}: a field has the wrong type ({e}); shot_id is a zero-padded "
                                    f"string like \"0007\", num_shot and boundary_label integers") from e
                if not isinstance(vid, str) or not vid:
                    raise DataError(f"{path}:{lineno}: video_id must be a non-empty string, got {vid!r}")
                if label is not None and label not in (-1, 0, 1):
                    raise DataError(f"{path}:{lineno}: boundary_label {label} is not -1, 0 or 1")
                rows.setdefault(vid, []).append((shot, num_shot, label, scene, gvid))
        out: dict[str, MovieAnnotation] = {}
        for vid, items in rows.items():
            items.sort(key=lambda r: r[0])
            shot_ids = np.array([r[0] for r in items], dtype=np.int64)
            dup = shot_ids[1:][shot_ids[1:] == shot_ids[:-1]]
            if dup.size:
                raise DataError(f"{path}: movie {vid} lists shot {int(dup[0]):04d} more than once")
            num_shots = {r[1] for r in items}
            if len(num_shots) != 1:
                raise DataError(f"{path}: movie {vid} has inconsistent num_shot values {sorted(num_shots)}")
            labels = [r[2] for r in items]
            scenes = [r[3] for r in items]
            out[vid] = MovieAnnotation(
                video_id=vid,
                shot_ids=shot_ids,
                num_shot_field=items[0][1],
                labels=None if None in labels else np.array(labels, dtype=np.int8),
                scene_ids=None if None in scenes else np.array(scenes, dtype=np.int64),
                global_video_id=items[0][4],
            )
        return out

    @cached_property
    def vid2idx(self) -> dict[str, int]:
        path = self.anno_root / "vid2idx.json"
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg})") from e
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected an object mapping video ids to integers")
        return {str(k): int(v) for k, v in data.items()}

    @cached_property
    def video_info(self) -> dict[str, dict[str, Any]]:
        """``anno/videos.json`` (written by ``bassl ingest``): video id -> {"fps", "frames", "source", ...}; {} for
        a MovieNet download, whose timing files are all at ``data.fps``."""
        path = self.anno_root / VIDEO_INFO
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg}); run `bassl ingest` again to rewrite it") from e
        return data

    def fps(self, video_id: str, default: float) -> float:
        """The frame rate of a movie's shot timing: its own when ingested from a video file, else ``default``."""
        return float(self.video_info.get(video_id, {}).get("fps", default))

    def shot_timing(self, video_id: str) -> np.ndarray:
        """[N, 2] int64 (start_frame, end_frame) per shot, from ``shot_movie318/<vid>.txt``."""
        path = self.timing_root / f"{video_id}.txt"
        if not path.is_file():
            raise DataError(f"{path} does not exist; Recall@3s and mIoU need the shot timing of every evaluated movie")
        ranges = []
        with path.open() as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    ranges.append((int(parts[0]), int(parts[1])))
                except (ValueError, IndexError) as e:
                    raise DataError(f"{path}:{lineno}: expected 'start_frame end_frame ...', got {line.strip()!r}") from e
        return np.array(ranges, dtype=np.int64).reshape(-1, 2)

    def num_shot_convention(self, split: str | None = None) -> str:
        """"count" if num_shot equals the shots on disk, "last_index" if one less, "mixed"/"unknown" otherwise."""
        names = [split] if split else self.available_splits()
        seen: Counter[str] = Counter()
        for name in names:
            for vid, ann in self.split(name).items():
                count = self.shot_count(vid)
                if count == 0:
                    continue
                if ann.num_shot_field == count:
                    seen["count"] += 1
                elif ann.num_shot_field == count - 1:
                    seen["last_index"] += 1
                else:
                    seen["other"] += 1
        if not seen:
            return "unknown"
        return next(iter(seen)) if len(seen) == 1 else "mixed"

    def last_shot(self, video_id: str) -> int:
        """Last valid shot index, from what is on disk (never from num_shot)."""
        return self.shot_count(video_id) - 1

    # ---- validation -------------------------------------------------------------------------------

    def validate(self, splits: list[str] | None = None, window_size: int = 17) -> ValidationReport:
        """Check frames, annotations and shot timing; collect every problem instead of stopping at the first."""
        report = ValidationReport(self.root)
        try:
            movies = self.movies_on_disk()
        except DataError as e:
            report.problems.append(str(e))
            return report
        report.movies_on_disk = len(movies)
        missing: list[str] = []
        for vid in movies:
            count = self.shot_count(vid)
            report.shots_on_disk += count
            if count == 0:
                report.problems.append(f"{self.frames_root / vid}: a movie directory with no keyframes")
            missing += [str(p) for p in self.missing_keyframes(vid)]
        if missing:
            report.problems.append(f"missing keyframes ({_first_and_count(missing)})")
        broken = [f"{path} ({why})" for vid in movies for shot, ks in sorted(self._scan(vid).items()) for k in sorted(ks)
                  if (why := jpeg_file_problem(path := self.keyframe_path(vid, shot, k)))]
        if broken:  # what `bassl shard` would stop at (or, with --on-error skip, leave out)
            report.problems.append(f"unreadable keyframes ({_first_and_count(broken)})")
        names = splits if splits is not None else self.available_splits()
        if not names:
            report.problems.append(f"no annotation files anno.<split>.ndjson under {self.anno_root}")
        on_disk = set(movies)
        labelled_needs_timing = {"train", "val", "test", "trainvaltest"}
        timing_checked: set[str] = set()
        for name in names:
            try:
                ann = self.split(name)
            except DataError as e:
                report.problems.append(str(e))
                continue
            path = self.anno_root / f"anno.{name}.ndjson"
            report.splits[name] = (len(ann), sum(a.shot_ids.size for a in ann.values()))
            absent = sorted(v for v in ann if v not in on_disk)
            if absent:
                report.problems.append(f"{path}: movies with no keyframe directory ({_first_and_count(absent)})")
            beyond: list[str] = []
            short: list[str] = []
            no_timing: list[str] = []
            for vid, a in ann.items():
                if vid not in on_disk:
                    continue
                count = self.shot_count(vid)
                bad = a.shot_ids[(a.shot_ids < 0) | (a.shot_ids >= count)]
                beyond += [f"{vid}/shot_{int(s):04d}" for s in bad]
                if count < window_size:
                    short.append(f"{vid} ({count} shots)")
                if name in labelled_needs_timing:
                    timing = self.timing_root / f"{vid}.txt"
                    if not timing.is_file():
                        no_timing.append(vid)
                    elif vid not in timing_checked:
                        timing_checked.add(vid)
                        try:
                            lines = len(self.shot_timing(vid))
                        except DataError as e:
                            report.problems.append(str(e))
                            continue
                        if lines < count:
                            report.problems.append(f"{timing}: {lines} lines for {count} shots on disk; one line per shot")
            if beyond:
                report.problems.append(f"{path}: rows point at shots with no keyframes on disk ({_first_and_count(beyond)})")
            if short:  # their windows repeat shots (loaders/windows.py): they run, but teach less
                report.warnings.append(
                    f"{path}: movies shorter than a {window_size}-shot window ({_first_and_count(short)}): their "
                    "windows repeat the edge shots; they train and score, but a window of repeats teaches little"
                )
            if no_timing:
                report.warnings.append(
                    f"anno.{name}: no shot timing in {self.timing_root} for {_first_and_count(no_timing)}; "
                    "Recall@3s and mIoU cannot be computed for them"
                )
        if not report.problems:
            report.num_shot_convention = self.num_shot_convention()
        return report


# --------------------------------------------------------------------------------------------------
# Writing the layout
# --------------------------------------------------------------------------------------------------


def annotation_row(video_id: str, shot: int, num_shot: int, label: int | None = None, global_video_id: int | None = None,
                   scene: int | None = None, global_scene: int | None = None) -> dict[str, Any]:
    """One line of ``anno.<split>.ndjson``: the pre-training split has ids only; labelled splits add the label
    (1 = last shot of a scene, -1 = unsure / movie end, 0 otherwise) and the scene ids."""
    row: dict[str, Any] = {"video_id": video_id, "shot_id": f"{shot:04d}", "num_shot": num_shot}
    if label is not None:
        row.update(boundary_label=label, global_video_id=global_video_id, invideo_scene_id=scene,
                   global_scene_id=global_scene)
    return row


class LayoutWriter:
    """Writes a dataset in the MovieNet-SSeg layout, every file atomically. Annotation files go last: a run that
    died midway has none, so it is never mistaken for a complete dataset."""

    def __init__(self, root: str | Path, frames_dir: str = FRAMES_DIR, anno_dir: str = ANNO_DIR,
                 shot_timing_dir: str = SHOT_TIMING_DIR) -> None:
        self.root = Path(root).expanduser().resolve()
        self.frames_root = self.root / frames_dir
        self.anno_root = self.root / anno_dir
        self.timing_root = self.root / shot_timing_dir

    def keyframe_path(self, video_id: str, shot: int, k: int) -> Path:
        return self.frames_root / video_id / keyframe_name(shot, k)

    def write_keyframe(self, video_id: str, shot: int, k: int, jpeg: bytes) -> Path:
        return write_atomic(self.keyframe_path(video_id, shot, k), jpeg)

    def remove_movie(self, video_id: str) -> None:
        """A movie's keyframes and shot timing (its annotation rows are written anew by whoever calls this)."""
        shutil.rmtree(self.frames_root / video_id, ignore_errors=True)
        (self.timing_root / f"{video_id}.txt").unlink(missing_ok=True)

    def write_shot_timing(self, video_id: str, frames: np.ndarray) -> Path:
        """``shot_movie318/<vid>.txt``: one line per shot, ``start_frame end_frame [keyframe frames...]``."""
        text = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in np.asarray(frames))
        return write_atomic(self.timing_root / f"{video_id}.txt", text)

    def write_annotations(self, splits: dict[str, list[dict[str, Any]]], vid2idx: dict[str, int],
                          video_info: dict[str, dict[str, Any]] | None = None) -> None:
        """``vid2idx.json`` (and ``videos.json`` when given), then ``anno.<split>.ndjson`` for every split given
        (rows from :func:`annotation_row`)."""
        write_json(self.anno_root / "vid2idx.json", vid2idx, indent=None)
        if video_info is not None:
            write_json(self.anno_root / VIDEO_INFO, video_info)
        for name, rows in splits.items():
            write_atomic(self.anno_root / f"anno.{name}.ndjson", "".join(json.dumps(r) + "\n" for r in rows))
