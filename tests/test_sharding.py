"""`bassl shard` on tiny layouts made here: round trips through webdataset and DALI, the manifest, determinism
across workers and parts, resume after a crash, and every bad-input case in both modes."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bassl.cli import main as cli_main
from bassl.config import load_config, load_saved_config
from bassl.data import atomic
from bassl.data.atomic import writer_host
from bassl.data.manifest import load_manifest
from bassl.data.shard_format import index_text, jpeg_problem, ustar_header
from bassl.errors import DataError
from bassl.sharding.run import build_shards, merge_shards

# Movie sizes chosen so that, at SHARD_SIZE, small movies share shards, tt0000002 spans several, and
# tt0000004 does not fit after tt0000003 and so starts a new shard.
MOVIES = {"tt0000001": 5, "tt0000002": 23, "tt0000003": 4, "tt0000004": 6, "tt0000005": 3}
SPLITS = {"pretrain": list(MOVIES), "train": ["tt0000001", "tt0000002"], "test": ["tt0000004", "tt0000005"]}
SHARD_SIZE = 64 * 1024


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(8, 24)), int(rng.integers(8, 40))  # sizes differ, so packing sees real byte counts
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(b, "JPEG", quality=90)
    return b.getvalue()


def make_source(root: Path, movies: dict[str, int] = MOVIES, splits: dict[str, list[str]] = SPLITS) -> Path:
    for m, (vid, n) in enumerate(movies.items()):
        d = root / "240P_frames" / vid
        d.mkdir(parents=True)
        for s in range(n):
            for k in range(3):
                (d / f"shot_{s:04d}_img_{k}.jpg").write_bytes(jpeg(m * 10000 + s * 3 + k))
    (root / "anno").mkdir()
    for split, vids in splits.items():
        rows = [{"video_id": v, "shot_id": f"{s:04d}", "num_shot": movies[v], "boundary_label": int(s % 4 == 3)}
                for v in vids for s in range(movies[v])]
        (root / "anno" / f"anno.{split}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def build(src: Path, out: Path, **kw):
    kw.setdefault("shard_bytes", SHARD_SIZE)
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return build_shards(load_config(), src, out, **kw)


def shard_files(out: Path) -> dict[str, bytes]:
    """Everything a reader sees: shards, indexes, manifest, report."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.suffix in (".tar", ".idx") or p.name in ("manifest.json", "shard_report.json")}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_source(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    build(source, out)
    return out


def source_bytes(source: Path, vid: str, shot: int, k: int) -> bytes:
    return (source / "240P_frames" / vid / f"shot_{shot:04d}_img_{k}.jpg").read_bytes()


# ---- format ------------------------------------------------------------------------------------


def test_tar_is_what_tarfile_writes_and_index_what_wds2idx_writes(reference):
    for tar in sorted(reference.glob("*.tar")):  # the same members through Python's tarfile: the same bytes
        again = io.BytesIO()
        with tarfile.open(tar) as src, tarfile.open(fileobj=again, mode="w", format=tarfile.USTAR_FORMAT) as dst:
            for member in src.getmembers():
                info = tarfile.TarInfo(member.name)
                info.size, info.mtime, info.mode, info.uname, info.gname = member.size, 946684800, 0o644, "", ""
                dst.addfile(info, src.extractfile(member))
        assert again.getvalue() == tar.read_bytes(), tar.name
    info = tarfile.TarInfo("tt0000001_0003.1.jpg")
    info.size, info.mtime, info.mode, info.uname, info.gname = 1234, 946684800, 0o644, "", ""
    assert ustar_header(info.name, info.size) == info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")
    wds2idx = Path(sys.executable).parent / "wds2idx"
    assert wds2idx.exists(), "wds2idx comes with nvidia-dali"
    for tar in sorted(reference.glob("*.tar")):
        theirs = tar.with_suffix(".theirs")
        subprocess.run([str(wds2idx), str(tar), str(theirs)], check=True, capture_output=True)
        assert theirs.read_bytes() == tar.with_suffix(".idx").read_bytes(), tar.name
        theirs.unlink()
    assert index_text([]) == "v1.2 0\n"


def test_jpeg_marker_check():
    good = jpeg(1)
    assert jpeg_problem(good) is None
    assert jpeg_problem(good + b"\x00" * 10) is None  # zero padding after EOI is tolerated
    assert "truncated" in jpeg_problem(good[:-10])
    assert "not a JPEG" in jpeg_problem(b"\x89PNG\r\n\x1a\n" + good)
    assert jpeg_problem(b"") == "empty file"


# ---- round trips -------------------------------------------------------------------------------


def test_webdataset_yields_every_sample_byte_for_byte(source, reference):
    import webdataset as wds

    paths = [str(p) for p in load_manifest(reference).shard_paths()]
    samples = list(wds.WebDataset(paths, shardshuffle=False, empty_check=False))
    expected = [(v, s) for v, n in MOVIES.items() for s in range(n)]
    assert [s["__key__"] for s in samples] == [f"{v}_{s:04d}" for v, s in expected]
    for sample, (vid, shot) in zip(samples, expected, strict=True):
        assert set(sample) - {"__key__", "__url__", "__local_path__"} == {"0.jpg", "1.jpg", "2.jpg", "json"}
        for k in range(3):
            assert sample[f"{k}.jpg"] == source_bytes(source, vid, shot, k)
        assert json.loads(sample["json"]) == {"video_id": vid, "shot": shot, "num_shots": MOVIES[vid]}
    decoded = next(iter(wds.WebDataset(paths[:1], shardshuffle=False, empty_check=False).decode("pil")))
    assert isinstance(decoded["0.jpg"], Image.Image) and isinstance(decoded["json"], dict)


def test_dali_reads_with_our_index_byte_for_byte_and_decodes(source, reference):
    from nvidia.dali import fn, pipeline_def

    manifest = load_manifest(reference)
    paths, idx = manifest.shard_paths(), manifest.index_paths()
    total = manifest.num_shots()

    @pipeline_def(batch_size=total, num_threads=1, device_id=None)
    def pipe():
        f0, f1, f2, meta = fn.readers.webdataset(
            paths=[str(p) for p in paths], index_paths=[str(p) for p in idx], ext=manifest.members,
            missing_component_behavior="error", name="reader")
        return f0, f1, f2, meta, fn.decoders.image(f0, device="cpu")

    p = pipe()
    p.build()
    assert p.epoch_size("reader") == total
    raw0, raw1, raw2, meta, image = p.run()
    seen = []
    for i in range(total):
        info = json.loads(bytes(np.array(meta[i])))
        vid, shot = info["video_id"], info["shot"]
        seen.append((vid, shot))
        for k, raw in enumerate((raw0, raw1, raw2)):
            assert bytes(np.array(raw[i])) == source_bytes(source, vid, shot, k)
        with Image.open(io.BytesIO(source_bytes(source, vid, shot, 0))) as im:
            assert np.array(image[i]).shape == (im.height, im.width, 3)
    assert seen == [(v, s) for v, n in MOVIES.items() for s in range(n)]


def test_verify_with_checksums_checks_every_tar_and_index(reference, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    load_manifest(copy).verify(checksums=True)
    idx = sorted(copy.glob("*.idx"))[0]
    data = idx.read_bytes()
    idx.write_bytes(data[:-2] + (b"7" if data[-2:-1] != b"7" else b"8") + data[-1:])  # one digit, same size
    load_manifest(copy).verify()  # sizes alone cannot see it
    with pytest.raises(DataError, match=rf"{idx.name}: sha256 differs from the manifest; the index is corrupt"):
        load_manifest(copy).verify(checksums=True)


def test_manifest_lists_every_shot_once_in_order(source, reference):
    m = load_manifest(reference)
    got = [(r.video_id, s) for sh in m.shards for r in sh.movies for s in range(r.first_shot, r.last_shot + 1)]
    assert got == [(v, s) for v, n in MOVIES.items() for s in range(n)]
    assert m.num_shots() == sum(MOVIES.values()) == sum(sh.samples for sh in m.shards)
    assert m.data["num_shards"] == len(m.shards) == len(list(reference.glob("*.tar")))
    m.verify(checksums=True)
    saved = load_saved_config(reference)  # written with the manifest by the API too, not only by the command
    assert saved.data.root == str(source.resolve()) and saved.data.shards == str(reference)
    # a movie straddles shards only when it is larger than one shard
    spans = {v: info["shards"] for v, info in m.movies.items()}
    assert len(spans["tt0000002"]) > 1
    assert all(len(s) == 1 for v, s in spans.items() if v != "tt0000002")
    assert all(sh.bytes <= SHARD_SIZE + 10240 for sh in m.shards)
    # splits, and what loaders call
    assert m.splits == {k: sorted(v) for k, v in SPLITS.items()}
    assert m.movie_ids("test") == ["tt0000004", "tt0000005"]
    assert m.movies["tt0000001"]["splits"] == ["pretrain", "train"]
    assert m.num_shots("train") == MOVIES["tt0000001"] + MOVIES["tt0000002"]
    test_shards = sorted({*spans["tt0000004"], *spans["tt0000005"]})
    assert [p.name for p in m.shard_paths("test")] == [m.shards[i].name for i in test_shards]
    assert m.shard_paths(movies=["tt0000001"]) == [reference / m.shards[0].name]
    with pytest.raises(DataError, match="no split 'val'"):
        m.shard_paths("val")
    assert m.skipped == [] and json.loads((reference / "shard_report.json").read_text())["num_skipped"] == 0


def test_loaders_read_the_manifest(reference):
    from bassl.loaders.shards import open_shots

    table = open_shots(reference, "train")
    assert table.movie_ids == ["tt0000001", "tt0000002"]
    assert table.num_shots.tolist() == [MOVIES["tt0000001"], MOVIES["tt0000002"]]


# ---- determinism and resume -------------------------------------------------------------------


def test_same_bytes_whatever_workers_or_parts(source, reference, tmp_path):
    expected = shard_files(reference)
    build(source, tmp_path / "w2", workers=2)
    assert shard_files(tmp_path / "w2") == expected
    for i in (2, 0, 1):
        summary = build(source, tmp_path / "parts", part=(i, 3), workers=2 if i == 1 else 1)
        assert summary.manifest is None
    with pytest.raises(DataError):
        load_manifest(tmp_path / "parts")  # no manifest before the merge
    merge_shards(tmp_path / "parts", source_root=source)
    assert shard_files(tmp_path / "parts") == expected


def test_merge_names_unfinished_shards(source, tmp_path):
    build(source, tmp_path, part=(0, 2))
    with pytest.raises(DataError, match=r"shards are not finished \(shard-000001.tar"):
        merge_shards(tmp_path)


def test_resume_keeps_verified_shards_and_rebuilds_the_rest(source, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    names = sorted(p.name for p in out.glob("*.tar"))
    (out / "manifest.json").unlink()
    leftover = out / f".{names[0]}.somehost.123.bassl.tmp"  # a temp file of a run killed on another machine
    leftover.write_bytes(b"partial")
    os.utime(leftover, (1e9, 1e9))
    (out / names[1]).unlink()  # never finished
    corrupt = bytearray((out / names[2]).read_bytes())
    corrupt[700] ^= 0xFF  # same size, wrong checksum
    (out / names[2]).write_bytes(bytes(corrupt))
    (out / ".shard-build" / names[3].replace(".tar", ".json")).unlink()  # moved into place, record not written
    (out / ".shard-build" / names[0].replace(".tar", ".json")).write_text('{"plan_id": ')  # a record cut short
    older = out / ".shard-build" / names[4].replace(".tar", ".json")  # a record of another shape is not trusted
    older.write_text(json.dumps({k: v for k, v in json.loads(older.read_text()).items() if k != "index_sha256"}))
    summary = build(source, out)
    assert (summary.built, summary.kept) == (5, len(names) - 5)
    assert shard_files(out) == shard_files(reference)
    assert not list(out.glob(".*.tmp"))


def test_crash_mid_run_then_rerun_equals_uninterrupted(source, reference, tmp_path, monkeypatch):
    real_replace, calls = atomic.os.replace, []

    def crash_on_eighth(a, b):
        calls.append(b)
        if len(calls) == 8:  # plan, 2 x (idx, tar, record), then the third index: killed before its rename
            raise KeyboardInterrupt
        real_replace(a, b)

    monkeypatch.setattr(atomic.os, "replace", crash_on_eighth)
    with pytest.raises(KeyboardInterrupt):
        build(source, tmp_path)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert not (tmp_path / "manifest.json").exists() and Path(calls[-1]).name == "shard-000002.idx"
    assert not list(tmp_path.glob(".*.tmp"))  # the crashed writer's temp files are gone
    summary = build(source, tmp_path)
    assert summary.kept == 2
    assert shard_files(tmp_path) == shard_files(reference)


def test_a_live_builder_of_the_same_shard_is_not_disturbed(source, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    (out / ".shard-build" / "shard-000001.json").unlink()
    host = writer_host()
    live = out / f".shard-000001.tar.{host}.{os.getppid()}.bassl.tmp"
    live.write_bytes(b"being written")
    with pytest.raises(DataError, match=f"another `bassl shard` \\({host}, pid {os.getppid()}\\)"):
        build(source, out)
    assert live.exists()


def test_other_settings_in_the_same_directory_are_refused(source, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    with pytest.raises(DataError, match="planned with other settings: target_shard_bytes"):
        build(source, out, shard_bytes=2 * SHARD_SIZE)


# ---- bad input -----------------------------------------------------------------------------------


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-40])


def _not_jpeg(p: Path) -> None:
    b = io.BytesIO()
    Image.new("RGB", (8, 8)).save(b, "PNG")
    p.write_bytes(b.getvalue())


def _unreadable(p: Path) -> None:  # a directory where the file should be (root can read any file mode)
    p.unlink()
    p.mkdir()


BAD = {
    "missing": (lambda p: p.unlink(), "missing keyframe"),
    "unreadable": (_unreadable, "unreadable keyframe"),
    "truncated": (_truncate, "truncated JPEG"),
    "not_jpeg": (_not_jpeg, "not a JPEG"),
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_keyframe_stops_or_is_skipped_and_reported(case, tmp_path):
    movies = {"tt0000001": 4, "tt0000002": 5}
    src = make_source(tmp_path / "src", movies, {"train": list(movies)})
    bad = src / "240P_frames" / "tt0000002" / "shot_0002_img_1.jpg"
    damage, reason = BAD[case]
    damage(bad)
    with pytest.raises(DataError, match=reason) as err:
        build(src, tmp_path / "stop")
    assert str(bad) in str(err.value) and "--on-error skip" in str(err.value)
    assert not (tmp_path / "stop" / "manifest.json").exists()

    build(src, tmp_path / "skip", on_error="skip")
    m = load_manifest(tmp_path / "skip")
    assert [(p["video_id"], p["shot"], p["keyframe"], p["path"]) for p in m.skipped] == [("tt0000002", 2, 1, str(bad))]
    assert reason in m.skipped[0]["reason"]
    assert m.movies["tt0000002"] == {"num_shots": 5, "shots": 5, "shards": [0], "splits": ["train"]}
    assert m.missing_shots("tt0000002") == [] and m.dropped_keyframes() == m.skipped
    report = json.loads((tmp_path / "skip" / "shard_report.json").read_text())
    assert report["skipped_keyframes"] == m.skipped and report["skipped_shots"] == []
    import webdataset as wds

    samples = {s["__key__"]: s for s in wds.WebDataset([str(p) for p in m.shard_paths()], shardshuffle=False)}
    assert list(samples) == [f"tt0000001_{s:04d}" for s in range(4)] + [f"tt0000002_{s:04d}" for s in range(5)]
    assert "1.jpg" not in samples["tt0000002_0002"] and samples["tt0000002_0002"]["0.jpg"] == source_bytes(src, "tt0000002", 2, 0)
    from bassl.loaders.shards import open_shots

    table = open_shots(tmp_path / "skip")  # every later stage reads it: the lost keyframe is served by its neighbour
    assert table.num_shots.tolist() == [4, 5] and table.filled_keyframes == 1 and table.filled_shots == {}
    row = int(table.movie_start[1]) + 2
    assert bytes(table.jpeg(row, 1)) == bytes(table.jpeg(row, 0)) == source_bytes(src, "tt0000002", 2, 0)
    assert bytes(table.jpeg(row, 2)) == source_bytes(src, "tt0000002", 2, 2)
    assert "1 single keyframe(s)" in table.describe_fills()

    # an error-mode rerun over the skip-mode output does not keep the shard that lacks a shot
    with pytest.raises(DataError, match=reason):
        build(src, tmp_path / "skip")


def test_a_shot_with_no_keyframe_left_keeps_its_index_and_is_served_by_a_neighbour(tmp_path):
    movies = {"tt0000001": 4, "tt0000002": 5}
    src = make_source(tmp_path / "src", movies, {"train": list(movies)})
    for k in range(3):
        (src / "240P_frames" / "tt0000001" / f"shot_0000_img_{k}.jpg").unlink()  # gone before planning
        _truncate(src / "240P_frames" / "tt0000002" / f"shot_0002_img_{k}.jpg")  # broken, found while building
    with pytest.raises(DataError, match="shot_0000_img_0.jpg: missing keyframe"):
        build(src, tmp_path / "stop")
    build(src, tmp_path / "skip", on_error="skip")
    m = load_manifest(tmp_path / "skip")
    assert m.missing_shots("tt0000001") == [0] and m.missing_shots("tt0000002") == [2]
    assert m.movies["tt0000001"]["shots"] == 3 and m.movies["tt0000002"]["shots"] == 4
    report = json.loads((tmp_path / "skip" / "shard_report.json").read_text())
    assert [(p["video_id"], p["shot"]) for p in report["skipped_shots"]] == [("tt0000001", 0), ("tt0000002", 2)]
    assert len(report["skipped_keyframes"]) == 6
    from bassl.loaders.shards import open_shots

    table = open_shots(tmp_path / "skip", "train")
    assert table.num_shots.tolist() == [4, 5] and table.filled_shots == {"tt0000001": [0], "tt0000002": [2]}
    for vid, shot, neighbour in (("tt0000001", 0, 1), ("tt0000002", 2, 1)):  # the nearest shot, the earlier on a tie
        row = int(table.movie_start[table.movie_ids.index(vid)]) + shot
        assert [bytes(table.jpeg(row, k)) for k in range(3)] == [source_bytes(src, vid, neighbour, k) for k in range(3)]
    assert "lack 2 shot(s) of 2 movie(s), e.g. shot 0 of tt0000001" in table.describe_fills()


@pytest.mark.parametrize("case", ["empty_dir", "anno_only"])
def test_movie_without_frames(case, tmp_path):
    movies = {"tt0000001": 4, "tt0000002": 3}
    src = make_source(tmp_path / "src", movies, {"train": list(movies)})
    if case == "empty_dir":
        (src / "240P_frames" / "tt0000009").mkdir()
    else:
        with open(src / "anno" / "anno.train.ndjson", "a") as f:
            f.write(json.dumps({"video_id": "tt0000009", "shot_id": "0000", "num_shot": 1, "boundary_label": 0}) + "\n")
    with pytest.raises(DataError, match="tt0000009: a movie with no keyframe"):
        build(src, tmp_path / "stop")
    build(src, tmp_path / "skip", on_error="skip")
    m = load_manifest(tmp_path / "skip")
    assert m.movie_ids() == ["tt0000001", "tt0000002"] and m.movie_ids("train") == ["tt0000001", "tt0000002"]
    assert [(s["video_id"], s["shot"]) for s in m.skipped] == [("tt0000009", None)]
    assert json.loads((tmp_path / "skip" / "shard_report.json").read_text())["skipped_movies"] == ["tt0000009"]


def test_a_video_id_with_a_dot_is_refused(tmp_path):
    src = make_source(tmp_path / "src", {"tt.1": 2}, {"train": ["tt.1"]})
    with pytest.raises(DataError, match="no dots"):
        build(src, tmp_path / "out")


# ---- command line --------------------------------------------------------------------------------


def test_cli_part_merge_and_errors(source, reference, tmp_path, capsys):
    out = tmp_path / "cli"
    common = ["--source", str(source), "--out", str(out), "--shard-size", "64KiB", "--no-progress"]
    for i in range(2):
        assert cli_main(["shard", *common, "--part", f"{i}/2"]) == 0
        assert f"part {i}/2:" in capsys.readouterr().out
    assert not (out / "config.yaml").exists()
    assert cli_main(["shard", "--out", str(out), "--merge"]) == 0
    assert shard_files(out) == shard_files(reference)
    saved = load_config(config_file=out / "config.yaml")
    assert saved.data.root == str(source.resolve()) and saved.data.shards == str(out)
    assert cli_main(["shard", *common, "--part", "2/2"]) == 1
    assert "expected I/N with 0 <= I < N" in capsys.readouterr().err
    assert cli_main(["shard", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_big_members_fit(tmp_path):
    import hashlib

    from bassl.data import shard_format

    big = tmp_path / "big.jpg"  # larger than the stream's buffer: it grows
    big.write_bytes(b"\xff\xd8" + np.random.default_rng(0).bytes(3 * shard_format.FLUSH_BYTES) + b"\xff\xd9")
    with open(tmp_path / "t.tar", "wb") as f:
        stream = shard_format.TarStream(f, hashlib.sha256())
        for key in ("a_0000", "a_0001"):
            stream.begin_sample(key)
            assert stream.add_file("0.jpg", str(big)) is None
            stream.add_bytes("json", b"{}")
            stream.end_sample()
        stream.close()
    with tarfile.open(tmp_path / "t.tar") as t:
        assert [m.name for m in t.getmembers()] == ["a_0000.0.jpg", "a_0000.json", "a_0001.0.jpg", "a_0001.json"]
        assert t.extractfile("a_0001.0.jpg").read() == big.read_bytes()
    assert (tmp_path / "t.tar").stat().st_size == stream.offset
    assert stream.index[1][0][1:3] == (stream.index[0][1][1] + 512 + 512, big.stat().st_size)
