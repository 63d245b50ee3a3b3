"""Parquet feature store: round-trip, metadata, resumability, and readability by other tools."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bassl.data.features import (
    load_features,
    metadata_for,
    partition_done,
    write_feature_manifest,
    write_partition,
)
from bassl.errors import DataError


def _movies(rng, spec):
    rows = []
    for vid, n in spec.items():
        for s in range(n):
            rows.append((vid, s))
    vids = [r[0] for r in rows]
    sids = np.array([r[1] for r in rows])
    feats = rng.standard_normal((len(rows), 6)).astype(np.float32)
    return vids, sids, feats


def test_round_trip_values_ids_metadata(tmp_path):
    rng = np.random.default_rng(0)
    ckpt = tmp_path / "encoder.pt"
    ckpt.write_bytes(b"weights")
    meta = metadata_for(ckpt, {"method": "bassl", "seed": 3})
    v1, s1, f1 = _movies(rng, {"tt2": 5, "tt1": 3})
    v2, s2, f2 = _movies(rng, {"tt3": 4})
    # write partition 1 shuffled: the reader restores movie and shot order
    perm = rng.permutation(len(v1))
    write_partition(tmp_path / "f", "part-00000", [v1[i] for i in perm], s1[perm], f1[perm], meta)
    write_partition(tmp_path / "f", "part-00001", v2, s2, f2, meta)
    write_feature_manifest(tmp_path / "f", ["part-00000", "part-00001"], meta)
    fm = load_features(tmp_path / "f")
    assert fm.video_ids == ["tt1", "tt2", "tt3"]
    np.testing.assert_array_equal(fm.counts, [3, 5, 4])
    np.testing.assert_array_equal(fm.offsets, [0, 3, 8])
    np.testing.assert_array_equal(fm.rows("tt2"), f1[:5])  # bit-exact float32
    np.testing.assert_array_equal(fm.rows("tt1"), f1[5:])
    np.testing.assert_array_equal(fm.rows("tt3"), f2)
    assert fm.metadata["checkpoint_sha256"] == __import__("hashlib").sha256(b"weights").hexdigest()
    assert json.loads(fm.metadata["config"]) == {"method": "bassl", "seed": 3}
    assert fm.metadata["feature_dim"] == "6"
    half = load_features(tmp_path / "f", dtype="fp16")
    assert half.features.dtype == np.float16
    np.testing.assert_allclose(half.rows("tt3"), f2, atol=2e-3)
    doc = json.loads((tmp_path / "f" / "features.json").read_text())
    assert doc["rows"] == 12 and [p["rows"] for p in doc["partitions"]] == [8, 4]


def test_readable_by_pandas_and_plain_pyarrow(tmp_path):
    import duckdb
    import pandas as pd
    rng = np.random.default_rng(1)
    vids, sids, feats = _movies(rng, {"tt1": 3})
    path = write_partition(tmp_path, "p", vids, sids, feats)
    df = pd.read_parquet(path)
    assert list(df.columns) == ["video_id", "shot_id", "feature"]
    assert df["video_id"].astype(str).tolist() == vids
    np.testing.assert_array_equal(np.stack(df["feature"].to_numpy()), feats)
    schema = pq.read_schema(path)
    ftype = schema.field("feature").type
    assert pa.types.is_fixed_size_list(ftype) and ftype.list_size == 6 and ftype.value_type == pa.float32()
    rows = duckdb.sql(f"SELECT video_id, shot_id, feature FROM read_parquet('{path}') ORDER BY shot_id").fetchall()
    assert [r[1] for r in rows] == [0, 1, 2] and rows[0][0] == "tt1"
    np.testing.assert_allclose(np.array([r[2] for r in rows]), feats)


def test_partition_done_checks_checkpoint(tmp_path):
    rng = np.random.default_rng(2)
    vids, sids, feats = _movies(rng, {"tt1": 2})
    assert not partition_done(tmp_path, "p", {"checkpoint_sha256": "aa"})
    write_partition(tmp_path, "p", vids, sids, feats, {"checkpoint_sha256": "aa"})
    assert partition_done(tmp_path, "p", {"checkpoint_sha256": "aa"})
    assert not partition_done(tmp_path, "p", {"checkpoint_sha256": "bb"})  # other weights: redo
    (tmp_path / "q.parquet").write_bytes(b"PAR1 truncated")
    assert not partition_done(tmp_path, "q")
    assert not list(tmp_path.glob(".*tmp*"))  # nothing partial left under any name


def test_missing_or_duplicate_shots_are_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder; give the --out folder of `bassl extract`"):
        load_features(tmp_path / "nope")
    with pytest.raises(DataError, match="is not the --out folder of `bassl extract`"):
        load_features(tmp_path)
    write_partition(tmp_path, "a", ["tt1", "tt1", "tt1"], np.array([0, 1, 1]), np.zeros((3, 2)))
    with pytest.raises(DataError, match="extraction did not finish"):
        load_features(tmp_path)
    write_feature_manifest(tmp_path, ["a"])
    with pytest.raises(DataError, match="movie tt1 does not have each shot exactly once"):
        load_features(tmp_path)
    (tmp_path / "a.parquet").unlink()  # a partition lost after extraction finished
    with pytest.raises(DataError, match=r"features.json lists a.parquet, which is not in .*; run `bassl extract`"):
        load_features(tmp_path)


def test_partitions_of_two_extractions_are_refused(tmp_path):
    """A re-extraction with another encoder stopped after replacing one partition: the manifest still lists the old
    run, one partition is the new one's. Loading refuses the mix instead of fine-tuning on two encoders' features."""
    old = {"checkpoint_sha256": "aa", "split": "test", "inputs": "{}"}
    write_partition(tmp_path, "part-00000", ["tt1"] * 2, np.array([0, 1]), np.zeros((2, 4)), old)
    write_partition(tmp_path, "part-00001", ["tt2"] * 2, np.array([0, 1]), np.ones((2, 4)), old)
    write_feature_manifest(tmp_path, ["part-00000", "part-00001"], {**old, "method": "bassl"})
    assert load_features(tmp_path).features.shape == (4, 4)
    write_partition(tmp_path, "part-00000", ["tt1"] * 2, np.array([0, 1]), np.ones((2, 4)), {**old, "checkpoint_sha256": "bb"})
    with pytest.raises(DataError, match=r"part-00000.parquet came from another extraction .* run `bassl extract`"):
        load_features(tmp_path)


def test_predictions_that_are_not_parquet_are_named(tmp_path):
    from bassl.data.predictions import read_predictions

    (tmp_path / "report.json").write_text("{}")  # the file beside the predictions, passed by mistake
    with pytest.raises(DataError, match=r"report.json: not a Parquet file .*; pass the predictions_test.parquet"):
        read_predictions(tmp_path / "report.json")
