"""The label-free scorers of "shot i ends a scene": one place for the CLI, the API, the demo and the monitors.

Two scorers need no labels (method.md §6.10):

- ``adjacent``: the adjacent-shot dissimilarity of the frozen features
  (:func:`bassl.eval.frozen_features.adjacent_dissimilarity`);
- ``pp``: the pre-trained CRN and its pseudo-boundary (PP) head, applied to each shot's 17-shot window
  (clip-and-repeat, the shot at the centre) and read as P(class 1) at the centre, as fine-tuning would.

Pre-training measures both on labelled val movies (:mod:`bassl.train.pretext_monitor`) and stores the result in
``encoder.pt`` (``label_free``); :func:`choose_scorer` picks the better one from there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bassl.eval.frozen_features import adjacent_dissimilarity
from bassl.loaders.windows import neighbor_window
from bassl.models.crn import ContextualRelationNetwork
from bassl.models.heads import pseudo_boundary_head

SCORERS = ("adjacent", "pp")
CHUNK = 1024  # windows per forward pass: memory does not grow with the video's length


def pp_probability(head_pp: nn.Module, centre_states: torch.Tensor) -> torch.Tensor:
    """``[n, H]`` CRN states of the windows' centre shots -> ``[n]`` P(PP class 1), the pseudo-boundary class."""
    return torch.softmax(head_pp(centre_states).float(), dim=1)[:, 1]


@torch.no_grad()
def pp_window_scores(crn: nn.Module, head_pp: nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """``[N, S, D]`` windows -> ``[N]`` P(pseudo-boundary) of each window's centre shot (eval mode)."""
    out = []
    for i in range(0, windows.shape[0], CHUNK):
        h, _ = crn(windows[i : i + CHUNK])  # [n, S, H]
        out.append(pp_probability(head_pp, h[:, h.shape[1] // 2]))
    return torch.cat(out) if out else torch.zeros(0)


def pp_scores(crn: nn.Module, head_pp: nn.Module, features: np.ndarray, k: int,
              device: torch.device | str = "cpu") -> np.ndarray:
    """``[n]`` PP score of every shot of one movie from its ``[n, D]`` features (shot order)."""
    rows = neighbor_window(np.arange(len(features)), len(features), k)  # [n, 2K+1]
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    out = [pp_window_scores(crn, head_pp, x[torch.from_numpy(rows[i : i + CHUNK])].to(device)).cpu()
           for i in range(0, len(rows), CHUNK)]  # x[rows]: [<=CHUNK, 2K+1, D]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


class PPScorer(nn.Module):
    """The CRN and PP head of an export (``encoder.pt``), rebuilt for scoring."""

    def __init__(self, crn: nn.Module, head_pp: nn.Module, k: int) -> None:
        super().__init__()
        self.crn, self.head_pp, self.k = crn, head_pp, k

    @classmethod
    def from_export(cls, doc: dict[str, Any], cfg: Any, feature_dim: int) -> PPScorer | None:
        """None when the export has no CRN or no PP head (the shot-level methods, or PP switched off)."""
        if not (isinstance(doc.get("crn"), dict) and isinstance(doc.get("head_pp"), dict)):
            return None
        crn = ContextualRelationNetwork(feature_dim, cfg.model.crn)
        crn.load_state_dict(doc["crn"], strict=True)
        head = pseudo_boundary_head(cfg.model.crn.hidden_size)
        head.load_state_dict(doc["head_pp"], strict=True)
        return cls(crn, head, cfg.window.neighbor_size).eval()

    def scores(self, features: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
        self.to(device).eval()
        return pp_scores(self.crn, self.head_pp, features, self.k, device)


def label_free_scores(scorer: str, features: np.ndarray, pp: PPScorer | None = None,
                      device: torch.device | str = "cpu") -> np.ndarray:
    """``[n]`` score in [0, 1] of each shot of one movie by ``scorer`` (``adjacent`` or ``pp``): what
    ``scenes.json`` stores as ``boundary_prob`` and the scene page draws on a 0-1 axis."""
    if scorer == "adjacent":
        return adjacent_dissimilarity(features) / 2  # 1 - cos spans [0, 2] (features of either sign); same order
    if scorer == "pp":
        if pp is None:
            raise ValueError("the pp scorer needs a pre-trained CRN and PP head (an encoder.pt of bassl or "
                             "bassl_shotcol with loss.pp on)")
        return pp.scores(features, device)
    raise ValueError(f"label-free scorer {scorer!r}; choose one of {', '.join(SCORERS)}")


def choose_scorer(label_free: dict[str, Any] | None, has_pp: bool) -> tuple[str, str]:
    """(scorer, why): ``pp`` only when the export measured it better than ``adjacent`` on labelled movies."""
    val = (label_free or {}).get("aps") or {}
    if not has_pp:
        return "adjacent", "no PP head in this encoder"
    if "pp" not in val or "adjacent" not in val:
        return "adjacent", "no label-free measurement in this encoder (pre-trained without labelled movies)"
    split = (label_free or {}).get("split", "val")
    if val["pp"] > val["adjacent"]:
        return "pp", f"PP head AP {val['pp']:.1f} > adjacent {val['adjacent']:.1f} on {split}"
    return "adjacent", f"adjacent AP {val['adjacent']:.1f} >= PP head {val['pp']:.1f} on {split}"
