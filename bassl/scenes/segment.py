"""``bassl segment VIDEO --model M --out DIR``: one video file in, its scenes out (a thin wrapper over
:class:`bassl.scenes.segmenter.Segmenter`, the Python API)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bassl.config import Config
from bassl.scenes.clips import remove_clips
from bassl.scenes.segmenter import Segmenter


def segment(cfg: Config, video: str | Path, model_path: str | Path, out_dir: str | Path, split: bool = False,
            progress: bool = True, html_video: str | None = None) -> dict[str, Any]:
    """Segment ``video`` into scenes with the model at ``model_path``; everything goes into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    seg = Segmenter.load(model_path, cfg)
    scenes = seg.segment(video, work_dir=out_dir / "work")
    if scenes.warning and progress:
        print(f"[segment] warning: {scenes.warning}")
    remove_clips(out_dir / "clips")  # before the new scenes are written: an earlier run's clips would pass for theirs
    files = scenes.save(out_dir, video_src=html_video)
    doc = scenes.to_json()
    if split:
        doc["clips"] = scenes.split(out_dir / "clips", progress)
        files["clips"] = out_dir / "clips"
    doc["timing"] = scenes.timing
    if progress:
        print(f"[segment] {Path(video).name}: {len(doc['shots'])} shots, {len(doc['scenes'])} scenes "
              f"({doc['mode']}) in {scenes.timing['total_s']:.1f} s ({scenes.timing['realtime_factor']:.1f}x real time)")
        print(f"[segment] scorer: {seg.describe()}")
        if split:
            copied = sum(c["method"] == "copy" for c in doc["clips"])
            sounds = Counter(c["sound"] for c in doc["clips"])
            kinds = {"copy": "copied", "aac": "encoded to AAC", "none": "silent (no sound there)", "left out":
                     "silent (the video's timestamps do not say which sound goes with which clip)"}
            print(f"[segment] clips: {copied} copied, {len(doc['clips']) - copied} re-encoded; sound: "
                  + ", ".join(f"{n} {kinds[k]}" for k, n in sounds.items()))
        for name, path in files.items():
            print(f"[segment] {name}: {path}")
    return doc
