"""The camera department: staging, camera set-ups, lighting and film stock for one synthetic movie.

Per movie the sets and the cast are painted once (:mod:`bassl.synth.art`). Per scene the characters are placed
in the set and the crew picks a few camera set-ups (wide, medium, two-shot, close-up, insert); shots cut
between them, favouring shot / reverse shot, so shots of one scene resemble each other without repeating.
Per keyframe: crop the set (blurred behind close-ups, as a long lens would), paste the characters in view,
apply the shot's lighting curve, vignette and grain, encode as JPEG.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

from bassl.config import SynthConfig
from bassl.synth.art import (
    draw_character_style,
    draw_set_style,
    paint_character,
    paint_set,
    reverse_style,
    sibling_style,
)
from bassl.synth.plan import RENDER_STREAM, MoviePlan, Scene, rng_for

CANVAS_SCALE = 2  # a set is twice the frame in each direction: wide shots show most of it
SPRITE_HEIGHTS = (3.0, 1.8, 1.0, 0.5)  # sprite pyramid in frame heights: the close-up level, then smaller ones
THUMB = 8  # sets are scored for busy regions on 1/8-size greyscale thumbnails
GRAIN_MARGIN = 32  # grain fields are larger than the frame; each keyframe reads them at a random offset
SETUP_WEIGHT = {"wide": 0.45, "medium": 1.0, "two": 0.8, "close": 1.0, "insert": 0.3}
BILINEAR, BICUBIC = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC


@dataclass(frozen=True)
class Placement:
    """A character standing in a set for one scene, in canvas pixels."""

    char: int
    x: float  # feet centre
    foot: float
    height: float
    mirror: bool
    enter: int  # first shot of the scene in which the character is there (someone walks in later)


@dataclass(frozen=True)
class Setup:
    """A camera position in a scene: what it frames and how it is lit."""

    kind: str  # wide | medium | two | close | insert
    location: int
    side: int  # which side of the set is in the background (0: the wide shot's, 1: reverse angle)
    centre: tuple[float, float]
    crop_h: float  # canvas pixels seen vertically
    subject: int | None  # placement index the set-up is built around
    over_shoulder: int | None  # placement seen out of focus at the frame's edge
    blur: int  # background blur factor (1 = sharp, the depth of field of a long lens otherwise)
    gain: float


@dataclass(frozen=True)
class View:
    """Everything that decides one keyframe's pixels."""

    location: int
    side: int
    box: tuple[float, float, float, float]  # canvas crop (x0, y0, x1, y1)
    figures: tuple[tuple[Placement, float], ...]  # characters in view with their horizontal offset
    over_shoulder: Placement | None
    blur: int
    lut: tuple[int, ...]  # 768-entry per-channel lighting curve (PIL ``point``)


class MovieShoot:
    """Renders one movie's keyframes; every draw comes from the generator of (seed, movie index)."""

    def __init__(self, plan: MoviePlan, cfg: SynthConfig) -> None:
        self.plan = plan
        self.w, self.h, self.quality = cfg.width, cfg.height, cfg.jpeg_quality
        self.cw, self.ch = cfg.width * CANVAS_SCALE, cfg.height * CANVAS_SCALE
        rng = self.rng = rng_for(cfg.seed, plan.index, RENDER_STREAM)
        saturation = rng.uniform(0.6, 1.15)  # the movie's grade: some films are muted, some vivid
        hues = rng.random(int(rng.integers(2, 5)))  # the film's production design: its sets share a few hues
        styles = []
        for parent in plan.location_parents:
            styles.append(draw_set_style(rng, hues) if parent < 0 else sibling_style(rng, styles[parent]))
        self.horizons = [s.horizon * self.ch for s in styles]
        self.figure_light = [0.6 if s.night and s.kind != "interior" else 1.0 for s in styles]  # people at night
        # Each set has two sides: the one the wide shot sees and the one behind the camera (reverse shots).
        self.sets = [[ImageEnhance.Color(paint_set(side, self.cw, self.ch)).enhance(saturation)
                      for side in (s, reverse_style(rng, s))] for s in styles]
        self.thumbs = [[np.asarray(side.convert("L").reduce(THUMB), dtype=np.float32) for side in s] for s in self.sets]
        self.cast = [draw_character_style(rng) for _ in range(plan.cast_size)]
        self.sprites = [self._sprite_pyramid(paint_character(c, int(self.h * SPRITE_HEIGHTS[0])), saturation) for c in self.cast]
        self.grade_gain = rng.uniform(0.94, 1.06, size=3)
        self.grade_lift = rng.uniform(0.0, 0.05, size=3)
        self.contrast = rng.uniform(0.9, 1.15)
        yy, xx = np.mgrid[-1:1:self.h * 1j, -1:1:self.w * 1j]
        self.vignette = (1.0 - rng.uniform(0.1, 0.35) * (xx**2 + yy**2) / 2).astype(np.float32)[..., None]
        sigma = rng.uniform(5.0, 8.0)  # film grain: also what makes the JPEGs as large as MovieNet's
        shape = (2, self.h + GRAIN_MARGIN, self.w + GRAIN_MARGIN)
        self.grain = (rng.standard_normal((*shape, 1), dtype=np.float32) * sigma
                      + rng.standard_normal((*shape, 3), dtype=np.float32) * (0.35 * sigma))

    def _sprite_pyramid(self, sprite: Image.Image, saturation: float) -> list[tuple[Image.Image, Image.Image]]:
        """Per pyramid level the sprite and its mirror image (premultiplied RGBa), with the movie's grade applied."""
        rgb = ImageEnhance.Color(sprite.convert("RGB")).enhance(saturation)
        sprite = Image.merge("RGBA", (*rgb.split(), sprite.getchannel("A")))
        levels = []
        for frames in SPRITE_HEIGHTS:
            height = int(self.h * frames)
            s = sprite if height == sprite.height else sprite.resize((sprite.width * height // sprite.height, height), BICUBIC)
            s = s.convert("RGBa")  # premultiplied, as PIL resizes it: no conversion of the whole sprite per paste
            levels.append((s, s.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        return levels

    # ---- keyframes --------------------------------------------------------------------------------

    def shot_views(self) -> Iterator[tuple[int, list[View]]]:
        """(shot index, its three keyframe views) in shot order; a scene is staged when its first shot comes up."""
        shot = 0
        for scene in self.plan.scenes:
            for views in self._direct(scene, shot):
                yield shot, views
                shot += 1

    def keyframes(self) -> Iterator[tuple[int, int, bytes]]:
        """(shot index, keyframe index, JPEG bytes) in shot order."""
        for shot, views in self.shot_views():
            for k, view in enumerate(views):
                yield shot, k, self._encode(self.render(view))

    def _direct(self, scene: Scene, first_shot: int) -> list[list[View]]:
        """Stage one scene and cut it: per shot its three keyframe views."""
        rng, n = self.rng, scene.num_shots
        # Intercut: each place has its own people; a moving scene takes everyone along.
        groups = [scene.cast[0::2], scene.cast[1::2]] if scene.intercut else [scene.cast] * len(scene.locations)
        staging = {loc: self._stage(loc, cast, n) for loc, cast in zip(scene.locations, groups, strict=True)}
        setups = {loc: self._setups(loc, staging[loc], n) for loc in scene.locations}
        # Lighting: the scene's own (a revisited set may now be at night), one change within some scenes
        # (a lamp switched off, the sun behind a cloud), an occasional flash.
        gain, temp = rng.uniform(0.88, 1.12), rng.uniform(-0.06, 0.06)
        change_at, change = n, (1.0, 0.0)
        if n >= 2 and rng.random() < 0.25:
            change_at = int(rng.integers(1, n))
            change = [(rng.uniform(0.55, 0.8), 0.0), (rng.uniform(1.2, 1.35), 0.0),
                      (1.0, rng.choice([-1, 1]) * rng.uniform(0.1, 0.2))][int(rng.integers(3))]
        location_of_shot = self._locations_of_shots(scene)
        shots: list[list[View]] = []
        previous: Setup | None = None
        for i in range(n):
            loc = location_of_shot[i]
            setup = self._pick_setup(setups[loc], staging[loc], previous, i, fresh=i == 0 or loc != location_of_shot[i - 1])
            g = gain * setup.gain * (change[0] if i >= change_at else 1.0)
            t = temp + (change[1] if i >= change_at else 0.0) + rng.normal(0, 0.015)
            if rng.random() < 0.03:
                g *= rng.uniform(1.3, 1.6)
            frames = self.plan.shot_frames[first_shot + i]
            shots.append(self._shoot(setup, staging[loc], i, self._lut(g, t), seconds=(frames[4] - frames[2]) / 24))
            previous = setup
        return shots

    def _locations_of_shots(self, scene: Scene) -> list[int]:
        locations, n = scene.locations, scene.num_shots
        if len(locations) == 1:
            return [locations[0]] * n
        if not scene.intercut:  # the scene moves on: first one place, then the other
            split = int(self.rng.integers(1, n))
            return [locations[0]] * split + [locations[1]] * (n - split)
        out: list[int] = []
        side = 0
        while len(out) < n:
            out += [locations[side]] * int(self.rng.integers(1, 4))
            side = 1 - side
        return out[:n]

    def _stage(self, loc: int, cast: tuple[int, ...], num_shots: int) -> list[Placement]:
        rng, cw, ch = self.rng, self.cw, self.ch
        hy = self.horizons[loc]
        centre, spread = rng.uniform(0.3, 0.7) * cw, rng.uniform(0.08, 0.2) * cw
        order = rng.permutation(len(cast))
        out = []
        for slot, c in enumerate(cast[j] for j in order):
            depth = rng.uniform(0.0, 1.0)
            foot = hy + (ch - hy) * (0.3 + 0.55 * depth)
            height = min(ch * 0.5 * self.cast[c].stature * (0.8 + 0.4 * depth), foot - 0.02 * ch)
            x = centre + spread * (slot - (len(cast) - 1) / 2) + rng.normal(0, 0.02 * cw)
            enter = int(rng.integers(1, num_shots)) if slot > 0 and num_shots >= 4 and rng.random() < 0.15 else 0
            out.append(Placement(c, float(x), float(foot), float(height), bool(rng.random() < 0.5), enter))
        return out

    def _setups(self, loc: int, people: list[Placement], num_shots: int) -> list[Setup]:
        rng, cw, ch, aspect = self.rng, self.cw, self.ch, self.w / self.h

        def make(kind: str, centre: tuple[float, float], crop_h: float, subject: int | None = None, blur: int = 1) -> Setup:
            others = [j for j in range(len(people)) if j != subject]
            ots = int(rng.choice(others)) if subject is not None and others and kind != "two" and rng.random() < 0.35 else None
            # Facing characters are filmed against opposite walls; wide shots mostly from the front.
            side = (subject % 2 if rng.random() < 0.8 else 1 - subject % 2) if subject is not None else int(rng.random() < 0.3)
            return Setup(kind, loc, side, centre, float(crop_h), subject, ots, blur, float(rng.uniform(0.88, 1.12)))

        out = []
        for _ in range(1 + int(rng.random() < 0.35)):
            h = ch * rng.uniform(0.72, 1.0)
            out.append(make("wide", (rng.uniform(0, cw), ch - h / 2 - rng.uniform(0, ch - h)), h))
        for j, p in enumerate(people):
            top = p.foot - p.height
            if rng.random() < 0.85:
                h = p.height * rng.uniform(0.55, 0.75)
                out.append(make("medium", (p.x + rng.uniform(-0.2, 0.2) * h * aspect, top + 0.44 * h), h, j,
                                2 if rng.random() < 0.5 else 1))
            if rng.random() < 0.75:
                h = p.height * rng.uniform(0.24, 0.36)
                out.append(make("close", (p.x + rng.uniform(-0.18, 0.18) * h * aspect, top + 0.46 * h), h, j,
                                int(rng.integers(5, 9))))
        if len(people) >= 2 and rng.random() < 0.7:
            a, b = (people[j] for j in rng.choice(len(people), 2, replace=False))
            h = max((abs(a.x - b.x) + 0.5 * (a.height + b.height) / 2) / aspect, 0.5 * max(a.height, b.height))
            out.append(make("two", ((a.x + b.x) / 2, min(a.foot - a.height, b.foot - b.height) + 0.45 * h), h))
        if rng.random() < 0.3:
            out.append(self._insert(loc))
        # Long scenes get more angles: a 40-shot dialogue is not four set-ups repeated ten times.
        for _ in range(num_shots // 12):
            base = out[int(rng.integers(len(out)))]
            h = base.crop_h * rng.uniform(0.8, 1.25)
            centre = (base.centre[0] + rng.normal(0, 0.15) * h * aspect, base.centre[1] + rng.normal(0, 0.05) * h)
            out.append(make(base.kind, centre, h, base.subject, base.blur))
        return out

    def _insert(self, loc: int) -> Setup:
        """A detail of the set: of a few random crops, the busiest one (a shelf, not a bare wall)."""
        rng = self.rng
        side = int(rng.integers(2))
        thumb = self.thumbs[loc][side]
        h = self.ch * rng.uniform(0.18, 0.32)
        best, best_score = (0.0, 0.0), -1.0
        for _ in range(6):
            cx, cy = rng.uniform(0, self.cw), rng.uniform(0.2, 1.1) * self.horizons[loc]
            x0, y0, x1, y1 = (int(v / THUMB) for v in self._box(cx, cy, h))
            score = float(thumb[y0:y1 + 1, x0:x1 + 1].std())
            if score > best_score:
                best, best_score = (cx, cy), score
        return Setup("insert", loc, side, best, float(h), None, None, 1, float(rng.uniform(0.88, 1.12)))

    def _pick_setup(self, setups: list[Setup], people: list[Placement], previous: Setup | None, i: int,
                    fresh: bool) -> Setup:
        rng = self.rng
        wides = [s for s in setups if s.kind == "wide"]
        if fresh and rng.random() < 0.5:  # establishing shot
            return wides[int(rng.integers(len(wides)))]
        w = np.array([SETUP_WEIGHT[s.kind] for s in setups])
        for j, s in enumerate(setups):
            if s.subject is not None and people[s.subject].enter > i:
                w[j] = 0.0  # not in the room yet
            elif s is previous:
                w[j] *= 0.08  # the same set-up twice in a row is a jump cut: rare
            elif previous is not None and previous.subject is not None and s.subject not in (None, previous.subject):
                w[j] *= 2.0  # reverse shot
        return setups[int(rng.choice(len(setups), p=w / w.sum()))]

    def _shoot(self, setup: Setup, people: list[Placement], i: int, lut: tuple[int, ...], seconds: float) -> list[View]:
        """Three keyframe views of one shot: framing jitter, camera move, characters moving."""
        rng, aspect = self.rng, self.w / self.h
        h = setup.crop_h * rng.uniform(0.95, 1.05)
        cx = setup.centre[0] + rng.normal(0, 0.03) * h * aspect
        cy = setup.centre[1] + rng.normal(0, 0.02) * h
        mode = rng.choice(["static", "pan", "push", "tilt"], p=[0.55, 0.25, 0.12, 0.08])
        sign = rng.choice([-1.0, 1.0])
        span = min(1.0, seconds / 3)  # longer shots move further between their first and last keyframe
        dx = sign * rng.uniform(0.04, 0.15) * h * aspect * span if mode == "pan" else 0.0
        dy = sign * rng.uniform(0.03, 0.08) * h * span if mode == "tilt" else 0.0
        zoom = rng.uniform(0.85, 0.95) if mode == "push" else 1.0
        if setup.kind == "close":
            cast = [setup.subject] if setup.subject is not None else []
        else:
            cast = [j for j, p in enumerate(people)
                    if p.enter <= i and (j == setup.subject or rng.random() > 0.12)]  # someone stepped out
        walk = {j: rng.normal(0, 0.006 * self.cw, 3).cumsum() for j in cast}
        if cast and rng.random() < 0.1:  # someone crosses the room
            j = cast[int(rng.integers(len(cast)))]
            walk[j] = walk[j] + np.array([0.0, 0.5, 1.0]) * rng.choice([-1, 1]) * rng.uniform(0.04, 0.1) * self.cw
        views = []
        for k, t in enumerate((0.0, 0.5, 1.0)):
            shake = rng.normal(0, 0.004, 2) * h
            box = self._box(cx + dx * t + shake[0] * aspect, cy + dy * t + shake[1], h * zoom**t)
            figures = tuple((people[j], float(walk[j][k])) for j in cast)
            ots = people[setup.over_shoulder] if setup.over_shoulder is not None else None
            views.append(View(setup.location, setup.side, box, figures, ots, setup.blur, lut))
        return views

    def _box(self, cx: float, cy: float, crop_h: float) -> tuple[float, float, float, float]:
        crop_h = float(np.clip(crop_h, 16.0, self.ch))
        crop_w = crop_h * self.w / self.h  # the canvas has the frame's aspect, so this fits too
        cx = float(np.clip(cx, crop_w / 2, self.cw - crop_w / 2))
        cy = float(np.clip(cy, crop_h / 2, self.ch - crop_h / 2))
        return cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2

    def _lut(self, gain: float, temp: float) -> tuple[int, ...]:
        """Exposure, colour temperature (warm: more red, less blue) and the movie's grade as one curve."""
        x = np.arange(256, dtype=np.float64)[None, :] / 255.0
        gains = (self.grade_gain * gain * np.array([1 + temp, 1 + 0.1 * temp, 1 - temp]))[:, None]
        y = (x * gains - 0.5) * self.contrast + 0.5 + self.grade_lift[:, None]
        return tuple(np.clip(np.rint(y * 255), 0, 255).astype(int).ravel().tolist())

    # ---- pixels -----------------------------------------------------------------------------------

    def render(self, view: View) -> Image.Image:
        w, h = self.w, self.h
        canvas = self.sets[view.location][view.side]
        if view.blur > 1:
            small = canvas.resize((max(1, w // view.blur), max(1, h // view.blur)), BILINEAR, box=view.box)
            frame = small.resize((w, h), BICUBIC)
        else:
            frame = canvas.resize((w, h), BILINEAR, box=view.box)
        x0, y0, x1, _ = view.box
        scale = w / (x1 - x0)
        light = self.figure_light[view.location]
        for p, dx in sorted(view.figures, key=lambda f: f[0].foot):  # far to near
            fh = p.height * scale
            self._paste(frame, p, (p.x + dx - x0) * scale - fh / 4, (p.foot - p.height - y0) * scale, fh, 1, light)
        if view.over_shoulder is not None:  # a blurred, darker head and shoulder in the foreground
            fh = 2.6 * h
            subject_x = view.figures[0][0].x if view.figures else view.over_shoulder.x + 1
            left = view.over_shoulder.x < subject_x
            self._paste(frame, view.over_shoulder, -0.32 * fh if left else w - 0.18 * fh, 0.3 * h, fh, 8, 0.55 * light)
        rgb = np.asarray(frame)  # [H, W, 3] uint8
        lut = self._lut_array(view.lut)  # [3, 256]: Image.point's table, applied by numpy without PIL's per-call list
        a = np.stack([lut[c][rgb[..., c]] for c in range(3)], axis=-1).astype(np.float32) * self.vignette
        ox, oy, bank = (int(v) for v in self.rng.integers(0, (GRAIN_MARGIN, GRAIN_MARGIN, 2)))
        a += self.grain[bank, oy:oy + h, ox:ox + w]
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))

    def _paste(self, frame: Image.Image, p: Placement, fx: float, fy: float, fh: float, blur: int, light: float) -> None:
        """Paste the part of a character's sprite inside the frame; (fx, fy) is its top-left corner, ``light`` a gain."""
        fw = fh / 2
        vx0, vy0 = max(0, int(np.floor(fx))), max(0, int(np.floor(fy)))
        vx1, vy1 = min(frame.width, int(np.ceil(fx + fw))), min(frame.height, int(np.ceil(fy + fh)))
        if vx1 - vx0 < 1 or vy1 - vy0 < 1:
            return
        level = next((lv for lv in reversed(self.sprites[p.char]) if lv[0].height >= fh), self.sprites[p.char][0])
        sprite = level[int(p.mirror)]
        sx, sy = sprite.width / fw, sprite.height / fh
        box = (max(0.0, (vx0 - fx) * sx), max(0.0, (vy0 - fy) * sy),
               min(float(sprite.width), (vx1 - fx) * sx), min(float(sprite.height), (vy1 - fy) * sy))
        size = (vx1 - vx0, vy1 - vy0)
        if blur > 1:
            piece = sprite.resize((max(1, size[0] // blur), max(1, size[1] // blur)), BILINEAR, box=box)
            piece = piece.resize(size, BICUBIC).convert("RGBA")
        else:
            piece = sprite.resize(size, BILINEAR, box=box).convert("RGBA")
        if light != 1.0:  # the colour channels through round(v * light), as Image.point(lambda v: v * light) maps them
            arr = np.array(piece)
            arr[..., :3] = np.array([round(v * light) for v in range(256)], dtype=np.uint8)[arr[..., :3]]
            piece = Image.fromarray(arr, "RGBA")
        frame.paste(piece, (vx0, vy0), piece)

    def _lut_array(self, lut: tuple[int, ...]) -> np.ndarray:
        cache = self.__dict__.setdefault("_luts", {})
        if lut not in cache:
            cache[lut] = np.asarray(lut, dtype=np.uint8).reshape(3, 256)
        return cache[lut]

    def _encode(self, frame: Image.Image) -> bytes:
        buf = io.BytesIO()
        frame.save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue()
