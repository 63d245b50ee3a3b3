"""LARS (lightning-bolts 0.3.4 arithmetic), its parameter groups, and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bassl.config import load_config
from bassl.models import build_pretrain_model
from bassl.train.lars import LARS, build_lars, lars_param_groups
from bassl.train.schedule import lr_multiplier, scaled_lr


def test_lars_steps_match_hand_computation():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)  # ||w|| = 5
    bias = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(2, dtype=torch.float64, requires_grad=True)  # ||p|| = 0: raw gradient, no wd
    wd, lr, eps = 0.1, 0.5, 1e-8
    opt = LARS(
        [{"params": [w, zero], "weight_decay": wd}, {"params": [bias], "weight_decay": 0.0}],
        lr=lr, momentum=0.9, trust_coefficient=0.001, eps=eps,
    )
    g = torch.tensor([0.6, 0.8], dtype=torch.float64)  # ||g|| = 1
    for p in (w, bias, zero):
        p.grad = g.clone()
    opt.step()
    ratio1 = 5 / (1 + 0.1 * 5 + eps) * 0.001
    d1 = (g + wd * torch.tensor([3.0, 4.0], dtype=torch.float64)) * ratio1
    w1 = torch.tensor([3.0, 4.0], dtype=torch.float64) - lr * d1
    torch.testing.assert_close(w.detach(), w1)
    torch.testing.assert_close(bias.detach(), torch.tensor([1.0, -1.0], dtype=torch.float64) - lr * g)
    torch.testing.assert_close(zero.detach(), -lr * g)

    for p in (w, bias, zero):  # second step: momentum buffer = 0.9 * d1 + d2
        p.grad = 2 * g
    opt.step()
    ratio2 = w1.norm() / (2 + wd * w1.norm() + eps) * 0.001
    d2 = (2 * g + wd * w1) * ratio2
    torch.testing.assert_close(w.detach(), w1 - lr * (0.9 * d1 + d2))
    b1 = torch.tensor([1.0, -1.0], dtype=torch.float64) - lr * g
    torch.testing.assert_close(bias.detach(), b1 - lr * (0.9 * g + 2 * g))


def test_param_groups_by_literal_substring():
    model = build_pretrain_model(load_config(["model_preset=tiny", "method=bassl"]))
    decay, no_decay = lars_param_groups(model, 1e-6, ("bn", "bias"))
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert "encoder.bn1.weight" in no_decay_names and "head_msm.bias" in no_decay_names
    # the original's literal match keeps these in the LARS + wd group (method.md §12.15)
    assert {"encoder.layer2.0.downsample.1.weight", "crn.embed.norm.weight", "crn.embed.mask_token.weight"} <= decay_names
    assert decay["weight_decay"] == 1e-6 and no_decay["weight_decay"] == 0.0
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))
    opt = build_lars(model, load_config([]).optim, lr=0.3)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["trust_coefficient"] == 0.001


def test_schedule_warmup_end_and_last_step():
    T = 1000  # W = 100
    assert lr_multiplier(0, T, 0.1) == 0.0
    assert lr_multiplier(50, T, 0.1) == pytest.approx(0.5)
    assert lr_multiplier(100, T, 0.1) == 1.0  # warm-up ends at exactly the peak
    assert lr_multiplier(550, T, 0.1) == pytest.approx(0.5)
    assert lr_multiplier(T - 1, T, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 899 / 900)))
    assert lr_multiplier(T, T, 0.1) == pytest.approx(0.0)
    assert lr_multiplier(0, 10, 0.0) == 1.0  # fine-tuning: no warm-up, cosine from the peak


def test_linear_lr_scaling():
    assert scaled_lr(0.3, 256, 256) == pytest.approx(0.3)
    assert scaled_lr(2.5e-6, 1024, 256) == pytest.approx(1e-5)


def test_lars_skips_params_without_grad():
    p = nn.Parameter(torch.ones(2))
    LARS([p], lr=1.0, weight_decay=0.1).step()
    assert torch.equal(p.detach(), torch.ones(2))
