"""CGM / PP / MSM / ShotCoL targets, samples and masks on windows with known pseudo-boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bassl.config import load_config
from bassl.loaders.sampling import msm_mask
from bassl.methods import method_info
from bassl.models import ContextualRelationNetwork, MaskedShotHead
from bassl.train.objectives import (
    cgm_loss,
    cgm_samples,
    msm_loss,
    nearest_neighbour,
    pp_loss,
    pp_samples,
    same_position_negatives,
)

S, C = 17, 8


def test_pp_negatives_never_hit_the_boundary_and_cover_the_rest():
    g = torch.Generator().manual_seed(0)
    bd = torch.tensor([0, 5, 15, 16]).repeat(500)  # [2000]
    neg = pp_samples(bd, S, 3, g)  # [2000, 3]
    assert neg.shape == (2000, 3)
    assert not (neg == bd[:, None]).any()
    assert (neg.sort(dim=1).values.diff(dim=1) > 0).all()  # without replacement
    for b in (0, 5, 15, 16):
        seen = set(neg[bd == b].flatten().tolist())
        assert seen == set(range(S)) - {b}


@pytest.mark.parametrize(
    "bd,pos_set,neg_set",
    [
        (3, set(range(4, S)) - {C}, set(range(0, 4))),  # centre in the right group
        (8, set(range(0, 8)), set(range(9, S))),  # centre is the boundary shot: left group
        (12, set(range(0, 13)) - {C}, set(range(13, S))),  # centre in the left group
    ],
)
def test_cgm_samples_follow_the_groups(bd, pos_set, neg_set):
    g = torch.Generator().manual_seed(1)
    pos, neg = cgm_samples(torch.full((3000,), bd), S, g)
    assert set(pos.tolist()) == pos_set  # uniform over the centre's group minus the centre: all appear
    assert set(neg.tolist()) == neg_set


def _group_states(bd: torch.Tensor) -> torch.Tensor:
    """[B, S, 2] states: left-group shots point along e0, right-group shots along e1."""
    right = (torch.arange(S) > bd[:, None]).long()  # [B, S]
    return F.one_hot(right, 2).float() * 5.0


def test_cgm_labels_same_group_as_one():
    g = torch.Generator().manual_seed(2)
    head = torch.nn.Linear(4, 2)
    with torch.no_grad():  # logit1 - logit0 = 20 * (second shot along e1 - along e0): "same group" iff centre is right
        head.weight.copy_(torch.tensor([[0.0, 0, 10, -10], [0, 0, -10, 10]]))
        head.bias.zero_()
    bd_right = torch.randint(0, C, (64,))  # centre (8) in the right group
    assert cgm_loss(_group_states(bd_right), head, bd_right, g).item() < 1e-6
    bd_left = torch.randint(C, S - 1, (64,))  # centre in the left group: the same head is now always wrong
    assert cgm_loss(_group_states(bd_left), head, bd_left, g).item() > 10


def test_pp_labels_the_boundary_shot_as_one():
    g = torch.Generator().manual_seed(3)
    bd = torch.randint(0, S - 1, (64,))
    h = F.one_hot((torch.arange(S) == bd[:, None]).long(), 2).float() * 10.0  # boundary shot -> e1
    head = torch.nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    assert pp_loss(h, head, bd, 2, g).item() < 1e-3  # margin 10: CE = log(1 + e^-10)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2).flip(0))
    assert pp_loss(h, head, bd, 2, g).item() > 5


def test_same_position_negatives_sit_where_the_positive_sits_in_other_windows():
    g = torch.Generator().manual_seed(5)
    bd = torch.randint(0, S - 1, (32,))
    other, keep = same_position_negatives(bd, 3, g)
    assert other.shape == keep.shape == (32, 3)
    i = torch.arange(32)[:, None].expand_as(other)
    assert (other != i).all()  # another window
    assert torch.equal(keep, bd[other] != bd[:, None])  # never that window's own pseudo-boundary
    # a head that reads only the position cannot separate positives from these negatives: the loss stays ln 2
    h = F.one_hot(torch.arange(S), S).float()[None].expand(32, S, S)  # state = the position, nothing else
    head = torch.nn.Linear(S, 2)
    for _ in range(200):  # fit it as well as it can
        loss = pp_loss(h, head, bd, 3, torch.Generator().manual_seed(1), negatives="same_position")
        head.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in head.parameters():
                p -= 0.5 * p.grad
    _, kept = same_position_negatives(bd, 3, torch.Generator().manual_seed(1))
    q = 32 / (32 + int(kept.sum()))  # the share of positives: a constant guess does no better than its entropy
    assert loss.item() > -(q * np.log(q) + (1 - q) * np.log(1 - q)) - 0.01
    # with the paper's uniform negatives the same position-only head does much better than a constant guess
    skewed = torch.where(torch.rand(32, generator=g) < 0.8, 0, 8)  # pseudo-boundaries mostly at position 0
    head = torch.nn.Linear(S, 2)
    for _ in range(200):
        loss = pp_loss(h, head, skewed, 3, torch.Generator().manual_seed(1))
        head.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in head.parameters():
                p -= 0.5 * p.grad
    assert loss.item() < 0.45  # a constant guess at 1 positive : 3 negatives: 0.56


def test_msm_loss_regresses_masked_shots_only():
    cfg = load_config(["model_preset=tiny", "method=bassl"])
    torch.manual_seed(0)
    crn = ContextualRelationNetwork(128, cfg.model.crn).eval()
    head = MaskedShotHead(cfg.model.crn.hidden_size, 128)
    dense = torch.randn(3, S, 128, requires_grad=True)
    mask = torch.zeros(3, S, dtype=torch.bool)
    mask[0, 2] = mask[1, [0, 16]] = mask[2, 8] = True
    loss = msm_loss(crn, head, dense, mask)
    loss.backward()
    # the target is detached and masked inputs are replaced: a masked shot's features get no gradient
    assert torch.all(dense.grad[mask] == 0)
    assert torch.all(dense.grad[~mask].abs().sum(-1) > 0)
    with torch.no_grad():
        h, _ = crn(dense, mask)
        manual = ((head(h[mask]) - dense[mask]) ** 2).mean()
    torch.testing.assert_close(loss, manual)


def test_msm_mask_rate_and_at_least_one():
    rng = np.random.default_rng(4)
    m = np.stack([msm_mask(rng, S, 0.15) for _ in range(20000)])
    assert m.any(axis=1).all()
    assert abs(m.mean() - (0.15 + 0.85**S / S)) < 0.005  # p plus the one forced when none
    lone = np.stack([msm_mask(rng, S, 1e-9) for _ in range(500)])
    assert (lone.sum(1) == 1).all()
    assert len(set(lone.argmax(1).tolist())) == S  # the forced one is uniform over positions


def test_shotcol_nearest_neighbour_skips_the_centre():
    d = F.normalize(torch.randn(2, S, 8), dim=-1)
    d[0, 3] = d[0, C]  # a duplicate of the centre is its nearest neighbour
    d[1, 11] = F.normalize(d[1, C] + 0.01 * d[1, 0], dim=0)
    assert nearest_neighbour(d).tolist() == [3, 11]


def test_batch_layout():
    assert method_info("bassl").sparse_positions(C) == (0, 16)
    assert method_info("shotcol").sparse_positions(C) == method_info("bassl_shotcol").sparse_positions(C) == (0, 16, 8)
    assert [method_info(m).images_per_sample(C) for m in ("instance", "temporal", "shotcol", "bassl", "bassl_shotcol")] == [
        2, 2, 20, 19, 20,
    ]
