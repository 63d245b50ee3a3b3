"""Loaders on tiny shards written by `bassl shard`: windows, the plan, both loaders' batches, sharing rules, eval parity."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import MOVIES, H, W, frame, tiny_cfg

from bassl.config import load_config
from bassl.loaders import build_eval_loader, build_pretrain_loader
from bassl.loaders.sampling import PlanSpec, crop_box, epoch_order, plan_sample, rank_slice
from bassl.loaders.shards import jpeg_size, open_shots
from bassl.loaders.windows import neighbor_window, pretrain_window, temporal_neighbor
from bassl.methods import method_info


@pytest.fixture(scope="module")
def shards(pretrain_shards) -> Path:
    return pretrain_shards


# --------------------------------------------------------------------------------------------------
# Window arithmetic (method.md §3.6)
# --------------------------------------------------------------------------------------------------


def test_pretrain_window_shifts_at_edges_and_clips_short_movies():
    k = 8
    assert pretrain_window(20, 100, k)[0].tolist() == list(range(12, 29))
    assert pretrain_window(3, 100, k)[0].tolist() == list(range(0, 17))  # shifted right
    assert pretrain_window(97, 100, k)[0].tolist() == list(range(83, 100))  # shifted left
    assert pretrain_window([0, 99], 100, k)[:, [0, -1]].tolist() == [[0, 16], [83, 99]]
    assert pretrain_window(2, 10, k)[0].tolist() == list(range(10)) + [9] * 7  # short: start 0, clip
    assert pretrain_window(9, 10, k)[0].tolist() == [0] * 7 + list(range(10))  # short: shifted left, clip
    assert pretrain_window(0, 17, k)[0].tolist() == list(range(17))
    assert pretrain_window(0, 1, k)[0].tolist() == [0] * 17


def test_neighbor_window_pads_by_repetition_anchor_centred():
    w = neighbor_window([0, 5, 99], 100, 8)
    assert w[0].tolist() == [0] * 9 + list(range(1, 9))
    assert w[2].tolist() == list(range(91, 100)) + [99] * 8
    assert (w[:, 8] == [0, 5, 99]).all()


def test_sparse_positions_and_temporal_neighbor():
    assert method_info("bassl").sparse_positions(8) == (0, 16)
    assert method_info("shotcol").sparse_positions(8) == method_info("bassl_shotcol").sparse_positions(8) == (0, 16, 8)
    got = {temporal_neighbor(0, 30, 8, u) for u in np.linspace(0, 0.999, 200)}
    assert got == set(range(1, 9))
    got = {temporal_neighbor(10, 12, 8, u) for u in np.linspace(0, 0.999, 200)}
    assert got == set(range(2, 12)) - {10}
    assert temporal_neighbor(0, 1, 8, 0.5) == 0


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------


def test_epoch_order_every_shot_once_same_seed_same_order_ranks_disjoint():
    n, eff = 103, 8
    a, b = epoch_order(n, 0, 3, eff), epoch_order(n, 0, 3, eff)
    assert (a == b).all() and a.shape == (12, 8) and len(np.unique(a)) == 96
    assert not (epoch_order(n, 0, 4, eff) == a).all()  # every epoch reshuffles
    parts = [rank_slice(a, r, 4)[0] for r in range(4)]
    assert all(p.shape == (12, 2) for p in parts)
    assert sorted(np.concatenate([p.ravel() for p in parts]).tolist()) == sorted(a.ravel().tolist())
    full = np.concatenate([epoch_order(n, 0, 3, 1).ravel()])
    assert sorted(full.tolist()) == list(range(n))  # batch 1: every shot is an anchor once


def test_plan_is_world_size_independent():
    spec = PlanSpec.from_config(tiny_cfg())
    one = plan_sample(spec, 0, 30, 12, epoch=1, position=5)
    two = plan_sample(spec, 0, 30, 12, epoch=1, position=5)
    assert (one.rows == two.rows).all() and (one.jitter == two.jitter).all() and (one.msm_mask == two.msm_mask).all()


def test_plan_keyframes_sparse_and_sharing_rules():
    spec = PlanSpec.from_config(tiny_cfg("bassl_shotcol"))
    for pos in range(50):
        s = plan_sample(spec, 0, 30, pos % 30, epoch=0, position=pos)
        dense_rows, dense_kf = s.rows[3:], s.keyframes[3:]
        assert (s.rows[:3] == dense_rows[[0, 16, 8]]).all() and (s.keyframes[:3] == dense_kf[[0, 16, 8]]).all()
        for name in ("flip", "crop_area", "crop_uv"):
            v = getattr(s, name)[3:]
            assert (v == v[0]).all(), name  # one draw for the dense window
        assert s.msm_mask.shape == (17,) and s.msm_mask.any()
        assert ((s.blur_sigma[3:] > 0) == (s.blur_sigma[3] > 0)).all()  # one blur gate, per-image sigma
    short = plan_sample(spec, 0, 5, 2, epoch=0, position=0)
    for r in np.unique(short.rows):
        assert len(set(short.keyframes[short.rows == r].tolist())) == 1  # a repeated shot keeps its keyframe


def test_jitter_consistency_switch():
    per_image = plan_sample(PlanSpec.from_config(tiny_cfg("bassl", "augment.color_jitter_prob=1.0")), 0, 30, 12, 0, 0)
    shared = plan_sample(PlanSpec.from_config(tiny_cfg("bassl", "augment.color_jitter_prob=1.0",
                                                       "augment.color_jitter_consistent=true")), 0, 30, 12, 0, 0)
    assert len(np.unique(per_image.jitter[2:, 0])) == 17
    assert len(np.unique(shared.jitter[2:, 0])) == 1 and (shared.jitter_order[2:] == shared.jitter_order[2]).all()


def test_temporal_positive_and_compat_switch():
    spec = PlanSpec.from_config(tiny_cfg("temporal"))
    bug = PlanSpec.from_config(tiny_cfg("temporal", "compat.temporal_same_shot=true"))
    for pos in range(30):
        s = plan_sample(spec, 0, 30, 10, 0, pos)
        assert s.rows[0] == 10 and s.rows[1] != 10 and abs(int(s.rows[1]) - 10) <= 8
        assert (plan_sample(bug, 0, 30, 10, 0, pos).rows == 10).all()


def test_msm_mask_rate_and_keyframes_uniform():
    spec = PlanSpec.from_config(tiny_cfg())
    samples = [plan_sample(spec, 0, 100, 50, 0, p) for p in range(2000)]
    masks = np.stack([s.msm_mask for s in samples])
    assert 2.4 < masks.sum(1).mean() < 2.9 and masks.any(1).all()
    kf = np.concatenate([s.keyframes for s in samples])
    assert np.allclose(np.bincount(kf) / len(kf), 1 / 3, atol=0.02)


def test_crop_box_matches_torchvision_distribution_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t, l, h, w = crop_box(rng.uniform(0.14, 1, 10), rng.uniform(np.log(3 / 4), np.log(4 / 3), 10), rng.random(2), W, H,
                              (3 / 4, 4 / 3))
        assert 0 <= t <= H - h and 0 <= l <= W - w and h > 0 and w > 0
        assert 0.14 * W * H * 0.8 <= h * w <= W * H


# --------------------------------------------------------------------------------------------------
# Shards and loaders
# --------------------------------------------------------------------------------------------------


def test_shot_table_reads_index_and_split(shards):
    table = open_shots(shards)
    assert table.movie_ids == list(MOVIES) and table.num_shots.tolist() == list(MOVIES.values())
    assert jpeg_size(table.jpeg(3, 1)) == (W, H)
    assert bytes(table.jpeg(0, 2)) == frame(0, 0, 2)
    assert open_shots(shards, "test").movie_ids == ["tt0000002", "tt0000003"]


@pytest.mark.parametrize("kind", ["torch", "dali"])
@pytest.mark.parametrize("method,t", [("instance", 2), ("temporal", 2), ("shotcol", 20), ("bassl", 19), ("bassl_shotcol", 20)])
def test_pretrain_batch_shapes(shards, kind, method, t):
    cfg = tiny_cfg(method)
    h = build_pretrain_loader(cfg, shards, loader=kind, batch_size=4)
    assert h.steps_per_epoch == sum(MOVIES.values()) // 4
    h.set_epoch(0, start_step=h.steps_per_epoch - 2)
    batches = list(h)
    assert len(batches) == 2
    b = batches[0]
    assert b["images"].shape == (4, t, 3, 32, 32) and b["images"].dtype == torch.float32
    assert b["video_index"].shape == b["shot"].shape == (4,)
    if method in ("bassl", "bassl_shotcol"):
        assert b["msm_mask"].shape == (4, 17) and b["msm_mask"].dtype == torch.bool and b["msm_mask"].any(1).all()
    else:
        assert "msm_mask" not in b


def _no_aug(*extra):
    return tiny_cfg("bassl_shotcol", "augment.color_jitter_prob=0.0", "augment.blur_prob=0.0", *extra)


def test_dali_matches_reference_without_jitter(shards):
    """With jitter off, both loaders crop, resize, flip, blur the same planned pixels: close numerically."""
    cfg = tiny_cfg("bassl_shotcol", "augment.color_jitter_prob=0.0")
    outs = {}
    for kind in ("torch", "dali"):
        h = build_pretrain_loader(cfg, shards, loader=kind, batch_size=2)
        h.set_epoch(1)
        outs[kind] = next(iter(h))
    assert (outs["torch"]["shot"] == outs["dali"]["shot"]).all()
    diff = (outs["torch"]["images"] - outs["dali"]["images"]).abs()
    assert diff.mean() < 0.05 and torch.quantile(diff.flatten(), 0.99) < 0.35, (diff.mean(), diff.max())


@pytest.mark.parametrize("kind", ["torch", "dali"])
def test_sparse_views_equal_dense_copies_and_one_flip_per_window(shards, kind):
    """No crop (scale 1, ratio of the image), no jitter/blur: sparse views = their dense copies up to the
    group's flip; the dense window's flip is one decision (all frames flip together)."""
    cfg = _no_aug("augment.crop_scale=[1.0,1.0]", "augment.crop_ratio=[1.5,1.5]")
    h = build_pretrain_loader(cfg, shards, loader=kind, batch_size=8)
    batch = next(iter(h))
    img = batch["images"]  # [B, 20, 3, S, S]
    spec = PlanSpec.from_config(cfg)
    table = open_shots(shards)
    anchors, pos = rank_slice(epoch_order(table.num_rows, cfg.seed, 0, 8), 0, 1)
    for i in range(8):
        m = table.movie_of(anchors[0, i : i + 1])[0]
        plan = plan_sample(spec, int(table.movie_start[m]), int(table.num_shots[m]), int(anchors[0, i]), 0, int(pos[0, i]))
        sparse_flip, dense_flip = bool(plan.flip[0]), bool(plan.flip[3])
        assert (plan.flip[3:] == dense_flip).all()
        for j, p in enumerate((0, 16, 8)):
            a, b = img[i, j], img[i, 3 + p]
            if sparse_flip != dense_flip:
                b = b.flip(-1)
            assert (a - b).abs().max() < 1e-4


@pytest.mark.parametrize("kind", ["torch", "dali"])
def test_eval_loader_covers_split_once_per_rank_partition(shards, kind):
    cfg = tiny_cfg()
    seen = []
    for rank in range(3):
        h = build_eval_loader(cfg, shards, "test", rank=rank, world=3, loader=kind, batch_size=4)
        for b in h:
            assert b["images"].shape[1:] == (3, 3, 32, 32)
            seen += [(h.movie_ids[v], int(s)) for v, s in zip(b["video_index"], b["shot"], strict=True)]
    want = [(v, s) for v in ("tt0000002", "tt0000003") for s in range(MOVIES[v])]
    assert sorted(seen) == sorted(want) and len(seen) == len(set(seen))


def test_eval_dali_matches_reference(shards):
    cfg = tiny_cfg()
    a = next(iter(build_eval_loader(cfg, shards, loader="torch", batch_size=6)))
    b = next(iter(build_eval_loader(cfg, shards, loader="dali", batch_size=6)))
    diff = (a["images"] - b["images"]).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.3, (diff.mean(), diff.max())


def test_resume_mid_epoch_sees_the_same_batches(shards):
    cfg = tiny_cfg("instance")
    h = build_pretrain_loader(cfg, shards, loader="torch", batch_size=4)
    h.set_epoch(2)
    full = [b["shot"].tolist() for b in h]
    h.set_epoch(2, start_step=5)
    assert [b["shot"].tolist() for b in h] == full[5:]
    h.set_epoch(2)
    one = next(iter(h))["images"]
    h.set_epoch(2)
    assert torch.equal(next(iter(h))["images"], one)


def test_jitter_affine_matches_torchvision_in_the_planned_order():
    """Brightness, contrast (about the current mean grey), saturation composed in any order are exact;
    the hue rotation is the YIQ approximation of torchvision's HSV shift (small shifts, close)."""
    import torchvision.transforms.v2.functional as F

    from bassl.loaders.color import apply_jitter

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    img = F.resize(torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2, [32, 32])
    ops = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for factors, order, tol in (([1.15, 0.8, 1.2, 0.0], [1, 2, 0, 3], 1e-5), ([0.9, 1.2, 0.8, 0.0], [2, 0, 1, 3], 1e-5),
                                ([1.1, 0.85, 1.2, 0.02], [3, 1, 0, 2], 0.1)):
        ref = img[0]
        for op in order:
            if factors[op] != (0.0 if op == 3 else 1.0):
                ref = ops[op](ref, factors[op])
        out = apply_jitter(F.normalize(img.clone(), list(mean), list(std)), np.array([factors]), np.array([order]), mean, std)
        assert (out[0] - F.normalize(ref, list(mean), list(std))).abs().mean() < tol


def test_missing_dali_is_a_config_error_naming_the_fallback(shards, monkeypatch):
    from bassl.config import ConfigError

    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # what `import nvidia.dali` sees without the wheel
    cfg = load_config(["model_preset=tiny", "pretrain.effective_batch=4"])
    for build in (build_pretrain_loader, build_eval_loader):
        with pytest.raises(ConfigError, match="pretrain.loader=torch"):
            build(cfg, shards, loader="dali")
