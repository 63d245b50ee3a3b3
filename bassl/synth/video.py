"""Synthetic movies as real video files (H.264 in MP4), with their cuts and scenes known exactly.

Each shot lasts its planned frames (``shot_frames``, 24 fps); within a shot the camera moves continuously
through the shot's three keyframe views (the crop box and the characters interpolated linearly, film grain drawn
anew per frame), so only the cuts are abrupt. What ``bassl ingest`` and ``bassl segment`` are tested against.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from bassl.config import SynthConfig
from bassl.data.atomic import atomic_path
from bassl.synth.camera import MovieShoot, View
from bassl.synth.plan import FPS, MoviePlan


def view_at(views: list[View], t: float) -> View:
    """The view ``t`` in [0, 1] of the way through a shot: between keyframe views 0-1 then 1-2."""
    a, b, u = (views[0], views[1], 2 * t) if t <= 0.5 else (views[1], views[2], 2 * t - 1)
    box = tuple(float(x + (y - x) * u) for x, y in zip(a.box, b.box, strict=True))
    figures = tuple((p, da + (db - da) * u) for (p, da), (_, db) in zip(a.figures, b.figures, strict=True))
    return dataclasses.replace(a, box=box, figures=figures)


def render_video(plan: MoviePlan, cfg: SynthConfig, path: str | Path, crf: int = 20, preset: str = "veryfast") -> Path:
    """Write ``plan`` as an H.264 MP4 at 24 fps (written atomically); frame ``shot_frames[s, 0]`` starts shot s."""
    import av

    shoot = MovieShoot(plan, cfg)
    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = cfg.width // 2 * 2, cfg.height // 2 * 2, "yuv420p"
        stream.options = {"preset": preset, "crf": str(crf)}
        for shot, views in shoot.shot_views():
            start, end = (int(x) for x in plan.shot_frames[shot, :2])
            n = end - start + 1
            for i in range(n):
                rgb = np.asarray(shoot.render(view_at(views, i / max(1, n - 1))))[: stream.height, : stream.width]
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
