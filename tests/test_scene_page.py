"""scenes.html in a real browser (Debian's headless Chromium): what it shows is scenes.json, and it seeks."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from browser import IN_CI, Chromium, find_chromium
from PIL import Image
from video_files import write_video

from bassl.cli import main


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        if IN_CI:
            pytest.fail("no Chromium, and Debian's chromium package could not be installed")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    browser = Chromium(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


def test_scene_page_shows_scenes_json_and_seeks(models, chromium, tmp_path):
    video = write_video(tmp_path / "my film (cut 2).mp4", [15] * 16)
    out = tmp_path / "out"
    assert main(["segment", str(video), "--model", str(models["encoder"]), "--out", str(out), "model_preset=tiny",
                 "video.scene_shots=1.5"]) == 0
    doc = json.loads((out / "scenes.json").read_text())
    scenes = doc["scenes"]
    assert len(scenes) >= 3
    chromium.open((out / "scenes.html").as_uri())
    page = chromium.evaluate("""(() => ({
        rows: [...document.querySelectorAll('.row')].map(r => r.querySelector('.label b').textContent),
        thumbs: [...document.querySelectorAll('.row')].map(r => r.querySelectorAll('img').length),
        segs: [...document.querySelectorAll('#timeline .seg')].map(s => ({tip: s.dataset.tip, left: parseFloat(s.style.left),
                                                                      width: parseFloat(s.style.width)})),
        curve: document.querySelector('#curve polyline').getAttribute('points').trim().split(' ').length,
        src: document.getElementById('video').getAttribute('src')}))()""")
    total = doc["shots"][-1]["end"]
    assert page["rows"] == [f"Scene {i + 1}" for i in range(len(scenes))]
    assert all(n >= 1 for n in page["thumbs"])
    assert len(page["segs"]) == len(scenes)
    for seg, s in zip(page["segs"], scenes, strict=True):
        assert seg["left"] == pytest.approx(100 * s["start"] / total, abs=1e-6)
        assert seg["width"] == pytest.approx(100 * (s["end"] - s["start"]) / total, abs=1e-6)
        assert seg["tip"].startswith(f"Scene {scenes.index(s) + 1}: ")
    assert page["curve"] == len(doc["shots"]) + 1  # the origin, then one point per shot
    assert page["src"] == "../my%20film%20%28cut%202%29.mp4"  # relative, percent-encoded
    # clicking a scene row, a timeline segment, then the "n" key each put the video at a scene's start
    assert chromium.evaluate("document.querySelectorAll('.row')[1].click(); document.getElementById('video').currentTime") \
        == pytest.approx(scenes[1]["start"], abs=1e-3)
    assert chromium.evaluate("document.querySelectorAll('#timeline .seg')[2].click(); "
                             "document.getElementById('video').currentTime") == pytest.approx(scenes[2]["start"], abs=1e-3)
    chromium.evaluate("document.querySelectorAll('.row')[0].click()")
    chromium.key("n")
    assert chromium.evaluate("document.getElementById('video').currentTime") == pytest.approx(scenes[1]["start"], abs=1e-3)
    assert chromium.evaluate("document.querySelector('.row.current').dataset.scene") == "1"
    assert not chromium.console_errors()
    shot = chromium.screenshot(tmp_path / "page.png")
    with Image.open(shot) as im:
        colours = np.unique(np.asarray(im.convert("RGB").resize((64, 64))).reshape(-1, 3), axis=0)
        assert im.width >= 800 and len(colours) > 20  # a rendered page, not a blank one


SEEN = """(async () => { const v = document.getElementById('video');
    if (v.readyState < 2) await new Promise(r => v.addEventListener('loadeddata', r, {once: true}));
    const shown = new Promise(r => { v.requestVideoFrameCallback(() => r()); setTimeout(r, 3000); });
    document.querySelectorAll('.row')[%d].click();
    await new Promise(r => v.addEventListener('seeked', r, {once: true}));
    await shown;  // the frame sought is on screen (seeked can come before it is painted)
    const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d'); g.drawImage(v, 0, 0);
    return {t: v.currentTime, rgb: [...g.getImageData(100, 40, 1, 1).data.slice(0, 3)]}; })()"""


def test_media_start_of_a_record_kept_from_before_the_field_is_probed(models, tmp_path):
    """A work_dir kept from an older bassl holds ingest records with no "start": segmenting again reuses the record
    and reads where the file's clock starts from the file itself, not 0."""
    from bassl import Segmenter
    from bassl.config import load_config

    video = write_video(tmp_path / "late.mp4", [30, 25, 40], ts_offset=2.0)
    segmenter = Segmenter.load(models["encoder"], load_config(["model_preset=tiny"]))
    assert segmenter.segment(video, work_dir=tmp_path / "work").extra["media_start"] == pytest.approx(2.0, abs=1e-3)
    record = tmp_path / "work" / "layout" / ".ingest" / "late.json"
    old = json.loads(record.read_text())
    del old["start"]
    record.write_text(json.dumps(old))
    began = time.perf_counter()
    again = segmenter.segment(video, work_dir=tmp_path / "work")
    wall = time.perf_counter() - began
    assert "start" not in json.loads(record.read_text())  # the record was reused, not written anew
    assert again.extra["media_start"] == pytest.approx(2.0, abs=1e-3)
    # the run's own timing, not confused with the media's: within this call's wall time
    assert 0 < again.timing["ingest_s"] <= again.timing["total_s"] <= wall
    assert again.timing["realtime_factor"] == pytest.approx(3.8 / again.timing["total_s"], rel=0.01)  # 95 frames


def test_scene_page_seeks_to_the_scene_in_a_video_whose_clock_starts_late(models, chromium, tmp_path):
    """A recording whose first frame is stamped 2 s (the player's timeline starts there): clicking scene i shows
    scene i's picture, not the first frame's. scenes.json keeps times from the first frame and says where it is."""
    from bassl import Segmenter
    from bassl.config import load_config

    video = write_video(tmp_path / "late.mp4", [30, 25, 40], ts_offset=2.0)
    out = tmp_path / "out"
    scenes = Segmenter.load(models["encoder"], load_config(["model_preset=tiny"])).segment(video)
    scenes.boundaries[:] = True  # a scene per shot: each its own colour
    scenes.save(out)
    doc = json.loads((out / "scenes.json").read_text())
    assert doc["media_start"] == pytest.approx(2.0, abs=1e-3) and [s["start"] for s in doc["scenes"]] == \
        pytest.approx([0.0, 1.2, 2.2], abs=1e-3)
    colours = np.random.default_rng(1).integers(0, 256, (3, 3))  # write_video's shot colours (colour_seed 1)
    chromium.open((out / "scenes.html").as_uri())
    for i in (1, 2, 0):
        seen = chromium.evaluate(SEEN % i)
        assert seen["t"] == pytest.approx(2.0 + doc["scenes"][i]["start"], abs=1e-3)
        assert np.abs(np.array(seen["rgb"]) - colours[i]).max() < 24, (i, seen, colours)
