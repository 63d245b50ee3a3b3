"""``manifest.json``: what a shard directory holds; this module is its only reader and writer. The loaders
choose shards, movies and splits through it.

    {"format": "bassl-shards", "version": 1,
     "source": "/data/movienet", "keyframes_per_shot": 3, "members": ["0.jpg", "1.jpg", "2.jpg", "json"],
     "target_shard_bytes": 1000000000, "num_shards": 2, "num_movies": 3, "num_shots": 350, "total_bytes": ...,
     "shards": [{"name": "shard-000000.tar", "index": "shard-000000.idx", "samples": 200, "bytes": ...,
                 "sha256": "...", "movies": [{"video_id": "tt0000001", "first_shot": 0, "last_shot": 119,
                                              "shots": 120}, ...]}, ...],
     "movies": {"tt0000001": {"num_shots": 120, "shots": 120, "shards": [0], "splits": ["pretrain", "train"]}},
     "splits": {"pretrain": ["tt0000001", ...], "train": [...], ...},
     "skipped": [{"video_id": "...", "shot": 7, "path": ".../shot_0007_img_1.jpg", "reason": "...", "keyframe": 1}]}

Shard paths are relative to the manifest. ``first_shot``/``last_shot`` are inclusive and ``shots`` counts the
samples in that shard (fewer than the range only where a shot was skipped: see ``skipped``). ``num_shots``
of a movie is its shot count on disk; ``shots`` how many of them are in the shards. ``splits`` lists, per
annotation file present, its movies that are in the shards. Labels stay in the annotation files.

``skipped`` (from ``bassl shard --on-error skip``) lists what was left out: a keyframe (``keyframe`` = its
index; the shot keeps its other keyframes), a whole shot (``keyframe`` null: no readable keyframe was left) or
a whole movie (``shot`` null). Shot indices never move: a movie's shots stay 0..num_shots-1, and a loader
fills a shot that is not in the shards from its neighbour (:meth:`Manifest.missing_shots`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bassl.data.checksums import file_sha256
from bassl.data.shard_format import member_exts
from bassl.data.storage import Store, is_remote, join
from bassl.errors import DataError

MANIFEST_NAME = "manifest.json"
FORMAT = "bassl-shards"
VERSION = 1


@dataclass(frozen=True)
class Problem:
    """A bad input the shard builder met (an entry of ``skipped``): a missing, unreadable or broken keyframe
    (``keyframe`` set), a shot with no usable keyframe (``keyframe`` None) or a movie without frames (``shot`` None)."""

    video_id: str
    shot: int | None
    path: str
    reason: str
    keyframe: int | None = None

    def describe(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class MovieRange:
    video_id: str
    first_shot: int
    last_shot: int  # inclusive
    shots: int  # samples of this movie in the shard


@dataclass(frozen=True)
class ShardEntry:
    name: str
    index: str
    samples: int
    bytes: int
    sha256: str
    movies: tuple[MovieRange, ...]
    index_sha256: str | None = None  # manifests written before bassl recorded it have none


@dataclass
class Manifest:
    location: str  # the shard directory or URL prefix (s3://bucket/prefix); shard names are relative to it
    shards: list[ShardEntry]
    movies: dict[str, dict]  # video id -> {"num_shots", "shots", "shards", "splits"}
    splits: dict[str, list[str]]
    skipped: list[dict]
    data: dict  # the whole document as read

    @property
    def path(self) -> str:
        return join(self.location, MANIFEST_NAME)

    @property
    def store(self) -> Store:
        return Store(self.location)

    @property
    def root(self) -> Path:
        """The shard directory (local shards only)."""
        if is_remote(self.location):
            raise ValueError(f"{self.location} is not a local directory; read its shards through Manifest.store")
        return Path(self.location)

    @property
    def keyframes_per_shot(self) -> int:
        return int(self.data["keyframes_per_shot"])

    @property
    def members(self) -> list[str]:
        """The member extensions of every sample, for DALI's ``fn.readers.webdataset(ext=...)``."""
        return list(self.data["members"])

    def movie_ids(self, split: str | None = None) -> list[str]:
        """Movies in shard order; with ``split``, only that annotation file's movies."""
        if split is None:
            return list(self.movies)
        if split not in self.splits:
            have = ", ".join(self.splits) or "none"
            hint = ("; videos from `bassl ingest` have no scene labels: extract.split=pretrain extracts their features "
                    "(fine-tuning needs anno.train/val/test.ndjson)" if list(self.splits) == ["pretrain"]
                    else "")
            raise DataError(f"{self.path}: no split {split!r} (splits from the annotation files: {have}){hint}")
        return list(self.splits[split])

    def num_shots(self, split: str | None = None) -> int:
        """Samples in the shards for these movies (what a loader will see)."""
        return sum(self.movies[v]["shots"] for v in self.movie_ids(split))

    def select(self, split: str | None = None, movies: list[str] | set[str] | None = None) -> list[ShardEntry]:
        """Shards holding any shot of the chosen movies (a split, a list of ids, or both), in order."""
        chosen = set(self.movie_ids(split))
        if movies is not None:
            unknown = set(movies) - set(self.movies)
            if unknown:
                raise DataError(f"{self.path}: {len(unknown)} movies are not in the shards, e.g. {sorted(unknown)[:3]}")
            chosen &= set(movies)
        wanted = sorted({i for v in chosen for i in self.movies[v]["shards"]})
        return [self.shards[i] for i in wanted]

    def missing_shots(self, video_id: str) -> list[int]:
        """Shots of a movie that are not in the shards (every keyframe was missing or broken), in order."""
        return sorted({p["shot"] for p in self.skipped
                       if p["video_id"] == video_id and p["shot"] is not None and p.get("keyframe") is None})

    def dropped_keyframes(self) -> list[dict]:
        """The skipped entries of single keyframes (their shots are in the shards with the other keyframes)."""
        return [p for p in self.skipped if p["shot"] is not None and p.get("keyframe") is not None]

    def shard_paths(self, split: str | None = None, movies: list[str] | set[str] | None = None) -> list[Path]:
        return [self.root / s.name for s in self.select(split, movies)]

    def index_paths(self, split: str | None = None, movies: list[str] | set[str] | None = None) -> list[Path]:
        """The DALI index beside each of :meth:`shard_paths`, same order (``index_paths=`` of the reader)."""
        return [self.root / s.index for s in self.select(split, movies)]

    def verify(self, checksums: bool = False) -> None:
        """Every shard and index present with the listed size (and, with ``checksums``, the listed sha256s)."""
        for s in self.shards:
            tar, idx = self.root / s.name, self.root / s.index
            if not idx.is_file():
                raise DataError(f"{idx}: missing; rebuild with `bassl shard --out {self.root}` (it resumes)")
            try:
                size = tar.stat().st_size
            except OSError as e:
                raise DataError(f"{tar}: {e.strerror}; rebuild with `bassl shard --out {self.root}` (it resumes)") from e
            if size != s.bytes:
                raise DataError(f"{tar}: {size} bytes, the manifest says {s.bytes}; the shard was changed or cut short")
            if checksums and file_sha256(tar) != s.sha256:
                raise DataError(f"{tar}: sha256 differs from the manifest; the shard is corrupt, rebuild it")
            if checksums and s.index_sha256 and file_sha256(idx) != s.index_sha256:
                raise DataError(f"{idx}: sha256 differs from the manifest; the index is corrupt, rebuild it")


def load_manifest(location: str | Path) -> Manifest:
    """Read ``manifest.json`` from a shard directory or URL prefix (or give the manifest file itself)."""
    location = str(location)
    if location.endswith(MANIFEST_NAME):
        location = location[: -len(MANIFEST_NAME)].rstrip("/") or "."
    store = Store(location)
    if not store.exists(MANIFEST_NAME):
        where = store.url(MANIFEST_NAME)
        raise DataError(f"{where} does not exist; build the shards with `bassl shard --source DIR --out {store.location}` "
                        "(after a --part array, run `bassl shard --merge`)")
    try:
        data = json.loads(store.read(MANIFEST_NAME))
    except json.JSONDecodeError as e:
        raise DataError(f"{store.url(MANIFEST_NAME)}: not valid JSON ({e.msg}); rebuild it with `bassl shard --merge`") from e
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise DataError(f"{store.url(MANIFEST_NAME)}: format {data.get('format')!r} version {data.get('version')!r}; "
                        f"this bassl reads {FORMAT!r} version {VERSION}")
    shards = [
        ShardEntry(s["name"], s["index"], s["samples"], s["bytes"], s["sha256"], tuple(MovieRange(**m) for m in s["movies"]),
                   s.get("index_sha256"))
        for s in data["shards"]
    ]
    return Manifest(store.location, shards, data["movies"], data["splits"], data["skipped"], data)


def build_manifest(settings: dict[str, Any], shards: list[dict[str, Any]], movies: dict[str, dict[str, Any]],
                   splits: dict[str, list[str]], skipped: list[dict[str, Any]]) -> dict[str, Any]:
    """The document above from its parts (the plan's ``settings``: source, keyframes_per_shot, target_shard_bytes;
    each shard's entry; each movie's; the splits; what was skipped); the totals are counted here."""
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
        "skipped": skipped,
    }


def write_manifest(store: Store, data: dict) -> str:
    """Atomically (the atomic writer locally, one PUT remotely): a reader sees the old manifest or the new one,
    never a partial file. Returns where it is."""
    store.write_json(MANIFEST_NAME, data)
    return store.url(MANIFEST_NAME)
