"""``bassl segment VIDEO --model M --out DIR``: one video file in, its scenes out.

The stages are the pipeline's own: ingest (shots and keyframes, :mod:`bassl.video.ingest`) -> shards ->
features (the encoder in eval mode over the keyframes, :func:`bassl.train.extract.encode_shots`) -> a boundary
probability per shot -> scenes -> files (:mod:`bassl.video.scene_files`).

``M`` is a ``segmenter.pt`` from ``bassl finetune`` (encoder, CRN, head and the decision threshold chosen on
val), or a pre-trained ``encoder.pt`` alone. Without a fine-tuned model the score of "shot i ends a scene" is
label-free (:mod:`bassl.train.label_free`): the adjacent-shot dissimilarity of the frozen features, or the
pre-trained CRN's PP head when pre-training measured it better on val; the boundaries are the score's strongest
local maxima, one per ``video.scene_shots`` shots (MovieNet averages ~13).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bassl.config import Config, config_from_dict
from bassl.data.movienet import LayoutWriter, MovieNetSource
from bassl.errors import DataError
from bassl.loaders.build import resolve_device
from bassl.loaders.windows import neighbor_window
from bassl.models.boundary_model import build_boundary_model
from bassl.models.encoder import build_encoder
from bassl.models.weights import FORMAT as WEIGHTS_FORMAT
from bassl.models.weights import SEGMENTER_FORMAT
from bassl.sharding.run import build_shards
from bassl.train.extract import encode_shots
from bassl.train.label_free import PPScorer, choose_scorer, label_free_scores
from bassl.video.ingest import IngestTask, assign_ids, ingest_one, write_annotations
from bassl.video.scene_files import Scenes, split_clips, write_scene_files


def load_model(path: Path) -> dict[str, Any]:
    """A segmenter or an encoder export, read without unpickling any object; anything else is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a segmenter.pt from `bassl finetune` (or `bassl demo`), or an "
                        "encoder.pt from `bassl pretrain` for segmentation without fine-tuning")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal means: not a file of ours
        raise DataError(f"{path}: not a bassl model file ({type(e).__name__}: {e})") from e
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt == SEGMENTER_FORMAT:
        if doc.get("encoder") is None:
            raise DataError(f"{path}: this segmenter holds no encoder (its features' encoder.pt was missing when it "
                            "was fine-tuned); run `bassl finetune --weights ENCODER.pt` again")
        return doc
    if fmt == WEIGHTS_FORMAT and "encoder" in doc:
        return {"format": WEIGHTS_FORMAT, "encoder": {"config": doc["config"], "state": doc["encoder"]},
                **{k: doc[k] for k in ("crn", "head_pp", "label_free") if k in doc}}
    raise DataError(f"{path}: format {fmt!r}; expected a segmenter.pt ({SEGMENTER_FORMAT}) or an encoder.pt ({WEIGHTS_FORMAT})")


def frozen_boundaries(scores: np.ndarray, scene_shots: float, radius: int = 2) -> np.ndarray:
    """``[N]`` bool: the ``round(N / scene_shots) - 1`` highest local maxima (within ``radius`` shots) of
    ``scores``, never the last shot (which ends the last scene anyway)."""
    n = len(scores)
    want = max(0, round(n / scene_shots) - 1)
    padded = np.pad(scores, radius, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)  # [N, 2r+1]
    peaks = np.flatnonzero((scores >= windows.max(axis=1)) & (np.arange(n) < n - 1))
    chosen = peaks[np.argsort(-scores[peaks], kind="stable")[:want]]
    out = np.zeros(n, dtype=bool)
    out[chosen] = True
    return out


def scorer_line(mode: dict[str, Any]) -> str:
    """What scored the shots, and whether the training-free score did better on val when the model was trained."""
    if mode["mode"] != "fine-tuned":
        name = {"pp": "the pre-trained CRN's pseudo-boundary (PP) head", "adjacent":
                "adjacent-shot dissimilarity of the frozen features"}[mode.get("scorer", "adjacent")]
        return f"{name} (no fine-tuning; {mode.get('scorer_reason', 'the default')})"
    line = f"fine-tuned boundary model, head {mode['boundary_head']}"
    val, free = mode.get("val_ap"), mode.get("training_free_val_ap")
    if val is not None and free is not None:
        line += f" (val AP {val:.1f}; the training-free adjacent score: {free:.1f})"
        if free > val:
            advice = "model.boundary.head=similarity, " if mode["boundary_head"] == "paper" else ""
            line += ("; warning: the training-free score was better on val; `--model ENCODER.pt` uses it, or "
                     f"fine-tune again ({advice}finetune.base_lr=auto)")
    return line


def segment(cfg: Config, video: str | Path, model_path: str | Path, out_dir: str | Path, split: bool = False,
            progress: bool = True) -> dict[str, Any]:
    """Segment ``video`` into scenes with the model at ``model_path``; everything goes into ``out_dir``."""
    start = time.perf_counter()
    video, out_dir = Path(video).resolve(), Path(out_dir).resolve()
    if not video.is_file():
        raise DataError(f"{video}: no such video file")
    model = load_model(Path(model_path))
    device = resolve_device(None)
    work = out_dir / "work"

    # ---- shots and keyframes ------------------------------------------------------------------------
    vid = assign_ids([video])[video]
    rec = ingest_one(IngestTask(video, vid, work / "layout", cfg.video, "error")).record
    if rec.get("warning") and progress:
        print(f"[segment] warning: {rec['warning']}")
    write_annotations(work / "layout")
    timing = MovieNetSource(work / "layout").shot_timing(vid)  # [N, 2] start, end frame
    t_ingest = time.perf_counter()

    # ---- features: the encoder in eval mode, as extraction runs it ------------------------------------
    trained = config_from_dict(model["encoder"]["config"], source=str(model_path))  # builds the encoder and its transform
    enc_cfg = replace(trained, data=replace(trained.data, shards=str(work / "shards")),
                      pretrain=replace(trained.pretrain, loader=cfg.pretrain.loader, num_workers=cfg.pretrain.num_workers),
                      extract=replace(trained.extract, batch_size=cfg.extract.batch_size))
    if (work / "shards").exists():
        shutil.rmtree(work / "shards")
    build_shards(enc_cfg, work / "layout", work / "shards", workers=1, progress=False)
    encoder = build_encoder(enc_cfg.model.encoder)
    encoder.load_state_dict(model["encoder"]["state"], strict=True)
    encoder.to(device).eval()
    _, shot_ids, feats = encode_shots(enc_cfg, encoder, device, split=None)
    order = np.argsort(shot_ids)
    feats = feats[order]  # [N, D], shot order
    t_features = time.perf_counter()

    # ---- boundary probabilities -----------------------------------------------------------------------
    if model["format"] == SEGMENTER_FORMAT:
        saved = model["config"]
        if "boundary" not in saved.get("model", {}):  # a segmenter from before model.boundary: the paper's head
            saved = {**saved, "model": {**saved.get("model", {}), "boundary": {"head": "paper"}}}
        ft_cfg = config_from_dict(saved, source=str(model_path))
        boundary = build_boundary_model(ft_cfg, feats.shape[1])
        boundary.load_state_dict(model["boundary"], strict=True)
        boundary.to(device).eval()
        rows = neighbor_window(np.arange(len(feats)), len(feats), ft_cfg.window.neighbor_size)  # [N, 2K+1]
        with torch.no_grad():  # 1,024 windows at a time: memory does not grow with the video's length
            prob = torch.cat([torch.softmax(boundary(torch.from_numpy(feats[rows[i:i + 1024]]).float().to(device)),
                                            dim=1)[:, 1] for i in range(0, len(rows), 1024)])  # x: [<=1024, 2K+1, D]
        prob = prob.cpu().numpy().astype(np.float64)
        threshold = float(model["threshold"])
        ends = prob >= threshold
        mode = {"mode": "fine-tuned", "boundary_head": ft_cfg.model.boundary.head, "threshold": threshold,
                "val_ap": model.get("val_ap"), "training_free_val_ap": model.get("training_free_val_ap")}
    else:
        pp = PPScorer.from_export(model, trained, feats.shape[1])
        scorer, why = choose_scorer(model.get("label_free"), pp is not None)
        if cfg.video.label_free_scorer != "auto":
            scorer, why = cfg.video.label_free_scorer, "video.label_free_scorer"
        prob = label_free_scores(scorer, feats, pp, device)
        ends = frozen_boundaries(prob, cfg.video.scene_shots)
        mode = {"mode": "frozen features (no fine-tuning)", "scorer": scorer, "scorer_reason": why,
                "label_free_aps": (model.get("label_free") or {}).get("aps"), "scene_shots": cfg.video.scene_shots}
    ends[-1] = True
    scenes = Scenes(video, float(rec["fps"]), float(rec["nominal_fps"]), int(rec["frames"]), timing[:, :2],
                    np.asarray(rec["shot_times"], dtype=np.float64), prob, ends)

    # ---- files --------------------------------------------------------------------------------------------
    layout = LayoutWriter(work / "layout")

    def keyframe(shot: int):
        from PIL import Image

        return Image.open(layout.keyframe_path(vid, shot, 1))

    extra = {"model": str(Path(model_path).resolve()), **mode, "detector": rec["detector"]}
    files = write_scene_files(out_dir, scenes, extra, keyframe)
    doc = scenes.to_json(extra)
    if split:
        doc["clips"] = split_clips(video, doc, out_dir / "clips")
        files["clips"] = out_dir / "clips"
    end = time.perf_counter()
    doc["timing"] = {"ingest_s": t_ingest - start, "features_s": t_features - t_ingest, "total_s": end - start,
                     "realtime_factor": rec["duration"] / (end - start)}
    if progress:
        print(f"[segment] {video.name}: {len(doc['shots'])} shots, {len(doc['scenes'])} scenes "
              f"({mode['mode']}) in {end - start:.1f} s ({doc['timing']['realtime_factor']:.1f}x real time)")
        print(f"[segment] scorer: {scorer_line(mode)}")
        for name, path in files.items():
            print(f"[segment] {name}: {path}")
    return doc
