"""Movies cut from real photographs (``synth.source=photos``): the drawn movies' story, real pixels.

The plan (:mod:`bassl.synth.plan`: scenes, their locations, shot timing) is the same as the drawn movies'. Each
location becomes its own photograph, found inside installed packages (scikit-image's sample data, scikit-learn's
and matplotlib's sample images; no download), so a scene that returns to a location returns to its photograph.
The plan's "resembling" locations are not imitated: another part of one photograph (tried first) made most
scenes of a movie the same texture. A shot is a camera set-up: a crop of the location's part of the photograph
at its own position and zoom, and its three keyframes drift a little within it, as a camera pans. So shots of one
scene share content but never pixels, and two scenes differ in what the camera looks at: a real-image test of
whether features and boundary models find scenes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import lru_cache
from importlib import util
from pathlib import Path

import numpy as np
from PIL import Image

from bassl.config import SynthConfig
from bassl.errors import DataError
from bassl.synth.plan import RENDER_STREAM, MoviePlan, rng_for

# Real photographs (not renders, scans of text or binary masks) shipped inside these packages.
PHOTOS = {
    "skimage": ("data", ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
                         "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
                         "retina.jpg", "rocket.jpg"]),
    "sklearn": ("datasets/images", ["china.jpg", "flower.jpg"]),
    "matplotlib": ("mpl-data/sample_data", ["grace_hopper.jpg"]),
}
MIN_PHOTOS = 8  # fewer, and scenes of a movie would have to repeat photographs


def photo_paths() -> list[Path]:
    """Every photograph of :data:`PHOTOS` that is installed, in a fixed order."""
    paths = []
    for package, (folder, names) in PHOTOS.items():
        spec = util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(next(iter(spec.submodule_search_locations))) / folder
        paths += [base / n for n in names if (base / n).is_file()]
    if len(paths) < MIN_PHOTOS:
        raise DataError(f"synth.source=photos found {len(paths)} photographs in the installed packages, fewer than "
                        f"{MIN_PHOTOS}; install scikit-image (pip install 'bassl[photos]'), whose sample data holds 15")
    return paths


@lru_cache(maxsize=32)
def load_photo(path: Path) -> Image.Image:
    """An RGB photograph (greyscale ones as three equal channels)."""
    with Image.open(path) as im:
        return im.convert("RGB")


class PhotoShoot:
    """Renders one movie's keyframes from photographs; every draw comes from the generator of (seed, movie)."""

    def __init__(self, plan: MoviePlan, cfg: SynthConfig) -> None:
        self.plan, self.w, self.h, self.quality = plan, cfg.width, cfg.height, cfg.jpeg_quality
        rng = self.rng = rng_for(cfg.seed, plan.index, RENDER_STREAM)
        paths = photo_paths()
        fresh = iter(rng.permutation(len(paths)).tolist() * 4)  # distinct photographs until the pool runs out
        self.locations: list[tuple[Image.Image, tuple[float, float, float, float]]] = []
        for _ in plan.location_parents:  # one photograph each (a "resembling" location too: see the module doc)
            photo = load_photo(paths[next(fresh)])
            self.locations.append((photo, self._part(photo.size, rng)))
        self.grade = rng.uniform(0.9, 1.1, size=3)  # the movie's colour grade

    def _part(self, size: tuple[int, int], rng: np.random.Generator) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the part of a photograph one location is, 55-80 % of each side."""
        W, H = size
        fw, fh = rng.uniform(0.55, 0.8, size=2)
        x0, y0 = rng.uniform(0, 1 - fw) * W, rng.uniform(0, 1 - fh) * H
        return x0, y0, x0 + fw * W, y0 + fh * H

    def _setup(self, part: tuple[float, float, float, float]) -> tuple[float, float, float]:
        """(centre x, centre y, crop width) of one camera set-up inside a location's part."""
        x0, y0, x1, y1 = part
        aspect = self.w / self.h
        max_w = min(x1 - x0, (y1 - y0) * aspect)
        cw = max_w * self.rng.uniform(0.35, 0.8)  # from a wide shot to a close-up
        ch = cw / aspect
        return self.rng.uniform(x0 + cw / 2, x1 - cw / 2), self.rng.uniform(y0 + ch / 2, y1 - ch / 2), cw

    def _location_of_shots(self, locations: tuple[int, ...], n: int, intercut: bool) -> list[int]:
        if len(locations) == 1:
            return [locations[0]] * n
        if intercut:
            return [locations[i % 2] for i in range(n)]
        return [locations[0] if i < (n + 1) // 2 else locations[1] for i in range(n)]

    def keyframes(self) -> Iterator[tuple[int, int, bytes]]:
        """(shot index, keyframe index, JPEG bytes) in shot order."""
        shot = 0
        for scene in self.plan.scenes:
            for loc in self._location_of_shots(scene.locations, scene.num_shots, scene.intercut):
                photo, part = self.locations[loc]
                cx, cy, cw = self._setup(part)
                gain = self.grade * self.rng.uniform(0.92, 1.08)  # the shot's exposure
                drift = self.rng.normal(0, 0.04, size=2) * cw  # the camera pans a little across the keyframes
                ch = cw * self.h / self.w
                for k in range(3):  # the drift never leaves the photograph
                    x = float(np.clip(cx + (k - 1) * drift[0], cw / 2, photo.width - cw / 2))
                    y = float(np.clip(cy + (k - 1) * drift[1], ch / 2, photo.height - ch / 2))
                    box = (x - cw / 2, y - ch / 2, x + cw / 2, y + ch / 2)
                    frame = photo.resize((self.w, self.h), Image.Resampling.BICUBIC, box=box)
                    pixels = np.clip(np.asarray(frame, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(pixels).save(buf, format="JPEG", quality=self.quality)
                    yield shot, k, buf.getvalue()
                shot += 1
