"""Random access to keyframe JPEG bytes inside bassl's shards, through the manifest and the DALI index files.

The manifest (:mod:`bassl.data.manifest`, its only reader) says which shards hold which movies and splits;
beside each shard its index (:func:`bassl.data.shard_format.read_index`) lists every member's data offset and
size, so a tar is never scanned: a shot's keyframe is a slice of the shard's mmap.

What the stream holds: ``ShotTable`` = per movie (id, shot count, first row) and per shot row (shard,
offsets and sizes of its keyframes), shots of a movie contiguous and in order, every shot 0..n-1 present.
Shards written with ``bassl shard --on-error skip`` may lack keyframes or whole shots; the table fills them
(a keyframe from the nearest keyframe of the same shot, a shot from its nearest neighbour in the movie), so
shot indices, windows and labels never shift, and it counts every fill for the stages to print.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bassl.data.manifest import Manifest, load_manifest
from bassl.data.shard_format import index_name, keyframe_of_ext, read_index
from bassl.errors import DataError


@dataclass
class ShotTable:
    """Every shot of a set of shards, movie-contiguous. Rows are global shot ids (``movie_start[m] + shot``)."""

    shard_paths: list[Path]
    movie_ids: list[str]
    num_shots: np.ndarray  # [M] int64
    movie_start: np.ndarray  # [M] int64, first row of each movie
    shard: np.ndarray  # [N] int32
    offset: np.ndarray  # [N, F] int64 data offsets of the keyframes inside the shard
    size: np.ndarray  # [N, F] int64
    filled_shots: dict[str, list[int]] = field(default_factory=dict)  # movie -> shots served by a neighbour's bytes
    filled_keyframes: int = 0  # keyframe slots served by another keyframe of the same shot
    _maps: dict[int, mmap.mmap] = field(default_factory=dict, repr=False)

    @property
    def num_rows(self) -> int:
        return int(self.shard.shape[0])

    @property
    def keyframes(self) -> int:
        return int(self.offset.shape[1])

    def movie_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.movie_start, rows, side="right") - 1

    def jpeg(self, row: int, keyframe: int) -> np.ndarray:
        """The keyframe's JPEG bytes as a uint8 array viewing the shard's mmap (no copy)."""
        s = int(self.shard[row])
        mm = self._maps.get(s)
        if mm is None:
            with open(self.shard_paths[s], "rb") as f:
                mm = self._maps[s] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        o, n = int(self.offset[row, keyframe]), int(self.size[row, keyframe])
        return np.frombuffer(mm, dtype=np.uint8, count=n, offset=o)

    def select(self, movie_ids: list[str] | set[str]) -> ShotTable:
        """The sub-table of these movies (order kept); unknown ids are an error that names them."""
        want = set(movie_ids)
        missing = want - set(self.movie_ids)
        if missing:
            raise DataError(f"{len(missing)} movies are not in the shards, e.g. {sorted(missing)[:3]}")
        keep = [m for m, v in enumerate(self.movie_ids) if v in want]
        rows = np.concatenate([np.arange(self.movie_start[m], self.movie_start[m] + self.num_shots[m]) for m in keep])
        counts = self.num_shots[keep]
        kept_ids = [self.movie_ids[m] for m in keep]
        return ShotTable(
            shard_paths=self.shard_paths,
            movie_ids=kept_ids,
            num_shots=counts,
            movie_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
            shard=self.shard[rows],
            offset=self.offset[rows],
            size=self.size[rows],
            filled_shots={v: s for v, s in self.filled_shots.items() if v in want},
            filled_keyframes=self.filled_keyframes,
        )

    def describe_fills(self) -> str | None:
        """One line for the stages to print when the shards had gaps (``bassl shard --on-error skip``), else None."""
        shots = sum(len(s) for s in self.filled_shots.values())
        if not shots and not self.filled_keyframes:
            return None
        first = next(((v, s[0]) for v, s in self.filled_shots.items() if s), None)
        example = f", e.g. shot {first[1]} of {first[0]}" if first else ""
        return (f"the shards lack {shots} shot(s) of {len(self.filled_shots)} movie(s){example}, each served by its "
                f"nearest neighbour's keyframes, and {self.filled_keyframes} single keyframe(s), each served by "
                "another keyframe of its shot (bassl shard --on-error skip; see shard_report.json)")

    def __getstate__(self):  # mmaps do not pickle; each DataLoader worker opens its own
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state


def _nearest(present: list[int], want: int) -> int:
    """The present index closest to ``want`` (the lower one on a tie)."""
    return min(present, key=lambda j: (abs(j - want), j))


def load_shot_table(manifest: Manifest, shard_paths: list[Path]) -> ShotTable:
    """Read the index files (and the tiny json members) of these shards, in order, filling what the shards lack."""
    if not shard_paths:
        raise DataError(f"{manifest.path}: no shards selected; build them with `bassl shard`")
    f = manifest.keyframes_per_shot
    samples: dict[str, dict[int, tuple[int, list[tuple[int, int] | None]]]] = {}  # movie -> shot -> (shard, slots)
    order: list[str] = []
    for s, tar in enumerate(shard_paths):
        idx = tar.with_name(index_name(tar.name))
        if not idx.exists():
            raise DataError(f"{tar}: no DALI index {idx.name} beside it; rebuild the shards with `bassl shard` "
                            "(it keeps finished shards)")
        with open(tar, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for members in read_index(idx):
                if "json" not in members:
                    raise DataError(f"{tar}: a sample has members {sorted(members)} and no json; not a bassl shard")
                o, n = members["json"]
                meta = json.loads(mm[o : o + n])
                vid, shot = str(meta["video_id"]), int(meta["shot"])
                slots: list[tuple[int, int] | None] = [None] * f
                for ext, loc in members.items():
                    k = keyframe_of_ext(ext)
                    if k is not None and k < f:
                        slots[k] = loc
                if all(x is None for x in slots):
                    raise DataError(f"{tar}: sample {vid}/{shot} has no keyframe members")
                movie = samples.get(vid)
                if movie is None:
                    movie = samples[vid] = {}
                    order.append(vid)
                elif order[-1] != vid:
                    raise DataError(f"movie {vid}: its shots are not contiguous in the shards (bassl's shards are "
                                    "movie-ordered; were these written by `bassl shard`?)")
                if shot in movie:
                    raise DataError(f"{tar}: shot {shot} of movie {vid} appears twice")
                movie[shot] = (s, slots)

    shards, offsets, sizes, counts = [], [], [], []
    filled_shots: dict[str, list[int]] = {}
    filled_keyframes = 0
    for vid in order:
        movie = samples[vid]
        n = int(manifest.movies[vid]["num_shots"]) if vid in manifest.movies else max(movie) + 1
        beyond = [shot for shot in movie if not 0 <= shot < n]
        if beyond:
            raise DataError(f"movie {vid}: shot {beyond[0]} in the shards, but the manifest says {n} shots")
        present = sorted(movie)
        gaps = [shot for shot in range(n) if shot not in movie]
        if gaps:
            filled_shots[vid] = gaps
        for shot in range(n):
            s, slots = movie[shot] if shot in movie else movie[_nearest(present, shot)]
            have = [k for k in range(f) if slots[k] is not None]
            row = []
            for k in range(f):
                if slots[k] is None:
                    filled_keyframes += shot in movie  # count each absent keyframe once, not again per fill
                    row.append(slots[_nearest(have, k)])
                else:
                    row.append(slots[k])
            shards.append(s)
            offsets.append([loc[0] for loc in row])
            sizes.append([loc[1] for loc in row])
        counts.append(n)
    c = np.asarray(counts, dtype=np.int64)
    return ShotTable(
        shard_paths=list(shard_paths),
        movie_ids=order,
        num_shots=c,
        movie_start=np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64),
        shard=np.asarray(shards, dtype=np.int32),
        offset=np.asarray(offsets, dtype=np.int64).reshape(-1, f),
        size=np.asarray(sizes, dtype=np.int64).reshape(-1, f),
        filled_shots=filled_shots,
        filled_keyframes=filled_keyframes,
    )


def open_shots(source: str | Path, split: str | None = None) -> ShotTable:
    """The shot table of the shards written by ``bassl shard`` into ``source`` (the directory, or its
    ``manifest.json``), optionally restricted to the movies of one annotation split."""
    manifest = load_manifest(source)
    table = load_shot_table(manifest, manifest.shard_paths(split))
    return table if split is None else table.select(manifest.movie_ids(split))


def jpeg_size(data: np.ndarray | bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker, without decoding."""
    b = memoryview(data).cast("B") if isinstance(data, np.ndarray) else data
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        marker = b[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = (b[i + 2] << 8) | b[i + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (b[i + 7] << 8) | b[i + 8], (b[i + 5] << 8) | b[i + 6]
        i += 2 + length
    raise DataError("not a JPEG with a frame header")
