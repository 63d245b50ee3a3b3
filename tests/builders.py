"""Small generated data sets and run helpers shared by the tests (not a test module: pytest collects nothing here).

Shards are always written the way users write them: a MovieNet-SSeg layout through bassl's
:class:`~bassl.data.movienet.LayoutWriter`, packed by ``bassl shard``'s :func:`~bassl.sharding.run.build_shards`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from bassl.config import load_config
from bassl.data.features import write_feature_manifest, write_partition
from bassl.data.movienet import LayoutWriter, annotation_row
from bassl.train.run_log import read_metrics

# A minimal valid-looking JPEG (SOI ... EOI) for layouts whose pixels nobody decodes.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9"

# The loader data set: 56 shots in 3 movies, one shorter than a 17-shot window.
MOVIES = {"tt0000001": 30, "tt0000002": 5, "tt0000003": 21}
W, H = 96, 64
SHARD_BYTES = 96 * 1024  # a few shards, one movie straddling two


def frame(movie: int, shot: int, k: int) -> bytes:
    """A smooth, shot-specific image (smooth so JPEG decoders agree closely)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([(x * 2 + shot * 7) % 256, (y * 3 + movie * 50) % 256, (x + y + k * 40) % 256], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_frames_layout(root: Path, movies: dict[str, int] = MOVIES,
                        splits: dict[str, list[str]] | None = None) -> Path:
    """A MovieNet-SSeg layout with :func:`frame` keyframes; ``splits`` (default: pretrain = every movie, test =
    the last two) name the annotation files, each shot labelled a boundary every 7th shot."""
    splits = splits if splits is not None else {"pretrain": list(movies), "test": list(movies)[1:]}
    layout = LayoutWriter(root)
    for m, (vid, n) in enumerate(movies.items()):
        for s in range(n):
            for k in range(3):
                layout.write_keyframe(vid, s, k, frame(m, s, k))
        layout.write_shot_timing(vid, np.array([[s * 48, s * 48 + 47] for s in range(n)]))
    vid2idx = {v: i for i, v in enumerate(movies)}
    rows: dict[str, list[dict]] = {}
    for name, vids in splits.items():
        rows[name] = []
        for v in vids:
            n = movies[v]
            for s in range(n):
                if name == "pretrain":
                    rows[name].append(annotation_row(v, s, n))
                else:  # scenes of 7 shots; the movie's last shot is -1, as MovieNet's
                    rows[name].append(annotation_row(v, s, n, -1 if s == n - 1 else int(s % 7 == 6), vid2idx[v], s // 7, s // 7))
    layout.write_annotations(rows, vid2idx)
    return root


def write_shards(root: Path, movies: dict[str, int] = MOVIES, splits: dict[str, list[str]] | None = None,
                 on_error: str = "error", damage=None) -> Path:
    """``root/movienet`` (frames) packed by ``bassl shard`` into ``root/shards``; returns the shard directory.
    ``damage(layout_root)`` may break keyframes between the two steps."""
    from bassl.sharding.run import build_shards

    source = write_frames_layout(root / "movienet", movies, splits)
    if damage is not None:
        damage(source)
    build_shards(load_config(), source, root / "shards", shard_bytes=SHARD_BYTES, workers=1, on_error=on_error,
                 progress=False)
    return root / "shards"


def write_layout(root: Path, movies: dict[str, list[int]], num_shot: str = "count", timing: bool = True) -> None:
    """A hand-written layout: movies = vid -> boundary labels per shot (1 = last shot of a scene, -1 allowed);
    train and test hold every movie; keyframes are :data:`JPEG` placeholders."""
    (root / "anno").mkdir(parents=True)
    (root / "scene318" / "shot_movie318").mkdir(parents=True)
    rows = []
    for g, (vid, labels) in enumerate(movies.items()):
        d = root / "240P_frames" / vid
        d.mkdir(parents=True)
        n = len(labels)
        scene = 0
        for s, label in enumerate(labels):
            for k in range(3):
                (d / f"shot_{s:04d}_img_{k}.jpg").write_bytes(JPEG)
            rows.append({"video_id": vid, "shot_id": f"{s:04d}", "num_shot": n if num_shot == "count" else n - 1,
                         "boundary_label": label, "global_video_id": g, "invideo_scene_id": scene, "global_scene_id": 0})
            scene += abs(label)
        if timing:
            lines = [f"{s * 100} {s * 100 + 99} {s * 100 + 10} {s * 100 + 50} {s * 100 + 90}" for s in range(n)]
            (root / "scene318" / "shot_movie318" / f"{vid}.txt").write_text("\n".join(lines) + "\n")
    text = "".join(json.dumps(r) + "\n" for r in rows)
    for split in ("train", "test"):
        (root / "anno" / f"anno.{split}.ndjson").write_text(text)
    (root / "anno" / "anno.pretrain.ndjson").write_text(
        "".join(json.dumps({k: r[k] for k in ("video_id", "shot_id", "num_shot")}) + "\n" for r in rows))
    (root / "anno" / "vid2idx.json").write_text(json.dumps({v: i for i, v in enumerate(movies)}))


# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------


def tiny_cfg(method: str = "bassl", *extra: str):
    return load_config([f"method={method}", "model_preset=tiny", "augment.image_size=32", "augment.eval_resize=40",
                        "pretrain.num_workers=0", *extra])


def overrides(shards: Path, *extra: str) -> list[str]:
    """A tiny, fast pre-training run on ``shards`` (no kNN monitor: the loader set has no labels to score)."""
    return ["model_preset=tiny", "augment.image_size=32", "augment.eval_resize=40", "pretrain.num_workers=0",
            f"data.shards={shards}", "data.root=/nonexistent", "pretrain.effective_batch=8", "pretrain.epochs=2",
            "pretrain.log_every=1", "pretrain.checkpoint_every=2", "pretrain.knn_every_epoch=false", *extra]


def curve(run: Path) -> dict[int, float]:
    return {d["step"]: d["total"] for d in read_metrics(run / "metrics.jsonl")[0]}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child run: without the rendezvous variables this test process set for itself."""
    drop = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def bassl_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "bassl", *args]


def finetune_layout(tmp_path: Path, dim: int = 8, splits: tuple[int, int, int] = (5, 2, 2)) -> tuple[Path, Path]:
    """Movies whose features make the boundary visible (each scene its own direction); ``splits`` = movies in
    train, val, test."""
    rng = np.random.default_rng(0)
    movies, feats = {}, {}
    for i in range(sum(splits)):
        n = 40
        labels = np.zeros(n, int)
        labels[rng.choice(np.arange(3, n - 3), 4, replace=False)] = 1
        labels[-1] = -1
        movies[f"tt00000{i:02d}"] = labels.tolist()
        scene = np.concatenate([[0], np.cumsum(np.abs(labels))[:-1]])
        centres = rng.standard_normal((scene.max() + 1, dim))
        feats[f"tt00000{i:02d}"] = (centres[scene] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)
    root = tmp_path / "movienet"
    write_layout(root, movies)
    anno = root / "anno"
    rows = anno.joinpath("anno.train.ndjson").read_text().splitlines()
    by_movie = lambda ids: "".join(r + "\n" for r in rows if json.loads(r)["video_id"] in ids)  # noqa: E731
    ids = list(movies)
    n_train, n_val, _ = splits
    anno.joinpath("anno.train.ndjson").write_text(by_movie(ids[:n_train]))
    anno.joinpath("anno.val.ndjson").write_text(by_movie(ids[n_train:n_train + n_val]))
    anno.joinpath("anno.test.ndjson").write_text(by_movie(ids[n_train + n_val:]))
    fdir = tmp_path / "features"
    for j, vid in enumerate(ids):
        write_partition(fdir, f"part-{j:05d}", [vid] * 40, np.arange(40), feats[vid], {"method": "instance"})
    write_feature_manifest(fdir, [f"part-{j:05d}" for j in range(len(ids))])
    return root, fdir
