"""One shard: build it (or keep it if finished), as a worker process runs it.

Keyframe bytes are copied into a deterministic tar (:mod:`bassl.data.shard_format`), hashed as they are written;
the DALI index comes from the offsets we wrote. Files appear under their final names only through the atomic
writer (:mod:`bassl.data.atomic`): the tar and its index, then the shard's record (:mod:`bassl.sharding.record`:
size, sha256, what it holds). A shard is finished when its record exists and its bytes match it, so a killed run
rebuilds only what it had not finished.

With ``on_error="skip"`` a bad keyframe is left out and the shot keeps its other keyframes; a shot with none
left is left out as a whole (the loaders fill it from a neighbour). Both are listed in the record.

Only the standard library is imported here, so spawned workers start in milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from bassl.data.atomic import atomic_path
from bassl.data.manifest import Problem
from bassl.data.movienet import keyframe_name, shot_pattern
from bassl.data.shard_format import TarStream, index_name, index_text, keyframe_ext, sample_json, sample_key
from bassl.data.storage import Store
from bassl.errors import DataError
from bassl.sharding.plan import ShardSpec
from bassl.sharding.record import ShardRecord

REPORT_NAME = "shard_report.json"

@dataclass(frozen=True)
class BuildTask:
    """Everything a worker needs for one shard (pickled to it)."""

    out_dir: str
    frames_root: str
    keyframes_per_shot: int
    on_error: str
    plan_id: str
    spec: ShardSpec


def finished_record(task: BuildTask) -> ShardRecord | None:
    """The record of this shard if what is on disk is exactly what it describes (sizes and sha256s), else None."""
    out = Path(task.out_dir)
    rec = ShardRecord.read(out / ShardRecord.file_name(task.spec))
    if rec is None or (task.on_error == "error" and rec.skipped):
        return None  # no record, or built in skip mode: rebuilding stops at the bad file, as this mode should
    return rec if rec.finished(task.plan_id, task.spec, Store(out), verify_hashes=True) else None


def build_shard(task: BuildTask) -> ShardRecord:
    """Write one shard, its DALI index and its record; returns the record."""
    out, spec = Path(task.out_dir), task.spec
    frames = task.frames_root
    tar_path, idx_path = out / spec.name, out / index_name(spec.name)
    hasher = hashlib.sha256()
    skipped: list[dict] = []
    ranges: list[dict] = []
    (out / ShardRecord.file_name(spec)).unlink(missing_ok=True)  # an older record must not vouch for the files replaced below
    # A crash before the record leaves a shard with no record, which the next run rebuilds.
    with atomic_path(tar_path) as tmp_tar, atomic_path(idx_path) as tmp_idx:
        with open(tmp_tar, "wb", buffering=0) as f:
            stream = TarStream(f, hasher)
            for run in spec.runs:
                movie_dir = f"{frames}/{run.video_id}/"
                for shot in range(run.first, run.stop):
                    stream.begin_sample(sample_key(run.video_id, shot))
                    kept = 0
                    for k in range(task.keyframes_per_shot):
                        path = movie_dir + keyframe_name(shot, k)
                        problem = stream.add_file(keyframe_ext(k), path)
                        if problem is None:
                            kept += 1
                        elif task.on_error == "error":
                            raise DataError(f"{path}: {problem}. Replace or remove it (or pass --on-error skip to "
                                            f"leave it out: shot {shot} of {run.video_id} keeps its other keyframes; "
                                            f"what was left out is listed in the manifest and {REPORT_NAME}).")
                        else:
                            skipped.append(asdict(Problem(run.video_id, shot, path, problem, k)))
                    if not kept:
                        skipped.append(asdict(Problem(run.video_id, shot, movie_dir + shot_pattern(shot),
                                                      "no readable keyframe left; the shot is left out of the shards")))
                        stream.drop_sample()
                        continue
                    stream.add_bytes("json", sample_json(run.video_id, shot, run.num_shots))
                    stream.end_sample()
                    _extend(ranges, run.video_id, shot)
            size = stream.close()
        index = index_text(stream.index).encode()
        tmp_idx.write_bytes(index)
    record = ShardRecord(plan_id=task.plan_id, spec=spec.to_json(), name=spec.name, index=idx_path.name,
                         samples=len(stream.index), bytes=size, sha256=hasher.hexdigest(), index_bytes=len(index),
                         index_sha256=hashlib.sha256(index).hexdigest(), movies=ranges, skipped=skipped)
    record.write(out)
    return record


def _extend(ranges: list[dict], video_id: str, shot: int) -> None:
    if ranges and ranges[-1]["video_id"] == video_id:
        ranges[-1]["last_shot"] = shot
        ranges[-1]["shots"] += 1
    else:
        ranges.append({"video_id": video_id, "first_shot": shot, "last_shot": shot, "shots": 1})


def keep_or_build(task: BuildTask) -> tuple[ShardRecord, bool]:
    """(record, kept): keep a finished shard (verified by size and sha256), otherwise build it."""
    rec = finished_record(task)
    if rec is not None:
        return rec, True
    return build_shard(task), False
