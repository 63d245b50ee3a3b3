"""``bassl shard``: pack a MovieNet-SSeg layout's keyframes into WebDataset tar shards, a DALI index beside each.

The stages, in order:

1. plan (:mod:`shard_plan`): list every movie and stat every keyframe, then decide which shots go into which
   shard. Saved in ``<out>/.shard-build/plan.json``; every later run, worker and ``--part`` reuses it, which
   is what makes the output byte-identical whatever the number of workers or machines.
2. build (:func:`build_shard`, one shard per task, ``--workers`` processes): copy the JPEG bytes (checked for
   SOI/EOI markers, never decoded or re-encoded) into a deterministic tar, hashing as it writes; write the
   DALI index from the offsets we just wrote; move both into place (temp name, then ``os.replace``); then the
   shard's record (size, sha256, what it holds) in ``.shard-build/``. A shard with a valid record and the same
   size and sha256 on disk is kept, so a killed run resumes where it stopped.
3. merge (:func:`merge_shards`): once every shard has a record, write ``manifest.json`` and
   ``shard_report.json``. A plain run does all three; ``--part I/N`` does 1-2 for shards ``i % N == I``;
   ``--merge`` does 3.

Bad input (missing, unreadable or non-JPEG keyframe, truncated JPEG, movie without frames) stops the build
with a :class:`DataError` naming the file; with ``on_error="skip"`` the shot (or movie) is left out and
listed in the manifest's ``skipped`` and in ``shard_report.json``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from bassl.config import Config
from bassl.errors import DataError
from bassl.sharding.manifest import FORMAT, MANIFEST_NAME, VERSION, file_sha256, write_manifest
from bassl.sharding.movienet import MovieNetSource, keyframe_name
from bassl.sharding.shard_format import (
    TarStream,
    index_text,
    keyframe_ext,
    member_exts,
    sample_json,
    sample_key,
)
from bassl.sharding.shard_plan import (
    BUILD_DIR,
    Problem,
    ShardPlan,
    ShardSpec,
    load_plan,
    make_plan,
    plan_settings,
    save_plan,
)

DEFAULT_SHARD_BYTES = 1_000_000_000  # ~1 GB: ~160 shards for MovieNet's 160 GB; a few hundred MB is fine too
ON_ERROR = ("error", "skip")
REPORT_NAME = "shard_report.json"
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """``1GB`` / ``512MiB`` / ``64k`` / ``123456`` -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise DataError(f"shard size {text!r}: expected a number with an optional unit, e.g. 1GB, 512MiB, 65536")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N, as Slurm array task ids) -> (I, N)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise DataError(f"--part {text!r}: expected I/N with 0 <= I < N, e.g. --part 3/16 (Slurm: "
                        "--part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=0-15)")
    return int(m.group(1)), int(m.group(2))


def _tmp_name(path: Path) -> Path:
    """A hidden temp name beside ``path``, unique per process and machine (parts may share a file system)."""
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _tmp_name(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---- one shard --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildTask:
    """Everything a worker needs for one shard (pickled to it)."""

    out_dir: str
    frames_root: str
    keyframes_per_shot: int
    on_error: str
    plan_id: str
    spec: ShardSpec


def record_path(out_dir: Path, spec: ShardSpec) -> Path:
    return out_dir / BUILD_DIR / spec.name.replace(".tar", ".json")


def index_name(name: str) -> str:
    return name[: -len(".tar")] + ".idx"


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def finished_record(task: BuildTask) -> dict | None:
    """The record of this shard if what is on disk is exactly what it describes (size and sha256), else None."""
    out = Path(task.out_dir)
    rec = _read_record(record_path(out, task.spec))
    if rec is None or rec.get("plan_id") != task.plan_id or rec.get("spec") != task.spec.to_json():
        return None
    if task.on_error == "error" and rec.get("skipped"):
        return None  # built in skip mode; rebuilding stops at the bad file, as this mode should
    tar, idx = out / rec["name"], out / rec["index"]
    try:
        if tar.stat().st_size != rec["bytes"] or idx.stat().st_size != rec["index_bytes"]:
            return None
    except OSError:
        return None
    if hashlib.sha256(idx.read_bytes()).hexdigest() != rec["index_sha256"] or file_sha256(tar) != rec["sha256"]:
        return None
    return rec


def build_shard(task: BuildTask) -> dict:
    """Write one shard, its DALI index and its record; returns the record."""
    out, spec = Path(task.out_dir), task.spec
    frames = task.frames_root
    tar_path, idx_path = out / spec.name, out / index_name(spec.name)
    tmp_tar, tmp_idx = _tmp_name(tar_path), _tmp_name(idx_path)
    hasher = hashlib.sha256()
    skipped: list[dict] = []
    ranges: list[dict] = []
    try:
        with open(tmp_tar, "wb", buffering=0) as f:
            stream = TarStream(f, hasher)
            for run in spec.runs:
                movie_dir = f"{frames}/{run.video_id}/"
                for shot in range(run.first, run.stop):
                    stream.begin_sample(sample_key(run.video_id, shot))
                    for k in range(task.keyframes_per_shot):
                        path = movie_dir + keyframe_name(shot, k)
                        problem = stream.add_file(keyframe_ext(k), path)
                        if problem is not None:
                            if task.on_error == "error":
                                raise DataError(f"{path}: {problem}. Replace or remove it (or pass --on-error skip to "
                                                f"leave shot {shot} of {run.video_id} out; it is then listed in the "
                                                f"manifest and {REPORT_NAME}).")
                            skipped.append(asdict(Problem(run.video_id, shot, path, problem)))
                            stream.drop_sample()
                            break
                    else:
                        stream.add_bytes("json", sample_json(run.video_id, shot, run.num_shots))
                        stream.end_sample()
                        _extend(ranges, run.video_id, shot)
            size = stream.close()
        index = index_text(stream.index).encode()
        tmp_idx.write_bytes(index)
        # The tar goes into place first: a crash before the record leaves a shard with no record, rebuilt next run.
        os.replace(tmp_tar, tar_path)
        os.replace(tmp_idx, idx_path)
    finally:
        for tmp in (tmp_tar, tmp_idx):
            tmp.unlink(missing_ok=True)
    record = {
        "plan_id": task.plan_id,
        "spec": spec.to_json(),
        "name": spec.name,
        "index": idx_path.name,
        "samples": len(stream.index),
        "bytes": size,
        "sha256": hasher.hexdigest(),
        "index_bytes": len(index),
        "index_sha256": hashlib.sha256(index).hexdigest(),
        "movies": ranges,
        "skipped": skipped,
    }
    _write_atomic(record_path(out, spec), json.dumps(record, indent=1).encode())
    return record


def _extend(ranges: list[dict], video_id: str, shot: int) -> None:
    if ranges and ranges[-1]["video_id"] == video_id:
        ranges[-1]["last_shot"] = shot
        ranges[-1]["shots"] += 1
    else:
        ranges.append({"video_id": video_id, "first_shot": shot, "last_shot": shot, "shots": 1})


def keep_or_build(task: BuildTask) -> tuple[dict, bool]:
    """(record, kept): keep a finished shard (verified by size and sha256), otherwise build it."""
    rec = finished_record(task)
    if rec is not None:
        return rec, True
    return build_shard(task), False


# ---- the run ------------------------------------------------------------------------------------------


@dataclass
class ShardSummary:
    out_dir: Path
    source: Path
    part: tuple[int, int] | None = None
    shards: int = 0  # shards this run was responsible for
    built: int = 0
    kept: int = 0
    samples: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[dict] = field(default_factory=list)
    manifest: Path | None = None

    def describe(self) -> str:
        mb = self.bytes / 1e6
        rate = f"{mb / self.seconds:.1f} MB/s, {self.samples / self.seconds:.0f} shots/s" if self.seconds else ""
        who = f"part {self.part[0]}/{self.part[1]}: " if self.part else ""
        lines = [f"{who}{self.shards} shards in {self.out_dir} ({self.built} built, {self.kept} kept from an earlier run), "
                 f"{self.samples} shots, {mb:.1f} MB in {self.seconds:.1f} s ({rate})"]
        if self.skipped:
            first = self.skipped[0]
            lines.append(f"  skipped {len(self.skipped)} (see {REPORT_NAME}), e.g. {first['path']}: {first['reason']}")
        if self.manifest:
            lines.append(f"  manifest: {self.manifest}")
        elif self.part:
            lines.append(f"  when all {self.part[1]} parts are done: bassl shard --merge --out {self.out_dir}")
        return "\n".join(lines)


def _workers(n: int) -> int:
    return n if n > 0 else len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class _Maps:
    ordered: Callable  # like map
    unordered: Callable  # results as they finish


@contextmanager
def _maps(workers: int) -> Iterator[_Maps]:
    """``map`` over ``workers`` processes, or the builtin ``map`` for one."""
    if workers <= 1:
        yield _Maps(map, map)
        return
    # spawn: the caller may hold threads (DALI, torch) that a fork would copy mid-lock.
    with mp.get_context("spawn").Pool(workers) as pool:  # leaving the block terminates it, also on error
        yield _Maps(lambda fn, xs: pool.imap(fn, xs, chunksize=4), pool.imap_unordered)


def _plan(source: MovieNetSource, out: Path, shard_bytes: int, on_error: str, ordered_map: Callable) -> ShardPlan:
    plan = load_plan(out)
    wanted = plan_settings(source, shard_bytes)
    if plan is None:
        plan = make_plan(source, shard_bytes, map_fn=ordered_map)
        plan.problems.sort(key=lambda p: (p.video_id, -1 if p.shot is None else p.shot, p.path))
    elif plan.settings != wanted:
        diff = ", ".join(f"{k} {plan.settings.get(k)!r} (now {v!r})" for k, v in wanted.items() if plan.settings.get(k) != v)
        raise DataError(f"{out} holds shards planned with other settings: {diff}. Use the same --source and "
                        f"--shard-size, or another --out (or delete {out / BUILD_DIR} to start over).")
    if plan.problems and on_error == "error":
        first = plan.problems[0]
        more = f" (and {len(plan.problems) - 1} more problems)" if len(plan.problems) > 1 else ""
        raise DataError(f"{first.describe()}{more}. Fix the source, or pass --on-error skip to leave such shots and "
                        f"movies out (they are then listed in the manifest and {REPORT_NAME}).")
    save_plan(plan, out)
    return plan


def _remove_leftover_temps(out: Path, names: set[str]) -> None:
    """Temp files of a killed run, for the shards this run builds (other parts' temps are not ours to touch)."""
    for entry in os.scandir(out):
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            owner = entry.name[1:].split(".tar.", 1)[0].split(".idx.", 1)[0]
            if owner + ".tar" in names:
                os.unlink(entry.path)


def build_shards(
    cfg: Config,
    source_root: str | Path | None,
    out_dir: str | Path,
    *,
    shard_bytes: int | str = DEFAULT_SHARD_BYTES,
    workers: int = 0,
    part: tuple[int, int] | None = None,
    on_error: str = "error",
    progress: bool = True,
) -> ShardSummary:
    """Plan, build (this part's shards, or all) and, without ``part``, merge. Reads ``cfg.data`` only.

    ``source_root`` overrides ``cfg.data.root``; ``workers`` 0 means one per available core.
    """
    if on_error not in ON_ERROR:
        raise DataError(f"on_error {on_error!r}: choose one of {', '.join(ON_ERROR)}")
    start = time.perf_counter()
    shard_bytes = parse_size(shard_bytes)
    source = MovieNetSource.from_config(cfg.data, root=source_root)
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = ShardSummary(out, source.root, part=part)
    with _maps(_workers(workers)) as maps:
        plan = _plan(source, out, shard_bytes, on_error, maps.ordered)
        mine = [s for s in plan.shards if part is None or s.index % part[1] == part[0]]
        _remove_leftover_temps(out, {s.name for s in mine})
        tasks = [BuildTask(str(out), str(source.frames_root), source.keyframes_per_shot, on_error, plan.plan_id, s)
                 for s in mine]
        summary.shards = len(tasks)
        with tqdm(total=sum(s.num_samples for s in mine), unit="shot", desc="shard", disable=not progress,
                  smoothing=0.1) as bar:
            for rec, kept in maps.unordered(keep_or_build, tasks):
                summary.kept += kept
                summary.built += not kept
                summary.samples += rec["samples"]
                summary.bytes += rec["bytes"]
                summary.skipped += rec["skipped"]
                bar.update(sum(r["stop"] - r["first"] for r in rec["spec"]["runs"]))
                bar.set_postfix_str(f"{summary.bytes / 1e6 / max(bar.format_dict['elapsed'], 1e-9):.1f} MB/s", refresh=False)
    summary.skipped = [asdict(p) for p in plan.problems] + sorted(summary.skipped, key=_problem_order)
    if part is None:
        summary.manifest = merge_shards(out).manifest
    summary.seconds = time.perf_counter() - start
    return summary


def _problem_order(p: dict) -> tuple:
    return p["video_id"], -1 if p["shot"] is None else p["shot"], p["path"]


# ---- merge --------------------------------------------------------------------------------------------


def merge_shards(out_dir: str | Path, source_root: str | Path | None = None) -> ShardSummary:
    """Check that every planned shard is finished, then write ``manifest.json`` and ``shard_report.json``.

    Checks sizes against the records (cheap); the sha256 of each shard was taken while writing it and is
    re-checked whenever a run resumes. ``source_root``, if given, must be the one the plan was made from.
    """
    start = time.perf_counter()
    out = Path(out_dir).expanduser().resolve()
    plan = load_plan(out)
    if plan is None:
        raise DataError(f"{out}: no shard plan ({out / BUILD_DIR / 'plan.json'}); run `bassl shard --source DIR "
                        f"--out {out}` (or its --part I/N array) before --merge")
    if source_root is not None and str(Path(source_root).expanduser().resolve()) != plan.settings["source"]:
        raise DataError(f"{out} was planned from {plan.settings['source']}, not {source_root}")
    records, missing = [], []
    for spec in plan.shards:
        rec = _read_record(record_path(out, spec))
        if rec is None or rec.get("plan_id") != plan.plan_id or rec.get("spec") != spec.to_json():
            missing.append(spec.index)
            continue
        try:
            size = (out / rec["name"]).stat().st_size
        except OSError:
            size = None
        if size != rec["bytes"]:
            missing.append(spec.index)
            continue
        records.append(rec)
    if missing:
        few = ", ".join(shard_name_of(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{out}: {len(missing)} of {len(plan.shards)} shards are not finished ({few}). Run the parts "
                        f"that build them again (with --part I/N, shard i belongs to part i % N), or run "
                        f"`bassl shard` without --part; finished shards are kept.")
    manifest = _manifest(plan, records)
    build_skips = sorted((p for r in records for p in r["skipped"]), key=_problem_order)
    skipped = [asdict(p) for p in plan.problems] + build_skips
    manifest["skipped"] = skipped
    path = write_manifest(out, manifest)
    report = {
        "manifest": MANIFEST_NAME,
        "num_skipped": len(skipped),
        "skipped_movies": sorted({p["video_id"] for p in skipped if p["shot"] is None}),
        "skipped_shots": [p for p in skipped if p["shot"] is not None],
        "skipped": skipped,
        "empty_shards": [r["name"] for r in records if r["samples"] == 0],
    }
    _write_atomic(out / REPORT_NAME, (json.dumps(report, indent=1) + "\n").encode())
    return ShardSummary(out, Path(plan.settings["source"]), shards=len(records), kept=len(records), samples=manifest["num_shots"],
                        bytes=manifest["total_bytes"], seconds=time.perf_counter() - start, skipped=skipped, manifest=path)


def shard_name_of(index: int) -> str:
    return ShardSpec(index, (), 0).name


def _manifest(plan: ShardPlan, records: list[dict]) -> dict:
    shards = []
    movies: dict[str, dict] = {}
    for rec in records:
        if rec["samples"] == 0:  # every shot skipped: a valid but empty tar, which readers would trip over
            continue
        for r in rec["movies"]:
            m = movies.setdefault(r["video_id"], {"num_shots": plan.movies[r["video_id"]], "shots": 0, "shards": []})
            m["shots"] += r["shots"]
            m["shards"].append(len(shards))
        shards.append({k: rec[k] for k in ("name", "index", "samples", "bytes", "sha256", "movies")})
    splits = {name: [v for v in vids if v in movies] for name, vids in plan.splits.items()}
    members = {name: set(vids) for name, vids in splits.items()}
    for vid, m in movies.items():
        m["splits"] = [name for name, vids in members.items() if vid in vids]
    settings = plan.settings
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": settings["source"],
        "keyframes_per_shot": settings["keyframes_per_shot"],
        "members": member_exts(settings["keyframes_per_shot"]),
        "target_shard_bytes": settings["target_shard_bytes"],
        "num_shards": len(shards),
        "num_movies": len(movies),
        "num_shots": sum(s["samples"] for s in shards),
        "total_bytes": sum(s["bytes"] for s in shards),
        "shards": shards,
        "movies": movies,
        "splits": splits,
    }
