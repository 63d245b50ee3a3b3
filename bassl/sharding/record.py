"""A shard's build record (``.shard-build/shard-NNNNNN.json``): what one built shard holds and the bytes that prove
it, with its one reader, its one writer and the one test of "is this shard finished".

The builder writes a record only after the tar and its index are in place, so a record vouches for them; the
shard run, the merge and publishing all ask :meth:`ShardRecord.finished` the same question, with the check
their storage affords (the sha256 of a local tar, the size of a remote one).

Only the standard library is imported here, so spawned workers start in milliseconds.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bassl.data.atomic import write_json
from bassl.data.checksums import file_sha256
from bassl.data.storage import Store
from bassl.sharding.plan import BUILD_DIR, ShardSpec


@dataclass(frozen=True)
class ShardRecord:
    plan_id: str
    spec: dict[str, Any]  # ShardSpec.to_json() of the plan it was built from
    name: str  # the tar's file name
    index: str  # the DALI index's file name
    samples: int
    bytes: int
    sha256: str
    index_bytes: int
    index_sha256: str
    movies: list[dict[str, Any]]  # per movie: video_id, first_shot, last_shot, shots (in tar order)
    skipped: list[dict[str, Any]]  # bassl.data.manifest.Problem as dicts: what was left out while building

    @staticmethod
    def file_name(spec: ShardSpec) -> str:
        """Where a shard's record lives, relative to the shard directory."""
        return _record_name(spec.name)

    @classmethod
    def parse(cls, data: bytes | str | None) -> ShardRecord | None:
        """The one reader: the record in ``data``; None when absent, unreadable or of another shape (the shard is
        then rebuilt, never trusted)."""
        if data is None:
            return None
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) != names:
            return None
        return cls(**d)

    @classmethod
    def read(cls, path: Path) -> ShardRecord | None:
        try:
            return cls.parse(path.read_bytes())
        except OSError:
            return None

    def write(self, out_dir: Path) -> Path:
        """The one writer (atomic): into ``out_dir``'s build directory, after the shard's files are in place."""
        return write_json(Path(out_dir) / _record_name(self.name), asdict(self))

    def describes(self, plan_id: str, spec: ShardSpec) -> bool:
        """Whether this records this plan's build of this shard (a record of another plan or spec is stale)."""
        return self.plan_id == plan_id and self.spec == spec.to_json()

    def finished(self, plan_id: str, spec: ShardSpec, store: Store, verify_hashes: bool = False) -> bool:
        """The shard is finished in ``store``: this record describes ``spec`` of ``plan_id`` and the tar has the
        recorded size; with ``verify_hashes`` (a local store: resuming a build) also the index's size and both
        sha256s, so a file changed after the record was written is rebuilt."""
        if not self.describes(plan_id, spec) or not store.exists(self.name) or store.size(self.name) != self.bytes:
            return False
        if not verify_hashes:
            return True
        tar, idx = Path(store.url(self.name)), Path(store.url(self.index))
        try:
            if idx.stat().st_size != self.index_bytes:
                return False
        except OSError:
            return False
        return file_sha256(idx) == self.index_sha256 and file_sha256(tar) == self.sha256

    @property
    def shots(self) -> int:
        """Shots the plan put in this shard (skipped ones included): the progress a finished shard stands for."""
        return sum(r["stop"] - r["first"] for r in self.spec["runs"])

    def manifest_entry(self) -> dict[str, Any]:
        """What manifest.json says of this shard."""
        return {k: getattr(self, k) for k in ("name", "index", "samples", "bytes", "sha256", "index_sha256", "movies")}


def _record_name(tar_name: str) -> str:
    return f"{BUILD_DIR}/{tar_name.replace('.tar', '.json')}"
