"""Small video files generated with PyAV (FFmpeg) for the ingest and segment tests: the awkward kinds users have."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(path: Path, shots: list[int], fmt: str | None = None, codec: str = "libx264",
                size: tuple[int, int] = (128, 72), pix_fmt: str = "yuv420p", rotation: int = 0, cover: bool = False,
                rate: int = 25, interlaced: bool = False, second_video: bool = False, colour_seed: int = 1,
                ts_offset: float = 0.0, audio: str | None = None, sound_tail: float = 0.0) -> Path:
    """Shots of solid colours (``shots``: frames per shot), a white block in the stored frame's top-left corner and a
    moving line. ``rotation``: a display matrix turning the picture that many degrees counter-clockwise (as phones
    write); ``cover``: an attached-picture (cover art) stream before the video stream; ``interlaced``: encoded as
    interlaced (H.264, top field first) and filmed so, a black bar moving 8 pixels a frame whose bottom field is
    caught half a frame later (4 pixels on); ``second_video``: before the main stream, a second video stream (a
    grey 64x36 preview with no cut) that is not the default track; ``colour_seed``: draws the shots' colours;
    ``ts_offset``: seconds added to every timestamp (a recording's clock does not start at 0); ``audio``: a sound
    track in that codec (e.g. aac, pcm_s16le), shot k a steady tone of :func:`shot_tone` (k) Hz from its first frame
    to its last, so which sound plays when says which shot it belongs to; ``sound_tail``: seconds the last shot's tone
    goes on after the picture ends."""
    import av

    w, h = size
    colours = np.random.default_rng(colour_seed).integers(0, 256, (len(shots), 3)).astype(np.uint8)
    with av.open(str(path), "w", format=fmt, options={"output_ts_offset": str(ts_offset)} if ts_offset else None) as out:
        if cover:
            art = out.add_stream("mjpeg")
            art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
        if second_video:
            preview = out.add_stream(codec, rate=rate)
            preview.width, preview.height, preview.pix_fmt = 64, 36, pix_fmt
            preview.disposition = 0
        st = out.add_stream(codec, rate=rate, options={"x264-params": "interlaced=1:tff=1"} if interlaced else None)
        st.width, st.height, st.pix_fmt = w, h, pix_fmt
        if second_video:
            st.disposition = av.stream.Disposition.default
        if rotation:
            st.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=SAMPLE_RATE, layout="mono") if audio else None
        if cover:
            pic = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24").reformat(format="yuvj420p")
            for p in [*art.encode(pic), *art.encode()]:
                out.mux(p)
        pts = 0
        for shot, n in enumerate(shots):
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(picture(colours[shot], i, size, interlaced), format="rgb24")
                frame.pts, pts = pts, pts + 1
                for p in st.encode(frame):
                    out.mux(p)
                if second_video:
                    small = av.VideoFrame.from_ndarray(np.full((36, 64, 3), 128, np.uint8), format="rgb24")
                    small.pts = frame.pts
                    for p in preview.encode(small):
                        out.mux(p)
        for p in st.encode():
            out.mux(p)
        for p in preview.encode() if second_video else []:
            out.mux(p)
        if sound is not None:
            write_tones(out, sound, shots, rate, sound_tail)
    return path


SAMPLE_RATE = 48000


def shot_tone(shot: int) -> float:
    """The frequency (Hz) of shot ``shot``'s tone: far apart, each on a whole number of 10 ms cycles."""
    return 300.0 + 400.0 * (shot % 8)


def write_tones(out, st, shots: list[int], rate: int, tail: float = 0.0) -> None:
    """Into ``out``'s mono audio stream ``st``: for each shot its tone, for exactly as long as the shot is shown (the
    last one ``tail`` seconds longer)."""
    import av

    t = np.arange(round((sum(shots) / rate + tail) * SAMPLE_RATE)) / SAMPLE_RATE  # [samples] seconds
    shot_of = np.searchsorted(np.cumsum(shots) / rate, t, side="right").clip(max=len(shots) - 1)
    wave = (0.5 * np.sin(2 * np.pi * np.array([shot_tone(k) for k in range(len(shots))])[shot_of] * t) * 32767)
    samples = wave.astype(np.int16)
    for a in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(samples[None, a: a + 1024], format="s16", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, a
        for p in st.encode(frame):
            out.mux(p)
    for p in st.encode():
        out.mux(p)


def picture(colour: np.ndarray, i: int, size: tuple[int, int], interlaced: bool) -> np.ndarray:
    """Frame ``i`` of a shot: ``colour``, a white block top-left, and a moving line, or for ``interlaced`` a black bar
    moving 8 pixels a frame whose bottom field is caught half a frame later (4 pixels on)."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8) + colour
    img[: h // 8, : w // 8] = 255
    if interlaced:
        for field, late in ((0, 0), (1, 4)):
            x = (i * 8 + late) % (w - 12)
            img[h // 8 + field:: 2, x: x + 12] = 0  # [rows of one field, the bar's columns]
    else:
        img[:, (i * 2) % w] = 0
    return img


def write_broadcast(path: Path, parts: list[tuple[list[int], tuple[int, int], bool]], rate: int = 25) -> Path:
    """One MPEG-TS video stream as a TV recording has it: ``parts`` of (shots, size, interlaced), each encoded by its
    own libx264 (new stream headers where the frame size or the scan changes), timestamps running on throughout."""
    import av

    colours = np.random.default_rng(2).integers(0, 256, (sum(len(s) for s, _, _ in parts), 3)).astype(np.uint8)
    with av.open(str(path), "w", format="mpegts") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = *parts[0][1], "yuv420p"
        pts, shot = 0, 0
        for shots, size, interlaced in parts:
            enc = av.CodecContext.create("libx264", "w")
            enc.width, enc.height, enc.pix_fmt = *size, "yuv420p"
            enc.time_base, enc.framerate = Fraction(1, rate), Fraction(rate)
            enc.options = {"x264-params": "interlaced=1:tff=1"} if interlaced else {}
            for n in shots:
                for i in range(n):
                    frame = av.VideoFrame.from_ndarray(picture(colours[shot], i, size, interlaced), format="rgb24")
                    frame.pts, frame.time_base, pts = pts, Fraction(1, rate), pts + 1
                    for p in enc.encode(frame):
                        p.stream = st
                        out.mux(p)
                shot += 1
            for p in enc.encode(None):
                p.stream = st
                out.mux(p)
    return path


def write_stepping_back(path: Path, shots: list[int], back: int, rate: int = 25) -> Path:
    """MPEG-TS, no B-frames, whose frame ``back`` is stamped two frames before the frame before it (a muxer's clock
    that jitters back): a small step back, not a join. Decode timestamps run evenly three frames behind, as a
    muxer requires them increasing; the decoder gives the frames out in decode order, each with the pts written."""
    import av

    colours = np.random.default_rng(5).integers(0, 256, (len(shots), 3)).astype(np.uint8)
    with av.open(str(path), "w", format="mpegts") as out:
        st = out.add_stream("libx264", rate=rate, options={"x264-params": "bframes=0"})
        st.width, st.height, st.pix_fmt = 128, 72, "yuv420p"
        packets = []
        for shot, n in enumerate(shots):
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(picture(colours[shot], i, (128, 72), False), format="rgb24")
                frame.pts = len(packets)
                packets += st.encode(frame)
        packets += st.encode()
        per = round(1 / (rate * packets[0].time_base))  # one frame in the packets' time base
        for i, p in enumerate(packets):
            p.dts, p.pts = (i + 7) * per, (i + 10 - (3 if i == back else 0)) * per
            out.mux(p)
    return path


def write_rolling(path: Path, codec: str, options: dict[str, str], frames: int = 80, fmt: str | None = None,
                  pix_fmt: str = "yuv420p") -> Path:
    """A random texture rolling one pixel a frame (every frame differs, all of it moves), 128x72 at 25 fps, with the
    encoder's ``options`` (e.g. x264's open-gop=1, where B-frames shown before an I-frame are coded after it)."""
    import av

    base = np.random.default_rng(0).integers(0, 256, (72, 128, 3)).astype(np.uint8)
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream(codec, rate=25, options=options)
        st.width, st.height, st.pix_fmt = 128, 72, pix_fmt
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i, axis=1), format="rgb24")
            frame.pts = i
            for p in st.encode(frame):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def write_vfr(path: Path, fmt: str | None = None) -> Path:
    """Six 45-frame shots of solid colours: three at 30 fps, then three at 6 fps (270 frames, ~27 s), as a phone
    records when the light drops. Timestamps in 1/30 s: the first cut is at 1.5 s, the fourth at 4.5 s."""
    import av

    colours = np.random.default_rng(0).integers(0, 256, (6, 3)).astype(np.uint8)
    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 128, 72, "yuv420p"
        st.codec_context.time_base = Fraction(1, 30)
        pts = 0
        for shot in range(6):
            for i in range(45):
                img = np.zeros((72, 128, 3), np.uint8) + colours[shot]
                img[:, (i * 2) % 128] = 255  # something moves within the shot
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts, f.time_base = pts, Fraction(1, 30)
                pts += 1 if shot < 3 else 5
                for p in st.encode(f):
                    out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path
