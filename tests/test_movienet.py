"""The MovieNet-SSeg reader on small hand-written layouts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from builders import write_layout

from bassl.cli import main
from bassl.config import load_config
from bassl.data.movienet import MovieNetSource
from bassl.errors import DataError

LABELS = [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, -1]  # 20 shots, ends with -1


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    write_layout(tmp_path / "movienet", {"tt0000001": LABELS, "tt0000002": [0] * 9 + [1] + [0] * 8 + [-1]})
    return tmp_path / "movienet"


def test_reads_annotations_and_frames(layout):
    src = MovieNetSource(layout)
    assert src.movies_on_disk() == ["tt0000001", "tt0000002"]
    assert src.shot_count("tt0000001") == 20 and src.last_shot("tt0000002") == 18
    assert src.available_splits() == ["pretrain", "train", "test"]
    ann = src.split("test")["tt0000001"]
    np.testing.assert_array_equal(ann.shot_ids, np.arange(20))
    assert ann.labels[-1] == -1 and ann.global_video_id == 0
    # method.md §3.5: -1 is a boundary by default (abs), or masked out with "ignore"
    assert ann.boundary_labels()[-1] == 1 and ann.boundary_labels().sum() == 5
    assert ann.boundary_labels("ignore")[-1] == -100
    np.testing.assert_array_equal(ann.scene_ids[:4], [0, 0, 0, 1])
    assert src.split("pretrain")["tt0000001"].labels is None
    assert src.keyframe_path("tt0000001", 7, 2) == layout / "240P_frames" / "tt0000001" / "shot_0007_img_2.jpg"
    timing = src.shot_timing("tt0000001")
    assert timing.shape == (20, 2) and timing[3].tolist() == [300, 399]
    assert src.vid2idx == {"tt0000001": 0, "tt0000002": 1}


def test_independent_of_working_directory(layout, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = MovieNetSource(os.path.relpath(layout, tmp_path))
    monkeypatch.chdir("/")
    assert src.shot_count("tt0000001") == 20  # resolved at construction, not per call


@pytest.mark.parametrize("convention", ["count", "last_index"])
def test_num_shot_convention_resolved_from_disk(tmp_path, convention):
    write_layout(tmp_path / "m", {"tt0000001": LABELS}, num_shot=convention)
    src = MovieNetSource(tmp_path / "m")
    assert src.num_shot_convention() == convention
    assert src.last_shot("tt0000001") == 19  # whatever num_shot says
    assert src.validate().ok


def test_validate_ok_and_cli(layout, capsys):
    report = MovieNetSource(layout).validate(window_size=17)
    assert report.ok, report.describe()
    assert report.movies_on_disk == 2 and report.shots_on_disk == 39
    assert main(["validate", "--root", str(layout)]) == 0
    assert "OK" in capsys.readouterr().out


def test_missing_keyframes_are_listed_with_count(layout, capsys):
    for s, k in [(3, 1), (5, 0), (5, 2)]:
        (layout / "240P_frames" / "tt0000001" / f"shot_{s:04d}_img_{k}.jpg").unlink()
    report = MovieNetSource(layout).validate()
    assert not report.ok
    msg = " ".join(report.problems)
    assert "missing keyframes (3:" in msg and "shot_0003_img_1.jpg" in msg and "shot_0005_img_2.jpg" in msg
    assert main(["validate", "--root", str(layout)]) == 1


def test_unreadable_keyframes_are_named_before_sharding_meets_them(layout):
    """What `bassl shard` would stop at: an empty file, a PNG under a .jpg name, a JPEG cut short."""
    frames = layout / "240P_frames" / "tt0000001"
    whole = (frames / "shot_0001_img_0.jpg").read_bytes()
    (frames / "shot_0002_img_0.jpg").write_bytes(b"")
    (frames / "shot_0004_img_1.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (frames / "shot_0006_img_2.jpg").write_bytes(whole[: len(whole) // 2])
    msg = " ".join(MovieNetSource(layout).validate().problems)
    assert "unreadable keyframes (3:" in msg and "shot_0002_img_0.jpg (empty file)" in msg
    assert "shot_0004_img_1.jpg (not a JPEG" in msg and "shot_0006_img_2.jpg (truncated JPEG" in msg


def test_rows_pointing_at_absent_shots(layout):
    with (layout / "anno" / "anno.train.ndjson").open("a") as f:
        f.write(json.dumps({"video_id": "tt0000001", "shot_id": "0042", "num_shot": 20, "boundary_label": 0}) + "\n")
        f.write(json.dumps({"video_id": "tt0009999", "shot_id": "0000", "num_shot": 20, "boundary_label": 0}) + "\n")
    report = MovieNetSource(layout).validate()
    msg = " ".join(report.problems)
    assert "tt0000001/shot_0042" in msg and "anno.train.ndjson" in msg
    assert "no keyframe directory (1: tt0009999)" in msg


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("{not json", "not a JSON object"),
        ('{"video_id": "tt0000001", "shot_id": "0001"}', "missing field 'num_shot'"),
        ('{"video_id": "tt0000001", "shot_id": "x1", "num_shot": 20}', "wrong type"),
        ('{"video_id": "tt0000001", "shot_id": "0001", "num_shot": 20, "boundary_label": 2}', "boundary_label 2"),
    ],
)
def test_bad_line_names_file_and_line(layout, line, expect):
    path = layout / "anno" / "anno.test.ndjson"
    lines = path.read_text().splitlines()
    lines.insert(4, line)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        MovieNetSource(layout).split("test")
    assert f"{path}:5:" in str(e.value) and expect in str(e.value)
    report = MovieNetSource(layout).validate()
    assert any(f"{path}:5:" in p for p in report.problems)


def test_short_movie_is_a_warning(tmp_path):
    """A movie shorter than a window (a phone clip after ingest) trains and scores with repeated shots, as the
    loaders' windows do at every movie's ends: validate warns, it does not fail."""
    write_layout(tmp_path / "m", {"tt0000001": LABELS, "tt0000003": [0, 0, 1, 0, 0, -1]})
    report = MovieNetSource(tmp_path / "m").validate(window_size=17)
    assert report.ok and not report.problems
    assert any("shorter than a 17-shot window" in w and "tt0000003 (6 shots)" in w for w in report.warnings)
    assert "warning: " in report.describe() and report.describe().endswith("OK")
    assert not MovieNetSource(tmp_path / "m").validate(window_size=5).warnings


def test_empty_movie_dir_and_missing_timing(layout):
    (layout / "240P_frames" / "tt0000077").mkdir()
    (layout / "scene318" / "shot_movie318" / "tt0000002.txt").unlink()
    report = MovieNetSource(layout).validate()
    assert any("tt0000077: a movie directory with no keyframes" in p for p in report.problems)
    assert any("no shot timing" in w and "tt0000002" in w for w in report.warnings)


def test_missing_root_and_split_errors(tmp_path, layout):
    with pytest.raises(DataError, match="does not exist"):
        MovieNetSource(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"anno.val.ndjson does not exist \(annotation files present: pretrain, train, test\)"):
        MovieNetSource(layout).split("val")


def test_from_config_uses_data_section(layout, tmp_path):
    cfg = load_config([f"data.root={layout}"])
    src = MovieNetSource.from_config(cfg.data)
    assert src.root == layout.resolve() and src.shot_count("tt0000002") == 19
    # every folder name and the keyframe count come from the section (a layout laid out another way)
    moved = tmp_path / "moved"
    shutil.copytree(layout / "240P_frames", moved / "frames")
    shutil.copytree(layout / "anno", moved / "labels")
    shutil.copytree(layout / "scene318" / "shot_movie318", moved / "timing")
    cfg = load_config([f"data.root={moved}", "data.frames_dir=frames", "data.anno_dir=labels",
                       "data.shot_timing_dir=timing", "data.keyframes_per_shot=2"])
    src = MovieNetSource.from_config(cfg.data)
    assert (src.frames_root, src.anno_root) == (moved / "frames", moved / "labels")
    assert src.shot_count("tt0000002") == 19 and src.missing_keyframes("tt0000002") == []  # 2 of the 3 asked for
    assert sorted(src.split("train")) == sorted(MovieNetSource(layout).split("train"))
    assert src.shot_timing("tt0000002").tolist() == MovieNetSource(layout).shot_timing("tt0000002").tolist()
