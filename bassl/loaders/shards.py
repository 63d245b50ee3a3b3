"""Random access to keyframe JPEG bytes inside bassl's shards, local or in object storage.

The manifest (:mod:`bassl.data.manifest`, its only reader) says which shards hold which movies and splits;
beside each shard its index (:func:`bassl.data.shard_format.parse_index`) lists every member's data offset and
size (and, in the member names, each sample's movie and shot), so a tar is never scanned: a shot's keyframe is a
slice of the shard. Local shards are memory-mapped. Remote shards (``data.shards=s3://...``, ``gs://``,
``https://``) are read by byte ranges: before a step the loader hands the table every keyframe the step needs
(:meth:`ShotTable.prefetch`) and it fetches them in a few concurrent requests, one per window of neighbouring
shots (``data.remote_fetch=ranges``), or whole shards into a small cache (``shards``).

What the stream holds: ``ShotTable`` = per movie (id, shot count, first row) and per shot row (shard,
offsets and sizes of its keyframes), shots of a movie contiguous and in order, every shot 0..n-1 present.
Shards written with ``bassl shard --on-error skip`` may lack keyframes or whole shots; the table fills them
(a keyframe from the nearest keyframe of the same shot, a shot from its nearest neighbour in the movie), so
shot indices, windows and labels never shift, and it counts every fill for the stages to print.
"""

from __future__ import annotations

import bisect
import hashlib
import mmap
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from bassl.data.manifest import Manifest, ShardEntry, load_manifest
from bassl.data.shard_format import jpeg_problem, keyframe_of_ext, parse_index, parse_sample_key
from bassl.data.storage import MAX_GAP, Store, coalesce
from bassl.errors import DataError

SHARD_CACHE = 4  # whole shards kept in memory with data.remote_fetch=shards


@dataclass
class ShotTable:
    """Every shot of a set of shards, movie-contiguous. Rows are global shot ids (``movie_start[m] + shot``)."""

    store: Store
    shard_names: list[str]
    movie_ids: list[str]
    num_shots: np.ndarray  # [M] int64
    movie_start: np.ndarray  # [M] int64, first row of each movie
    shard: np.ndarray  # [N] int32
    offset: np.ndarray  # [N, F] int64 data offsets of the keyframes inside the shard
    size: np.ndarray  # [N, F] int64
    filled_shots: dict[str, list[int]] = field(default_factory=dict)  # movie -> shots served by a neighbour's bytes
    filled_keyframes: int = 0  # keyframe slots served by another keyframe of the same shot
    remote_fetch: str = "ranges"  # ranges | shards
    _maps: dict[int, mmap.mmap] = field(default_factory=dict, repr=False)
    _spans: dict[int, tuple[list[int], list[tuple[int, bytes]]]] = field(default_factory=dict, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @property
    def num_rows(self) -> int:
        return int(self.shard.shape[0])

    @property
    def keyframes(self) -> int:
        return int(self.offset.shape[1])

    def movie_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.movie_start, rows, side="right") - 1

    # ---- bytes --------------------------------------------------------------------------------------

    def prefetch(self, items: Iterable[tuple[int, int]]) -> None:
        """Fetch the keyframes ``(row, keyframe)`` that the next reads will ask for (remote shards only), in as few
        requests as possible: byte ranges of one shard less than ``MAX_GAP`` apart are read as one span. Replaces
        what the previous prefetch held, so memory stays one step's worth."""
        if not self.store.remote:
            return
        wanted: dict[int, list[tuple[int, int]]] = {}
        for row, k in items:
            s, o = int(self.shard[row]), int(self.offset[row, k])
            wanted.setdefault(s, []).append((o, o + int(self.size[row, k])))
        if self.remote_fetch == "shards":
            for s in wanted:
                self._whole_shard(s)
            return
        names, starts, ends, shards = [], [], [], []
        for s, ranges in wanted.items():
            for a, b in coalesce(ranges, MAX_GAP):
                names.append(self.shard_names[s])
                starts.append(a)
                ends.append(b)
                shards.append(s)
        spans: dict[int, list[tuple[int, bytes]]] = {}
        for s, a, data in zip(shards, starts, self.store.read_ranges(names, starts, ends), strict=True):
            spans.setdefault(s, []).append((a, data))
        self._spans = {s: ([a for a, _ in sorted(v)], sorted(v)) for s, v in spans.items()}

    def _whole_shard(self, s: int) -> bytes:
        if s in self._cache:
            self._cache.move_to_end(s)
        else:
            self._cache[s] = self.store.read(self.shard_names[s])
            if len(self._cache) > SHARD_CACHE:
                self._cache.popitem(last=False)
        return self._cache[s]

    def jpeg(self, row: int, keyframe: int) -> np.ndarray:
        """The keyframe's JPEG bytes as a uint8 array (a view of the shard's mmap, or of fetched bytes)."""
        s = int(self.shard[row])
        o, n = int(self.offset[row, keyframe]), int(self.size[row, keyframe])
        if not self.store.remote:
            mm = self._maps.get(s)
            if mm is None:
                with open(self.store.url(self.shard_names[s]), "rb") as f:
                    mm = self._maps[s] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            return np.frombuffer(mm, dtype=np.uint8, count=n, offset=o)
        if self.remote_fetch == "shards":
            data = np.frombuffer(self._whole_shard(s), dtype=np.uint8, count=n, offset=o)
        else:
            data = self._from_spans(s, o, n)
        problem = jpeg_problem(data)
        if problem:
            movie = self.movie_ids[int(self.movie_of(np.array([row]))[0])]
            raise DataError(f"{self.store.url(self.shard_names[s])}: bytes {o}-{o + n} ({movie}, row {row}, keyframe "
                            f"{keyframe}) are not what the index says: {problem}. The object changed after its "
                            "manifest was written; publish the shards again")
        return data

    def _from_spans(self, s: int, o: int, n: int) -> np.ndarray:
        starts, spans = self._spans.get(s, ([], []))
        i = bisect.bisect_right(starts, o) - 1
        if i >= 0 and o + n <= spans[i][0] + len(spans[i][1]):
            a, data = spans[i]
            return np.frombuffer(data, dtype=np.uint8, count=n, offset=o - a)
        (data,) = self.store.read_ranges([self.shard_names[s]], [o], [o + n])  # not prefetched: one request
        return np.frombuffer(data, dtype=np.uint8)

    # ---- sub-tables and pickling ----------------------------------------------------------------------

    def select(self, movie_ids: list[str] | set[str]) -> ShotTable:
        """The sub-table of these movies (order kept); unknown ids are an error that names them."""
        want = set(movie_ids)
        missing = want - set(self.movie_ids)
        if missing:
            raise DataError(f"{len(missing)} movies are not in the shards, e.g. {sorted(missing)[:3]}")
        keep = [m for m, v in enumerate(self.movie_ids) if v in want]
        rows = np.concatenate([np.arange(self.movie_start[m], self.movie_start[m] + self.num_shots[m]) for m in keep])
        counts = self.num_shots[keep]
        return ShotTable(
            store=self.store,
            shard_names=self.shard_names,
            movie_ids=[self.movie_ids[m] for m in keep],
            num_shots=counts,
            movie_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
            shard=self.shard[rows],
            offset=self.offset[rows],
            size=self.size[rows],
            filled_shots={v: s for v, s in self.filled_shots.items() if v in want},
            filled_keyframes=self.filled_keyframes,
            remote_fetch=self.remote_fetch,
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

    def __getstate__(self):  # mmaps and fetched bytes do not travel; each DataLoader worker reads its own
        state = dict(self.__dict__)
        state["_maps"], state["_spans"], state["_cache"] = {}, {}, OrderedDict()
        return state


def _nearest(present: list[int], want: int) -> int:
    """The present index closest to ``want`` (the lower one on a tie)."""
    return min(present, key=lambda j: (abs(j - want), j))


def _read_index(store: Store, entry: ShardEntry) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """A shard's index, checked against the manifest (its checksum, and the shard's size)."""
    raw = store.read(entry.index)
    if entry.index_sha256 and hashlib.sha256(raw).hexdigest() != entry.index_sha256:
        raise DataError(f"{store.url(entry.index)}: sha256 differs from the manifest; the index was changed or is "
                        "corrupt. Publish the shards again (bassl shard keeps what is finished)")
    size = store.size(entry.name)
    if size != entry.bytes:
        raise DataError(f"{store.url(entry.name)}: {size} bytes, the manifest says {entry.bytes}; the shard was changed "
                        "or cut short. Publish the shards again (bassl shard keeps what is finished)")
    return parse_index(raw.decode(), store.url(entry.index))


def load_shot_table(manifest: Manifest, shards: list[ShardEntry], remote_fetch: str = "ranges") -> ShotTable:
    """Read the index files of these shards, in order, filling what the shards lack."""
    if not shards:
        raise DataError(f"{manifest.path}: no shards selected; build them with `bassl shard`")
    store = manifest.store
    f = manifest.keyframes_per_shot
    samples: dict[str, dict[int, tuple[int, list[tuple[int, int] | None]]]] = {}  # movie -> shot -> (shard, slots)
    order: list[str] = []
    for s, entry in enumerate(shards):
        for key, members in _read_index(store, entry):
            vid, shot = parse_sample_key(key)
            slots: list[tuple[int, int] | None] = [None] * f
            for ext, loc in members.items():
                k = keyframe_of_ext(ext)
                if k is not None and k < f:
                    slots[k] = loc
            if all(x is None for x in slots):
                raise DataError(f"{store.url(entry.name)}: sample {key} has no keyframe members")
            movie = samples.get(vid)
            if movie is None:
                movie = samples[vid] = {}
                order.append(vid)
            elif order[-1] != vid:
                raise DataError(f"movie {vid}: its shots are not contiguous in the shards (bassl's shards are "
                                "movie-ordered; were these written by `bassl shard`?)")
            if shot in movie:
                raise DataError(f"{store.url(entry.name)}: shot {shot} of movie {vid} appears twice")
            movie[shot] = (s, slots)

    rows_shard, offsets, sizes, counts = [], [], [], []
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
            rows_shard.append(s)
            offsets.append([loc[0] for loc in row])
            sizes.append([loc[1] for loc in row])
        counts.append(n)
    c = np.asarray(counts, dtype=np.int64)
    return ShotTable(
        store=store,
        shard_names=[e.name for e in shards],
        movie_ids=order,
        num_shots=c,
        movie_start=np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64),
        shard=np.asarray(rows_shard, dtype=np.int32),
        offset=np.asarray(offsets, dtype=np.int64).reshape(-1, f),
        size=np.asarray(sizes, dtype=np.int64).reshape(-1, f),
        filled_shots=filled_shots,
        filled_keyframes=filled_keyframes,
        remote_fetch=remote_fetch,
    )


def open_shots(source: str, split: str | None = None, remote_fetch: str = "ranges") -> ShotTable:
    """The shot table of the shards ``bassl shard`` wrote into ``source`` (a directory or URL prefix, or its
    ``manifest.json``), optionally restricted to the movies of one annotation split."""
    manifest = load_manifest(source)
    table = load_shot_table(manifest, manifest.select(split), remote_fetch)
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
