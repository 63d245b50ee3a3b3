"""``bassl shard``: pack a MovieNet-SSeg layout's keyframes into WebDataset tar shards, a DALI index beside each.

The stages, in order:

1. plan (:mod:`bassl.sharding.plan`): list every movie and stat every keyframe, then decide which shots go into which
   shard. Saved in ``<out>/.shard-build/plan.json``; every later run, worker and ``--part`` reuses it, which
   is what makes the output byte-identical whatever the number of workers or machines.
2. build (:mod:`bassl.sharding.build`, one shard per task, ``--workers`` processes): copy the JPEG bytes (checked for
   SOI/EOI markers, never decoded or re-encoded) into a deterministic tar, hashing as it writes; write the
   DALI index from the offsets we just wrote; move both into place (:mod:`bassl.data.atomic`); then the
   shard's record (size, sha256, what it holds) in ``.shard-build/``. A shard with a valid record and the same
   size and sha256 on disk is kept, so a killed run resumes where it stopped.
3. merge (:func:`merge_shards`): once every shard has a record, write ``manifest.json`` and
   ``shard_report.json``. A plain run does all three; ``--part I/N`` does 1-2 for shards ``i % N == I``;
   ``--merge`` does 3.

Bad input (missing, unreadable or non-JPEG keyframe, truncated JPEG, movie without frames) stops the build
with a :class:`DataError` naming the file; with ``on_error="skip"`` the keyframe is left out (its shot keeps the
others; a shot with none left, or a movie without frames, is left out whole) and listed in the manifest's
``skipped`` and in ``shard_report.json``. Every later stage accepts such shards (see :mod:`bassl.data.manifest`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from bassl.config import Config, save_config
from bassl.data.atomic import STALE_TEMP_SECONDS, parse_temp_name, writer_host, writer_running
from bassl.data.manifest import MANIFEST_NAME, build_manifest, write_manifest
from bassl.data.movienet import MovieNetSource
from bassl.data.shard_format import index_name
from bassl.data.storage import Store, is_remote
from bassl.errors import DataError
from bassl.sharding.build import REPORT_NAME, BuildTask, keep_or_build
from bassl.sharding.plan import (
    BUILD_DIR,
    PLAN_NAME,
    ShardPlan,
    load_plan,
    make_plan,
    parse_plan,
    plan_settings,
    save_plan,
    shard_name,
)
from bassl.sharding.record import ShardRecord
from bassl.workers import process_maps, resolve_workers

DEFAULT_SHARD_BYTES = 1_000_000_000  # ~1 GB: ~160 shards for MovieNet's 160 GB; a few hundred MB is fine too
ON_ERROR = ("error", "skip")
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


# ---- the run ------------------------------------------------------------------------------------------


@dataclass
class ShardSummary:
    out_dir: Path | str  # a directory, or the URL the shards were published to
    source: Path
    part: tuple[int, int] | None = None
    shards: int = 0  # shards this run was responsible for
    built: int = 0
    kept: int = 0
    samples: int = 0
    bytes: int = 0
    built_bytes: int = 0
    seconds: float = 0.0
    skipped: list[dict] = field(default_factory=list)
    manifest: str | None = None

    def describe(self) -> str:
        mb = self.bytes / 1e6
        rate = f" ({self.built_bytes / 1e6 / self.seconds:.1f} MB/s written)" if self.built and self.seconds else ""
        who = f"part {self.part[0]}/{self.part[1]}: " if self.part else ""
        lines = [f"{who}{self.shards} shards in {self.out_dir} ({self.built} built, {self.kept} kept from an earlier run), "
                 f"{self.samples} shots, {mb:.1f} MB in {self.seconds:.1f} s{rate}"]
        if self.skipped:
            first = self.skipped[0]
            lines.append(f"  skipped {len(self.skipped)} (see {REPORT_NAME}), e.g. {first['path']}: {first['reason']}")
        if self.manifest:
            lines.append(f"  manifest: {self.manifest}")
        elif self.part:
            lines.append(f"  when all {self.part[1]} parts are done: bassl shard --merge --out {self.out_dir}")
        return "\n".join(lines)


def _plan(source: MovieNetSource, out: Path, shard_bytes: int, on_error: str, ordered_map: Callable) -> ShardPlan:
    plan = load_plan(out)
    wanted = plan_settings(source, shard_bytes)
    if plan is None:
        plan = make_plan(source, shard_bytes, map_fn=ordered_map)
        plan.problems.sort(key=lambda p: (p.video_id, -1 if p.shot is None else p.shot, 1 << 30 if p.keyframe is None
                                          else p.keyframe, p.path))  # a shot's own files before the shot as a whole
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
    """Delete a killed run's temp files of the shards this run builds; refuse if their writer is still alive.

    Temp names carry host and pid (:func:`bassl.data.atomic.temp_path`). A temp file counts as live when it
    changed in the last STALE_TEMP_SECONDS and, if it is from this host, its pid is a running process.
    """
    host = writer_host()
    now = time.time()
    ours = names | {index_name(n) for n in names}
    for entry in os.scandir(out):
        parsed = parse_temp_name(entry.name)
        if parsed is None or parsed[0] not in ours:
            continue
        _, writer, pid = parsed
        age = now - entry.stat().st_mtime
        if age < STALE_TEMP_SECONDS and (writer != host or (pid != os.getpid() and writer_running(pid))):
            raise DataError(f"{entry.path}: another `bassl shard` ({writer}, pid {pid}) wrote this {age:.0f} s ago "
                            "and may still be running; two builders of the same shards cannot share a directory. "
                            f"Stop it, or if it is dead delete the file (or wait {STALE_TEMP_SECONDS} s).")
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
    staging: str | Path | None = None,
    publish: bool = True,
) -> ShardSummary:
    """Plan, build (this part's shards, or all) and, without ``part``, merge. Reads ``cfg.data`` only.

    ``source_root`` overrides ``cfg.data.root``; ``workers`` 0 means one per available core. ``out_dir`` may be
    a URL (``s3://bucket/prefix``): the shards are built in ``staging`` (default: a directory under
    ``~/.cache/bassl``) and then published (:mod:`bassl.sharding.publish`).
    """
    if is_remote(out_dir):
        from bassl.sharding.publish import publish_shards, staging_dir

        local = Path(staging) if staging else staging_dir(str(out_dir))
        summary = build_shards(cfg, source_root, local, shard_bytes=shard_bytes, workers=workers, part=part,
                               on_error=on_error, progress=progress, publish=False)
        summary = publish_shards(local, Store(out_dir), summary, progress=progress)
        if part is None:  # every part built and uploaded: merge in the store
            summary.manifest = merge_shards(summary.out_dir, cfg=cfg).manifest
        return summary
    if on_error not in ON_ERROR:
        raise DataError(f"on_error {on_error!r}: choose one of {', '.join(ON_ERROR)}")
    start = time.perf_counter()
    shard_bytes = parse_size(shard_bytes)
    source = MovieNetSource.from_config(cfg.data, root=source_root)
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = ShardSummary(out, source.root, part=part)
    with process_maps(resolve_workers(workers)) as maps:
        def scan_with_progress(fn: Callable, xs: list) -> Iterator:
            return tqdm(maps.ordered(fn, xs), total=len(xs), unit="movie", desc="plan", disable=not progress)

        plan = _plan(source, out, shard_bytes, on_error, scan_with_progress)
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
                summary.samples += rec.samples
                summary.bytes += rec.bytes
                summary.built_bytes += 0 if kept else rec.bytes
                bar.update(rec.shots)
                bar.set_postfix_str(f"{summary.bytes / 1e6 / max(bar.format_dict['elapsed'], 1e-9):.0f} MB/s", refresh=False)
    summary.skipped = _skipped(plan, [r for t in tasks if (r := ShardRecord.read(out / ShardRecord.file_name(t.spec)))])
    if part is None and publish:
        summary.manifest = merge_shards(out, cfg=cfg).manifest
    summary.seconds = time.perf_counter() - start
    return summary


def _skipped(plan: ShardPlan, records: list[ShardRecord]) -> list[dict]:
    """What was left out, in (movie, shot, keyframe) order: the plan's problems (missing files) and the builders'
    (broken files), each once (a keyframe missing at planning is met again while building)."""
    out: dict[tuple, dict] = {}
    for p in [asdict(p) for p in plan.problems] + [p for r in records for p in r.skipped]:
        out.setdefault((p["video_id"], p["shot"], p.get("keyframe"), p["path"]), {**p, "keyframe": p.get("keyframe")})

    def order(p: dict) -> tuple:
        return (p["video_id"], -1 if p["shot"] is None else p["shot"], -1 if p["keyframe"] is None else p["keyframe"],
                p["path"])

    return sorted(out.values(), key=order)


# ---- merge --------------------------------------------------------------------------------------------


def merge_shards(out_dir: str | Path, source_root: str | Path | None = None, cfg: Config | None = None) -> ShardSummary:
    """Check that every planned shard is finished, then write ``manifest.json``, ``shard_report.json`` and, given
    the ``cfg`` that built them, ``config.yaml`` (its ``data.root`` and ``data.shards`` those of this set).

    ``out_dir`` is the shard directory or URL. Checks sizes against the records (cheap); the sha256 of each shard
    was taken while writing it and is re-checked whenever a run resumes. ``source_root``, if given, must be the one
    the plan was made from.
    """
    start = time.perf_counter()
    store = Store(out_dir)
    out = store.location
    plan_name = f"{BUILD_DIR}/{PLAN_NAME}"
    if not store.exists(plan_name):
        raise DataError(f"{out}: no shard plan ({store.url(plan_name)}); run `bassl shard --source DIR "
                        f"--out {out}` (or its --part I/N array) before --merge")
    plan = parse_plan(store.read(plan_name), Path(store.url(plan_name)))
    if source_root is not None and str(Path(source_root).expanduser().resolve()) != plan.settings["source"]:
        raise DataError(f"{out} was planned from {plan.settings['source']}, not {source_root}")
    records, missing = [], []
    for spec in plan.shards:
        name = ShardRecord.file_name(spec)
        rec = ShardRecord.parse(store.read(name) if store.exists(name) else None)
        if rec is None or not rec.finished(plan.plan_id, spec, store):
            missing.append(spec.index)
            continue
        records.append(rec)
    if missing:
        few = ", ".join(shard_name(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{out}: {len(missing)} of {len(plan.shards)} shards are not finished ({few}). Run the parts "
                        f"that build them again (with --part I/N, shard i belongs to part i % N), or run "
                        f"`bassl shard` without --part; finished shards are kept.")
    skipped = _skipped(plan, records)
    manifest = _manifest(plan, records, skipped)
    report = {
        "manifest": MANIFEST_NAME,
        "num_skipped": len(skipped),
        # not in the shards at all: the loaders leave these movies out of every split
        "skipped_movies": sorted({p["video_id"] for p in skipped if p["shot"] is None}),
        # not in the shards, but the movie is: the loaders fill each shot with a neighbour's keyframes
        "skipped_shots": [p for p in skipped if p["shot"] is not None and p["keyframe"] is None],
        # the shot is in the shards with its other keyframes
        "skipped_keyframes": [p for p in skipped if p["keyframe"] is not None],
        "skipped": skipped,
        "empty_shards": [r.name for r in records if r.samples == 0],
    }
    store.write_json(REPORT_NAME, report)
    if cfg is not None:
        save_config(replace(cfg, data=replace(cfg.data, root=plan.settings["source"], shards=str(out))), out_dir)
    path = write_manifest(store, manifest)  # last: a reader finds a manifest only when everything it lists is there
    return ShardSummary(Path(out) if not store.remote else out, Path(plan.settings["source"]), shards=len(records),
                        kept=len(records), samples=manifest["num_shots"], bytes=manifest["total_bytes"],
                        seconds=time.perf_counter() - start, skipped=skipped, manifest=path)


def _manifest(plan: ShardPlan, records: list[ShardRecord], skipped: list[dict]) -> dict:
    shards = []
    movies: dict[str, dict] = {}
    for rec in records:
        if rec.samples == 0:  # every shot skipped: a valid but empty tar, which readers would trip over
            continue
        for r in rec.movies:
            m = movies.setdefault(r["video_id"], {"num_shots": plan.movies[r["video_id"]], "shots": 0, "shards": []})
            m["shots"] += r["shots"]
            m["shards"].append(len(shards))
        shards.append(rec.manifest_entry())
    splits = {name: [v for v in vids if v in movies] for name, vids in plan.splits.items()}
    members = {name: set(vids) for name, vids in splits.items()}
    for vid, m in movies.items():
        m["splits"] = [name for name, vids in members.items() if vid in vids]
    return build_manifest(plan.settings, shards, movies, splits, skipped)
