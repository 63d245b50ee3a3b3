"""What ``bassl segment`` writes: the scenes of one video, for programs (JSON, CSV), editors (a CMX3600 EDL),
players (FFmpeg chapter metadata), people (a contact sheet) and, on request, one clip per scene.

Frames are 0-based with ``end_frame`` inclusive; times are seconds from the frames' presentation timestamps (as
ingest recorded them, right for variable frame rates too), a scene's ``end`` being when its last frame ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bassl.data.atomic import atomic_path, write_atomic, write_json
from bassl.scenes.clips import split_clips
from bassl.scenes.scene_page import thumbnail_shots, write_scene_page
from bassl.video.names import edl_text


@dataclass
class Scenes:
    """A segmented video: shots (frame ranges and times) and scenes (runs of shots), with the boundary
    probabilities; what :class:`bassl.scenes.segmenter.Segmenter` returns. ``save`` writes every file, ``split`` the
    clips, ``to_json`` the document scenes.json holds."""

    video: Path
    fps: float  # the average frame rate
    nominal_fps: float  # the stream's base rate: the EDL's timecodes count in it
    frames: int
    shots: np.ndarray  # [N, 2] start_frame, end_frame (inclusive)
    times: np.ndarray  # [N, 2] start, end of each shot in seconds (presentation times)
    boundary_prob: np.ndarray  # [N] probability that shot i ends a scene
    boundaries: np.ndarray  # [N] bool: shot i ends a scene (the last shot always does)
    extra: dict[str, Any] = field(default_factory=dict)  # what scored it (model, mode, ...): written into scenes.json
    keyframe: Callable[[int], Any] | None = None  # shot -> PIL image of its middle keyframe (for the contact sheet)
    warning: str | None = None  # e.g. a damaged file decoded only in part
    timing: dict[str, float] = field(default_factory=dict)
    keep_alive: Any = field(default=None, repr=False)  # a temporary work directory the keyframes live in

    def __len__(self) -> int:
        return len(self.scene_shots())

    def scene_shots(self) -> list[tuple[int, int]]:
        """(first shot, last shot) of every scene."""
        ends = np.flatnonzero(self.boundaries)
        starts = np.concatenate([[0], ends[:-1] + 1])
        return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]

    def to_json(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        def span(a: int, b: int) -> dict[str, Any]:  # shots a..b
            return {"start_frame": int(self.shots[a, 0]), "end_frame": int(self.shots[b, 1]),
                    "start": float(self.times[a, 0]), "end": float(self.times[b, 1])}

        shots = [{**span(i, i), "boundary_prob": float(p)} for i, p in enumerate(self.boundary_prob)]
        scenes = [{**span(a, b), "shots": [a, b], "boundary_prob": float(self.boundary_prob[b])}
                  for a, b in self.scene_shots()]
        video = "" if self.video == Path() else str(self.video)  # "": scenes from features alone
        return {"video": video, "fps": self.fps, "nominal_fps": self.nominal_fps, "frames": self.frames,
                **self.extra, **(extra or {}), "shots": shots, "scenes": scenes}

    def save(self, out_dir: str | Path, video_src: str | None = None) -> dict[str, Path]:
        """scenes.json, scenes.csv, scenes.edl, scenes.ffmetadata, scenes.html (the video at ``video_src``: a URL,
        default its path relative to ``out_dir``) and, with keyframes, contact_sheet.png."""
        return write_scene_files(Path(out_dir), self, video_src)

    def split(self, out_dir: str | Path, progress: bool = False) -> list[dict[str, Any]]:
        """One clip per scene in ``out_dir``, with its sound (:func:`bassl.scenes.clips.split_clips`)."""
        if self.video == Path():
            raise ValueError("these scenes came from features alone: give segment_features the video they are of "
                             "(video=PATH) to cut it into clips")
        return split_clips(self.video, self.to_json(), Path(out_dir), progress)


def timestamp(seconds: float) -> str:
    """HH:MM:SS.mmm"""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def timecode(seconds: float, fps: float) -> str:
    """SMPTE non-drop HH:MM:SS:FF of a time (what CMX3600 EDLs hold): the frames shown by then at ``fps``, labelled
    at the nearest whole rate. At 29.97 fps one hour is 107,892 frames, 00:59:56:12 non-drop, as an editor's
    timeline shows it; the seconds times the whole rate would drift 3.6 s an hour from the pictures."""
    rate = max(1, round(fps))
    f = round(seconds * fps)
    return f"{f // (3600 * rate):02d}:{f // (60 * rate) % 60:02d}:{f // rate % 60:02d}:{f % rate:02d}"


def write_csv(path: Path, doc: dict[str, Any]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["scene", "start_frame", "end_frame", "start_time", "end_time", "start_seconds", "end_seconds",
                "first_shot", "last_shot", "boundary_prob"])
    for i, s in enumerate(doc["scenes"], 1):
        w.writerow([i, s["start_frame"], s["end_frame"], timestamp(s["start"]), timestamp(s["end"]), f"{s['start']:.3f}",
                    f"{s['end']:.3f}", s["shots"][0], s["shots"][1], f"{s['boundary_prob']:.4f}"])
    return write_atomic(path, buf.getvalue())


def write_edl(path: Path, doc: dict[str, Any], title: str) -> Path:
    """A CMX3600 EDL: one cut event per scene, source and record timecodes equal (the scenes laid end to end).
    Timecodes count frames at the nominal rate; each is the scene's presentation time, so VFR files cut right."""
    fps, name = doc["nominal_fps"], edl_text(Path(doc["video"]).name)
    title = edl_text(title)
    lines = [f"TITLE: {title}", "FCM: NON-DROP FRAME",
             f"* timecodes count frames at the nominal rate, {fps:.6g} fps, labelled at {round(fps)}, from the frames' "
             "presentation times", ""]
    for i, s in enumerate(doc["scenes"], 1):
        src_in, src_out = timecode(s["start"], fps), timecode(s["end"], fps)
        lines.append(f"{i:03d}  AX       V     C        {src_in} {src_out} {src_in} {src_out}")
        lines += [f"* FROM CLIP NAME: {name}", f"* COMMENT: SCENE {i}", ""]
    return write_atomic(path, "\n".join(lines))


def _ffmeta_escape(text: str) -> str:
    for ch in "\\=;#\n":
        text = text.replace(ch, "\\" + ch)
    return text


def write_ffmetadata(path: Path, doc: dict[str, Any], title: str) -> Path:
    """FFmpeg's FFMETADATA1 chapters, one per scene, in milliseconds
    (``ffmpeg -i VIDEO -i scenes.ffmetadata -map_metadata 1 -map_chapters 1 -c copy OUT``)."""
    lines = [";FFMETADATA1", f"title={_ffmeta_escape(title)}"]
    for i, s in enumerate(doc["scenes"], 1):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(s['start'] * 1000)}", f"END={round(s['end'] * 1000)}",
                  f"title={_ffmeta_escape(f'Scene {i}')}"]
    return write_atomic(path, "\n".join(lines) + "\n")


def write_contact_sheet(path: Path, doc: dict[str, Any], keyframe: Any, per_row: int = 6, thumb_height: int = 72) -> Path:
    """One row per scene: up to ``per_row`` middle keyframes of its shots (evenly spaced), its times on the left.
    ``keyframe(shot)`` returns a PIL image of that shot's middle keyframe."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    label_w, pad = 150, 4
    first = keyframe(0)
    thumb_w = round(first.width * thumb_height / first.height)
    rows = doc["scenes"]
    sheet = Image.new("RGB", (label_w + per_row * (thumb_w + pad) + pad, len(rows) * (thumb_height + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, s in enumerate(rows):
        y = pad + r * (thumb_height + pad)
        a, b = s["shots"]
        picks = thumbnail_shots(a, b, per_row)
        draw.text((pad, y + 4), f"scene {r + 1}", fill=(255, 255, 255), font=font)
        draw.text((pad, y + 20), f"{timestamp(s['start'])}", fill=(200, 200, 200), font=font)
        draw.text((pad, y + 34), f"- {timestamp(s['end'])}", fill=(200, 200, 200), font=font)
        draw.text((pad, y + 48), f"shots {a}-{b}", fill=(160, 160, 160), font=font)
        for j, shot in enumerate(picks):
            thumb = keyframe(shot).convert("RGB").resize((thumb_w, thumb_height))
            sheet.paste(thumb, (label_w + j * (thumb_w + pad), y))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def write_scene_files(out_dir: Path, scenes: Scenes, video_src: str | None = None) -> dict[str, Path]:
    """scenes.json, scenes.csv, scenes.edl, scenes.ffmetadata, scenes.html and (with keyframes) contact_sheet.png."""
    doc = scenes.to_json()
    title = scenes.video.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "json": write_json(out_dir / "scenes.json", doc),
        "csv": write_csv(out_dir / "scenes.csv", doc),
        "edl": write_edl(out_dir / "scenes.edl", doc, title),
        "chapters": write_ffmetadata(out_dir / "scenes.ffmetadata", doc, title),
        "html": write_scene_page(out_dir / "scenes.html", doc, scenes.keyframe, video_src),
    }
    if scenes.keyframe is not None:
        files["contact_sheet"] = write_contact_sheet(out_dir / "contact_sheet.png", doc, scenes.keyframe)
    return files
