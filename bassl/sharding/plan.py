"""Which shots go into which shard, decided once, up front, from the shot list and the file sizes.

Every worker and every ``--part`` builds from the same plan, so the shards are byte-identical whatever the
number of workers or machines. The plan is saved as ``<out>/.shard-build/plan.json`` by the first run that
needs it; later runs (other array tasks, a resumed run, the merge) read it back instead of scanning again.

Packing: movies in id order, shots in index order. A movie that does not fit in the current shard starts a
new one, so a movie straddles shards only when it is larger than one shard by itself (then it fills whole
shards in shot order). Sizes are exact: a shard's bytes are known before it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bassl.data.atomic import write_json
from bassl.data.manifest import Problem
from bassl.data.movienet import INGEST_RECORDS, KEYFRAME_RE, keyframe_name, shot_pattern
from bassl.data.shard_format import BLOCK, archive_bytes, member_bytes, sample_json, sample_key
from bassl.errors import DataError

if TYPE_CHECKING:  # only the standard library at run time: worker processes import this module
    from bassl.data.movienet import MovieNetSource

PLAN_VERSION = 1
BUILD_DIR = ".shard-build"  # plan and per-shard records; internal to the builder
PLAN_NAME = "plan.json"


@dataclass(frozen=True)
class Run:
    """Shots ``first .. stop-1`` of one movie, contiguous, inside one shard."""

    video_id: str
    first: int
    stop: int
    num_shots: int  # the movie's shot count on disk (goes into every sample's json)


@dataclass(frozen=True)
class ShardSpec:
    index: int
    runs: tuple[Run, ...]
    planned_bytes: int  # exact tar size if no shot is skipped while building

    @property
    def name(self) -> str:
        return shard_name(self.index)

    @property
    def num_samples(self) -> int:
        return sum(r.stop - r.first for r in self.runs)

    def to_json(self) -> dict:
        return {"index": self.index, "runs": [asdict(r) for r in self.runs], "planned_bytes": self.planned_bytes}

    @staticmethod
    def from_json(d: dict) -> ShardSpec:
        return ShardSpec(d["index"], tuple(Run(**r) for r in d["runs"]), d["planned_bytes"])


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


@dataclass
class ShardPlan:
    settings: dict  # what the plan depends on besides the files: source paths, target size, keyframes
    shards: list[ShardSpec]
    movies: dict[str, int]  # video id -> shots on disk, every movie with frames, in id order
    splits: dict[str, list[str]]  # split -> its video ids that have frames (sorted)
    problems: list[Problem] = field(default_factory=list)  # found while planning (missing files, empty movies)

    @property
    def plan_id(self) -> str:
        """A digest of the whole plan; a shard record made under another plan is never trusted."""
        return hashlib.sha256(json.dumps(self._body(), sort_keys=True).encode()).hexdigest()[:16]

    def _body(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "settings": self.settings,
            "movies": self.movies,
            "splits": self.splits,
            "problems": [asdict(p) for p in self.problems],
            "shards": [s.to_json() for s in self.shards],
        }

    def to_json(self) -> dict:
        return {**self._body(), "plan_id": self.plan_id}

    @staticmethod
    def from_json(d: dict, where: Path) -> ShardPlan:
        if d.get("version") != PLAN_VERSION:
            raise DataError(f"{where}: plan version {d.get('version')!r}, this bassl writes {PLAN_VERSION}; "
                            f"remove {where.parent} and run `bassl shard` again")
        return ShardPlan(
            settings=d["settings"],
            shards=[ShardSpec.from_json(s) for s in d["shards"]],
            movies=d["movies"],
            splits=d["splits"],
            problems=[Problem(**p) for p in d["problems"]],
        )


def plan_settings(source: MovieNetSource, target_bytes: int) -> dict:
    return {
        "source": str(source.root),
        "frames_root": str(source.frames_root),
        "anno_root": str(source.anno_root),
        "keyframes_per_shot": source.keyframes_per_shot,
        "target_shard_bytes": target_bytes,
    }


# ---- scanning -------------------------------------------------------------------------------------


@dataclass
class MovieScan:
    video_id: str
    num_shots: int
    shot_bytes: list[int | None]  # per shot: bytes its sample takes in a tar; None if every keyframe is missing
    problems: list[Problem]


def scan_movie(frames_root: str, video_id: str, keyframes_per_shot: int) -> MovieScan:
    """One directory listing and one stat per keyframe: shot count, per-shot sample size, missing files.

    A shot missing some keyframes keeps the others (each missing one is a problem); a shot missing all of them
    is left out of the shards (one more problem, for the whole shot): the loaders fill it from a neighbour."""
    directory = Path(frames_root) / video_id
    sizes: dict[tuple[int, int], int] = {}
    if directory.is_dir():
        with os.scandir(directory) as entries:
            for entry in entries:
                m = KEYFRAME_RE.match(entry.name)
                if m and int(m.group(2)) < keyframes_per_shot:
                    try:
                        sizes[int(m.group(1)), int(m.group(2))] = entry.stat().st_size
                    except OSError:  # a dangling link: missing, reported below
                        pass
    num_shots = max((s for s, _ in sizes), default=-1) + 1
    if num_shots == 0:
        reason = "no keyframes (expected shot_XXXX_img_K.jpg)" if directory.is_dir() else "no keyframe directory"
        return MovieScan(video_id, 0, [], [Problem(video_id, None, str(directory), f"a movie with {reason}")])
    shot_bytes: list[int | None] = []
    problems = []
    for s in range(num_shots):
        total: int | None = member_bytes(len(sample_json(video_id, s, num_shots)))
        present = 0
        for k in range(keyframes_per_shot):
            size = sizes.get((s, k))
            if size is None:
                problems.append(Problem(video_id, s, str(directory / keyframe_name(s, k)), "missing keyframe", k))
            else:
                total += member_bytes(size)
                present += 1
        if not present:
            total = None
            problems.append(Problem(video_id, s, str(directory / shot_pattern(s)),
                                    "no keyframe of this shot on disk; it is left out of the shards"))
        shot_bytes.append(total)
    return MovieScan(video_id, num_shots, shot_bytes, problems)


def _scan_task(args: tuple[str, str, int]) -> MovieScan:
    return scan_movie(*args)


# ---- packing --------------------------------------------------------------------------------------


def pack(scans: Iterable[MovieScan], target_bytes: int) -> list[ShardSpec]:
    """Greedy, in order: a movie that does not fit starts a new shard; only an oversized movie is split."""
    shards: list[ShardSpec] = []
    runs: list[Run] = []
    used = 0

    def close() -> None:
        nonlocal runs, used
        if runs:
            shards.append(ShardSpec(len(shards), tuple(runs), archive_bytes(used)))
        runs, used = [], 0

    for scan in scans:
        movie_bytes = sum(b for b in scan.shot_bytes if b is not None)
        if runs and used + movie_bytes > target_bytes:
            close()
        for shot, size in enumerate(scan.shot_bytes):
            if size is None:  # left out (recorded as a problem)
                continue
            if runs and used + size > target_bytes:
                close()
            last = runs[-1] if runs else None
            if last is not None and last.video_id == scan.video_id and last.stop == shot:
                runs[-1] = Run(scan.video_id, last.first, shot + 1, scan.num_shots)
            else:
                runs.append(Run(scan.video_id, shot, shot + 1, scan.num_shots))
            used += size
    close()
    return shards


def make_plan(
    source: MovieNetSource,
    target_bytes: int,
    map_fn: Callable = map,
) -> ShardPlan:
    """Scan the source (``map_fn`` may be a pool's ``imap``) and pack it. Problems are collected, not raised."""
    if target_bytes < 4 * BLOCK:
        raise DataError(f"shard size {target_bytes} bytes is too small; use at least a few MB (e.g. --shard-size 1GB)")
    on_disk = source.movies_on_disk()
    splits_all = {name: sorted(source.split(name)) for name in source.available_splits()}
    if not splits_all:  # every later stage reads movies by split: such shards would fail there, far from the cause
        raise DataError(f"{source.anno_root}: no annotation files (anno.*.ndjson), so no stage could read these shards; "
                        f"`bassl ingest` writes them when it finishes: run it again if it was stopped, or after "
                        f"--part I/N runs, `bassl ingest --out {source.root} --merge`; or give the MovieNet-SSeg root")
    records = source.root / INGEST_RECORDS
    if records.is_dir():  # a layout of bassl ingest: a video it was ingesting again when stopped may have frames and
        #   rows that disagree; its record comes back only once the video is whole again
        annotated = {vid for vids in splits_all.values() for vid in vids}
        unfinished = sorted(v for v in annotated if not (records / f"{v}.json").is_file())
        if unfinished:
            raise DataError(f"{source.root}: {len(unfinished)} video(s) listed in the annotation files have no ingest "
                            f"record ({', '.join(unfinished[:3])}{' ...' if len(unfinished) > 3 else ''}): `bassl "
                            "ingest` was stopped while ingesting them again; run it again, then shard")
    annotated = {vid for vids in splits_all.values() for vid in vids}
    movies = sorted(set(on_disk) | annotated)
    if not movies:
        raise DataError(f"{source.frames_root}: no movie directories and no annotated movies; expected "
                        "240P_frames/<video_id>/shot_XXXX_img_K.jpg (is --source the MovieNet-SSeg root?)")
    for vid in movies:
        try:
            sample_key(vid, 0)
        except ValueError as e:
            raise DataError(f"{source.frames_root / vid}: {e}; rename the movie (and its annotation rows)") from e
    args = [(str(source.frames_root), vid, source.keyframes_per_shot) for vid in movies]
    scans = list(map_fn(_scan_task, args))
    problems = [p for s in scans for p in s.problems]
    with_frames = [s for s in scans if s.num_shots > 0]
    have = {s.video_id for s in with_frames}
    return ShardPlan(
        settings=plan_settings(source, target_bytes),
        shards=pack(with_frames, target_bytes),
        movies={s.video_id: s.num_shots for s in with_frames},
        splits={name: [v for v in vids if v in have] for name, vids in splits_all.items()},
        problems=problems,
    )


def plan_path(out_dir: Path) -> Path:
    return out_dir / BUILD_DIR / PLAN_NAME


def parse_plan(data: bytes | str, where: Path) -> ShardPlan:
    """The one reader of ``shard_plan.json`` bytes (from disk or a store), with an error that names the fix."""
    try:
        return ShardPlan.from_json(json.loads(data), where)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{where}: unreadable shard plan ({e}); remove it and run `bassl shard` again") from e


def load_plan(out_dir: Path) -> ShardPlan | None:
    path = plan_path(out_dir)
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: unreadable shard plan ({e}); remove it and run `bassl shard` again") from e
    return parse_plan(data, path)


def save_plan(plan: ShardPlan, out_dir: Path) -> Path:
    """Atomically; parallel array tasks that plan at the same time write identical bytes."""
    return write_json(plan_path(out_dir), plan.to_json())
