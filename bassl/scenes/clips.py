"""``bassl segment --split``: one MP4 clip per scene, copied from the source's packets where a decoder can start and
stop (no quality lost, no decode), re-encoded otherwise, with the source's main audio beside the video.

A copy needs packets that say enough about themselves (:class:`StreamPackets`); one read of the packets makes every
copy and one decode every re-encode, and each clip appears complete or not at all (:class:`ClipFile`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bassl.data.atomic import remove_dead_temps, temp_path
from bassl.errors import DataError
from bassl.video.decode import TIMESTAMP_SPLICE_S, frames, probe, video_stream


@dataclass(frozen=True)
class StreamPackets:
    """A video stream's packets as the file holds them (decode order), placed in display order. Recordings joined
    end to end (``cat a.ts b.ts``) each start their clock again, so the order is read from the pts within each
    recording, and the recordings follow one another."""

    index: np.ndarray  # [P] each packet's frame index in display order
    keyframe: np.ndarray  # [P] bool: a packet a decoder can start from (flagged so; for H.264/HEVC an IDR/IRAP one)
    dts: np.ndarray  # [P] decode timestamps, filled in where the file has none (Matroska's first packets)
    times: np.ndarray  # [P] when each frame shows, in display order: seconds on the file's clock
    recordings: list[int]  # the frame index where each recording starts: [0], and one more per join
    copyable: bool = True  # the packets can make an MP4 as they are: see stream_packets
    has_sound: bool = False  # the file has an audio stream
    timed: bool = True  # ``times`` are the frames': the pts show the display order, or the file is an AVI

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
        tb = float(stream.time_base or 1)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        frame = 1 / rate / tb  # one frame, in pts units
        back = max(TIMESTAMP_SPLICE_S * rate, 16) * frame  # B-frames reorder up to 16 frames: over 1 s in a timelapse
        reorders = bool(stream.codec_context.has_b_frames)
        mp4 = _mp4_takes(stream)
        has_sound = bool(c.streams.audio)
        avi = c.format.name == "avi"
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
    times = np.empty(len(pts), dtype=np.float64)
    times[index] = pts * tb
    if avi:  # AVI stores no timestamps: chunk k is frame k at the stream's rate (FFmpeg's pts may be off by frames)
        times = np.arange(len(pts)) / rate
    return StreamPackets(index, np.array([k for _, _, k in keys], dtype=bool), dts, times, starts, copyable,
                         has_sound, order_shown or avi)


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
    """A clip of the source's own packets (stream copy), its timestamps shifted so that its first frame shows at 0.

    The first packet is the clip's first frame (a cut, :attr:`StreamPackets.cuts`); with B-frames its decode time is
    earlier than its presentation time, so the decode times start below 0 and the muxer writes the edit list that
    an encoder's own MP4 has (starting the decode times at 0 instead would show the first frame one B-frame delay
    late, e.g. at 0.08 s)."""

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
        self.offset = packet.pts if self.offset is None else self.offset
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


# in MP4, players play these as they are; others are encoded to AAC. Not MP3: a frame borrows bits from the frames
# before it (its bit reservoir), so a copy cut mid-stream garbles its first ~30 ms
PLAYABLE_SOUND = {"aac", "ac3", "eac3", "opus", "alac", "flac"}
NAMED_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def sound_layout(layout: Any) -> str:
    """The channel layout to encode sound of ``layout`` in: its own, or (AVI and Matroska leave PCM's unnamed, and
    the AAC encoder refuses that) the usual one for its number of channels."""
    name, channels = layout.name, len(layout.channels)
    return NAMED_LAYOUTS.get(channels, name) if name.endswith("channels") else name


def sound_slice(frame: Any, first: int, stop: int) -> Any:
    """Samples ``first`` .. ``stop - 1`` of an audio frame, as a frame of their own."""
    import av

    data = frame.to_ndarray()  # [C, N] planar, [1, N * C] packed
    channels = len(frame.layout.channels)
    data = data[:, first:stop] if frame.format.is_planar else data[:, first * channels : stop * channels]
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=frame.format.name,
                                     layout=sound_layout(frame.layout))
    out.sample_rate = frame.sample_rate
    return out


def packet_copy(packet: Any, stream: Any) -> Any:
    """A packet of ``packet``'s bytes and times for ``stream`` (muxing hands a packet's data over)."""
    import av

    out = av.Packet(bytes(packet))
    out.pts, out.dts, out.duration, out.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
    out.is_keyframe, out.stream = packet.is_keyframe, stream
    return out


class ClipSound(ClipFile):
    """A finished clip written again with sound: its video packets as they are, interleaved by time with the
    source's audio from the clip's start on (the packets themselves where players take the codec in MP4, else AAC).
    The sound's timestamps are counted in samples from the clip's start, whatever the source's time base (AVI ticks
    once per audio frame)."""

    def __init__(self, dst: Path, audio: Any, start: float, end: float, copy: bool) -> None:
        import av

        super().__init__(dst)
        try:
            self.silent = av.open(str(dst))  # the clip as written, video only; replaced by close()
            video = video_stream(self.silent)
            self.video = self.out.add_stream_from_template(video, opaque=True)
            self.pending = _packets(self.silent, video)
            self.next = next(self.pending, None)
            rate = audio.codec_context.sample_rate
            if copy:
                self.audio = self.out.add_stream_from_template(audio, opaque=True)
            else:
                self.audio = self.out.add_stream("aac", rate=rate, layout=sound_layout(audio.codec_context.layout))
        except BaseException:
            self.abort()
            raise
        self.start, self.end, self.encoding, self.tick = start, end, not copy, Fraction(1, rate)

    def _video_until(self, time: float) -> None:
        """The clip's video packets decoded before ``time`` (seconds of the clip), so the file stays interleaved."""
        while self.next is not None and float(self.next.dts * self.next.time_base) <= time:
            self.next.stream = self.video
            self.out.mux(self.next)
            self.next = next(self.pending, None)

    def _samples(self, time: float) -> int:
        """Seconds on the source's clock -> samples from the clip's start."""
        return round((time - self.start) / self.tick)

    def write_packet(self, packet: Any, time: float, length: float) -> None:
        """A copy of one source audio packet that sounds within the clip from ``time`` for ``length`` seconds (the
        first may start before it: its pts is then below 0, and the muxer's edit list starts the sound with the
        picture)."""

        self._video_until(time - self.start)
        out = packet_copy(packet, self.audio)  # the clip after this one may take this packet too
        out.time_base = self.tick
        out.pts = out.dts = self._samples(time)
        out.duration = round(length / self.tick)
        self.out.mux(out)

    def write_frame(self, frame: Any, time: float) -> None:
        """One decoded source audio frame that sounds within the clip from ``time`` (seconds on the source's clock),
        cut to the clip's span: encoded again, the sound can end exactly where the picture does."""
        rate = frame.sample_rate
        first, stop = max(0, round((self.start - time) * rate)), min(frame.samples, round((self.end - time) * rate))
        if stop <= first:
            return
        # every frame re-made, cut or not, so that the encoder sees one layout throughout
        frame, time = sound_slice(frame, first, stop), time + first / rate
        frame.pts, frame.time_base = self._samples(time), self.tick
        self._video_until(time - self.start)
        for out in self.audio.encode(frame):
            self.out.mux(out)

    def flush(self) -> None:
        if self.encoding:
            for out in self.audio.encode():
                self.out.mux(out)
        self._video_until(float("inf"))

    def close(self) -> None:
        try:
            super().close()  # its flush reads the rest of the silent clip
        finally:
            self.silent.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.silent.close()
        super().abort()


def add_sound(src: Path, clips: list[tuple[Path, float, float]]) -> tuple[str | None, set[Path]]:
    """Each ``(clip, start, end)`` (seconds on ``src``'s clock, the clip's first frame at ``start``): the source's
    main audio from ``start`` to ``end`` muxed beside the clip's video, all in one read of the audio packets. A packet
    that sounds across a cut goes to both clips, so each clip's sound starts with its picture. Returns how (``copy``:
    the packets as they are; ``aac``: encoded again, for codecs players do not take in MP4, e.g. PCM, or that do not
    copy cleanly, MP3; None: the source has no sound) and the clips the sound reached (the others stay silent)."""
    import av

    todo = sorted(clips, key=lambda c: c[1])
    with av.open(str(src)) as inp:
        audio = inp.streams.best("audio") if inp.streams.audio else None
        if audio is None or not todo:
            return None, set()
        copy = audio.codec_context.codec.canonical_name in PLAYABLE_SOUND and _mp4_takes(audio)
        writing: dict[int, ClipSound] = {}
        reached: set[Path] = set()
        k = 0  # the first clip not yet complete

        def to_clips(t: float, heard: float) -> list[ClipSound]:
            """The clips the sound from ``t`` to ``heard`` falls in; the clips it is past are complete."""
            nonlocal k
            heard = max(heard, t + 1e-9)  # a packet that says no duration: a point in time
            while k < len(todo) and t >= todo[k][2]:
                if k in writing:
                    writing[k].close()  # a close that fails leaves it in `writing`, for the abort below
                    del writing[k]
                k += 1
            hit = [j for j in range(k, len(todo)) if todo[j][1] < heard and t < todo[j][2]]
            for j in hit:
                if j not in writing:
                    writing[j] = ClipSound(todo[j][0], audio, todo[j][1], todo[j][2], copy)
                    reached.add(todo[j][0])
            return [writing[j] for j in hit]

        try:
            for packet in inp.demux(audio):
                if packet.pts is None:
                    continue
                if k == len(todo):
                    break
                t = float(packet.pts * packet.time_base)
                if copy:
                    length = float((packet.duration or 0) * packet.time_base)
                    for clip in to_clips(t, t + length):
                        clip.write_packet(packet, t, length)
                    continue
                for frame in packet.decode():
                    if frame.pts is None:
                        continue
                    ft = float(frame.pts * frame.time_base)
                    for clip in to_clips(ft, ft + frame.samples / frame.sample_rate):
                        clip.write_frame(frame, ft)
            to_clips(float("inf"), float("inf"))  # the sound ended: every clip it reached is complete
        finally:
            for clip in writing.values():  # an error: those clips keep their video alone
                clip.abort()
    return ("copy" if copy else "aac"), reached


def split_clips(video: Path, doc: dict[str, Any], out_dir: Path, progress: bool = False) -> list[dict[str, Any]]:
    """``clips/scene_001.mp4`` ...: stream copy where a scene starts and ends on cuts within one recording
    (:meth:`StreamPackets.can_copy`), re-encoded otherwise; one read of the packets for all the copies, one decode for
    all the re-encodes, then one read of the sound for all (:func:`add_sound`). Returns per clip its scene, file,
    frames, ``method`` (copy or re-encode) and ``sound``: ``copy``, ``aac`` (see :func:`add_sound`), ``none`` (no sound
    there) or ``left out`` (the times do not say which sound is the clip's: recordings joined end to end, packets that
    are not the frames, pts out of display order)."""
    placed = stream_packets(video)
    # a packet per decoded frame, or the frame numbers would not name the packets (a recording cut mid-GOP: the
    # decoder drops the frames it cannot decode); then every clip is re-encoded from the decoded frames
    same_count = len(placed.index) == doc["frames"]
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_clips(out_dir)  # first: a split stopped part way leaves only clips of these scenes
    remove_dead_temps(out_dir)
    clips, copy, reencode = [], [], []
    for i, s in enumerate(doc["scenes"], 1):
        first, stop = s["start_frame"], s["end_frame"] + 1
        dst = out_dir / f"scene_{i:03d}.mp4"
        copied = same_count and placed.can_copy(first, stop)
        (copy if copied else reencode).append((dst, first, stop))
        clips.append({"scene": i, "file": dst.name, "frames": stop - first, "method": "copy" if copied else "re-encode"})
    copy_clips(video, copy, placed)
    reencode_clips(video, reencode, progress=progress)
    if same_count and placed.recordings == [0] and placed.timed and len(placed.times):
        shown = placed.times
        step = float(shown[-1] - shown[-2]) if len(shown) > 1 else 0.04
        times = [*shown, shown[-1] + step]  # [P+1] when frame i shows; the last one for a frame's time, as the one before
        spans = [(dst, times[first], times[stop]) for dst, first, stop in sorted(copy + reencode)]
        how, reached = add_sound(video, spans)
        sound = {dst.name: how if dst in reached else "none" for dst, _, _ in spans}
    else:  # recordings joined, frames that are not the packets, or pts that are not the display order: no time
        sound = {}  # says which sound is whose
    for c in clips:
        c["sound"] = sound.get(c["file"], "left out" if placed.has_sound else "none")
    return clips


def remove_clips(out_dir: Path) -> None:
    """The ``scene_NNN.mp4`` clips in ``out_dir``: an earlier split's, which would be taken for the clips of the
    scenes written now. Other files are left alone."""
    for old in Path(out_dir).glob("scene_*.mp4"):
        if re.fullmatch(r"scene_\d{3,}\.mp4", old.name):
            old.unlink()
