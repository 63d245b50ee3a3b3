"""``bassl shard --out s3://bucket/prefix``: shards built in a local staging directory, then published.

Per shard, in this order: the tar, its index, then its record (``.shard-build/shard-NNNNNN.json``); each object
is one PUT (or a multipart upload, which the store shows only once complete), so a shard appears under its final
name only when complete, as on disk, and a record vouches only for objects already there. A shard whose record in
the store matches the local one (same plan, same sha256) is not uploaded again, so a killed publish resumes. The
plan goes first (other ``--part`` tasks and ``--merge`` read it); without ``--part`` the manifest goes last,
written by :func:`bassl.sharding.run.merge_shards` against the store.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from tqdm import tqdm

from bassl.data.storage import Store
from bassl.sharding.plan import BUILD_DIR, PLAN_NAME, load_plan
from bassl.sharding.record import ShardRecord


def staging_dir(url: str) -> Path:
    """Where shards for ``url`` are built before upload: the same URL always gets the same directory, so a
    killed run resumes its local work too."""
    return Path.home() / ".cache" / "bassl" / "shard-staging" / hashlib.sha1(url.encode()).hexdigest()[:16]


def publish_shards(staging: Path, store: Store, summary, progress: bool = True):
    """Upload this run's finished shards from ``staging`` to ``store`` (skipping those already there). Returns the
    summary, now naming the store; :func:`bassl.sharding.run.build_shards` merges there once every part is in."""
    start = time.perf_counter()
    plan = load_plan(staging)
    store.write(f"{BUILD_DIR}/{PLAN_NAME}", (staging / BUILD_DIR / PLAN_NAME).read_bytes())
    part = summary.part
    mine = [s for s in plan.shards if part is None or s.index % part[1] == part[0]]
    uploaded = 0
    for spec in tqdm(mine, unit="shard", desc="publish", disable=not progress):
        name = ShardRecord.file_name(spec)
        local = ShardRecord.read(staging / name)
        if store.exists(name):
            there = ShardRecord.parse(store.read(name))
            if there == local and there.finished(plan.plan_id, spec, store):
                continue
        store.upload(staging / local.name, local.name)
        store.upload(staging / local.index, local.index)
        store.upload(staging / name, name)  # the record last: it vouches for the two files above
        uploaded += 1
    summary.out_dir = store.location
    summary.seconds += time.perf_counter() - start
    print(f"[shard] published {uploaded} shard(s) to {store.location} ({len(mine) - uploaded} already there); "
          f"built in {staging}")
    return summary
