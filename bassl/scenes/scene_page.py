"""``scenes.html``: one self-contained page to look at a segmented video (no network, no server).

The video (referenced by a path relative to the page, or a URL), a timeline bar coloured by scene under it (hover: the
scene and its times; click: seek), the boundary probability as a curve over the same time axis, and one row per scene
with its keyframes (embedded JPEGs). Keys: ``n`` / ``→`` next scene, ``p`` / ``←`` previous scene, space play/pause.
The scenes are scenes.json's, embedded in the page as JSON.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bassl.data.atomic import write_atomic

THUMB_HEIGHT = 72
PER_ROW = 6

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ - scenes</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#15171a;color:#e8e8e8}
header{padding:10px 16px;background:#202328}h1{font-size:17px;margin:0 0 2px}
header p{margin:0;color:#9aa0a6;font-size:12px}main{padding:12px 16px;max-width:1100px}
video{width:100%;max-height:56vh;background:#000;display:block}
#timeline{position:relative;height:26px;margin-top:8px;background:#333;cursor:pointer}
#timeline .seg{position:absolute;top:0;bottom:0;border-right:1px solid #15171a;box-sizing:border-box}
#timeline .seg.current{outline:2px solid #fff;outline-offset:-2px;z-index:1}
#cursor{position:absolute;top:-3px;bottom:-3px;width:2px;background:#fff;pointer-events:none;z-index:2}
#curve{display:block;width:100%;height:46px;background:#1d2024;margin-top:2px}
#tip{position:fixed;pointer-events:none;background:#000c;padding:3px 6px;border-radius:3px;font-size:12px;display:none}
.row{display:flex;gap:10px;align-items:center;padding:6px;margin-top:6px;background:#202328;cursor:pointer;border-left:6px solid}
.row.current{background:#2d333b}.row .label{width:170px;flex:none;font-size:12px;color:#c8c8c8}
.row .label b{display:block;font-size:14px;color:#fff}.row img{height:__THUMB__px;border-radius:2px}
.keys{color:#9aa0a6;font-size:12px;margin-top:6px}
</style></head>
<body><header><h1>__TITLE__</h1><p id="summary"></p></header>
<main>
<video id="video" controls preload="metadata" src="__VIDEO__"></video>
<div id="timeline"><div id="cursor"></div></div>
<svg id="curve" viewBox="0 0 1000 100" preserveAspectRatio="none"></svg>
<div class="keys">keys: n / &rarr; next scene, p / &larr; previous scene, space play / pause; click a scene to go there</div>
<div id="rows"></div></main><div id="tip"></div>
<script id="scenes-data" type="application/json">__DATA__</script>
<script id="thumbs-data" type="application/json">__THUMBS__</script>
<script>
"use strict";
const doc = JSON.parse(document.getElementById("scenes-data").textContent);
const thumbs = JSON.parse(document.getElementById("thumbs-data").textContent);
const video = document.getElementById("video"), timeline = document.getElementById("timeline");
const tip = document.getElementById("tip"), rows = document.getElementById("rows");
const scenes = doc.scenes, shots = doc.shots;
const total = shots.length ? shots[shots.length - 1].end : 0;
const colour = i => `hsl(${(i * 137.5) % 360} 55% 48%)`;
const pad = (v, n) => String(v).padStart(n, "0");
const fmt = t => { const ms = Math.round(t * 1000), h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60,
  s = Math.floor(ms / 1000) % 60; return `${h ? h + ":" : ""}${pad(m, 2)}:${pad(s, 2)}.${pad(ms % 1000, 3)}`; };
document.getElementById("summary").textContent =
  `${scenes.length} scenes, ${shots.length} shots, ${fmt(total)} · scored by ${doc.mode}` +
  (doc.boundary_head ? ` (${doc.boundary_head} head)` : "") + (doc.scorer ? ` (${doc.scorer})` : "");
// scenes.json counts time from the first frame; the player counts on the file's own clock, which may start later
const t0 = doc.media_start || 0, now = () => video.currentTime - t0;
// half a millisecond into the scene's first frame: a seek to its exact start can round to the frame before
function seekScene(i) {
  const s = scenes[Math.max(0, Math.min(scenes.length - 1, i))]; video.currentTime = t0 + s.start + 5e-4; mark(); }
function sceneAt(t) { let i = 0; while (i + 1 < scenes.length && scenes[i + 1].start <= t + 1e-6) i++; return i; }
scenes.forEach((s, i) => {
  const seg = document.createElement("div");
  seg.className = "seg"; seg.dataset.scene = i;
  seg.style.left = `${100 * s.start / total}%`; seg.style.width = `${100 * (s.end - s.start) / total}%`;
  seg.style.background = colour(i);
  seg.dataset.tip = `Scene ${i + 1}: ${fmt(s.start)} - ${fmt(s.end)}`;
  seg.addEventListener("click", e => { e.stopPropagation(); seekScene(i); });
  seg.addEventListener("mousemove", e => { tip.textContent = seg.dataset.tip; tip.style.display = "block";
    tip.style.left = `${e.clientX + 12}px`; tip.style.top = `${e.clientY + 12}px`; });
  seg.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  timeline.appendChild(seg);
  const row = document.createElement("div");
  row.className = "row"; row.dataset.scene = i; row.style.borderLeftColor = colour(i);
  const label = document.createElement("div"); label.className = "label";
  label.innerHTML = `<b>Scene ${i + 1}</b>${fmt(s.start)} - ${fmt(s.end)}<br>shots ${s.shots[0]}-${s.shots[1]}`;
  row.appendChild(label);
  (thumbs[i] || []).forEach(src => { const im = document.createElement("img"); im.src = src; im.alt = ""; row.appendChild(im); });
  row.addEventListener("click", () => seekScene(i));
  rows.appendChild(row);
});
const svg = document.getElementById("curve");
if (shots.length && total > 0) {
  const pts = shots.map(s => `${(1000 * s.end / total).toFixed(1)},${(100 - 96 * s.boundary_prob).toFixed(1)}`);
  const thin = 'vector-effect="non-scaling-stroke"';
  svg.innerHTML = `<polyline points="0,100 ${pts.join(" ")}" fill="none" stroke="#f0b429" stroke-width="1.5" ${thin}/>` +
    scenes.slice(0, -1).map(s => { const x = 1000 * s.end / total;
      return `<line x1="${x}" x2="${x}" y1="0" y2="100" stroke="#ffffff40" ${thin}/>`; }).join("");
}
function mark() {
  const i = sceneAt(now());
  document.querySelectorAll(".current").forEach(e => e.classList.remove("current"));
  document.querySelectorAll(`[data-scene="${i}"]`).forEach(e => e.classList.add("current"));
  document.getElementById("cursor").style.left = `${total ? 100 * now() / total : 0}%`;
}
timeline.addEventListener("click", e => { const r = timeline.getBoundingClientRect();
  video.currentTime = t0 + total * (e.clientX - r.left) / r.width; mark(); });
video.addEventListener("timeupdate", mark);
video.addEventListener("seeked", mark);
document.addEventListener("keydown", e => {
  if (e.target.tagName === "INPUT") return;
  const i = sceneAt(now());
  if (e.key === "n" || e.key === "ArrowRight") { seekScene(i + 1); e.preventDefault(); }
  else if (e.key === "p" || e.key === "ArrowLeft") {
    seekScene(now() - scenes[i].start > 1 ? i : i - 1); e.preventDefault(); }
  else if (e.key === " ") { video.paused ? video.play() : video.pause(); e.preventDefault(); }
});
mark();
</script></body></html>
"""


def thumbnail_shots(first: int, last: int, per_row: int = PER_ROW) -> list[int]:
    """The shots of a scene shown as thumbnails (here and in the contact sheet): up to ``per_row``, evenly spaced."""
    return sorted(set(np.linspace(first, last, min(per_row, last - first + 1)).round().astype(int).tolist()))


def thumbnails(doc: dict[str, Any], keyframe: Callable[[int], Any] | None) -> list[list[str]]:
    """Per scene, the middle keyframes of its :func:`thumbnail_shots` as JPEG data URIs."""
    if keyframe is None:
        return [[] for _ in doc["scenes"]]
    out = []
    for s in doc["scenes"]:
        row = []
        for shot in thumbnail_shots(*s["shots"]):
            im = keyframe(shot).convert("RGB")
            im = im.resize((max(1, round(im.width * THUMB_HEIGHT / im.height)), THUMB_HEIGHT))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
            row.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
        out.append(row)
    return out


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element (no closing tag can appear)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_scene_page(path: Path, doc: dict[str, Any], keyframe: Callable[[int], Any] | None,
                     video_src: str | None = None) -> Path:
    """scenes.html at ``path``; the video is ``video_src`` (a URL or a path relative to the page; default: the
    video's path relative to the page's directory)."""
    path = Path(path)
    if video_src is None and not doc["video"]:  # scenes from features alone: the page without a video
        video_src = ""
    if video_src is None:  # a relative path, percent-encoded: the page and the video move together
        rel = os.path.relpath(Path(doc["video"]).resolve(), path.parent.resolve())
        video_src = urllib.parse.quote(Path(rel).as_posix())
    page = (PAGE.replace("__TITLE__", html.escape(Path(doc["video"]).name))
            .replace("__THUMB__", str(THUMB_HEIGHT))
            .replace("__VIDEO__", html.escape(video_src, quote=True))
            .replace("__DATA__", _json_for_script(doc))
            .replace("__THUMBS__", _json_for_script(thumbnails(doc, keyframe))))
    return write_atomic(path, page)
