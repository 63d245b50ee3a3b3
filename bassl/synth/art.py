"""The art department of the synthetic movies: location sets and characters, painted procedurally once per movie.

A set is a canvas larger than the frame (the camera crops and zooms into it); a character is an RGBA sprite
tall enough for a close-up. Everything is drawn from a style record, so a "similar-looking" location is the
style of another one, slightly perturbed and re-furnished.
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
SET_HEIGHT = 480  # sets are painted at this height (twice MovieNet's 240P frames) and scaled to the canvas
SUPERSAMPLE = 2  # sprites are drawn at twice their size and reduced: smooth edges in close-ups


def _clip(x: float, lo: float, hi: float) -> float:
    """np.clip for one number, without numpy's per-call overhead (these helpers run tens of thousands of times)."""
    return min(hi, max(lo, x))


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(_clip(s, 0.0, 1.0)), float(_clip(v, 0.0, 1.0)))
    return int(r * 255), int(g * 255), int(b * 255)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def shade(c: RGB, f: float) -> RGB:
    return tuple(int(_clip(x * f, 0.0, 255.0)) for x in c)  # type: ignore[return-value]


def jitter(rng: np.random.Generator, c: RGB, dh: float = 0.03, ds: float = 0.08, dv: float = 0.08) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in c))
    return hsv(h + rng.uniform(-dh, dh), s + rng.uniform(-ds, ds), v + rng.uniform(-dv, dv))


def value_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, ...] = (96, 24, 6)) -> np.ndarray:
    """[h, w] float32 in about [-1, 1]: smooth random grids at a few scales, summed (plaster, grass, asphalt)."""
    out = np.zeros((h, w), np.float32)
    for i, cell in enumerate(cells):
        grid = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
        up = Image.fromarray(grid, mode="F").resize((w + 2 * cell, h + 2 * cell), Image.Resampling.BICUBIC)
        out += np.asarray(up)[cell:cell + h, cell:cell + w] * (0.55**i)
    out -= out.mean()
    return out / (np.abs(out).max() + 1e-6)


def gradient(h: int, w: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(col, (h, w, 3)).copy()


# --------------------------------------------------------------------------------------------------
# Sets
# --------------------------------------------------------------------------------------------------

SET_KINDS = ("interior", "interior", "interior", "street", "nature")  # films spend most time indoors
WALL_PATTERNS = ("plain", "stripes", "dots", "panels", "bricks")
FLOOR_PATTERNS = ("planks", "tiles", "carpet")


@dataclass(frozen=True)
class SetStyle:
    kind: str  # interior | street | nature
    night: bool
    horizon: float  # where the floor or ground starts, as a fraction of the height
    top: RGB  # wall (or sky) colour at the top
    bottom: RGB  # ... and just above the horizon
    ground: RGB
    accent: RGB  # wallpaper, trim, road markings
    pattern: str  # wall pattern (interiors)
    floor: str  # floor pattern (interiors)
    palette: tuple[RGB, ...]  # furniture, buildings, cars, foliage
    layout_seed: int  # where the props go; a sibling set keeps the look but not the layout


def draw_set_style(rng: np.random.Generator, hues: np.ndarray) -> SetStyle:
    """A fresh set; ``hues`` is the movie's production-design palette, so one film's sets share colours."""

    def hue() -> float:
        return float(rng.choice(hues) + rng.normal(0, 0.03)) if rng.random() < 0.75 else float(rng.random())

    kind = str(rng.choice(SET_KINDS))
    night = bool(rng.random() < (0.15 if kind == "interior" else 0.3))
    base_h = hue()
    if kind == "interior":
        wall = hsv(base_h, rng.uniform(0.05, 0.5), rng.uniform(0.35, 0.9) * (0.6 if night else 1.0))
        top, bottom = shade(wall, rng.uniform(0.7, 1.0)), shade(wall, rng.uniform(0.9, 1.15))
        ground = hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.6))
        if rng.random() < 0.3:
            ground = hsv(hue(), rng.uniform(0.0, 0.4), rng.uniform(0.2, 0.8))
    elif kind == "street":
        sky = [((0.58, 0.6, 0.75), (0.55, 0.25, 0.95)), ((0.6, 0.05, 0.6), (0.6, 0.03, 0.8)),
               ((0.75, 0.5, 0.45), (0.07, 0.6, 0.95))][int(rng.integers(3))]
        top, bottom = hsv(*sky[0]), hsv(*sky[1])
        ground = hsv(rng.random(), rng.uniform(0.0, 0.1), rng.uniform(0.3, 0.55))
    else:
        top = hsv(rng.uniform(0.52, 0.64), rng.uniform(0.3, 0.7), rng.uniform(0.6, 0.9))
        bottom = hsv(rng.uniform(0.5, 0.62), rng.uniform(0.05, 0.3), rng.uniform(0.8, 1.0))
        ground = hsv(rng.choice([rng.uniform(0.2, 0.4), rng.uniform(0.07, 0.14)]), rng.uniform(0.3, 0.7),
                     rng.uniform(0.3, 0.65))
    if night and kind != "interior":
        top, bottom = hsv(0.64, 0.6, 0.12), hsv(0.62, 0.5, 0.3)
        ground = shade(ground, 0.45)
    accent = hsv(base_h + rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.9))
    palette = tuple(hsv(hue(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.95)) for _ in range(6))
    return SetStyle(kind, night, float(rng.uniform(0.55, 0.72)), top, bottom, ground, accent,
                    str(rng.choice(WALL_PATTERNS)), str(rng.choice(FLOOR_PATTERNS)), palette,
                    int(rng.integers(1 << 31)))


def sibling_style(rng: np.random.Generator, parent: SetStyle) -> SetStyle:
    """Another room of the same flat, the same street a block on: the look stays, the layout changes."""
    return dataclasses.replace(
        parent,
        horizon=float(np.clip(parent.horizon + rng.uniform(-0.05, 0.05), 0.5, 0.75)),
        top=jitter(rng, parent.top), bottom=jitter(rng, parent.bottom), ground=jitter(rng, parent.ground),
        pattern=parent.pattern if rng.random() < 0.6 else str(rng.choice(WALL_PATTERNS)),
        palette=tuple(jitter(rng, c, 0.1, 0.2, 0.2) for c in parent.palette),
        layout_seed=int(rng.integers(1 << 31)),
    )


def reverse_style(rng: np.random.Generator, front: SetStyle) -> SetStyle:
    """The other side of the same set, seen in reverse shots: same floor line and materials, other furniture,
    a wall in different light (a real room rarely looks the same from both ends)."""
    return dataclasses.replace(
        front,
        top=jitter(rng, front.top, 0.02, 0.1, 0.15), bottom=jitter(rng, front.bottom, 0.02, 0.1, 0.15),
        pattern=front.pattern if rng.random() < 0.8 else "plain",
        layout_seed=int(rng.integers(1 << 31)),
    )


def paint_set(style: SetStyle, width: int, height: int) -> Image.Image:
    """The set as an RGB canvas of ``width`` x ``height`` (the camera crops into it)."""
    if height != SET_HEIGHT:  # props are sized in pixels of a SET_HEIGHT canvas: paint there, then scale
        return paint_set(style, round(width * SET_HEIGHT / height), SET_HEIGHT).resize((width, height), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(style.layout_seed)
    hy = int(style.horizon * height)
    arr = np.empty((height, width, 3), np.float32)
    arr[:hy] = gradient(hy, width, style.top, style.bottom)
    far = shade(style.ground, 0.75 if style.kind == "interior" else 1.1)
    arr[hy:] = gradient(height - hy, width, far, style.ground)
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    {"interior": _interior, "street": _street, "nature": _nature}[style.kind](img, rng, style, width, height, hy)
    # Plaster, asphalt, grass: low-contrast texture everywhere, stronger on the ground.
    tex = value_noise(rng, height, width)[..., None]
    strength = np.where(np.arange(height)[:, None, None] < hy, 0.06, 0.12).astype(np.float32)
    out = np.asarray(img, np.float32) * (1.0 + strength * tex)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def _interior(img: Image.Image, rng: np.random.Generator, st: SetStyle, w: int, h: int, hy: int) -> None:
    draw = ImageDraw.Draw(img)
    wall = mix(st.top, st.bottom, 0.5)
    trim = mix(wall, st.accent, 0.35)
    if st.pattern == "stripes":
        step = int(rng.integers(w // 40, w // 14))
        for x in range(0, w, step):
            draw.rectangle([x, 0, x + step // 2, hy], fill=mix(wall, st.accent, 0.18))
    elif st.pattern == "dots":
        step = int(rng.integers(w // 50, w // 25))
        for y in range(step // 2, hy, step):
            for x in range((y // step % 2) * step // 2, w, step):
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=mix(wall, st.accent, 0.3))
    elif st.pattern == "panels":
        top = int(hy * 0.62)
        draw.rectangle([0, top, w, hy], fill=trim)
        step = int(rng.integers(w // 12, w // 6))
        for x in range(step // 6, w, step):
            draw.rectangle([x, top + 10, x + step * 2 // 3, hy - 10], outline=shade(trim, 0.75), width=3)
        draw.rectangle([0, top - 5, w, top], fill=shade(trim, 0.8))
    elif st.pattern == "bricks":
        bh = int(rng.integers(h // 40, h // 22))
        for row, y in enumerate(range(0, hy, bh)):
            draw.line([0, y, w, y], fill=shade(wall, 0.8), width=2)
            for x in range((row % 2) * bh, w, bh * 2):
                draw.line([x, y, x, y + bh], fill=shade(wall, 0.8), width=2)
    floor_dark = shade(st.ground, 0.8)
    if st.floor == "planks":
        for i in range(-20, 21):
            draw.line([w / 2 + i * w / 40, hy, w / 2 + i * w / 9, h], fill=floor_dark, width=2)
    elif st.floor == "tiles":
        for i in range(-12, 13):
            draw.line([w / 2 + i * w / 22, hy, w / 2 + i * w / 6, h], fill=floor_dark, width=2)
        y, gap = float(hy), (h - hy) / 14
        while y < h:
            draw.line([0, y, w, y], fill=floor_dark, width=2)
            y, gap = y + gap, gap * 1.3
    draw.rectangle([0, hy - h // 60, w, hy], fill=shade(trim, 0.6))  # skirting board
    for _ in range(int(rng.integers(0, 3))):  # windows
        ww, wh = rng.uniform(0.08, 0.16) * w, rng.uniform(0.25, 0.4) * hy
        x, y = rng.uniform(0, w - ww), rng.uniform(0.1, 0.3) * hy
        sky = (hsv(0.64, 0.6, 0.15), hsv(0.62, 0.5, 0.35)) if st.night else (hsv(0.58, 0.5, 0.85), hsv(0.56, 0.2, 1.0))
        pane = Image.fromarray(gradient(int(wh), int(ww), *sky).astype(np.uint8))
        img.paste(pane, (int(x), int(y)))
        frame_c = mix(st.accent, (240, 240, 235), 0.5)
        draw.rectangle([x, y, x + ww, y + wh], outline=frame_c, width=6)
        draw.line([x + ww / 2, y, x + ww / 2, y + wh], fill=frame_c, width=4)
        draw.line([x, y + wh / 2, x + ww, y + wh / 2], fill=frame_c, width=4)
        curtain = st.palette[int(rng.integers(len(st.palette)))]
        draw.rectangle([x - ww * 0.25, y - 10, x + ww * 0.1, y + wh * 1.15], fill=curtain)
        draw.rectangle([x + ww * 0.9, y - 10, x + ww * 1.25, y + wh * 1.15], fill=shade(curtain, 0.85))
    if rng.random() < 0.5:  # a door
        dw, x = 0.09 * w, rng.uniform(0, 0.9 * w)
        door = st.palette[int(rng.integers(len(st.palette)))]
        draw.rectangle([x, hy - 0.7 * hy, x + dw, hy], fill=door, outline=shade(door, 0.6), width=4)
        draw.ellipse([x + dw * 0.8, hy - 0.35 * hy, x + dw * 0.88, hy - 0.33 * hy], fill=(200, 180, 90))
    props = ["shelf", "painting", "lamp", "sofa", "table", "plant", "cabinet", "screen"]
    for _ in range(int(rng.integers(3, 7))):
        _interior_prop(draw, rng, str(rng.choice(props)), st, w, h, hy)


def _interior_prop(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str, st: SetStyle,
                   w: int, h: int, hy: int) -> None:
    c = st.palette[int(rng.integers(len(st.palette)))]
    x = rng.uniform(-0.05, 0.95) * w
    if kind == "shelf":
        sw, sh = 0.14 * w, 0.75 * hy
        draw.rectangle([x, hy - sh, x + sw, hy], fill=shade(c, 0.6))
        for r in range(5):
            y0 = hy - sh + 8 + r * (sh - 10) / 5
            bx = x + 6
            while bx < x + sw - 12:
                bw = rng.uniform(5, 12)
                bh = rng.uniform(0.55, 0.9) * (sh / 5 - 8)
                draw.rectangle([bx, y0 + (sh / 5 - 8) - bh, bx + bw, y0 + sh / 5 - 8],
                               fill=hsv(rng.random(), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.9)))
                bx += bw + 1
            draw.rectangle([x, y0 + sh / 5 - 8, x + sw, y0 + sh / 5 - 4], fill=shade(c, 0.45))
    elif kind == "painting":
        pw, ph = rng.uniform(0.07, 0.15) * w, rng.uniform(0.15, 0.3) * hy
        y = rng.uniform(0.12, 0.35) * hy
        draw.rectangle([x, y, x + pw, y + ph], fill=hsv(rng.random(), 0.3, 0.8), outline=(110, 80, 40), width=6)
        for _ in range(4):
            cx, cy, r = x + rng.uniform(0.2, 0.8) * pw, y + rng.uniform(0.2, 0.8) * ph, rng.uniform(0.1, 0.25) * pw
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=hsv(rng.random(), 0.6, 0.7))
    elif kind == "lamp":
        lh = rng.uniform(0.45, 0.7) * hy
        draw.rectangle([x - 3, hy - lh, x + 3, hy], fill=(40, 40, 40))
        draw.polygon([(x - 30, hy - lh + 40), (x + 30, hy - lh + 40), (x + 18, hy - lh), (x - 18, hy - lh)],
                     fill=mix(c, (255, 230, 170), 0.6))
    elif kind == "sofa":
        sw, sh = rng.uniform(0.2, 0.32) * w, 0.22 * h
        base = hy + 0.06 * h
        draw.rounded_rectangle([x, base - sh, x + sw, base], radius=20, fill=c)
        draw.rounded_rectangle([x - 10, base - sh * 0.55, x + 25, base], radius=12, fill=shade(c, 0.85))
        draw.rounded_rectangle([x + sw - 25, base - sh * 0.55, x + sw + 10, base], radius=12, fill=shade(c, 0.85))
        draw.rectangle([x + 20, base - sh * 0.5, x + sw - 20, base - sh * 0.3], fill=shade(c, 1.1))
    elif kind == "table":
        tw, th = rng.uniform(0.12, 0.22) * w, 0.15 * h
        base = hy + 0.1 * h
        draw.rectangle([x, base - th, x + tw, base - th + 10], fill=shade(c, 0.7))
        for lx in (x + 8, x + tw - 16):
            draw.rectangle([lx, base - th, lx + 8, base], fill=shade(c, 0.5))
        draw.ellipse([x + tw * 0.3, base - th - 18, x + tw * 0.42, base - th], fill=hsv(rng.random(), 0.5, 0.9))
    elif kind == "plant":
        base = hy + 0.04 * h
        draw.polygon([(x - 20, base - 45), (x + 20, base - 45), (x + 14, base), (x - 14, base)], fill=(150, 80, 50))
        for _ in range(9):
            cx, cy = x + rng.normal(0, 22), base - 45 - abs(rng.normal(40, 25))
            draw.ellipse([cx - 16, cy - 9, cx + 16, cy + 9], fill=hsv(rng.uniform(0.22, 0.38), 0.6, rng.uniform(0.3, 0.6)))
    elif kind == "cabinet":
        cw, ch = rng.uniform(0.1, 0.18) * w, rng.uniform(0.3, 0.5) * hy
        draw.rectangle([x, hy - ch, x + cw, hy], fill=c, outline=shade(c, 0.6), width=3)
        draw.line([x + cw / 2, hy - ch, x + cw / 2, hy], fill=shade(c, 0.6), width=3)
    else:  # screen: a TV or a framed mirror
        sw, sh = rng.uniform(0.1, 0.16) * w, rng.uniform(0.15, 0.22) * hy
        y = rng.uniform(0.2, 0.4) * hy
        draw.rectangle([x, y, x + sw, y + sh], fill=(25, 28, 35), outline=(10, 10, 10), width=5)
        draw.polygon([(x + 10, y + 10), (x + sw * 0.4, y + 10), (x + 10, y + sh * 0.5)], fill=(60, 70, 85))


def _street(img: Image.Image, rng: np.random.Generator, st: SetStyle, w: int, h: int, hy: int) -> None:
    draw = ImageDraw.Draw(img)
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw, bh = rng.uniform(0.12, 0.3) * w, rng.uniform(0.35, 0.95) * hy
        c = st.palette[int(rng.integers(len(st.palette)))]
        c = shade(c, 0.5) if st.night else c
        draw.rectangle([x, hy - bh, x + bw, hy], fill=c, outline=shade(c, 0.7), width=3)
        rows, cols = int(bh // rng.uniform(35, 55)), int(bw // rng.uniform(30, 45))
        for r in range(rows):
            for k in range(cols):
                wx, wy = x + 8 + k * (bw - 10) / max(cols, 1), hy - bh + 10 + r * (bh - 15) / max(rows, 1)
                lit = st.night and rng.random() < 0.45
                fill = hsv(0.13, 0.55, 0.95) if lit else (mix(st.top, (30, 35, 45), 0.6) if not st.night else (20, 22, 30))
                draw.rectangle([wx, wy, wx + (bw - 10) / max(cols, 1) * 0.55, wy + (bh - 15) / max(rows, 1) * 0.55], fill=fill)
        x += bw + rng.uniform(-5, 15)
    walk = mix(st.ground, (200, 200, 200), 0.3)
    draw.rectangle([0, hy, w, hy + 0.08 * h], fill=walk)
    draw.rectangle([0, hy + 0.08 * h, w, hy + 0.09 * h], fill=shade(walk, 0.7))
    lane = hy + 0.09 * h + (h - hy - 0.09 * h) * 0.55
    for xs in np.arange(0, w, w / 8):
        draw.rectangle([xs, lane, xs + w / 16, lane + 6], fill=mix(st.accent, (230, 230, 230), 0.7))
    for _ in range(int(rng.integers(1, 4))):  # cars
        cx, cw = rng.uniform(-0.05, 0.9) * w, rng.uniform(0.16, 0.24) * w
        base = hy + rng.uniform(0.2, 0.32) * h
        c = st.palette[int(rng.integers(len(st.palette)))]
        draw.rounded_rectangle([cx, base - 0.09 * h, cx + cw, base - 0.02 * h], radius=14, fill=c)
        draw.rounded_rectangle([cx + cw * 0.2, base - 0.15 * h, cx + cw * 0.75, base - 0.08 * h], radius=12, fill=shade(c, 0.9))
        draw.rectangle([cx + cw * 0.26, base - 0.14 * h, cx + cw * 0.69, base - 0.09 * h], fill=(50, 60, 75))
        for wx in (cx + cw * 0.2, cx + cw * 0.8):
            draw.ellipse([wx - 0.03 * h, base - 0.05 * h, wx + 0.03 * h, base + 0.01 * h], fill=(20, 20, 20))
    for _ in range(int(rng.integers(1, 4))):  # lamp posts
        lx = rng.uniform(0, w)
        draw.rectangle([lx - 3, hy - 0.45 * h, lx + 3, hy + 0.05 * h], fill=(35, 38, 40))
        glow = (255, 220, 140) if st.night else (200, 200, 190)
        draw.ellipse([lx - 12, hy - 0.47 * h, lx + 12, hy - 0.43 * h], fill=glow)


def _nature(img: Image.Image, rng: np.random.Generator, st: SetStyle, w: int, h: int, hy: int) -> None:
    draw = ImageDraw.Draw(img)
    if st.night:
        for _ in range(150):
            sx, sy = rng.uniform(0, w), rng.uniform(0, hy * 0.8)
            draw.point([(sx, sy), (sx + 1, sy)], fill=(230, 230, 255))
    else:
        for _ in range(int(rng.integers(0, 6))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0.05, 0.4) * hy, rng.uniform(0.03, 0.08) * w
            for k in range(5):
                ox = cx + (k - 2) * r * 0.7
                draw.ellipse([ox - r, cy - r * 0.5, ox + r, cy + r * 0.5], fill=mix(st.bottom, (255, 255, 255), 0.7))
    for layer, (lo, hi, tone) in enumerate(((0.35, 0.8, 0.55), (0.1, 0.35, 0.85))):
        ridge = hy - np.cumsum(rng.normal(0, 6, 30)) - rng.uniform(lo, hi) * hy * 0.5
        pts = [(i * w / 29, float(np.clip(y, 0.15 * hy, hy))) for i, y in enumerate(ridge)]
        far = mix(st.bottom, shade(st.ground, 0.7), tone) if layer == 0 else shade(st.ground, 0.9)
        draw.polygon([(0, hy), *pts, (w, hy)], fill=far)
    if rng.random() < 0.3:  # a lake reflecting the sky
        draw.rectangle([0, hy + 0.05 * h, w, hy + 0.15 * h], fill=mix(st.bottom, (40, 60, 90), 0.4))
    for _ in range(int(rng.integers(3, 10))):
        tx, base = rng.uniform(0, w), hy + rng.uniform(0.0, 0.2) * h
        size = rng.uniform(0.1, 0.25) * h * (1 + (base - hy) / h)
        green = shade(hsv(rng.uniform(0.22, 0.4), 0.6, rng.uniform(0.25, 0.55)), 0.5 if st.night else 1.0)
        draw.rectangle([tx - size * 0.06, base - size * 0.6, tx + size * 0.06, base], fill=(70, 50, 35))
        if rng.random() < 0.5:  # pine
            for k in range(3):
                y = base - size * (0.35 + 0.3 * k)
                draw.polygon([(tx - size * (0.35 - 0.08 * k), y + size * 0.2), (tx + size * (0.35 - 0.08 * k), y + size * 0.2),
                              (tx, y - size * 0.25)], fill=shade(green, 1 + 0.08 * k))
        else:
            for _ in range(6):
                cx, cy = tx + rng.normal(0, size * 0.18), base - size * rng.uniform(0.6, 1.0)
                r = size * rng.uniform(0.15, 0.25)
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=jitter(rng, green, 0.02, 0.05, 0.1))


# --------------------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------------------

SKIN = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 105, 70), (120, 78, 50), (85, 55, 38))
HAIR = ((20, 18, 18), (55, 35, 25), (100, 65, 40), (180, 140, 80), (225, 200, 130), (150, 60, 30), (150, 150, 150),
        (230, 230, 225))
HAIR_STYLES = ("short", "long", "bald", "curly", "bun", "ponytail")
PATTERNS = ("plain", "plain", "hstripes", "vstripes", "checks", "dots")


@dataclass(frozen=True)
class CharacterStyle:
    skin: RGB
    hair: RGB
    hair_style: str
    top: RGB
    pattern: str  # on the top: plain | hstripes | vstripes | checks | dots
    pattern_colour: RGB
    jacket: RGB | None
    bottom: RGB
    dress: bool
    glasses: bool
    beard: bool
    hat: RGB | None
    build: float  # shoulder width factor
    stature: float  # height factor


def draw_character_style(rng: np.random.Generator) -> CharacterStyle:
    def cloth() -> RGB:
        return hsv(rng.random(), rng.uniform(0.0, 0.85), rng.uniform(0.15, 0.95))

    style = str(rng.choice(HAIR_STYLES))
    return CharacterStyle(
        skin=jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 0.01, 0.04, 0.04),
        hair=HAIR[int(rng.integers(len(HAIR)))], hair_style=style, top=cloth(), pattern=str(rng.choice(PATTERNS)),
        pattern_colour=cloth(), jacket=cloth() if rng.random() < 0.4 else None, bottom=cloth(),
        dress=bool(rng.random() < 0.2), glasses=bool(rng.random() < 0.25),
        beard=bool(style in ("short", "bald", "curly") and rng.random() < 0.3),
        hat=cloth() if rng.random() < 0.12 else None,
        build=float(rng.uniform(0.85, 1.2)), stature=float(rng.uniform(0.9, 1.08)),
    )


def paint_character(st: CharacterStyle, height: int) -> Image.Image:
    """A standing figure as RGBA, ``height`` tall and half as wide; the head is the top ~18 %."""
    hs = height * SUPERSAMPLE
    ws = hs // 2
    u = hs / 100.0
    cx = ws / 2
    img = Image.new("RGBA", (ws, hs), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    b = st.build
    hair = (*st.hair, 255)
    skin = (*st.skin, 255)
    if st.hair_style == "long":
        d.rounded_rectangle([cx - 8 * u, 3 * u, cx + 8 * u, 27 * u], radius=int(5 * u), fill=hair)
    if st.hair_style == "ponytail":
        d.ellipse([cx + 3 * u, 5 * u, cx + 10 * u, 22 * u], fill=hair)
    # legs or dress, then shoes
    if st.dress:
        d.polygon([(cx - 8 * b * u, 48 * u), (cx + 8 * b * u, 48 * u), (cx + 13 * b * u, 76 * u), (cx - 13 * b * u, 76 * u)],
                  fill=(*st.top, 255))
        for s in (-1, 1):
            d.rectangle([cx + s * 3.5 * u - 2 * u, 75 * u, cx + s * 3.5 * u + 2 * u, 94 * u], fill=skin)
    else:
        for s in (-1, 1):
            x0 = cx + (0.5 * u if s > 0 else -8 * b * u)
            d.rectangle([x0, 50 * u, x0 + 7.5 * b * u, 94 * u], fill=(*st.bottom, 255))
    for s in (-1, 1):
        d.ellipse([cx + s * 4.5 * u - 5 * u, 92 * u, cx + s * 4.5 * u + 5 * u, 98 * u], fill=(30, 25, 22, 255))
    # torso with its pattern, masked by the torso's shape
    torso = [(cx - 11 * b * u, 21 * u), (cx + 11 * b * u, 21 * u), (cx + 9 * b * u, 52 * u), (cx - 9 * b * u, 52 * u)]
    mask = Image.new("L", (ws, hs), 0)
    md = ImageDraw.Draw(mask)
    md.polygon(torso, fill=255)
    cloth = Image.new("RGBA", (ws, hs), (*st.top, 255))
    cd = ImageDraw.Draw(cloth)
    pc = (*st.pattern_colour, 255)
    step = 3.2 * u
    if st.pattern in ("hstripes", "checks"):
        for y in np.arange(18 * u, 53 * u, step):
            cd.rectangle([0, y, ws, y + step * 0.45], fill=pc)
    if st.pattern in ("vstripes", "checks"):
        for x in np.arange(cx - 12 * u, cx + 12 * u, step):
            cd.rectangle([x, 0, x + step * 0.45, hs], fill=pc if st.pattern == "vstripes" else (*st.pattern_colour, 160))
    if st.pattern == "dots":
        for y in np.arange(20 * u, 52 * u, step):
            for x in np.arange(cx - 12 * u, cx + 12 * u, step):
                cd.ellipse([x, y, x + 0.9 * u, y + 0.9 * u], fill=pc)
    img.paste(cloth, (0, 0), mask)
    arm = (*(st.jacket or st.top), 255)
    for s in (-1, 1):
        ax = cx + s * 11 * b * u
        d.polygon([(ax - s * 1 * u, 21 * u), (ax + s * 3.5 * u, 23 * u), (ax + s * 4.5 * u, 50 * u), (ax + s * 0.5 * u, 50 * u)],
                  fill=arm)
        d.ellipse([ax + s * 2.5 * u - 2.2 * u, 49 * u, ax + s * 2.5 * u + 2.2 * u, 54 * u], fill=skin)
        d.ellipse([cx + s * 9 * b * u - 4 * u, 19 * u, cx + s * 9 * b * u + 4 * u, 27 * u], fill=arm)  # shoulder
    if st.jacket is not None:  # open jacket with lapels
        jc = (*st.jacket, 255)
        for s in (-1, 1):
            d.polygon([(cx + s * 11 * b * u, 21 * u), (cx + s * 3 * u, 21 * u), (cx + s * 1.5 * u, 36 * u),
                       (cx + s * 4 * u, 52 * u), (cx + s * 9 * b * u, 52 * u)], fill=jc)
            d.line([(cx + s * 3 * u, 21 * u), (cx + s * 5 * u, 28 * u), (cx + s * 1.5 * u, 36 * u)],
                   fill=(*shade(st.jacket, 0.6), 255), width=max(1, int(0.5 * u)))
    # neck, head, face
    d.rectangle([cx - 2.3 * u, 15 * u, cx + 2.3 * u, 21.5 * u], fill=(*shade(st.skin, 0.88), 255))
    d.ellipse([cx - 6.2 * u, 2.5 * u, cx + 6.2 * u, 17.5 * u], fill=skin)
    d.ellipse([cx - 7 * u, 8.5 * u, cx - 5.2 * u, 12 * u], fill=skin)
    d.ellipse([cx + 5.2 * u, 8.5 * u, cx + 7 * u, 12 * u], fill=skin)
    for s in (-1, 1):
        ex = cx + s * 2.5 * u
        d.ellipse([ex - 1.3 * u, 8.7 * u, ex + 1.3 * u, 10.2 * u], fill=(245, 245, 240, 255))
        d.ellipse([ex - 0.65 * u, 8.8 * u, ex + 0.65 * u, 10.1 * u], fill=(40, 30, 25, 255))
        d.line([(ex - 1.5 * u, 7.6 * u), (ex + 1.5 * u, 7.3 * u + s * 0.2 * u)], fill=(*shade(st.hair, 0.8), 255),
               width=max(1, int(0.55 * u)))
    d.line([(cx, 10 * u), (cx - 0.6 * u, 12.3 * u), (cx + 0.3 * u, 12.6 * u)], fill=(*shade(st.skin, 0.75), 255),
           width=max(1, int(0.35 * u)))
    d.chord([cx - 1.8 * u, 12.8 * u, cx + 1.8 * u, 14.8 * u], 0, 180, fill=(*mix(st.skin, (150, 40, 50), 0.55), 255))
    if st.beard:
        d.chord([cx - 5.8 * u, 8 * u, cx + 5.8 * u, 17.5 * u], 10, 170, fill=hair)
        d.ellipse([cx - 1.6 * u, 13 * u, cx + 1.6 * u, 14.4 * u], fill=(*mix(st.skin, (150, 40, 50), 0.45), 255))
    if st.glasses:
        for s in (-1, 1):
            ex = cx + s * 2.5 * u
            d.ellipse([ex - 2 * u, 7.9 * u, ex + 2 * u, 11 * u], outline=(20, 20, 20, 255), width=max(1, int(0.35 * u)))
        d.line([(cx - 0.5 * u, 9.2 * u), (cx + 0.5 * u, 9.2 * u)], fill=(20, 20, 20, 255), width=max(1, int(0.35 * u)))
    if st.hair_style in ("short", "long", "bun", "ponytail"):
        d.chord([cx - 6.6 * u, 1.8 * u, cx + 6.6 * u, 14 * u], 180, 360, fill=hair)
        d.polygon([(cx - 6.5 * u, 7.5 * u), (cx + 1.5 * u, 4 * u), (cx - 6 * u, 4.5 * u)], fill=hair)  # side parting
    elif st.hair_style == "curly":
        for a in np.linspace(np.pi * 1.05, np.pi * 1.95, 9):
            hx, hy = cx + 5.8 * u * np.cos(a), 8 * u + 5.8 * u * np.sin(a)
            d.ellipse([hx - 2.4 * u, hy - 2.4 * u, hx + 2.4 * u, hy + 2.4 * u], fill=hair)
    if st.hair_style == "bun":
        d.ellipse([cx - 3 * u, -0.5 * u, cx + 3 * u, 4.5 * u], fill=hair)
    if st.hat is not None:
        hc = (*st.hat, 255)
        d.rectangle([cx - 5.5 * u, 0, cx + 5.5 * u, 5 * u], fill=hc)
        d.ellipse([cx - 9.5 * u, 4 * u, cx + 9.5 * u, 6.5 * u], fill=(*shade(st.hat, 0.8), 255))
    return img.resize((ws // SUPERSAMPLE, height), Image.Resampling.LANCZOS)
