"""The synthetic movies: exact MovieNet-SSeg layout, determinism, film-like statistics and hard cases."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bassl.synth.generate as synthetic
from bassl.config import load_config
from bassl.data.movienet import MovieNetSource
from bassl.errors import DataError
from bassl.synth.generate import generate
from bassl.synth.plan import plan_dataset

TINY = ["synth.train_movies=2", "synth.val_movies=1", "synth.test_movies=1", "synth.pretrain_only_movies=1",
        "synth.min_scenes=3", "synth.max_scenes=4", "synth.mean_scene_shots=6", "synth.max_scene_shots=12",
        "synth.width=96", "synth.height=64", "synth.workers=1"]
SPLIT_FIELDS = {"video_id", "shot_id", "num_shot", "boundary_label", "global_video_id", "invideo_scene_id", "global_scene_id"}


def tiny(*overrides: str):
    return load_config([*TINY, *overrides]).synth


def read_ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "movienet"
    generate(root, tiny(), progress=False)
    return root


def test_layout_is_complete(dataset):
    anno = dataset / "anno"
    vid2idx = json.loads((anno / "vid2idx.json").read_text())
    assert len(vid2idx) == 5 and sorted(vid2idx.values()) == list(range(5))
    assert all(v.startswith("tt9") and len(v) == 9 for v in vid2idx)
    splits = {name: read_ndjson(anno / f"anno.{name}.ndjson") for name in ("pretrain", "train", "val", "test", "trainvaltest")}
    movies = {name: {r["video_id"] for r in rows} for name, rows in splits.items()}
    assert (len(movies["train"]), len(movies["val"]), len(movies["test"])) == (2, 1, 1)
    assert movies["trainvaltest"] == movies["train"] | movies["val"] | movies["test"]
    assert movies["pretrain"] == set(vid2idx) - movies["test"] and len(movies["pretrain"]) == 4
    for row in splits["pretrain"]:
        assert set(row) == {"video_id", "shot_id", "num_shot"}
    for name in ("train", "val", "test", "trainvaltest"):
        for row in splits[name]:
            assert set(row) == SPLIT_FIELDS and isinstance(row["shot_id"], str) and len(row["shot_id"]) == 4
            assert row["global_video_id"] == vid2idx[row["video_id"]]
    for vid in vid2idx:
        files = sorted(p.name for p in (dataset / "240P_frames" / vid).iterdir())
        shots = [r for r in splits["pretrain"] + splits["test"] if r["video_id"] == vid]
        n = len(shots)
        assert n >= 17 and all(r["num_shot"] == n for r in shots)
        assert files == sorted(f"shot_{s:04d}_img_{k}.jpg" for s in range(n) for k in range(3))
        with Image.open(dataset / "240P_frames" / vid / files[-1]) as im:
            assert im.format == "JPEG" and im.size == (96, 64) and im.mode == "RGB"
        timing = dataset / "scene318" / "shot_movie318" / f"{vid}.txt"
        if vid not in movies["trainvaltest"]:
            assert not timing.exists()
            continue
        rows = np.array([[int(x) for x in line.split()] for line in timing.read_text().splitlines()])
        assert rows.shape == (n, 5)
        start, end, kf = rows[:, 0], rows[:, 1], rows[:, 2:]
        assert start[0] == 0 and np.all(start[1:] == end[:-1] + 1)  # increasing, non-overlapping, no gaps
        assert np.all((start[:, None] <= kf) & (kf <= end[:, None])) and np.all(np.diff(kf, axis=1) > 0)


def test_labels_are_consistent(dataset):
    rows = read_ndjson(dataset / "anno" / "anno.trainvaltest.ndjson")
    global_scenes = []
    for vid in dict.fromkeys(r["video_id"] for r in rows):
        movie = [r for r in rows if r["video_id"] == vid]
        labels = [r["boundary_label"] for r in movie]
        scenes = [r["invideo_scene_id"] for r in movie]
        assert [int(r["shot_id"]) for r in movie] == list(range(len(movie)))
        assert labels[-1] == -1 and set(labels[:-1]) <= {0, 1} and sum(labels[:-1]) >= 2  # at least 3 scenes
        # A scene ends exactly where the label says so; scene ids count up from 0 without gaps.
        expected = np.concatenate([[0], np.cumsum(np.abs(labels[:-1]))])
        assert scenes == expected.tolist()
        offsets = {r["global_scene_id"] - r["invideo_scene_id"] for r in movie}
        assert len(offsets) == 1
        global_scenes += sorted({r["global_scene_id"] for r in movie})
    assert global_scenes == list(range(len(global_scenes)))


def test_reader_accepts_it(dataset):
    src = MovieNetSource(dataset)
    report = src.validate(window_size=17)
    assert report.ok, report.describe()
    assert src.num_shot_convention() == "count"


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, dataset):
    generate(tmp_path / "again", tiny("synth.workers=2"), progress=False)
    assert tree_bytes(tmp_path / "again") == tree_bytes(dataset)
    generate(tmp_path / "other", tiny("synth.seed=1"), progress=False)
    other = tree_bytes(tmp_path / "other")
    assert other.keys() != tree_bytes(dataset).keys()
    assert not set(v for k, v in other.items() if k.endswith(".jpg")) & set(tree_bytes(dataset).values())


def test_last_index_convention(tmp_path):
    cfg = tiny("synth.num_shot_convention=last_index", "synth.train_movies=1", "synth.val_movies=0",
               "synth.pretrain_only_movies=0")
    summary = generate(tmp_path, cfg, progress=False)
    assert MovieNetSource(tmp_path).num_shot_convention() == "last_index"
    assert summary.keyframes == 3 * summary.shots and summary.bytes > 0
    assert f"{summary.shots}" in summary.describe()


def test_rerun_replaces_a_previous_synthetic_run_and_refuses_other_data(tmp_path):
    generate(tmp_path, tiny("synth.train_movies=1", "synth.val_movies=0", "synth.pretrain_only_movies=0"), progress=False)
    cfg = tiny("synth.seed=3", "synth.train_movies=1", "synth.val_movies=0", "synth.pretrain_only_movies=0")
    generate(tmp_path, cfg, progress=False)
    assert sorted(p.name for p in (tmp_path / "240P_frames").iterdir()) == sorted(m.video_id for m in plan_dataset(cfg).movies)
    assert MovieNetSource(tmp_path).validate().ok
    foreign = tmp_path / "real"
    (foreign / "240P_frames" / "tt0047396").mkdir(parents=True)
    with pytest.raises(DataError, match="did not write"):
        generate(foreign, cfg, progress=False)


def test_a_crashed_run_leaves_no_annotations(tmp_path, monkeypatch):
    cfg = tiny("synth.train_movies=1", "synth.val_movies=0", "synth.pretrain_only_movies=0")
    generate(tmp_path, cfg, progress=False)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "render_movie", crash)
    with pytest.raises(RuntimeError):
        generate(tmp_path, cfg, progress=False)
    assert not list((tmp_path / "anno").iterdir())


# --------------------------------------------------------------------------------------------------
# The plan alone (no pixels): statistics over many movies, and the hard cases.
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [13.0, 8.0])
def test_scene_statistics_match_the_config(mean):
    cfg = load_config(["synth.train_movies=200", "synth.test_movies=100", f"synth.mean_scene_shots={mean}"]).synth
    plan = plan_dataset(cfg)
    labelled = [m for m in plan.movies if m.labelled]
    labels = np.concatenate([m.boundary_labels for m in labelled])
    lengths = np.array([s.num_shots for m in plan.movies for s in m.scenes])
    scenes = np.array([len(m.scenes) for m in plan.movies])
    assert abs(lengths.mean() - mean) < 0.3 * mean
    assert lengths.min() >= cfg.min_scene_shots and lengths.max() <= cfg.max_scene_shots
    assert scenes.min() >= cfg.min_scenes and scenes.max() <= cfg.max_scenes
    if mean == 13.0:  # MovieNet-like: 7-8 % of shots end a scene
        assert 0.05 <= (labels == 1).mean() <= 0.11
    frames = np.concatenate([m.shot_frames for m in plan.movies])
    seconds = (frames[:, 1] - frames[:, 0] + 1) / 24
    assert abs(seconds.mean() - cfg.mean_shot_seconds) < 0.3 * cfg.mean_shot_seconds
    assert seconds.std() > 0.5  # durations vary


def test_the_plan_has_the_hard_cases_of_real_films():
    plan = plan_dataset(load_config(["synth.train_movies=30"]).synth)
    revisited = shared_cast = similar_neighbours = same_set = intercut = moving = transitions = 0
    for m in plan.movies:
        where = [s.locations[0] for s in m.scenes]
        revisited += sum(loc in where[:i - 1] for i, loc in enumerate(where))  # a set comes back, not just next
        shared_cast += sum(bool(set(a.cast) & set(b.cast)) for a, b in pairwise(m.scenes))
        similar_neighbours += sum(m.location_parents[b] == a or m.location_parents[a] == b for a, b in pairwise(where))
        same_set += sum(a == b for a, b in pairwise(where))  # "the next morning, same kitchen"
        intercut += sum(len(s.locations) == 2 and s.intercut for s in m.scenes)
        moving += sum(len(s.locations) == 2 and not s.intercut for s in m.scenes)
        transitions += len(m.scenes) - 1
    assert revisited >= 30 and shared_cast >= 0.3 * transitions and similar_neighbours >= 10
    assert 0 < same_set < 0.15 * transitions and intercut >= 3 and moving >= 3


def test_plans_are_per_movie_and_seeded():
    cfg = load_config(["synth.train_movies=5"]).synth
    a, b = plan_dataset(cfg), plan_dataset(cfg)
    assert [m.video_id for m in a.movies] == [m.video_id for m in b.movies]
    for x, y in zip(a.movies, b.movies, strict=True):
        assert np.array_equal(x.shot_frames, y.shot_frames) and x.scenes == y.scenes
    c = plan_dataset(load_config(["synth.train_movies=5", "synth.seed=1"]).synth)
    assert [m.video_id for m in a.movies] != [m.video_id for m in c.movies]


def test_photo_movies_cut_scenes_from_real_photographs(tmp_path):
    """synth.source=photos: a valid layout, the same bytes for the same seed, and a scene's shots (crops of one
    photograph) closer in colour to each other than to the next scene's (another photograph)."""
    from bassl.synth.photos import photo_paths

    assert len(photo_paths()) >= 15  # scikit-image's sample photographs are installed with the test extra
    args = ["synth.source=photos", "synth.train_movies=1", "synth.val_movies=0", "synth.test_movies=1",
            "synth.pretrain_only_movies=0", "synth.width=96", "synth.height=64", "synth.workers=1"]
    cfg = load_config(args).synth
    summary = generate(tmp_path / "a", cfg, progress=False)
    assert summary.shots >= 34 and summary.positives >= 2
    source = MovieNetSource(tmp_path / "a")
    assert source.validate(window_size=17).ok
    generate(tmp_path / "b", cfg, progress=False)
    a_files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "240P_frames").rglob("*.jpg"))
    assert a_files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in a_files)
    within, across = [], []
    for vid, ann in source.split("train").items():
        means = np.stack([np.asarray(Image.open(tmp_path / "a" / "240P_frames" / vid / f"shot_{s:04d}_img_1.jpg"),
                                     dtype=np.float32).reshape(-1, 3).mean(0) for s in ann.shot_ids])  # [N, 3]
        assert all(Image.open(f).size == (96, 64) for f in (tmp_path / "a" / "240P_frames" / vid).glob("*_img_0.jpg"))
        step = np.abs(np.diff(means, axis=0)).sum(1)  # colour change from shot i to shot i+1
        same = ann.scene_ids[1:] == ann.scene_ids[:-1]
        within.append(step[same])
        across.append(step[~same])
    # Crops of one photograph still vary (sky, then a building): measured 98.6 across vs 50.4 within here.
    assert np.median(np.concatenate(across)) > 1.5 * np.median(np.concatenate(within))
