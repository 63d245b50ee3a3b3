"""The Python API: ``from bassl import Segmenter``. A loaded model that turns a video file, or shot features a caller
already has, into scenes; ``bassl segment`` is a thin wrapper over it.

    seg = Segmenter.load("segmenter.pt")     # or a pre-trained encoder.pt: label-free scoring
    scenes = seg.segment("movie.mp4")        # shots, scenes, probabilities, times (Scenes)
    scenes.save("out/")                      # scenes.json, .csv, .edl, chapters, contact sheet, scenes.html
    scenes.split("out/clips")                # one clip per scene
    seg.segment_features(features)           # [N, D] shot features in shot order -> Scenes

The stages are the pipeline's own: ingest (shots and keyframes, :mod:`bassl.video.ingest`) -> shards ->
features (the encoder in eval mode over the keyframes, :func:`bassl.train.extract.encode_shots`) -> a boundary
probability per shot -> scenes (:class:`bassl.scenes.scene_files.Scenes`).

The model is a ``segmenter.pt`` from ``bassl finetune`` (encoder, boundary model and the decision threshold chosen
on val), or a pre-trained ``encoder.pt`` alone. Without a fine-tuned model the score of "shot i ends a scene" is
label-free (:mod:`bassl.train.label_free`): the adjacent-shot dissimilarity of the frozen features, or the
pre-trained CRN's PP head when pre-training measured it better on val; the boundaries are the score's strongest
local maxima, one per ``video.scene_shots`` shots (MovieNet averages ~13).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bassl.config import Config, config_from_dict
from bassl.data.movienet import LayoutWriter, MovieNetSource
from bassl.errors import DataError
from bassl.eval.decision import decide
from bassl.loaders.build import resolve_device
from bassl.loaders.windows import neighbor_window
from bassl.memory import bound_heap
from bassl.models.boundary_model import build_boundary_model
from bassl.models.weights import SEGMENTER_FORMAT, encoder_from, load_model_file
from bassl.scenes.scene_files import Scenes
from bassl.sharding.run import build_shards
from bassl.train.extract import encode_shots
from bassl.train.finetune import predict
from bassl.train.label_free import PPScorer, choose_scorer, label_free_scores
from bassl.video.decode import probe
from bassl.video.ingest import IngestTask, assign_ids, ingest_one, write_annotations


def load_model(path: Path) -> dict[str, Any]:
    """A segmenter that holds its encoder, or an encoder export; anything else is a clear error."""
    doc = load_model_file(path, "pass a segmenter.pt from `bassl finetune` (or `bassl demo`), or an encoder.pt from "
                                "`bassl pretrain` for segmentation without fine-tuning",
                          "; --model takes a segmenter.pt (`bassl finetune`, `bassl demo`) or an encoder.pt "
                          "(`bassl pretrain`, `bassl import-checkpoint`); the video comes first, on its own")
    if doc["format"] == SEGMENTER_FORMAT and doc.get("encoder") is None:
        raise DataError(f"{path}: this segmenter holds no encoder (its features' encoder.pt was missing when it "
                        "was fine-tuned); run `bassl finetune --weights ENCODER.pt` again")
    return doc


def scorer_line(mode: dict[str, Any]) -> str:
    """What scored the shots, and whether the training-free score did better on val when the model was trained."""
    if mode["mode"] != "fine-tuned":
        name = {"pp": "the pre-trained CRN's pseudo-boundary (PP) head", "adjacent":
                "adjacent-shot dissimilarity of the frozen features"}[mode.get("scorer", "adjacent")]
        return f"{name} (no fine-tuning; {mode.get('scorer_reason', 'the default')})"
    line = f"fine-tuned boundary model, head {mode['boundary_head']}"
    if "decision" in mode:
        line += f", boundaries by {mode['decision']['rule']} at {mode['decision']['value']:.3g} (chosen on val)"
    val, free = mode.get("val_ap"), mode.get("training_free_val_ap")
    if val is not None and free is not None:
        line += f" (val AP {val:.1f}; the training-free adjacent score: {free:.1f})"
        if free > val:
            advice = "model.boundary.head=similarity, " if mode["boundary_head"] == "paper" else ""
            line += ("; warning: the training-free score was better on val; `--model ENCODER.pt` uses it, or "
                     f"fine-tune again ({advice}finetune.base_lr=auto)")
    return line




class Segmenter:
    """A model loaded for segmentation (see the module docstring). ``cfg`` supplies the video and loader settings
    (``video.*``, ``pretrain.loader``); the model's own settings come from the file."""

    def __init__(self, model: dict[str, Any], path: Path, cfg: Config, device: torch.device) -> None:
        self.path, self.cfg, self.device = Path(path), cfg, device
        self.encoder, self.encoder_cfg = encoder_from(model["encoder"]["config"], model["encoder"]["state"], str(path))
        self.encoder.to(device)
        self.fine_tuned = model["format"] == SEGMENTER_FORMAT
        if self.fine_tuned:
            self.boundary_cfg = config_from_dict(model["config"], source=str(path))
            self.boundary = build_boundary_model(self.boundary_cfg, self.encoder.feature_dim)
            self.boundary.load_state_dict(model["boundary"], strict=True)
            self.boundary.to(device).eval()
            self.threshold = float(model["threshold"])
            # the rule chosen on val; a segmenter from before decision rules thresholds at its val threshold
            self.decision = model.get("decision") or {"rule": "threshold", "value": self.threshold}
            self.mode = {"mode": "fine-tuned", "boundary_head": self.boundary_cfg.model.boundary.head,
                         "threshold": self.threshold, "decision": self.decision, "val_ap": model.get("val_ap"),
                         "training_free_val_ap": model.get("training_free_val_ap")}
        else:
            self.pp = PPScorer.from_export(model, self.encoder_cfg, self.encoder.feature_dim)
            scorer, why = choose_scorer(model.get("label_free"), self.pp is not None)
            if cfg.video.label_free_scorer != "auto":
                scorer, why = cfg.video.label_free_scorer, "video.label_free_scorer"
            self.scorer = scorer
            self.mode = {"mode": "frozen features (no fine-tuning)", "scorer": scorer, "scorer_reason": why,
                         "label_free_aps": (model.get("label_free") or {}).get("aps"),
                         "scene_shots": cfg.video.scene_shots}

    @classmethod
    def load(cls, path: str | Path, cfg: Config | None = None, device: str | torch.device | None = None) -> Segmenter:
        """A ``segmenter.pt`` or an ``encoder.pt``; ``cfg`` defaults to the built-in config."""
        from bassl.config import load_config

        if cfg is not None and not isinstance(cfg, Config):
            raise TypeError(f"cfg: a {type(cfg).__name__}; give a bassl Config, e.g. "
                            "bassl.config.load_config(['video.detector=content'])")
        return cls(load_model(Path(path)), Path(path), cfg if cfg is not None else load_config(), resolve_device(device))

    def describe(self) -> str:
        """What scores the shots, as ``bassl segment`` prints it."""
        return scorer_line(self.mode)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``[N]`` probability that shot i ends a scene, ``[N]`` bool decisions) for one video's ``[N, D]``
        features in shot order; the last shot always ends a scene. Label-free, the adjacent scorer's "probability"
        is its dissimilarity halved: a score in [0, 1], ranked like one but not calibrated."""
        feats = self._checked(features)
        if self.fine_tuned:
            rows = neighbor_window(np.arange(len(feats)), len(feats), self.boundary_cfg.window.neighbor_size)  # [N, 2K+1]
            prob = predict(self.boundary, torch.from_numpy(feats), rows, self.device)
            ends = decide(prob, self.decision["rule"], self.decision["value"])
        else:
            prob = label_free_scores(self.scorer, feats, self.pp, self.device)
            ends = decide(prob, "count", self.cfg.video.scene_shots)
        ends[-1] = True
        return prob, ends

    def _checked(self, features: np.ndarray) -> np.ndarray:
        """``features`` as ``[N, D]`` float32, or a ValueError that says what is wrong with them."""
        feats = np.asarray(features, dtype=np.float32)
        d = self.encoder.feature_dim
        if feats.ndim != 2 or feats.shape[1] != d:
            raise ValueError(f"features of shape {list(feats.shape)}: this model takes [N, {d}] (one row per shot)")
        if not len(feats):
            raise ValueError("no features: a video has at least one shot")
        if not np.isfinite(feats).all():
            rows = np.flatnonzero(~np.isfinite(feats).all(axis=1))
            raise ValueError(f"features hold NaN or inf (shots {rows[:5].tolist()}{' ...' if len(rows) > 5 else ''})")
        return feats

    def segment_features(self, features: np.ndarray, shot_frames: np.ndarray | None = None,
                         shot_times: np.ndarray | None = None, fps: float = 1.0, video: str | Path = "") -> Scenes:
        """Scenes from features a caller already has (``[N, D]``, shot order). Without ``shot_frames`` shot i is frame
        i; without ``shot_times`` times are frames / ``fps``."""
        n = len(self._checked(features))
        if not fps > 0:
            raise ValueError(f"fps {fps}: give the video's frame rate (> 0)")
        for name, given in (("shot_frames", shot_frames), ("shot_times", shot_times)):
            if given is not None and (np.ndim(given) != 2 or len(given) != n or np.shape(given)[1] < 2):
                raise ValueError(f"{name} of shape {list(np.shape(given))}: give [{n}, 2] (start, end of each shot)")
        frames_ = np.stack([np.arange(n), np.arange(n)], axis=1) if shot_frames is None else np.asarray(shot_frames)[:, :2]
        times = (np.stack([frames_[:, 0], frames_[:, 1] + 1], axis=1) / fps if shot_times is None
                 else np.asarray(shot_times, dtype=np.float64))
        prob, ends = self.score(features)
        return Scenes(Path(video), fps, fps, int(frames_[-1, 1]) + 1 if n else 0, frames_, times, prob, ends,
                      extra={"model": str(self.path.resolve()), **self.mode})

    def features(self, video: str | Path) -> np.ndarray:
        """``[N, D]`` eval-mode shot features of ``video`` in shot order (shots found as ``segment`` finds them)."""
        with tempfile.TemporaryDirectory(prefix="bassl-features-") as work:
            return self._prepare(Path(video).resolve(), Path(work))[2]

    def segment(self, video: str | Path, work_dir: str | Path | None = None) -> Scenes:
        """Shots, keyframes and features of ``video`` (in ``work_dir``, a temporary directory by default, kept as
        long as the returned Scenes), then its scenes."""
        start = time.perf_counter()
        video = Path(video).resolve()
        temp = None
        if work_dir is None:
            temp = tempfile.TemporaryDirectory(prefix="bassl-segment-")
            work_dir = temp.name
        rec, timing, feats, t_ingest, keyframe = self._prepare(video, Path(work_dir))
        t_features = time.perf_counter()
        prob, ends = self.score(feats)
        # media_start: the first frame's time on the file's clock, where a player's timeline for it starts
        media_start = rec["start"] if "start" in rec else probe(video).start  # a record from before "start" was kept
        extra = {"model": str(self.path.resolve()), **self.mode, "detector": rec["detector"],
                 "media_start": float(media_start)}
        scenes = Scenes(video, float(rec["fps"]), float(rec["nominal_fps"]), int(rec["frames"]), timing[:, :2],
                        np.asarray(rec["shot_times"], dtype=np.float64), prob, ends, extra=extra, keyframe=keyframe,
                        warning=rec.get("warning"), keep_alive=temp)
        end = time.perf_counter()
        scenes.timing = {"ingest_s": t_ingest - start, "features_s": t_features - t_ingest, "total_s": end - start,
                         "realtime_factor": rec["duration"] / (end - start)}
        return scenes

    def _prepare(self, video: Path, work: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray, float, Callable]:
        """(ingest record, ``[N, 2+]`` shot frames, ``[N, D]`` features, when ingest ended, keyframe reader)."""
        if video.is_dir():
            raise DataError(f"{video} is a folder: segment takes one video file (`bassl ingest` reads folders)")
        if not video.is_file():
            raise DataError(f"{video}: no such video file")
        if self.cfg.video.bound_heap:
            bound_heap()  # memory independent of the video's length (bassl/memory.py)

        # ---- shots and keyframes ------------------------------------------------------------------------
        vid = assign_ids([video])[video]
        held = LayoutWriter(work / "layout").frames_root
        if held.is_dir() and any(p.name != vid for p in held.iterdir()):
            shutil.rmtree(work / "layout")  # it caches one video's ingest (kept for this one); another's is removed
        rec = ingest_one(IngestTask(video, vid, work / "layout", self.cfg.video, "error")).record
        write_annotations(work / "layout")
        timing = MovieNetSource(work / "layout").shot_timing(vid)  # [N, 2+] start, end frame
        t_ingest = time.perf_counter()

        # ---- features: the encoder in eval mode, as extraction runs it ------------------------------------
        trained = self.encoder_cfg
        enc_cfg = replace(trained, data=replace(trained.data, shards=str(work / "shards")),
                          pretrain=replace(trained.pretrain, loader=self.cfg.pretrain.loader,
                                           num_workers=self.cfg.pretrain.num_workers),
                          extract=replace(trained.extract, batch_size=self.cfg.extract.batch_size))
        if (work / "shards").exists():
            shutil.rmtree(work / "shards")
        build_shards(enc_cfg, work / "layout", work / "shards", workers=1, progress=False)
        _, shot_ids, feats = encode_shots(enc_cfg, self.encoder, self.device, split=None)
        feats = feats[np.argsort(shot_ids)]  # [N, D], shot order
        layout = LayoutWriter(work / "layout")

        def keyframe(shot: int):
            from PIL import Image

            return Image.open(layout.keyframe_path(vid, shot, 1))

        return rec, timing, feats, t_ingest, keyframe
