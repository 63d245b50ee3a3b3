"""What ``bassl segment`` writes: the scenes of one video, for programs (JSON, CSV), editors (a CMX3600 EDL),
players (FFmpeg chapter metadata), people (a contact sheet) and, on request, one clip per scene.

Frames are 0-based with ``end_frame`` inclusive; times are seconds from the frames' presentation timestamps (as
ingest recorded them, right for variable frame rates too), a scene's ``end`` being when its last frame ends.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bassl.data.atomic import atomic_path, temp_path, write_atomic
from bassl.errors import DataError
from bassl.video.decode import TIMESTAMP_SPLICE_S, frames, probe, video_stream
from bassl.video.scene_page import thumbnail_shots, write_scene_page


@dataclass
class Scenes:
    """A segmented video: shots (frame ranges and times) and scenes (runs of shots), with the boundary
    probabilities; what :class:`bassl.video.segmenter.Segmenter` returns. ``save`` writes every file, ``split`` the
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
        return {"video": str(self.video), "fps": self.fps, "nominal_fps": self.nominal_fps, "frames": self.frames,
                **self.extra, **(extra or {}), "shots": shots, "scenes": scenes}

    def to_csv(self, path: str | Path) -> Path:
        return write_csv(Path(path), self.to_json())

    def to_edl(self, path: str | Path) -> Path:
        return write_edl(Path(path), self.to_json(), self.video.stem)

    def to_chapters(self, path: str | Path) -> Path:
        """FFmpeg chapter metadata (``ffmpeg -i VIDEO -i FILE -map_metadata 1 -map_chapters 1 -c copy OUT``)."""
        return write_ffmetadata(Path(path), self.to_json(), self.video.stem)

    def save(self, out_dir: str | Path, video_src: str | None = None) -> dict[str, Path]:
        """scenes.json, scenes.csv, scenes.edl, scenes.ffmetadata, scenes.html (the video at ``video_src``: a URL,
        default its path relative to ``out_dir``) and, with keyframes, contact_sheet.png."""
        return write_scene_files(Path(out_dir), self, video_src)

    def to_html(self, path: str | Path, video_src: str | None = None) -> Path:
        """The scene viewer page (:mod:`bassl.video.scene_page`)."""
        return write_scene_page(Path(path), self.to_json(), self.keyframe, video_src)

    def split(self, out_dir: str | Path, progress: bool = False) -> list[dict[str, Any]]:
        """One clip per scene in ``out_dir`` (stream copy where a scene starts on a keyframe, else re-encoded)."""
        return split_clips(self.video, self.to_json(), Path(out_dir), progress)


def timestamp(seconds: float) -> str:
    """HH:MM:SS.mmm"""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def timecode(seconds: float, fps: float) -> str:
    """SMPTE non-drop HH:MM:SS:FF of a time, counted at the nearest whole frame rate (what CMX3600 EDLs hold)."""
    rate = max(1, round(fps))
    f = round(seconds * rate)
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
    fps, name = doc["nominal_fps"], Path(doc["video"]).name
    title = " ".join(title.split())  # one line, whatever the file's name holds
    lines = [f"TITLE: {title}", "FCM: NON-DROP FRAME",
             f"* timecodes at the nominal rate, {round(fps)} fps, from the frames' presentation times", ""]
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
        "json": write_atomic(out_dir / "scenes.json", json.dumps(doc, indent=1) + "\n"),
        "csv": write_csv(out_dir / "scenes.csv", doc),
        "edl": write_edl(out_dir / "scenes.edl", doc, title),
        "chapters": write_ffmetadata(out_dir / "scenes.ffmetadata", doc, title),
        "html": write_scene_page(out_dir / "scenes.html", doc, scenes.keyframe, video_src),
    }
    if scenes.keyframe is not None:
        files["contact_sheet"] = write_contact_sheet(out_dir / "contact_sheet.png", doc, scenes.keyframe)
    return files


# --------------------------------------------------------------------------------------------------
# One clip per scene
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPackets:
    """A video stream's packets as the file holds them (decode order), placed in display order. Recordings joined
    end to end (``cat a.ts b.ts``) each start their clock again, so the order is read from the pts within each
    recording, and the recordings follow one another."""

    index: np.ndarray  # [P] each packet's frame index in display order
    keyframe: np.ndarray  # [P] bool: a packet a decoder can start from (flagged so; for H.264/HEVC an IDR/IRAP one)
    dts: np.ndarray  # [P] decode timestamps, filled in where the file has none (Matroska's first packets)
    recordings: list[int]  # the frame index where each recording starts: [0], and one more per join
    copyable: bool = True  # the packets can make an MP4 as they are: see stream_packets

    @functools.cached_property
    def cuts(self) -> set[int]:
        """Frame indices where a copy may start or end: a keyframe that no packet crosses, i.e. every packet before
        it in decode order shows before it and every one after shows after (an open GOP's leading B-frames, which
        need the keyframe and the frames before it, are not cut from either)."""
        n = np.arange(len(self.index))
        before = np.maximum.accumulate(np.concatenate([[-1], self.index[:-1]]))  # [P] the latest shown before n
        return set(n[self.keyframe & (self.index == n) & (before == n - 1)].tolist())

    def can_copy(self, first: int, stop: int) -> bool:
        """Frames ``first`` .. ``stop - 1`` are a stream copy: they start and end on cuts (or the end) within one
        recording, so they hold every frame they need and their timestamps run on."""
        return (self.copyable and first in self.cuts and first < stop and (stop == len(self.index) or stop in self.cuts)
                and not any(first < r < stop for r in self.recordings))


def _packets(container: Any, stream: Any) -> Iterator[Any]:
    """The stream's packets in file order, those with a presentation time (each a frame; not the final empty one)."""
    return (p for p in container.demux(stream) if p.pts is not None)


def _fill_dts(dts: list[int | None], step: int) -> np.ndarray:
    """``[P]`` decode timestamps with the missing ones filled in: Matroska stores none for the packets a B-frame
    stream holds back before the first frame shows. Before the first known one they count back ``step`` apart,
    between two known ones they are spread evenly, after the last they count on."""
    known = [i for i, d in enumerate(dts) if d is not None]
    if not known:
        return np.arange(len(dts), dtype=np.int64) * step
    out = np.empty(len(dts), dtype=np.int64)
    out[known] = [dts[i] for i in known]
    out[: known[0]] = dts[known[0]] - step * np.arange(known[0], 0, -1)
    for a, b in zip(known, [*known[1:], None], strict=True):
        gap = range(a + 1, b if b is not None else len(dts))
        if len(gap):
            span = (out[b] - out[a]) / (b - a) if b is not None else step
            out[list(gap)] = [out[a] + round(span * (i - a)) for i in gap]
    return out


def _mp4_takes(stream: Any) -> bool:
    """Whether an MP4 file can hold ``stream``'s packets as they are (not ProRes, DV, raw video)."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format="mp4") as out:
            out.add_stream_from_template(stream, opaque=True)  # opaque: no encoder needed (AV1's is not in the wheel)
        return True
    except (ValueError, av.error.FFmpegError):
        return False


RANDOM_ACCESS_NALS = {"h264": {5}, "hevc": set(range(16, 22))}  # IDR; BLA, IDR and CRA (IRAP)


def _nal_types(data: bytes, codec: str, length_size: int) -> list[int]:
    """The NAL unit types in one H.264/HEVC packet, Annex B (start codes, as in MPEG-TS) or length-prefixed (MP4,
    Matroska)."""
    if data[:3] == b"\0\0\1" or data[:4] == b"\0\0\0\1":
        heads = [m.end() for m in re.finditer(b"\0\0\1", data)]
    else:
        heads, i = [], 0
        while i + length_size < len(data):
            heads.append(i + length_size)
            i += length_size + int.from_bytes(data[i: i + length_size], "big")
    heads = [h for h in heads if h < len(data)]
    return [data[h] & 0x1F if codec == "h264" else (data[h] >> 1) & 0x3F for h in heads]


def _length_size(codec: str, extradata: bytes | None) -> int:
    """Bytes of each NAL's length prefix, from the avcC / hvcC record (4 when there is none)."""
    at = {"h264": 4, "hevc": 21}[codec]
    return (extradata[at] & 3) + 1 if extradata and len(extradata) > at and extradata[0] == 1 else 4


def stream_packets(path: Path) -> StreamPackets:
    """Where each packet of ``path``'s video stream falls in display order, from the packets alone (no decode; only a
    keyframe's bytes are read, and none is kept).

    The copies are trusted (``copyable``) only where the packets say enough: an MP4 can hold the codec, the decode
    times increase within each recording, and the pts show the display order. AVI stamps H.264 and packed B-frames
    in decode order, so a stream that has B-frames and whose pts never go back is not trusted. For H.264 and HEVC a
    flagged keyframe counts only if it is an IDR/IRAP picture: x264's intra refresh flags P-frames."""
    import av

    with av.open(str(path)) as c:
        stream = video_stream(c)
        codec = stream.codec_context.name
        nals = RANDOM_ACCESS_NALS.get(codec)
        length = _length_size(codec, stream.codec_context.extradata) if nals else 4
        keys = [(p.pts, p.dts, p.is_keyframe and (not nals or bool(nals & set(_nal_types(bytes(p), codec, length)))))
                for p in _packets(c, stream)]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        frame = 1 / rate / float(stream.time_base or 1)  # one frame, in pts units
        back = max(TIMESTAMP_SPLICE_S * rate, 16) * frame  # B-frames reorder up to 16 frames: over 1 s in a timelapse
        reorders = bool(stream.codec_context.has_b_frames)
        mp4 = _mp4_takes(stream)
    pts = np.array([t for t, _, _ in keys], dtype=np.int64)  # [P] in decode order
    starts, top = [0], None  # starts: the packet where each recording begins
    for i, t in enumerate(pts.tolist()):
        if top is not None and t < top - back:
            starts.append(i)
            top = None
        top = t if top is None else max(top, t)
    index = np.empty(len(pts), dtype=np.int64)
    for a, b in zip(starts, [*starts[1:], len(pts)], strict=True):
        index[a + np.argsort(pts[a:b], kind="stable")] = np.arange(a, b)  # the recording's frames, by pts
    dts = _fill_dts([d for _, d, _ in keys], max(1, round(frame)))
    within = np.ones(max(len(pts) - 1, 0), dtype=bool)  # [P-1] packet pairs inside one recording
    within[[a - 1 for a in starts[1:]]] = False
    order_shown = not reorders or bool((np.diff(pts) <= 0)[within].any())
    copyable = mp4 and order_shown and bool((np.diff(dts) > 0)[within].all())
    return StreamPackets(index, np.array([k for _, _, k in keys], dtype=bool), dts, starts, copyable)


class ClipFile:
    """One clip being written: an MP4 beside ``dst``, moved into place by :meth:`close`, removed by :meth:`abort`
    (what :func:`bassl.data.atomic.atomic_path` does for a ``with`` block, here for clips that open and close as
    one pass over the video comes to them)."""

    def __init__(self, dst: Path) -> None:
        import av

        self.dst, self.tmp, self.frames = dst, temp_path(dst), 0
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.out = av.open(str(self.tmp), "w", format="mp4")

    def flush(self) -> None:
        """Whatever is held back, before the file closes."""

    def close(self) -> None:
        self.flush()
        self.out.close()
        os.replace(self.tmp, self.dst)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a half-written stream may not close cleanly; it is removed anyway
            self.out.close()
        self.tmp.unlink(missing_ok=True)


class CopiedClip(ClipFile):
    """A clip of the source's own packets (stream copy), its timestamps shifted to start at 0."""

    def __init__(self, dst: Path, template: Any) -> None:
        super().__init__(dst)
        try:
            self.stream = self.out.add_stream_from_template(template, opaque=True)
        except BaseException:
            self.abort()
            raise
        self.offset: int | None = None

    def write(self, packet: Any, dts: int) -> None:
        """``packet`` with its decode time ``dts`` (what the file says, or :func:`_fill_dts` where it says none)."""
        self.offset = dts if self.offset is None else self.offset
        packet.pts -= self.offset
        packet.dts = dts - self.offset
        packet.stream = self.stream
        self.out.mux(packet)
        self.frames += 1


def copy_clips(src: Path, clips: list[tuple[Path, int, int]], placed: StreamPackets | None = None) -> None:
    """Each ``(dst, first, stop)``: frames ``first`` .. ``stop - 1`` by stream copy, all in one read of the packets
    (a film's clips cost one pass, and memory does not grow with its length). Each must be copyable
    (:meth:`StreamPackets.can_copy`; ``placed``: :func:`stream_packets` of ``src``, read again if not given), and
    each appears complete or not at all."""
    import av

    if not clips:
        return
    placed = placed or stream_packets(src)
    owner = np.full(len(placed.index), -1, dtype=np.int64)  # [frames] the clip each frame goes to
    for k, (dst, first, stop) in enumerate(clips):
        if not placed.can_copy(first, stop) or (owner[first:stop] >= 0).any():
            raise ValueError(f"frames {first}..{stop - 1} of {src} ({dst.name}) cannot be copied: not from cut to cut "
                             "within one recording (StreamPackets.can_copy), or overlapping another clip")
        owner[first:stop] = k
    left = [stop - first for _, first, stop in clips]
    writing: dict[int, CopiedClip] = {}
    try:
        with av.open(str(src)) as inp:
            ist = video_stream(inp)
            for n, packet in enumerate(_packets(inp, ist)):
                if n >= len(owner) or not any(left):
                    break
                k = int(owner[placed.index[n]])
                if k < 0:
                    continue
                if k not in writing:
                    writing[k] = CopiedClip(clips[k][0], ist)
                writing[k].write(packet, int(placed.dts[n]))
                left[k] -= 1
                if not left[k]:
                    writing[k].close()  # a close that fails leaves it in `writing`, to be removed below
                    del writing[k]
    finally:
        for clip in writing.values():  # an error, or a file that changed: no half clip is left
            clip.abort()
    if any(left):
        dst, first, stop = clips[next(k for k, n in enumerate(left) if n)]
        raise DataError(f"{src}: {dst.name} (frames {first}..{stop - 1}) got fewer packets than the file had when "
                        "it was read; did it change meanwhile?")


def copy_clip(src: Path, dst: Path, first: int, stop: int) -> None:
    """One clip by :func:`copy_clips`."""
    copy_clips(src, [(dst, first, stop)])


class ClipEncoder(ClipFile):
    """A re-encoded clip: libx264, each frame at its presentation time."""

    TIME_BASE = Fraction(1, 90000)  # MPEG's clock: any source's times to 11 microseconds

    def __init__(self, dst: Path, size: tuple[int, int], rate: Fraction, crf: int, preset: str, origin: float):
        super().__init__(dst)
        self.origin, self.pts = origin, -1
        try:
            self.stream = self.out.add_stream("libx264", rate=rate)
            self.stream.width, self.stream.height, self.stream.pix_fmt = *size, "yuv420p"
            self.stream.options = {"preset": preset, "crf": str(crf)}
            self.stream.codec_context.time_base = self.TIME_BASE
        except BaseException:
            self.abort()
            raise

    def write(self, image: np.ndarray, time: float) -> None:
        """One frame, ``image`` [H, W, 3] rgb24, shown at ``time`` (seconds in the source, the clip's start at 0)."""
        import av

        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        self.pts = max(round((time - self.origin) / self.TIME_BASE), self.pts + 1)  # strictly increasing
        frame.pts, frame.time_base = self.pts, self.TIME_BASE
        for p in self.stream.encode(frame):
            self.out.mux(p)
        self.frames += 1

    def flush(self) -> None:
        for p in self.stream.encode():
            self.out.mux(p)


def reencode_clips(src: Path, clips: list[tuple[Path, int, int]], crf: int = 18, preset: str = "veryfast",
                   progress: bool = False) -> None:
    """Each ``(dst, first, stop)``: frames ``first`` .. ``stop - 1``, decoded as ingest decodes them
    (:func:`bassl.video.decode.frames`: upright, deinterlaced) and encoded again with libx264 (frame-accurate
    anywhere). All in one decode of ``src``, so a film's clips cost one pass over it, not a decode from the start
    per clip. Each frame keeps its presentation time (shifted to start the clip at 0), so a variable-frame-rate clip
    plays at its pace. Clips must not overlap. Each clip appears complete or not at all: one the video ends inside is
    an error naming it, after the clips before it are written."""
    todo = sorted(clips, key=lambda c: c[1])
    for i, (dst, first, stop) in enumerate(todo):
        if first >= stop or (i and first < todo[i - 1][2]):
            raise ValueError(f"clip {dst.name} (frames {first}..{stop - 1}) is empty or overlaps the one before")
    if not todo:
        return
    info = probe(src)
    full = info.display_size
    size = (full[0] // 2 * 2, full[1] // 2 * 2)  # libx264's 4:2:0 wants even sides: an odd one loses its last line
    rate = Fraction(info.fps).limit_denominator(100000)
    wanted = set().union(*(range(first, stop) for _, first, stop in todo))
    k, clip, last = 0, None, -1  # clip: todo[k] being written; last: the last frame decoded
    with tqdm(total=todo[-1][2], desc="clips", unit="frame", disable=not progress) as bar:
        try:
            for f in frames(src, *full, fmt="rgb24", only=wanted, rotation=info.rotation):
                bar.update()
                last = f.index
                dst, first, stop = todo[k]
                if f.index >= stop:  # clip k is complete (clips are in order, each at least one frame)
                    clip.close()
                    clip, k = None, k + 1
                    if k == len(todo):
                        break
                    dst, first, stop = todo[k]
                if f.index < first:
                    continue
                clip = clip or ClipEncoder(dst, size, rate, crf, preset, origin=f.time)
                clip.write(f.image[: size[1], : size[0]], f.time)  # [H, W, 3], cropped, never scaled
            if clip is not None and clip.frames == stop - first:  # the video ended with clip k
                clip.close()
                clip, k = None, k + 1
        finally:
            if clip is not None:  # an error, or the video ended inside clip k: no half clip is left
                clip.abort()
    if k < len(todo):
        dst, first, stop = todo[k]
        raise DataError(f"{src}: the video ended at frame {last}, before the end of {dst.name} (frames {first}.."
                        f"{stop - 1}); were the scenes made from this file?")


def reencode_clip(src: Path, dst: Path, first: int, stop: int, crf: int = 18, preset: str = "veryfast") -> None:
    """One clip by :func:`reencode_clips`."""
    reencode_clips(src, [(dst, first, stop)], crf, preset)


def split_clips(video: Path, doc: dict[str, Any], out_dir: Path, progress: bool = False) -> list[dict[str, Any]]:
    """``clips/scene_001.mp4`` ...: stream copy where a scene starts and ends on cuts within one recording
    (:meth:`StreamPackets.can_copy`), re-encoded otherwise; one read of the packets for all the copies, one decode for
    all the re-encodes."""
    placed = stream_packets(video)
    # a packet per decoded frame, or the frame numbers would not name the packets (a recording cut mid-GOP: the
    # decoder drops the frames it cannot decode); then every clip is re-encoded from the decoded frames
    same_count = len(placed.index) == doc["frames"]
    out_dir.mkdir(parents=True, exist_ok=True)
    clips, copy, reencode = [], [], []
    for i, s in enumerate(doc["scenes"], 1):
        first, stop = s["start_frame"], s["end_frame"] + 1
        dst = out_dir / f"scene_{i:03d}.mp4"
        copied = same_count and placed.can_copy(first, stop)
        (copy if copied else reencode).append((dst, first, stop))
        clips.append({"scene": i, "file": dst.name, "frames": stop - first, "method": "copy" if copied else "re-encode"})
    copy_clips(video, copy, placed)
    reencode_clips(video, reencode, progress=progress)
    names = {c["file"] for c in clips}
    for old in out_dir.glob("scene_*.mp4"):  # an earlier split of more scenes: its clips would be taken for these
        if re.fullmatch(r"scene_\d{3,}\.mp4", old.name) and old.name not in names:
            old.unlink()
    return clips
