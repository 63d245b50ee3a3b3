"""The pretext monitors (method.md §6.10) on planted cases whose answers are known, and inside a pre-training run."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from builders import MOVIES, overrides, write_shards

from bassl.config import load_config
from bassl.models import build_pretrain_model
from bassl.models.weights import load_weights
from bassl.train import pretrain as pretrain_mod
from bassl.train.label_free import choose_scorer, pp_scores
from bassl.train.pretext_monitor import balanced_accuracy, labelled_windows, monitor_windows
from bassl.train.pretrain import pretrain
from bassl.train.pseudo_boundary import pseudo_boundary
from bassl.train.run_log import read_metrics

K = 2  # 5-shot windows: small enough to check by hand
SCENES = [3, 4, 2, 5, 3, 6, 4]  # one movie of 27 shots


def planted_movie(scenes=SCENES, dim=8, seed=0):
    """One-hot scene directions (+ a little noise); label 1 on each scene's last shot, the movie's last unlabelled."""
    rng = np.random.default_rng(seed)
    scene = np.repeat(np.arange(len(scenes)), scenes)
    feats = np.eye(dim)[scene % dim] + 0.01 * rng.standard_normal((len(scene), dim))
    labels = np.r_[(scene[1:] != scene[:-1]).astype(np.int64), -100]
    return feats.astype(np.float32), np.arange(len(scene)), labels


def test_windows_by_hand():
    feats = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 1, 2, 2, 3]]  # scenes end at shots 1, 4, 6
    labels = np.array([0, 1, 0, 0, 1, 0, 1, -100])
    win = labelled_windows([(feats, np.arange(8), labels)], k=2)
    assert len(win) == 7 and win.x.shape == (7, 5, 4)  # the unlabelled last shot is not a centre
    # centre 2: shots 0..4, boundaries after shots 1 and 4 -> only the one at position 1 is inside (pos 4 is the edge)
    # centre 3: shots 1..5, boundaries after 1 (pos 0) and 4 (pos 3) -> two; centre 4: shots 2..6, after 4 (pos 2)
    # and 6 (the last position, not inside); centre 5: shots 3..7: after 4 (pos 1) and 6 (pos 3)
    np.testing.assert_array_equal(win.boundary_pos, [-1, -1, 1, -1, 2, -1, -1])  # 0, 1, 6: windows leave the movie
    np.testing.assert_array_equal(win.same_scene[2], [False, False, True, True, True])  # centre shot 2 is scene 1
    np.testing.assert_array_equal(win.pair_ok[2], [True, True, False, True, True])
    assert not win.pair_ok[[0, 1, 6]].any()  # windows that repeat an edge shot hold no real pairs
    # the window of centre 5 holds shot 7, whose label is unknown: positions 0..3 must be labelled, shot 7 is at 4
    assert win.pair_ok[5].sum() == 4


def test_pseudo_boundary_hit_rates_planted():
    win = labelled_windows([planted_movie()], K)
    one = win.boundary_pos >= 0
    assert one.sum() >= 5

    def unit(x):
        return F.normalize(x, dim=-1)

    m = monitor_windows(win, unit)
    assert m["pb_exact"] == 100.0 and m["pb_within1"] == 100.0 and m["windows_one_boundary"] == one.sum()
    # reversed in time, DTW splits at S-2-p: never p exactly (S = 5), within one shot only when p is 1 or 2
    m = monitor_windows(win, lambda x: unit(x.flip(1)))
    assert m["pb_exact"] == 0.0
    assert m["pb_within1"] == pytest.approx(100.0 * np.isin(win.boundary_pos[one], [1, 2]).mean())
    assert "pp_ap" not in m and "cgm_acc" not in m


def test_pp_and_cgm_monitors_planted():
    win = labelled_windows([planted_movie(), planted_movie([6, 2, 7, 3], seed=1)], K)

    def dissim_next(x):  # a "CRN" whose state says how different the next shot is: [n, S, 1]
        x = F.normalize(x, dim=-1)
        nxt = torch.cat([x[:, 1:], x[:, -1:]], dim=1)
        return torch.cat([1 - (x * nxt).sum(-1, keepdim=True), x], dim=-1)

    def same(a, b):
        return (F.normalize(a[:, 1:], dim=-1) * F.normalize(b[:, 1:], dim=-1)).sum(-1) > 0.5

    m = monitor_windows(win, lambda x: F.normalize(x, dim=-1), dissim_next, lambda h: h[:, 0], same)
    assert m["pp_ap"] == pytest.approx(100.0) and m["cgm_acc"] == pytest.approx(100.0)
    assert m["adjacent_ap"] == pytest.approx(100.0)
    scored = win.label >= 0
    assert m["pp_chance"] == pytest.approx(100.0 * (win.label[scored] == 1).mean())
    # a constant score is chance; an inverted matcher is always wrong
    m = monitor_windows(win, lambda x: F.normalize(x, dim=-1), dissim_next, lambda h: torch.zeros(len(h)),
                        lambda a, b: ~same(a, b))
    assert m["pp_ap"] == pytest.approx(m["pp_chance"]) and m["cgm_acc"] == 0.0


def test_pp_self_ap_planted():
    """A PP head that knows its own pseudo-boundary scores 100 at its own task; at real boundaries it scores less."""
    win = labelled_windows([planted_movie()], K)
    S = 2 * K + 1

    def unit(x):
        return F.normalize(x, dim=-1)

    def own(h):  # h: [n*S, D] -> 1 at the DTW pseudo-boundary of each window, else 0
        x = h.view(-1, S, h.shape[-1])
        emb = unit(x)
        bd = pseudo_boundary(emb[:, [0, -1]], emb).bd
        return (torch.arange(S)[None] == bd[:, None]).float().flatten()

    m = monitor_windows(win, unit, lambda x: x, own)
    assert m["pp_self_ap"] == pytest.approx(100.0)
    assert m["pb_at_centre"] == pytest.approx(100.0 * m["pp_centre_mean"])


def test_pp_scores_are_the_centre_shots_pp_probability():
    torch.manual_seed(0)
    cfg = load_config(["model_preset=tiny"])
    model = build_pretrain_model(cfg).eval()
    feats = np.random.default_rng(0).standard_normal((23, model.feature_dim)).astype(np.float32)
    k = cfg.window.neighbor_size
    got = pp_scores(model.crn, model.head_pp, feats, k)
    want = []
    for i in range(len(feats)):  # one window at a time, built by hand: clip to the movie, repeat the edge shot
        idx = [min(max(j, 0), len(feats) - 1) for j in range(i - k, i + k + 1)]
        with torch.no_grad():
            h, _ = model.crn(torch.from_numpy(feats[idx])[None])
            want.append(torch.softmax(model.head_pp(h[0, k]), dim=0)[1].item())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_balanced_accuracy():
    truth = np.array([1, 1, 1, 0], bool)
    assert balanced_accuracy(truth, np.ones(4, bool)) == 50.0  # all "same": right on every true pair, no false one
    assert balanced_accuracy(truth, np.array([1, 0, 1, 0], bool)) == pytest.approx(50 * (2 / 3 + 1))
    assert np.isnan(balanced_accuracy(truth[:3], truth[:3]))


def test_choose_scorer():
    assert choose_scorer({"split": "val", "aps": {"adjacent": 40.0, "pp": 45.0}}, has_pp=True)[0] == "pp"
    assert choose_scorer({"split": "val", "aps": {"adjacent": 40.0, "pp": 35.0}}, has_pp=True)[0] == "adjacent"
    assert choose_scorer({"split": "val", "aps": {"adjacent": 40.0, "pp": 45.0}}, has_pp=False)[0] == "adjacent"
    assert choose_scorer(None, has_pp=True)[0] == "adjacent"


def test_pretraining_logs_the_monitors_each_epoch(tmp_path, monkeypatch):
    movies = list(MOVIES)
    shards = write_shards(tmp_path, splits={"pretrain": movies, "val": [movies[0], movies[2]]})
    # 7-shot windows: with scenes of 7 shots, some windows hold exactly one boundary
    args = overrides(shards, "method=bassl", f"data.root={tmp_path / 'movienet'}", "window.neighbor_size=3",
                     "model.crn.num_positions=8")
    pretrain(load_config(args), tmp_path / "run")
    steps, evals = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(steps) == 14 and [e["epoch"] for e in evals] == [1, 2] and [e["step"] for e in evals] == [7, 14]
    for e in evals:
        assert {"pb_exact", "pb_within1", "pp_ap", "pp_chance", "adjacent_ap", "cgm_acc"} <= set(e["eval"])
        assert 0 <= e["eval"]["pb_exact"] <= e["eval"]["pb_within1"] <= 100
        assert e["eval"]["pp_chance"] == pytest.approx(100 * 8 / 51)  # 5 + 3 scene ends (the last shot -1 counts) in 30 + 21
    doc = load_weights(tmp_path / "run" / "encoder.pt")
    assert doc["label_free"]["split"] == "val"
    assert doc["label_free"]["aps"] == {"adjacent": evals[-1]["eval"]["adjacent_ap"], "pp": evals[-1]["eval"]["pp_ap"]}
    # --resume on the finished run (a resubmitted batch job) leaves its export and its curves as they are
    def untouched(run: str) -> tuple[int, bytes, bytes]:  # the export written again, even the same bytes, would show
        export = tmp_path / run / "encoder.pt"
        return export.stat().st_mtime_ns, export.read_bytes(), (tmp_path / run / "metrics.jsonl").read_bytes()

    before = untouched("run")
    pretrain(load_config(args), tmp_path / "run", resume=True)
    assert untouched("run") == before

    # a stop signal during the last step of epoch 2 (Slurm's before a time limit): stopped there, before the epoch's
    # monitors; the resume owes them, runs them once, and its export and curves equal the uninterrupted run's
    step = pretrain_mod.train_step

    def signalled(run, batch, lr):
        if run.step == 13:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(run, batch, lr)

    monkeypatch.setattr(pretrain_mod, "train_step", signalled)
    stopped = pretrain(load_config(args), tmp_path / "stopped")
    assert stopped["stopped"] and stopped["step"] == 14
    assert [e["step"] for e in read_metrics(tmp_path / "stopped" / "metrics.jsonl")[1]] == [7]
    monkeypatch.undo()
    pretrain(load_config(args), tmp_path / "stopped", resume=True)
    again, evals_again = read_metrics(tmp_path / "stopped" / "metrics.jsonl")
    assert [e["step"] for e in evals_again] == [7, 14] and evals_again == evals
    assert load_weights(tmp_path / "stopped" / "encoder.pt")["label_free"] == doc["label_free"]
    assert json.loads((tmp_path / "stopped" / "run_state.json").read_text())["state"] == "done"
    before = untouched("stopped")  # its last checkpoint predates the owed monitors: they are not owed twice
    pretrain(load_config(args), tmp_path / "stopped", resume=True)
    assert untouched("stopped") == before
