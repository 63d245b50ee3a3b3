"""Reading video files with PyAV (FFmpeg's libraries, bundled in the wheel): probe, then stream frames.

Frames come out in presentation order and are numbered 0, 1, 2, ... in that order; a shot's timing and every
frame index bassl writes refer to that numbering. Times are each frame's presentation time (pts x time base)
relative to the first frame, so variable-frame-rate files (phones, screen recordings) are timed right; a frame
without a pts is timed when the frame before ends. Frames are scaled inside FFmpeg's swscale by one reused
reformatter (the fast path on PyAV 18), so a detector that wants 128-pixel frames never sees a full-size one and
memory never depends on the video's length. Interlaced frames (TV recordings, DV tapes, DVDs) go through FFmpeg's
``bwdif`` deinterlacer, one frame out per frame in, so keyframes show a picture, not two fields combed together;
each frame says whether it was interlaced, so a recording that opens on a progressive ident is deinterlaced where
it turns, and a size change (SD adverts in an HD recording) builds the filter again. Timestamps that jump back by
over a second (recordings joined end to end with ``cat``, a transport stream's clock wrapping) are read as a
splice: time goes on from the frame before. Packets the demuxer flags corrupt are counted on the first frame timed
at or after them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from bassl.errors import DataError


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float  # the stream's average frame rate
    nominal_fps: float  # the stream's base (r_frame_rate) rate: what an EDL's timecodes count in
    frames: int  # from the container header; 0 when it does not say (counted while decoding then)
    width: int
    height: int
    duration: float  # seconds, from the container (0 when unknown)
    codec: str
    rotation: int = 0  # degrees counter-clockwise the player turns the frames (a phone's display matrix): 0/90/180/-90
    stream: int = 0  # which of the file's video streams (cover art not counted) is read: FFmpeg's choice
    streams: int = 1  # how many video streams the file has (a second camera angle, a preview track)
    start: float = 0.0  # when the first frame shows on the file's own clock (s): where a player's timeline starts

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a player shows the video: turned by ``rotation``."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)

    def scaled(self, height: int) -> tuple[int, int]:
        """Upright (width, height) for frames scaled to ``height`` display pixels, aspect kept, both even."""
        dw, dh = self.display_size
        h = min(height, dh) // 2 * 2 or 2
        w = max(2, round(dw * h / dh / 2) * 2)
        return w, h


def _rate(r) -> Fraction | None:
    """A stream rate as a Fraction (PyAV 18 gives Fraction or None, PyAV 19 AVRational, falsy when unknown)."""
    if not r:
        return None
    return Fraction(r.numerator, r.denominator)


def probe(path: str | Path) -> VideoInfo:
    """What a video file holds; a file FFmpeg cannot open, or one without a video stream, is a DataError naming it."""
    import av

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: FFmpeg cannot read it: the file is empty (0 bytes)")
    try:
        with av.open(str(path)) as c:
            if c.format.name.endswith("_pipe") or c.format.name.startswith("image2"):  # FFmpeg's still-image readers
                raise DataError(f"{path}: a still image ({c.format.name.removesuffix('_pipe')}), not a video")
            v = video_stream(c)
            if v is None:
                raise DataError(f"{path}: no video stream (streams: {', '.join(s.type for s in c.streams) or 'none'})")
            rate = _rate(v.average_rate) or _rate(v.guessed_rate)
            if rate is None or rate <= 0:
                raise DataError(f"{path}: the video stream has no frame rate; re-encode it (e.g. with ffmpeg -r 25)")
            nominal = _rate(v.base_rate) or _rate(v.guessed_rate) or rate
            duration = float(c.duration / av.time_base) if c.duration else 0.0
            first = next(iter(c.decode(v)), None)
            rotation = int(round((first.rotation if first is not None else 0) / 90)) * 90 % 360
            rotation = -90 if rotation == 270 else rotation  # 0, 90, 180 or -90 (FFmpeg may say -180 or 270)
            videos = [s for s in c.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
            return VideoInfo(path, float(rate), float(nominal), int(v.frames or 0), int(v.width), int(v.height),
                             duration, v.codec_context.name, rotation, videos.index(v) if v in videos else 0,
                             max(1, len(videos)), float(first.time or 0.0) if first is not None else 0.0)
    except av.error.FFmpegError as e:
        raise DataError(f"{path}: FFmpeg cannot read it ({e}); is it a video file?") from e


@dataclass(frozen=True)
class Frame:
    index: int  # 0, 1, 2, ... in presentation order
    time: float  # seconds from the first frame's presentation time
    duration: float  # seconds this frame is shown (0 when the file does not say)
    image: np.ndarray | None  # [H, W, 3] uint8, None for a frame not asked for
    interlaced: bool = False  # decoded as two fields (and deinterlaced, unless frames(deinterlace=False))
    splice: bool = False  # its pts jumped back (recordings joined end to end): timed on from the frame before
    damaged: int = 0  # packets the demuxer flagged corrupt (a transport stream's lost packets) timed at or before
    #   this frame and after the frame before: the frame the damage shows at, whatever the decoder's delay


def video_stream(container):
    """The container's main video stream: FFmpeg's choice (``av_find_best_stream``), which passes over cover art
    (attached pictures) and, of several video streams, takes the one a player would show."""
    if not container.streams.video:
        return None
    try:
        return container.streams.best("video") or container.streams.video[0]
    except Exception:  # noqa: BLE001 - older PyAV: no best(); the first stream then
        return container.streams.video[0]


def decoded_noting_damage(container, stream, damaged: list[float | None]) -> Iterator:
    """``container.decode(stream)``, appending to ``damaged`` the time (s, the stream's clock) of each packet the
    demuxer flags corrupt (None when it has none). A transport stream that lost packets (a broadcast capture's
    reception errors) decodes on past the loss without an error, frames missing; this flag is FFmpeg's one signal
    of it. Its time, not the order of decoding, places it: a decoder with many threads returns frames late."""
    tb = float(stream.time_base or 0)
    for packet in container.demux(stream):
        if packet.is_corrupt:
            stamp = packet.pts if packet.pts is not None else packet.dts
            damaged.append(stamp * tb if stamp is not None and tb else None)
        yield from packet.decode()


def deinterlaced(decoded: Iterator, stream) -> Iterator[tuple]:
    """(frame, whether it was interlaced) for each of ``decoded``. From the first interlaced frame on, wherever it
    is, frames go through FFmpeg's ``bwdif``, which deinterlaces those flagged interlaced and passes the others
    untouched, one frame out per frame in. It looks one frame ahead, so its output trails the input by a frame until
    a flush: at the end, and where the frame size or format changes (the filter is then built again for the new
    size, at the next interlaced frame). A progressive file never meets the filter."""
    import av

    graph, shape, flags = None, None, deque()  # flags: whether each frame in the filter was interlaced, in order

    def drain() -> Iterator[tuple]:
        while True:
            try:
                yield graph.pull(), flags.popleft()
            except (BlockingIOError, av.error.EOFError):
                return

    for frame in decoded:
        if graph is not None and (frame.width, frame.height, frame.format.name) != shape:
            graph.push(None)  # a new size or format: flush the filter, build it again when needed
            yield from drain()
            graph = None
        if graph is None:
            if not frame.interlaced_frame:
                yield frame, False
                continue
            graph, shape = av.filter.Graph(), (frame.width, frame.height, frame.format.name)
            src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                   time_base=stream.time_base)
            bwdif, sink = graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced"), graph.add("buffersink")
            src.link_to(bwdif)
            bwdif.link_to(sink)
            graph.configure()
        flags.append(bool(frame.interlaced_frame))
        graph.push(frame)
        yield from drain()
    if graph is not None:
        graph.push(None)  # end of stream: flush
        yield from drain()


DECODER_THREADS = 0  # 0: FFmpeg's choice (cores + 1 frame threads for H.264); the tests set 16 to decode as a big node does
TIMESTAMP_SPLICE_S = 1.0  # a presentation time this far behind the frame before is a splice, not reordering


def frames(path: str | Path, width: int | None = None, height: int | None = None, fmt: str = "rgb24",
           only: set[int] | None = None, interpolation: str = "AREA", fps: float | None = None,
           rotation: int = 0, deinterlace: bool = True) -> Iterator[Frame]:
    """Every frame, in order, with its presentation time; ``image`` (``fmt`` rgb24 or bgr24, scaled to ``width`` x
    ``height``, then turned ``rotation`` degrees counter-clockwise, so the size given is the upright one) for every
    frame, or only for the indices in ``only`` (the others are decoded, never converted). ``fps`` times the
    frames that carry no pts (default: the stream's average rate). Interlaced frames are deinterlaced
    (:func:`deinterlaced`) unless ``deinterlace`` is False. Times never decrease: a frame timed more than
    ``TIMESTAMP_SPLICE_S`` before the one before is a splice, and times go on from when that one ends."""
    import av
    from av.video.reformatter import VideoReformatter

    turns = (rotation // 90) % 4
    if turns % 2:
        width, height = height, width  # scale in the stored orientation, then turn
    reformatter = VideoReformatter()  # one per stream: it keeps its swscale context
    try:
        with av.open(str(path)) as c:
            stream = video_stream(c)
            stream.thread_type = "AUTO"
            tb = float(stream.time_base) if stream.time_base else 0.0
            rate = fps or float(_rate(stream.average_rate) or _rate(stream.guessed_rate) or 25)
            if DECODER_THREADS:
                stream.codec_context.thread_count = DECODER_THREADS
            damaged: list[float | None] = []  # times of corrupt packets not yet reached by a frame
            decoded = decoded_noting_damage(c, stream, damaged)
            flagged = deinterlaced(decoded, stream) if deinterlace else ((f, f.interlaced_frame) for f in decoded)
            shift, last, step = None, 0.0, 1.0 / rate  # shift: added to pts x time base to time from the first frame
            for index, (frame, interlaced) in enumerate(flagged):
                tb = float(frame.time_base or 0) or tb  # the deinterlacer halves the time base
                after = last + step if index else 0.0  # when the frame before ends
                splice = False
                if frame.pts is None or not tb:
                    t = after
                else:
                    if shift is None:  # the first frame with a pts
                        shift = after - frame.pts * tb
                    t = frame.pts * tb + shift
                    splice = t < last - TIMESTAMP_SPLICE_S
                    if splice:  # go on from the frame before
                        shift, t = shift + after - t, after
                    t = max(t, last)  # a smaller step back: kept from decreasing
                last, step = t, (frame.duration or 0) * tb or step
                image = None
                if only is None or index in only:
                    image = reformatter.reformat(frame, width=width, height=height, format=fmt,
                                                 interpolation=interpolation).to_ndarray()
                    if turns:
                        image = np.ascontiguousarray(np.rot90(image, turns))  # np.rot90: counter-clockwise
                on_file = frame.pts * tb if frame.pts is not None and tb else None
                reached = [d for d in damaged if d is None or on_file is None or d <= on_file + 1e-6]
                for d in reached:
                    damaged.remove(d)
                yield Frame(index, t, (frame.duration or 0) * tb, image, bool(interlaced), splice, len(reached))
    except av.error.FFmpegError as e:
        raise DataError(f"{path}: FFmpeg failed while decoding ({e}); the file may be truncated or damaged") from e
