"""Random access to keyframe JPEG bytes inside WebDataset shards, through the DALI index files.

A shard is a tar of one sample per shot: the keyframes as their original JPEG bytes (members whose
extension ends in ``jpg``, ordered by the keyframe number in the extension, e.g. ``0.jpg 1.jpg 2.jpg``) and a
small ``json`` (video id, shot index). Beside each ``X.tar`` the ``X.idx`` written by ``wds2idx`` lists every
member's data offset and size, so we never scan a tar: a shot's keyframe is a slice of the shard's mmap.

What the stream holds: ``ShotTable`` = per movie (id, shot count, first row) and per shot row (shard,
offsets and sizes of its keyframes), shots of a movie contiguous and in order.
"""

from __future__ import annotations

import json
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bassl.errors import DataError

_KEYFRAME_EXT = re.compile(r"^(?:.*?)(\d+)\.?(?:jpg|jpeg)$|^(?:jpg|jpeg)(\d+)$")


def _keyframe_number(ext: str) -> int | None:
    m = _KEYFRAME_EXT.match(ext.lower())
    if m is None:
        return None
    return int(m.group(1) if m.group(1) is not None else m.group(2))


def read_idx(path: Path) -> list[dict[str, tuple[int, int]]]:
    """Parse a ``wds2idx`` index: per sample, ``{ext: (data offset, size)}``."""
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("v1"):
        raise DataError(f"{path}: not a DALI webdataset index (first line {lines[:1]!r}); rebuild it with wds2idx")
    samples = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) % 4:
            raise DataError(f"{path}: malformed line {line[:80]!r} (expected groups of: ext offset size name)")
        samples.append({parts[i]: (int(parts[i + 1]), int(parts[i + 2])) for i in range(0, len(parts), 4)})
    return samples


def _shot_fields(meta: dict) -> tuple[str, int]:
    vid = meta.get("video_id")
    shot = next((meta[k] for k in ("shot", "shot_index", "shot_idx", "shot_id") if k in meta), None)
    if vid is None or shot is None:
        raise DataError(f"shard sample json {meta!r} lacks video_id and a shot index (shot / shot_index / shot_id)")
    return str(vid), int(shot)


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
        return ShotTable(
            shard_paths=self.shard_paths,
            movie_ids=[self.movie_ids[m] for m in keep],
            num_shots=counts,
            movie_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
            shard=self.shard[rows],
            offset=self.offset[rows],
            size=self.size[rows],
        )

    def __getstate__(self):  # mmaps do not pickle; each DataLoader worker opens its own
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state


def load_shot_table(shard_paths: list[Path]) -> ShotTable:
    """Read the index files (and the tiny json members) of these shards, in order."""
    if not shard_paths:
        raise DataError("no shards given; build them with `bassl shard` and pass the shard directory or manifest")
    shards, offsets, sizes, keys = [], [], [], []
    for s, tar in enumerate(shard_paths):
        idx = tar.with_suffix(".idx")
        if not idx.exists():
            raise DataError(f"{tar}: no DALI index {idx.name} beside it; write it with `wds2idx {tar} {idx}`")
        with open(tar, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for members in read_idx(idx):
                frames = sorted((k, v) for ext, v in members.items() if (k := _keyframe_number(ext)) is not None)
                if "json" not in members or not frames:
                    raise DataError(f"{tar}: a sample has members {sorted(members)}; expected keyframe jpgs and a json")
                o, n = members["json"]
                keys.append(_shot_fields(json.loads(mm[o : o + n])))
                shards.append(s)
                offsets.append([v[0] for _, v in frames])
                sizes.append([v[1] for _, v in frames])
    widths = {len(o) for o in offsets}
    if len(widths) != 1:
        raise DataError(f"shards hold different numbers of keyframes per shot: {sorted(widths)}")
    movie_ids: list[str] = []
    counts: list[int] = []
    for vid, shot in keys:
        if not movie_ids or movie_ids[-1] != vid:
            if vid in movie_ids:
                raise DataError(f"movie {vid}: its shots are not contiguous in the shards (spec: movie-ordered shards)")
            movie_ids.append(vid)
            counts.append(0)
        if shot != counts[-1]:
            raise DataError(f"movie {vid}: shot {shot} where shot {counts[-1]} was expected (windows need every shot "
                            "of a movie, in order; a gap usually means `bassl shard --on-error skip` left that shot "
                            "out, see shard_report.json: repair its keyframes and shard again)")
        counts[-1] += 1
    n = np.asarray(counts, dtype=np.int64)
    return ShotTable(
        shard_paths=list(shard_paths),
        movie_ids=movie_ids,
        num_shots=n,
        movie_start=np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64),
        shard=np.asarray(shards, dtype=np.int32),
        offset=np.asarray(offsets, dtype=np.int64),
        size=np.asarray(sizes, dtype=np.int64),
    )


def open_shots(source: str | Path, split: str | None = None) -> ShotTable:
    """The shot table of a shard directory or a manifest JSON, optionally restricted to one split's movies.

    The manifest (``manifest.json``) lists the shards in order and which split each movie belongs to; a plain
    directory is read as its ``*.tar`` files in name order, and then ``split`` needs a manifest.
    """
    source = Path(source)
    manifest_path = source if source.is_file() else source / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        root = manifest_path.parent
        paths = [root / _shard_name(s) for s in manifest.get("shards", [])]
        table = load_shot_table(paths)
        if split is not None:
            table = table.select(_split_movies(manifest, split, manifest_path))
        return table
    paths = sorted(source.glob("*.tar"))
    if split is not None:
        raise DataError(f"{source}: split {split!r} requested but there is no manifest.json to say which movies it holds")
    return load_shot_table(paths)


def _shard_name(entry) -> str:
    if isinstance(entry, str):
        return entry
    for key in ("path", "name", "file", "tar"):
        if key in entry:
            return entry[key]
    raise DataError(f"manifest shard entry {entry!r} has no path/name")


def _split_movies(manifest: dict, split: str, where: Path) -> list[str]:
    splits = manifest.get("splits")
    if isinstance(splits, dict) and split in splits:
        entry = splits[split]
        return list(entry["movies"] if isinstance(entry, dict) else entry)
    movies = manifest.get("movies")
    if isinstance(movies, dict):
        chosen = [vid for vid, info in movies.items() if split in _as_list(info.get("splits", info.get("split")))]
        if chosen:
            return chosen
    raise DataError(f"{where}: no movies listed for split {split!r}")


def _as_list(x) -> list:
    return x if isinstance(x, list) else [x]


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
