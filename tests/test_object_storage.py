"""Shards in object storage, against a real S3-compatible server (moto in server mode) started here: published by
`bassl shard --out s3://...`, read back byte for byte, trained on and resumed, through injected faults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from builders import SHARD_BYTES, overrides
from s3_server import FaultProxy, MotoServer

from bassl.config import load_config
from bassl.data.storage import Store
from bassl.errors import DataError
from bassl.loaders import build_pretrain_loader
from bassl.loaders.shards import open_shots
from bassl.sharding.run import build_shards
from bassl.train.run_log import read_metrics

URL = "s3://bassl/shards"


@pytest.fixture(scope="module")
def s3():
    server = MotoServer()
    import boto3

    boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="bassl")
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3, monkeypatch):
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    return s3


@pytest.fixture(scope="module")
def published(s3, pretrain_shards, tmp_path_factory) -> Path:
    """The loader data set's layout published with `bassl shard --out s3://bassl/shards`; returns the local shards."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3.env().items():
            mp.setenv(k, v)
        summary = build_shards(load_config(), pretrain_shards.parent / "movienet", URL, shard_bytes=SHARD_BYTES,
                               workers=1, progress=False, staging=tmp_path_factory.mktemp("staging"))
    assert summary.manifest == f"{URL}/manifest.json"
    return pretrain_shards


def all_bytes(table) -> list[bytes]:
    table.prefetch((r, k) for r in range(table.num_rows) for k in range(table.keyframes))
    return [bytes(table.jpeg(r, k)) for r in range(table.num_rows) for k in range(table.keyframes)]


@pytest.mark.parametrize("fetch", ["ranges", "shards"])
def test_remote_shards_hold_the_local_samples_byte_for_byte(published, s3_env, fetch):
    local, remote = open_shots(str(published)), open_shots(URL, remote_fetch=fetch)
    assert remote.store.remote and remote.movie_ids == local.movie_ids
    assert remote.num_shots.tolist() == local.num_shots.tolist() and (remote.offset == local.offset).all()
    assert all_bytes(remote) == all_bytes(local)
    assert open_shots(URL, "test").movie_ids == open_shots(str(published), "test").movie_ids
    saved = yaml.safe_load(Store(URL).read("config.yaml"))  # the settings that built them, beside the manifest
    assert saved["data"]["shards"] == URL and saved["data"]["root"] == str((published.parent / "movienet").resolve())


@pytest.mark.parametrize("kind", ["torch", "dali"])
def test_the_loaders_yield_the_same_batches_in_the_same_order(published, s3_env, kind):
    cfg = load_config(overrides(published, "augment.color_jitter_prob=0"))
    batches = {}
    for name, source in (("local", str(published)), ("s3", URL)):
        h = build_pretrain_loader(cfg, source, loader=kind, batch_size=8)
        h.set_epoch(1)
        batches[name] = list(h)
    assert len(batches["s3"]) == len(batches["local"]) == 7
    for a, b in zip(batches["local"], batches["s3"], strict=True):
        assert torch.equal(a["shot"], b["shot"]) and torch.equal(a["images"], b["images"])


def test_publishing_again_uploads_nothing_and_objects_are_complete(published, s3_env, tmp_path, capsys):
    from bassl.data.manifest import load_manifest
    from bassl.data.storage import Store

    manifest = load_manifest(URL)
    store = Store(URL)
    for entry in manifest.shards:
        assert store.size(entry.name) == entry.bytes and store.exists(entry.index)
        assert store.exists(f".shard-build/{entry.name.replace('.tar', '.json')}")
    local = load_manifest(str(published))
    assert [s.sha256 for s in manifest.shards] == [s.sha256 for s in local.shards]
    build_shards(load_config(), published.parent / "movienet", URL, shard_bytes=SHARD_BYTES, workers=1, progress=False,
                 staging=tmp_path / "staging")
    assert f"published 0 shard(s) to {URL} ({len(manifest.shards)} already there)" in capsys.readouterr().out


def test_pretraining_from_s3_trains_resumes_and_matches_local(published, s3_env, tmp_path):
    from bassl.train.pretrain import pretrain

    local = pretrain(load_config(overrides(published)), tmp_path / "local")["history"]
    args = overrides(published, f"data.shards={URL}")
    pretrain(load_config(args), tmp_path / "s3", max_steps=5)
    rest = pretrain(load_config(args), tmp_path / "s3", resume=True)
    assert rest["step"] == 14
    curve = {d["step"]: d["total"] for d in read_metrics(tmp_path / "s3" / "metrics.jsonl")[0]}
    np.testing.assert_allclose([curve[h["step"]] for h in local], [h["total"] for h in local], rtol=1e-6)


@pytest.mark.parametrize("mode", ["503", "500", "drop", "truncate"])
def test_faults_are_retried(published, s3, monkeypatch, mode):
    want = all_bytes(open_shots(str(published)))
    with FaultProxy(s3.port, mode=mode, every=3, methods={"GET", "HEAD"}) as proxy:
        for k, v in s3.env(proxy.endpoint).items():
            monkeypatch.setenv(k, v)
        assert all_bytes(open_shots(URL)) == want
    assert proxy.faults >= 2


def test_missing_or_changed_objects_are_named(published, s3_env):
    from bassl.data.storage import Store

    store = Store(URL)
    broken = Store("s3://bassl/broken")
    for name in [".shard-build/plan.json", "manifest.json"] + [f"shard-00000{i}.{x}" for i in range(6) for x in ("tar", "idx")]:
        broken.write(name, store.read(name))
    table = open_shots("s3://bassl/broken")  # intact
    broken.fs.rm_file("bassl/broken/shard-000003.tar")
    with pytest.raises(DataError, match=r"s3://bassl/broken/shard-000003\.tar: no such object"):
        open_shots("s3://bassl/broken")
    broken.write("shard-000003.tar", store.read("shard-000003.tar"))
    idx = store.read("shard-000001.idx").replace(b"0.jpg", b"2.jpg", 1)
    broken.write("shard-000001.idx", idx)
    with pytest.raises(DataError, match=r"s3://bassl/broken/shard-000001\.idx: sha256 differs from the manifest"):
        open_shots("s3://bassl/broken")
    broken.write("shard-000001.idx", store.read("shard-000001.idx"))
    tar = store.read("shard-000000.tar")
    broken.write("shard-000000.tar", bytes(len(tar)))  # same size, other bytes
    with pytest.raises(DataError, match=r"shard-000000\.tar: bytes \d+-\d+ .* not what the index says"):
        table.prefetch([(0, 0)])
        table.jpeg(0, 0)
    with pytest.raises(DataError, match=r"s3://bassl/nothing/manifest\.json does not exist"):
        open_shots("s3://bassl/nothing")
