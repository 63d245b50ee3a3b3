"""Batched pseudo-boundaries == the original's per-sample tslearn DTW, ties and near-ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw_path_from_metric

from bassl.train.pseudo_boundary import pseudo_boundary, pseudo_boundary_from_cost

S = 17


def _tslearn(cost: np.ndarray) -> tuple[int, np.ndarray]:
    """The original's bd (last path position whose sparse index is 0) and the path's groups [2, S]."""
    path, _ = dtw_path_from_metric(cost, metric="precomputed")
    path = np.asarray(path)
    groups = np.zeros(cost.shape, dtype=bool)
    groups[path[:, 0], path[:, 1]] = True
    return int(np.where(path[:, 0] == 0)[0][-1]), groups


def _costs_from_embeddings(emb: np.ndarray) -> np.ndarray:
    """Float32 cosine costs exactly as the original forms them: 1 - s d^T on unit vectors."""
    emb = torch.nn.functional.normalize(torch.from_numpy(emb.astype(np.float32)), dim=-1)
    return (1 - torch.bmm(emb[:, :2], emb[:, 2:].transpose(1, 2))).numpy()


def _cases(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 2000
    cases = {"uniform": rng.random((n, 2, S), dtype=np.float32)}
    # exact ties: few distinct values, so many switch points share one total cost
    cases["quantised"] = (rng.integers(0, 4, (n, 2, S)) / 4).astype(np.float32)
    cases["identical rows"] = np.repeat(rng.random((n, 1, S), dtype=np.float32), 2, axis=1)
    # embeddings with duplicated dense shots and edge shots equal to dense shots: cosine 1 (+ rounding,
    # which can make a cost slightly negative), as at a collapsed start of training
    emb = rng.integers(-1, 2, (n, 2 + S, 6)).astype(np.float32)
    emb[:, 2 + 5] = emb[:, 2 + 6]
    emb[:, 0] = emb[:, 2]
    emb[:, 1] = emb[:, 2 + S - 1]
    emb[np.linalg.norm(emb, axis=-1) == 0] = 1.0
    cases["duplicated embeddings"] = _costs_from_embeddings(emb)
    cases["collapsed embeddings"] = _costs_from_embeddings(
        np.ones((n, 2 + S, 8), np.float32) + rng.normal(0, 1e-4, (n, 2 + S, 8)).astype(np.float32)
    )
    # near-ties: values one float32 ulp apart, tiny values next to large ones (float64 rounding), negatives
    base = rng.random((n, 2, S), dtype=np.float32)
    base[:, 1] = np.nextafter(base[:, 0], np.float32(2), dtype=np.float32)
    base[: n // 2, :, ::3] = np.float32(1e-9)
    base[n // 4 : n // 2] -= np.float32(3e-8)
    cases["near ties"] = base
    return cases


def test_batched_dtw_equals_tslearn_on_12000_cases():
    rng = np.random.default_rng(0)
    total = 0
    for name, costs in _cases(rng).items():
        pb = pseudo_boundary_from_cost(torch.from_numpy(costs))
        groups = pb.groups().numpy()
        for i, cost in enumerate(costs):
            bd, ref_groups = _tslearn(cost)
            assert pb.bd[i].item() == bd, f"{name} case {i}: bd {pb.bd[i].item()} vs tslearn {bd}\n{cost}"
            assert np.array_equal(groups[i], ref_groups), f"{name} case {i}: groups differ\n{cost}"
        total += len(costs)
    assert total >= 12000


def test_closed_form_tie_rule_and_guarantees():
    # every switch point ties -> tslearn backtracks to the largest b
    assert pseudo_boundary_from_cost(torch.ones(1, 2, S)).bd.item() == S - 2
    # the first edge shot matches shots 0..4, the last one 5..16
    cost = torch.ones(1, 2, S)
    cost[0, 0, :5] = 0
    cost[0, 1, 5:] = 0
    pb = pseudo_boundary_from_cost(cost)
    assert pb.bd.item() == 4 and pb.right_start.item() == 5
    random = pseudo_boundary_from_cost(torch.rand(500, 2, S))
    assert random.bd.min() >= 0 and random.bd.max() <= S - 2
    assert torch.equal(random.right_start, random.bd + 1)  # non-negative costs: a clean split


def test_pseudo_boundary_from_embeddings_has_no_gradient():
    s = torch.nn.functional.normalize(torch.randn(3, 2, 8), dim=-1).requires_grad_()
    d = torch.nn.functional.normalize(torch.randn(3, S, 8), dim=-1)
    pb = pseudo_boundary(s, d)
    assert not pb.bd.requires_grad and pb.groups().shape == (3, 2, S)


def test_rejects_more_than_two_edge_shots():
    with pytest.raises(ValueError, match="two edge shots"):
        pseudo_boundary_from_cost(torch.rand(2, 3, S))
