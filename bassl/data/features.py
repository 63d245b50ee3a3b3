"""Shot features as Parquet: one row per shot (video_id, shot_id, feature as a fixed-size list).

Extraction writes one file per partition (a group of movies), atomically, so a killed run keeps what it
finished; ``features.json`` lists the partitions once all are written. Each file carries the checkpoint
path, its SHA-256 and the resolved config in its schema metadata, so any Parquet reader (pandas, polars,
duckdb) sees where the numbers came from. Fine-tuning reads everything once into one in-memory matrix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bassl.data.atomic import atomic_path, write_json
from bassl.data.checksums import file_sha256
from bassl.errors import DataError

MANIFEST = "features.json"
META_PREFIX = "bassl."


def partition_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.parquet"


RESUME_KEYS = ("checkpoint_sha256", "split", "inputs")  # the metadata that makes two partitions of one extraction


def unlist_partitions(out_dir: str | Path) -> None:
    """Remove ``features.json`` before partitions are replaced: until :func:`write_feature_manifest` lists them all
    again, a reader meets "extraction did not finish", not two extractions' features as one."""
    (Path(out_dir) / MANIFEST).unlink(missing_ok=True)


def partition_done(out_dir: str | Path, name: str, metadata: dict[str, str] | None = None) -> bool:
    """A partition counts as done when its file exists, is readable, and (if given) carries the same metadata:
    features of another checkpoint are never mistaken for finished work."""
    path = partition_path(out_dir, name)
    if not path.is_file():
        return False
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    want = {f"{META_PREFIX}{k}".encode(): v.encode() for k, v in (metadata or {}).items()}
    return all(meta.get(k) == v for k, v in want.items())


def write_partition(
    out_dir: str | Path,
    name: str,
    video_ids: list[str] | np.ndarray,
    shot_ids: np.ndarray,
    features: np.ndarray,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write one partition atomically (temp file, then rename). ``features`` is [N, D] float32 or float16."""
    features = np.ascontiguousarray(features)
    if features.ndim != 2 or features.shape[0] != len(video_ids) or len(shot_ids) != len(video_ids):
        raise ValueError(f"features {features.shape}, {len(video_ids)} video ids, {len(shot_ids)} shot ids: sizes differ")
    if features.dtype not in (np.float32, np.float16):
        features = features.astype(np.float32)
    dim = features.shape[1]
    values = pa.array(features.reshape(-1))
    table = pa.table(
        {
            "video_id": pa.array(np.asarray(video_ids, dtype=object), type=pa.string()).dictionary_encode(),
            "shot_id": pa.array(np.asarray(shot_ids, dtype=np.int32)),
            "feature": pa.FixedSizeListArray.from_arrays(values, dim),
        }
    )
    meta = {f"{META_PREFIX}{k}": v for k, v in (metadata or {}).items()}
    meta[f"{META_PREFIX}feature_dim"] = str(dim)
    table = table.replace_schema_metadata(meta)
    final = partition_path(out_dir, name)
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return final


def write_feature_manifest(out_dir: str | Path, names: list[str], metadata: dict[str, str] | None = None) -> Path:
    """List the finished partitions with their row counts and checksums; written last, atomically."""
    out_dir = Path(out_dir)
    parts = []
    for name in names:
        path = partition_path(out_dir, name)
        parts.append({"file": path.name, "rows": pq.read_metadata(path).num_rows, "sha256": file_sha256(path)})
    doc = {"format": "bassl-features-1", "partitions": parts, "rows": sum(p["rows"] for p in parts),
           "metadata": metadata or {}}
    return write_json(out_dir / MANIFEST, doc)


@dataclass
class FeatureMatrix:
    """All shots' features in one array, movies contiguous and shots in order.

    ``offsets[m] .. offsets[m] + counts[m]`` are movie m's rows, so a window of shots of movie m is
    ``features[offsets[m] + indices]``: index arithmetic, no per-shot lookups."""

    features: np.ndarray  # [N, D]
    video_ids: list[str]  # [M] movie order
    offsets: np.ndarray  # [M] int64
    counts: np.ndarray  # [M] int64
    metadata: dict[str, str]

    def movie_index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}

    def rows(self, video_id: str) -> np.ndarray:
        m = self.movie_index()[video_id]
        return self.features[self.offsets[m] : self.offsets[m] + self.counts[m]]


def load_features(feature_dir: str | Path, dtype: str = "fp32") -> FeatureMatrix:
    """Read every partition listed in the manifest into one matrix; each movie must have shots 0..n-1."""
    feature_dir = Path(feature_dir)
    manifest = feature_dir / MANIFEST
    if not feature_dir.is_dir():
        raise DataError(f"{feature_dir}: no such folder; give the --out folder of `bassl extract` (it holds {MANIFEST} "
                        "and part-*.parquet)")
    if not manifest.is_file():
        partial = any(feature_dir.glob("*.parquet")) or (feature_dir / "config.yaml").is_file()
        raise DataError(f"{manifest} does not exist: " + (
            "extraction did not finish; run `bassl extract` again (it resumes)" if partial else
            f"{feature_dir} is not the --out folder of `bassl extract` (that holds {MANIFEST} and part-*.parquet)"))
    doc = json.loads(manifest.read_text())
    lost = [p["file"] for p in doc["partitions"] if not (feature_dir / p["file"]).is_file()]
    if lost:
        raise DataError(f"{manifest} lists {', '.join(lost)}, which {'is' if len(lost) == 1 else 'are'} not in "
                        f"{feature_dir}; run `bassl extract` into it again (it recomputes only what is missing)")
    same = {k: v for k, v in doc.get("metadata", {}).items() if k in RESUME_KEYS}  # what makes a partition this run's
    other = [p["file"] for p in doc["partitions"] if not partition_done(feature_dir, Path(p["file"]).stem, same)]
    if other:
        raise DataError(f"{manifest}: {', '.join(other)} came from another extraction (another encoder, split or "
                        f"input) than the one it lists, as a run stopped while replacing them leaves; run `bassl "
                        f"extract` into {feature_dir} again")
    tables = [pq.read_table(feature_dir / p["file"]) for p in doc["partitions"]]
    if not tables:
        raise DataError(f"{manifest} lists no partitions")
    table = pa.concat_tables([t.cast(tables[0].schema) for t in tables]) if len(tables) > 1 else tables[0]
    vids = table.column("video_id").to_pylist()
    sids = table.column("shot_id").to_numpy()
    feat_col = table.column("feature").combine_chunks()
    dim = feat_col.type.list_size
    feats = feat_col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    feats = feats.astype(np.float16 if dtype == "fp16" else np.float32, copy=False)
    movie_order = list(dict.fromkeys(sorted(set(vids))))
    code = {v: i for i, v in enumerate(movie_order)}
    movie = np.fromiter((code[v] for v in vids), dtype=np.int64, count=len(vids))
    order = np.lexsort((sids, movie))
    movie, sids, feats = movie[order], sids[order], feats[order]
    counts = np.bincount(movie, minlength=len(movie_order)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    expected = np.arange(len(sids)) - np.repeat(offsets, counts)
    if not np.array_equal(sids, expected):
        bad = int(np.flatnonzero(sids != expected)[0])
        vid = movie_order[movie[bad]]
        raise DataError(f"{feature_dir}: movie {vid} does not have each shot exactly once from 0 "
                        f"(at shot {int(sids[bad])}, expected {int(expected[bad])}); re-run extraction")
    meta = {k.decode()[len(META_PREFIX):]: v.decode() for k, v in (tables[0].schema.metadata or {}).items()
            if k.decode().startswith(META_PREFIX)}
    return FeatureMatrix(np.ascontiguousarray(feats), movie_order, offsets, counts, meta)


def metadata_for(checkpoint: str | Path, config: dict[str, Any]) -> dict[str, str]:
    """The provenance stored in every feature file: checkpoint path (absolute: fine-tuning may run from another
    folder) and hash, resolved config (JSON)."""
    return {"checkpoint": str(Path(checkpoint).resolve()), "checkpoint_sha256": file_sha256(checkpoint),
            "config": json.dumps(config, sort_keys=True)}
