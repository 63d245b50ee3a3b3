"""The story of each synthetic movie as numbers: splits, scenes, their locations and cast, shot timing.

No pixels here, so tests and summaries can check the statistics of large runs in milliseconds. Every draw
comes from a generator seeded by (seed, movie index, stream): a movie's plan never depends on the other
movies, on the worker count or on the order movies are rendered in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bassl.config import SynthConfig

FPS = 24  # shot timing files are in frames at 24 fps, as MovieNet's (method.md §3.3)
SPLITS = ("pretrain_only", "train", "val", "test")
LABELLED = ("train", "val", "test")
MIN_MOVIE_SHOTS = 17  # one 17-shot window (method.md §3.6); shorter movies fail validation, so redraw them
SCENE_SIGMA = 0.75  # lognormal spread of scene lengths (in shots): right-skewed, as MovieNet's
SHOT_SIGMA = 0.6  # lognormal spread of shot durations
TEMPO_SIGMA = 0.3  # per-scene pace: some scenes cut faster than others
MIN_SHOT_FRAMES = 8  # room for three distinct keyframes
KEYFRAME_AT = (1 / 6, 1 / 2, 5 / 6)  # where in a shot its three keyframes sit
# Streams of random numbers; each (seed, movie, stream) triple is independent of all others.
DATASET_STREAM, PLAN_STREAM, RENDER_STREAM = 0, 1, 2


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator for one (seed, keys...) tuple; negative seeds are folded into the unsigned range."""
    return np.random.default_rng([seed % (1 << 64), *keys])


@dataclass(frozen=True)
class Scene:
    locations: tuple[int, ...]  # one set, or two: a scene that moves (street, then hallway) or is intercut
    cast: tuple[int, ...]  # indices into the movie's cast, sorted
    num_shots: int
    intercut: bool = False  # two locations alternating (a phone call) instead of one after the other


@dataclass(frozen=True, eq=False)
class MoviePlan:
    index: int  # position in vid2idx (movies are numbered in video-id order)
    video_id: str
    split: str  # one of SPLITS
    cast_size: int
    location_parents: tuple[int, ...]  # per location: the earlier location it resembles, or -1 (a fresh look)
    scenes: tuple[Scene, ...]
    shot_frames: np.ndarray  # [N, 5] int64: start_frame, end_frame, kf0, kf1, kf2

    @property
    def num_shots(self) -> int:
        return int(self.shot_frames.shape[0])

    @property
    def labelled(self) -> bool:
        return self.split in LABELLED

    @cached_property
    def scene_of_shot(self) -> np.ndarray:
        """[N] int64: the in-movie scene index of every shot."""
        return np.repeat(np.arange(len(self.scenes)), [s.num_shots for s in self.scenes])

    @cached_property
    def boundary_labels(self) -> np.ndarray:
        """[N] int64: 1 on the last shot of a scene, 0 elsewhere, -1 on the movie's final shot (as MovieNet's)."""
        ends = np.cumsum([s.num_shots for s in self.scenes]) - 1
        labels = np.zeros(self.num_shots, dtype=np.int64)
        labels[ends] = 1
        labels[-1] = -1
        return labels


@dataclass(frozen=True)
class DatasetPlan:
    movies: tuple[MoviePlan, ...]  # in vid2idx order

    @property
    def vid2idx(self) -> dict[str, int]:
        return {m.video_id: m.index for m in self.movies}

    def split(self, name: str) -> list[MoviePlan]:
        return [m for m in self.movies if m.split == name]

    @cached_property
    def scene_offsets(self) -> dict[str, int]:
        """video id -> global_scene_id of its first scene; scenes are numbered over the labelled movies."""
        out, total = {}, 0
        for m in self.movies:
            if m.labelled:
                out[m.video_id] = total
                total += len(m.scenes)
        return out


# --------------------------------------------------------------------------------------------------
# Scene lengths: lognormal, with the location parameter solved so the *clipped, rounded* mean is the
# configured one (clipping at min/max would otherwise move it).
# --------------------------------------------------------------------------------------------------


def _clipped_mean(mu: float, sigma: float, lo: int, hi: int) -> float:
    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2.0))))

    total, below = 0.0, cdf(lo + 0.5)
    total += lo * below
    for k in range(lo + 1, hi):
        upper = cdf(k + 0.5)
        total += k * (upper - below)
        below = upper
    return total + hi * (1.0 - below)


def scene_length_mu(mean: float, lo: int, hi: int, sigma: float = SCENE_SIGMA) -> float:
    """The lognormal mu whose draws, rounded and clipped to [lo, hi], average ``mean`` (bisection)."""
    a, b = math.log(max(lo, 1)) - 4 * sigma, math.log(hi) + 4 * sigma
    for _ in range(60):
        mid = 0.5 * (a + b)
        if _clipped_mean(mid, sigma, lo, hi) < mean:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


def _scene_lengths(rng: np.random.Generator, cfg: SynthConfig, mu: float) -> np.ndarray:
    num_scenes = int(rng.integers(cfg.min_scenes, cfg.max_scenes + 1))
    reachable = num_scenes * cfg.max_scene_shots >= MIN_MOVIE_SHOTS
    for _ in range(100):
        raw = np.rint(rng.lognormal(mu, SCENE_SIGMA, size=num_scenes))
        lengths = np.clip(raw, cfg.min_scene_shots, cfg.max_scene_shots).astype(np.int64)
        if lengths.sum() >= MIN_MOVIE_SHOTS or not reachable:
            break
    return lengths


# --------------------------------------------------------------------------------------------------
# Where scenes happen: a few sets per movie, revisited (a location comes back later as a new scene, now and
# then right away: "the next morning, same kitchen"), some resembling another (two rooms of one flat, the
# same street a block on), often adjacent.
# --------------------------------------------------------------------------------------------------


def _scene_locations(rng: np.random.Generator, num_scenes: int) -> tuple[list[int], list[int]]:
    """Per scene its main location, and per location the earlier one it resembles (-1: none)."""
    num_locations = int(np.clip(round(num_scenes * rng.uniform(0.35, 0.65)), min(2, num_scenes), num_scenes))
    sequence: list[int] = []
    parents: list[int] = []
    uses = np.zeros(num_locations)
    for s in range(num_scenes):
        unused = num_locations - len(parents)
        previous = sequence[-1] if sequence else -1
        others = len(parents) - (previous >= 0)  # used locations other than the last scene's
        new = unused > 0 and (others == 0 or unused >= num_scenes - s or rng.random() < unused / (num_scenes - s))
        if new:
            loc = len(parents)
            r = rng.random()
            if previous >= 0 and r < 0.4:
                parents.append(previous)  # similar-looking location right after the last one
            elif loc > 0 and r < 0.55:
                parents.append(int(rng.integers(loc)))
            else:
                parents.append(-1)
        else:
            weights = 1.0 + uses[:len(parents)]  # the main sets keep coming back
            if previous >= 0:
                weights[previous] *= 0.08  # a time cut in the same place: rare, and hard
            loc = int(rng.choice(len(parents), p=weights / weights.sum()))
        uses[loc] += 1
        sequence.append(loc)
    return sequence, parents


def _scene_cast(rng: np.random.Generator, cast_size: int, previous: tuple[int, ...]) -> tuple[int, ...]:
    """1-4 characters, the leads more often; half the time one carries over from the previous scene."""
    want = min(cast_size, int(rng.choice([1, 2, 3, 4], p=[0.2, 0.45, 0.27, 0.08])))
    chosen: set[int] = set()
    if previous and rng.random() < 0.5:
        chosen.add(int(rng.choice(previous)))
    importance = 1.0 / np.arange(1, cast_size + 1) ** 0.8
    while len(chosen) < want:
        rest = [c for c in range(cast_size) if c not in chosen]
        w = importance[rest]
        chosen.add(rest[int(rng.choice(len(rest), p=w / w.sum()))])
    return tuple(sorted(chosen))


def _shot_frames(rng: np.random.Generator, lengths: np.ndarray, mean_seconds: float) -> np.ndarray:
    tempo = np.repeat(rng.lognormal(-0.5 * TEMPO_SIGMA**2, TEMPO_SIGMA, size=len(lengths)), lengths)
    mu = math.log(mean_seconds * FPS) - 0.5 * SHOT_SIGMA**2
    durations = np.maximum(MIN_SHOT_FRAMES, np.rint(rng.lognormal(mu, SHOT_SIGMA, size=int(lengths.sum())) * tempo))
    durations = durations.astype(np.int64)
    start = np.concatenate([[0], np.cumsum(durations)[:-1]])
    end = start + durations - 1
    keyframes = [start + np.rint((durations - 1) * f).astype(np.int64) for f in KEYFRAME_AT]
    return np.stack([start, end, *keyframes], axis=1)


def plan_movie(cfg: SynthConfig, index: int, video_id: str, split: str, mu: float | None = None) -> MoviePlan:
    rng = rng_for(cfg.seed, index, PLAN_STREAM)
    if mu is None:
        mu = scene_length_mu(cfg.mean_scene_shots, cfg.min_scene_shots, cfg.max_scene_shots)
    lengths = _scene_lengths(rng, cfg, mu)
    cast_size = int(rng.integers(4, 9))
    sequence, parents = _scene_locations(rng, len(lengths))
    scenes: list[Scene] = []
    cast: tuple[int, ...] = ()
    for s, (n, loc) in enumerate(zip(lengths, sequence, strict=True)):
        cast = _scene_cast(rng, cast_size, cast if s else ())
        locations, intercut = (loc,), False
        if len(parents) > 1 and n >= 4 and rng.random() < 0.12:
            other = [x for x in range(len(parents)) if x != loc]
            locations, intercut = (loc, other[int(rng.integers(len(other)))]), bool(rng.random() < 0.5)
        scenes.append(Scene(locations, cast, int(n), intercut))
    return MoviePlan(index, video_id, split, cast_size, tuple(parents), tuple(scenes),
                     _shot_frames(rng, lengths, cfg.mean_shot_seconds))


def plan_dataset(cfg: SynthConfig) -> DatasetPlan:
    """Every movie's plan: IMDb-like ids ``tt9xxxxxx`` (never a real MovieNet id), splits drawn at random."""
    counts = {"pretrain_only": cfg.pretrain_only_movies, "train": cfg.train_movies,
              "val": cfg.val_movies, "test": cfg.test_movies}
    total = sum(counts.values())
    rng = rng_for(cfg.seed, 0, DATASET_STREAM)
    ids = sorted(int(x) for x in rng.choice(1_000_000, size=total, replace=False))
    splits = np.array([name for name in SPLITS for _ in range(counts[name])])[rng.permutation(total)]
    mu = scene_length_mu(cfg.mean_scene_shots, cfg.min_scene_shots, cfg.max_scene_shots)
    return DatasetPlan(tuple(plan_movie(cfg, i, f"tt9{vid:06d}", str(split), mu)
                             for i, (vid, split) in enumerate(zip(ids, splits, strict=True))))
