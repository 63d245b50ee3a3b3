"""Monitors of BaSSL's pretext tasks against real scene labels (method.md §6.10). A monitor only: it changes
nothing in the run.

BaSSL's claim is that its CRN-side tasks teach where scenes change. Each epoch, on labelled movies (val, else
train), with the encoder, CRN and heads in eval mode on the eval transform's features:

- ``pb_exact`` / ``pb_within1``: in 17-shot windows that lie inside one movie and hold exactly one real
  boundary, how often the DTW pseudo-boundary (on the NCE-head embeddings, the edge shots as the sparse pair)
  is that boundary shot, exactly and within one shot (%). A uniform guess over 16 positions hits 6.25 %.
- ``pp_ap``: the PP head's zero-shot AP of "the window's centre shot ends a scene" over every labelled shot
  (``pp_chance`` is the share of positives, the AP of a random score), beside ``adjacent_ap``, the training-free
  adjacent-shot dissimilarity on the same shots: the two label-free scorers of :mod:`bassl.train.label_free`.
- ``pp_self_ap``: the PP head's AP at its own task in eval mode (which shot of the window is the DTW pseudo-boundary;
  chance 1/S), with the mean PP probability at the centre and at the edge positions and the share of windows
  whose pseudo-boundary is the centre shot: they separate "PP did not learn its task" from "PP learned it, but
  what it learned is not where real boundaries are" (method.md §6.10).
- ``cgm_acc``: CGM's balanced accuracy (%, chance 50) on real pairs (centre, other shot of the window):
  same scene = class 1, other scene = class 0, the mean of the accuracies on the two kinds of pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bassl.config import Config
from bassl.data.movienet import MovieNetSource
from bassl.errors import BasslError
from bassl.eval.frozen_features import adjacent_dissimilarity
from bassl.eval.metrics import average_precision
from bassl.loaders.windows import neighbor_window
from bassl.models import PretrainModel
from bassl.train.distributed import DistInfo
from bassl.train.extract import encode_split_on_main, movie_features
from bassl.train.label_free import CHUNK, pp_probability
from bassl.train.precision import inference_precision
from bassl.train.pseudo_boundary import pseudo_boundary


@dataclass
class LabelledWindows:
    """Every labelled shot of some movies as the centre of its clip-and-repeat window."""

    x: torch.Tensor  # [N, S, D] features
    label: np.ndarray  # [N] centre label 0/1, or -100 (ignored)
    adjacent: np.ndarray  # [N] the adjacent-shot dissimilarity of the centre shot (training-free score)
    boundary_pos: np.ndarray  # [N] position 0..S-2 of the window's only real boundary; -1 if not exactly one
    same_scene: np.ndarray  # [N, S] bool: the shot at position j is in the centre's scene
    pair_ok: np.ndarray  # [N, S] bool: a real pair (centre, j): window inside the movie and labelled, j != centre

    def __len__(self) -> int:
        return len(self.label)


def labelled_windows(movies: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int) -> LabelledWindows:
    """Windows from ``(features [n, D] in shot order, labelled shot ids [m], labels [m])`` per movie.

    A label says "this shot is the last of its scene" (1) or not (0); -100 is unknown. Only windows that lie
    inside the movie (no repeated edge shot) with every shot but the last labelled count for the pseudo-boundary
    hit rate and for CGM's pairs; PP's AP uses every labelled shot, as fine-tuning scores them.
    """
    xs, labels, adjacent, pos, same, ok = [], [], [], [], [], []
    S = 2 * k + 1
    for feats, shot_ids, lab in movies:
        n = len(feats)
        full = np.full(n, -100, dtype=np.int64)
        full[shot_ids] = lab
        keep = shot_ids[lab >= 0]
        rows = neighbor_window(keep, n, k)  # [m, S]
        inside = (keep - k >= 0) & (keep + k <= n - 1)
        win_lab = full[rows[:, :-1]]  # [m, S-1]: a boundary after position p < S-1 lies inside the window
        clean = inside & (win_lab >= 0).all(axis=1)
        one = clean & ((win_lab == 1).sum(axis=1) == 1)
        pos.append(np.where(one, (win_lab == 1).argmax(axis=1), -1))
        ends = (full == 1).astype(np.int64)
        scene = np.cumsum(ends) - ends  # [n]: boundaries strictly before each shot
        same.append(scene[rows] == scene[keep][:, None])
        ok.append(clean[:, None] & (np.arange(S) != k)[None])
        xs.append(torch.from_numpy(np.asarray(feats, dtype=np.float32))[torch.from_numpy(rows)])
        labels.append(full[keep])
        adjacent.append(adjacent_dissimilarity(feats)[keep])
    return LabelledWindows(torch.cat(xs), np.concatenate(labels), np.concatenate(adjacent), np.concatenate(pos),
                           np.concatenate(same), np.concatenate(ok))


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the accuracies on the true and on the false cases (%); NaN when one kind is missing."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    if not truth.any() or truth.all():
        return float("nan")
    return 50.0 * (float(pred[truth].mean()) + float((~pred[~truth]).mean()))


def pp_self_ap(prob: np.ndarray, bd: np.ndarray) -> float:
    """PP's own task: the AP of ``prob [N, S]`` at finding each window's DTW pseudo-boundary ``bd [N]`` among its
    S shots (chance 1/S)."""
    own = np.arange(prob.shape[1])[None] == bd[:, None]  # [N, S]
    return average_precision(own.ravel(), prob.ravel())


@torch.no_grad()
def monitor_windows(win: LabelledWindows, embed: Callable[[torch.Tensor], torch.Tensor],
                    states: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    pp_prob: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    cgm_same: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """The monitors from the model's parts as functions: ``embed [n, S, D] -> [n, S, E]`` unit vectors,
    ``states [n, S, D] -> [n, S, H]`` CRN states, ``pp_prob [n, H] -> [n]``, ``cgm_same ([n, H], [n, H]) -> [n]``
    bool. Without ``states`` only the pseudo-boundary hit rates (and the adjacent AP) are measured."""
    k = win.x.shape[1] // 2
    bd, pp, cgm_pred = [], [], []
    for i in range(0, len(win), CHUNK):
        x = win.x[i : i + CHUNK]
        emb = embed(x)  # [n, S, E]
        bd.append(pseudo_boundary(emb[:, [0, -1]], emb).bd.cpu().numpy())
        if states is None:
            continue
        h = states(x)  # [n, S, H]
        if pp_prob is not None:
            pp.append(pp_prob(h.flatten(0, 1)).float().view(h.shape[:2]).cpu().numpy())  # [n, S]: every position
        if cgm_same is not None:
            ok = torch.from_numpy(win.pair_ok[i : i + CHUNK])  # [n, S]
            rows, cols = ok.nonzero(as_tuple=True)
            cgm_pred.append(cgm_same(h[rows, k], h[rows, cols]).cpu().numpy())
    bd_all = np.concatenate(bd)
    one = win.boundary_pos >= 0
    scored = win.label >= 0
    out = {"windows_one_boundary": float(one.sum()), "pp_chance": 100.0 * float((win.label[scored] == 1).mean()),
           "adjacent_ap": average_precision(win.label[scored], win.adjacent[scored])}
    if one.any():  # scenes shorter than half a window leave none
        out["pb_exact"] = 100.0 * float((bd_all[one] == win.boundary_pos[one]).mean())
        out["pb_within1"] = 100.0 * float((np.abs(bd_all[one] - win.boundary_pos[one]) <= 1).mean())
    if pp:
        prob = np.concatenate(pp)  # [N, S]
        out["pp_ap"] = average_precision(win.label[scored], prob[scored, k])
        out["pp_self_ap"] = pp_self_ap(prob, bd_all)
        out["pp_centre_mean"] = float(prob[:, k].mean())  # where zero-shot scoring reads it...
        out["pp_edge_mean"] = float(prob[:, [0, 1, -2, -1]].mean())  # ...and where DTW puts most pseudo-boundaries
        out["pb_at_centre"] = 100.0 * float((bd_all == k).mean())  # % of windows whose pseudo-boundary is the centre
    if cgm_pred and win.pair_ok.any():
        out["cgm_acc"] = balanced_accuracy(win.same_scene[win.pair_ok], np.concatenate(cgm_pred))
    return out


def model_monitors(model: PretrainModel, win: LabelledWindows, device: torch.device) -> dict[str, float]:
    """:func:`monitor_windows` with the pre-training model's own heads (eval mode; its mode is restored)."""
    was_training = model.training
    model.eval()

    def to_dev(f: Callable) -> Callable:
        return lambda *a: f(*(t.to(device) for t in a))

    states = to_dev(lambda x: model.crn(x)[0]) if model.crn is not None else None
    pp_prob = (lambda h: pp_probability(model.head_pp, h)) if model.head_pp is not None else None
    cgm_same = None
    if model.head_cgm is not None:
        def cgm_same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            pairs = torch.cat([F.normalize(a, dim=-1), F.normalize(b, dim=-1)], dim=1)  # [n, 2H], as cgm_loss
            return model.head_cgm(pairs).argmax(dim=1) == 1
    try:
        return monitor_windows(win, to_dev(model.head_nce), states, pp_prob, cgm_same)
    finally:
        model.train(was_training)


def labelled_split(cfg: Config) -> tuple[MovieNetSource, str] | str:
    """(dataset, split) with boundary labels to monitor on, val before train; else the reason there is none."""
    try:
        source = MovieNetSource.from_config(cfg.data)
    except BasslError as e:
        return str(e)
    for split in ("val", "train"):
        try:
            movies = source.split(split)
        except BasslError:
            continue
        if movies and all(a.labels is not None for a in movies.values()):
            return source, split
    return "the layout has no val or train movies with boundary labels"


def split_monitors(cfg: Config, model: PretrainModel, movies: dict[str, np.ndarray], source: MovieNetSource,
                   split: str, device: torch.device) -> dict[str, Any]:
    """The monitors on ``split`` from each movie's ``[n, D]`` features (``movies``: video id -> features)."""
    anns = source.split(split)
    data = [(movies[vid], ann.shot_ids, ann.boundary_labels(cfg.data.negative_label))
            for vid, ann in anns.items() if vid in movies]
    if not data:
        return {}
    return {"split": split, **model_monitors(model, labelled_windows(data, cfg.window.neighbor_size), device)}


def epoch_monitors(cfg: Config, model: PretrainModel, dist: DistInfo, precision: str) -> dict[str, Any] | str | None:
    """The monitors on rank 0 (None elsewhere), or on every rank the one-line reason they were skipped.
    Every rank must call it (the features are encoded by all ranks)."""
    found = labelled_split(cfg)
    if isinstance(found, str):
        return found
    source, split = found
    encoded = encode_split_on_main(cfg, model.encoder, dist, split, inference_precision(precision))
    if encoded is None:
        return None
    return split_monitors(cfg, model, movie_features(*encoded), source, split, dist.device)


def describe(m: dict[str, Any]) -> str:
    """One line: what each monitor says, with its chance level."""
    parts = [f"pseudo-boundary hits {m['pb_exact']:.1f} % exact, {m['pb_within1']:.1f} % within 1 shot "
             f"(uniform 6.2 %) in {int(m['windows_one_boundary'])} one-boundary windows" if "pb_exact" in m
             else "no window holds exactly one boundary (no pseudo-boundary hit rate)"]
    if "pp_ap" in m:
        parts.append(f"PP zero-shot AP {m['pp_ap']:.1f} (chance {m['pp_chance']:.1f}, adjacent {m['adjacent_ap']:.1f})")
    else:
        parts.append(f"adjacent AP {m['adjacent_ap']:.1f} (chance {m['pp_chance']:.1f})")
    if "cgm_acc" in m:
        parts.append(f"CGM balanced accuracy {m['cgm_acc']:.1f} % (chance 50)")
    return f"on {m['split']}: " + "; ".join(parts)
