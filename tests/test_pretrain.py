"""Pre-training with the real DeepSpeed engine on CPU (gloo): resume, faults, exports, world sizes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import bassl_cmd, clean_env, curve, overrides

from bassl.config import ConfigError, load_config
from bassl.errors import BasslError
from bassl.models.weights import load_weights
from bassl.train import pretrain as pretrain_mod
from bassl.train.checkpoint import latest_tag
from bassl.train.distributed import deepspeed_config, free_port
from bassl.train.pretrain import NonFiniteLoss, pretrain


def test_deepspeed_batch_arithmetic():
    ds = deepspeed_config(256, world=8, micro_batch=16)
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (256, 16, 2)
    ds = deepspeed_config(256, world=4, precision="bf16")
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (64, 1) and "fp16" not in ds
    assert deepspeed_config(32, world=2, precision="fp16")["fp16"]["enabled"]  # dynamic loss scaling
    assert ds["gradient_clipping"] == 0.0  # stated: DeepSpeed's own default would clip at 1.0


@pytest.mark.parametrize(("method", "terms"), [
    ("instance", {"simclr"}), ("temporal", {"simclr"}), ("shotcol", {"simclr"}),
    ("bassl", {"ssm", "cgm", "pp", "msm"}), ("bassl_shotcol", {"shotcol", "ssm", "cgm", "pp", "msm"}),
])
def test_every_method_trains_through_the_engine(pretrain_shards, tmp_path, method, terms):
    run = pretrain(load_config(overrides(pretrain_shards, f"method={method}", "pretrain.epochs=1")), tmp_path / method)
    assert run["step"] == 7 and all(set(h) == terms | {"step", "total", "lr"} for h in run["history"])
    assert all(np.isfinite(h["total"]) for h in run["history"])
    doc = load_weights(tmp_path / method / "encoder.pt")
    assert ("crn" in doc) is (method in ("bassl", "bassl_shotcol")) and doc["method"] == method


def test_resume_in_process_repeats_the_uninterrupted_run(pretrain_shards, tmp_path):
    cfg = load_config(overrides(pretrain_shards))
    full = pretrain(cfg, tmp_path / "a")
    assert full["step"] == 14  # 56 shots // 8 = 7 steps x 2 epochs
    pretrain(cfg, tmp_path / "b", max_steps=5)
    assert latest_tag(tmp_path / "b" / "checkpoints") == "step_00000005"
    # a resume under settings that shape the run otherwise is refused, naming them; where the data is, how often it
    # logs and checkpoints may change (the run below resumes with another log_every)
    for changed, named in ((["optim.base_lr=1.0", "pretrain.epochs=3"], "optim.base_lr: 0.3 -> 1.0; pretrain.epochs: 2 -> 3"),
                           (["method=instance"], "method: 'bassl' -> 'instance'")):
        with pytest.raises(ConfigError, match=re.escape(f"was trained with other settings ({named}")):
            pretrain(load_config(overrides(pretrain_shards, *changed)), tmp_path / "b", resume=True)
    (tmp_path / "b" / "config.yaml").rename(tmp_path / "config.yaml")  # its config.yaml lost: the checkpoint's copy
    with pytest.raises(ConfigError, match=re.escape("was trained with other settings (optim.base_lr: 0.3 -> 1.0")):
        pretrain(load_config(overrides(pretrain_shards, "optim.base_lr=1.0")), tmp_path / "b", resume=True)
    (tmp_path / "config.yaml").rename(tmp_path / "b" / "config.yaml")
    with pytest.raises(ConfigError, match=r"was trained in fp32, and this start runs bf16; set pretrain.precision=fp32"):
        pretrain(load_config(overrides(pretrain_shards, "pretrain.precision=bf16")), tmp_path / "b", resume=True)
    pretrain(load_config(overrides(pretrain_shards, "pretrain.log_every=3")), tmp_path / "b", resume=True)
    a, b = curve(tmp_path / "a"), curve(tmp_path / "b")
    assert sorted(a) == sorted(b) == list(range(1, 15))
    np.testing.assert_allclose([b[s] for s in a], [a[s] for s in a], rtol=1e-6)
    # the export is tensors and plain values only
    doc = torch.load(tmp_path / "b" / "encoder.pt", weights_only=True)
    assert doc["step"] == 14 and doc["method"] == "bassl" and "crn" in doc
    assert load_weights(tmp_path / "b" / "encoder.pt")["config"]["model_preset"] == "tiny"
    # a run directory with checkpoints is continued or started again only when asked; nothing is lost without a flag
    with pytest.raises(BasslError, match=r"earlier run's checkpoints \(the latest: step_00000014\): pass --resume"):
        pretrain(cfg, tmp_path / "b", max_steps=3)
    assert latest_tag(tmp_path / "b" / "checkpoints") == "step_00000014" and sorted(curve(tmp_path / "b")) == list(range(1, 15))
    assert len(list((tmp_path / "b" / "tensorboard").glob("events.*"))) == 2  # the run and its resume
    pretrain(cfg, tmp_path / "b", max_steps=3, fresh=True)
    assert len(list((tmp_path / "b" / "tensorboard").glob("events.*"))) == 1  # the earlier run's curves are gone
    assert latest_tag(tmp_path / "b" / "checkpoints") == "step_00000003"
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step_*")) == ["step_00000002", "step_00000003"]
    np.testing.assert_allclose([curve(tmp_path / "b")[s] for s in (1, 2, 3)], [a[s] for s in (1, 2, 3)], rtol=1e-6)
    assert sorted(curve(tmp_path / "b")) == [1, 2, 3]


def test_pretrain_command_max_steps_zero_writes_the_initial_encoder(pretrain_shards, tmp_path, capsys):
    """``--max-steps 0`` (how an ImageNet-initialised encoder.pt is written for label-free segmentation) succeeds;
    a negative count is an error before anything starts."""
    from bassl.cli import main

    assert main(["pretrain", "--out", str(tmp_path / "zero"), "--max-steps", "0", *overrides(pretrain_shards)]) == 0
    assert load_weights(tmp_path / "zero" / "encoder.pt")["step"] == 0
    assert main(["pretrain", "--out", str(tmp_path / "neg"), "--max-steps", "-1", *overrides(pretrain_shards)]) == 2
    assert "--max-steps -1: give 0" in capsys.readouterr().err and not (tmp_path / "neg").exists()


def test_sigkill_at_a_random_step_then_resume(pretrain_shards, tmp_path):
    """Kill -9 mid-run (maybe mid-save); --resume continues from the last complete checkpoint and the loss
    curve equals the uninterrupted run's."""
    args = overrides(pretrain_shards, "pretrain.epochs=4")
    reference = pretrain(load_config(args), tmp_path / "ref")["history"]
    kill_after = int(np.random.default_rng(int(time.time())).integers(3, 20))
    run = tmp_path / "killed"
    env = clean_env(PYTHONUNBUFFERED="1")
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(bassl_cmd("pretrain", "--out", str(run), *args), env=env, stdout=log, stderr=log)
    deadline = time.time() + 240
    while time.time() < deadline:
        path = run / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= kill_after:
            break
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{(tmp_path / 'killed.log').read_text()[-3000:]}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = latest_tag(run / "checkpoints")
    assert saved is not None
    done = subprocess.run(bassl_cmd("pretrain", "--out", str(run), "--resume", *args), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from {run / 'checkpoints' / saved}" in done.stdout
    got = curve(run)
    assert sorted(got) == list(range(1, 29))
    np.testing.assert_allclose([got[h["step"]] for h in reference], [h["total"] for h in reference], rtol=1e-5)


def test_two_ranks_then_resume_on_one(pretrain_shards, tmp_path):
    run = tmp_path / "run"
    args = overrides(pretrain_shards)
    env = clean_env(OMP_NUM_THREADS="1")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "bassl",
                          "pretrain", "--out", str(run), "--max-steps", "4", *args], env=env, capture_output=True,
                         text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "world 2" in two.stdout and "(4/rank" in two.stdout
    assert latest_tag(run / "checkpoints") == "step_00000004"
    one = subprocess.run(bassl_cmd("pretrain", "--out", str(run), "--resume", *args), env=env, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "saved with world size 2, now 1" in one.stdout and "done at step 14" in one.stdout
    assert sorted(curve(run)) == list(range(1, 15))


def test_deepspeed_launcher_two_processes_agree(pretrain_shards, tmp_path):
    deepspeed = Path(sys.executable).parent / "deepspeed"
    run = subprocess.run([str(deepspeed), "--num_gpus", "2", "--master_port", str(free_port()), "--module", "bassl",
                          "pretrain", "--out", str(tmp_path / "r"), "--max-steps", "2", *overrides(pretrain_shards)],
                         env=clean_env(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1"), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "world 2" in run.stdout and "parameters identical on all 2 ranks" in run.stdout


def test_non_finite_loss_names_step_and_term_and_saves_nothing(pretrain_shards, tmp_path, monkeypatch):
    real = pretrain_mod.PretextLoss.__call__
    calls = {"n": 0}

    def poisoned(self, *a, **kw):
        terms = real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 3:
            terms["pp"] = terms["pp"] * float("nan")
        return terms

    monkeypatch.setattr(pretrain_mod.PretextLoss, "__call__", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss at step 3: pp=nan"):
        pretrain(load_config(overrides(pretrain_shards)), tmp_path / "r")
    assert latest_tag(tmp_path / "r" / "checkpoints") == "step_00000002"  # the last good one, nothing after
    assert not (tmp_path / "r" / "encoder.pt").exists()


def test_metrics_log_keeps_the_steps_a_resume_goes_on_from(tmp_path):
    """A resume from step 2: the steps after it (lost with a crash, logged again) and a line cut short go; the eval
    line of step 2 goes only when the resume owes that evaluation."""
    from bassl.train.run_log import append_metrics, read_metrics, truncate_metrics

    log = tmp_path / "metrics.jsonl"
    for record in ({"step": 1, "total": 3.0}, {"step": 2, "total": 2.0}, {"step": 2, "epoch": 1, "eval": {"knn@1": 50.0}},
                   {"step": 3, "total": 1.0}):
        append_metrics(log, record)
    with log.open("a") as f:
        f.write('{"step": 4, "tot')  # a crash mid-line
    truncate_metrics(log, 2)
    assert read_metrics(log) == ([{"step": 1, "total": 3.0}, {"step": 2, "total": 2.0}],
                                 [{"step": 2, "epoch": 1, "eval": {"knn@1": 50.0}}])
    truncate_metrics(log, 2, drop_eval_at_step=True)
    assert read_metrics(log) == ([{"step": 1, "total": 3.0}, {"step": 2, "total": 2.0}], [])
    truncate_metrics(log, 0)
    assert log.read_text() == ""


def test_ctrl_c_stops_after_the_step_with_a_checkpoint_and_twice_at_once(pretrain_shards, tmp_path, monkeypatch, capsys):
    """In a foreground process a first Ctrl-C is a stop request, as SIGTERM is: the step finishes, a checkpoint is
    saved, --resume goes on. A second stops at once (KeyboardInterrupt), as Ctrl-C does without bassl. A process
    that ignores Ctrl-C (a shell's background job, as CI runs this) goes on ignoring it."""
    step = pretrain_mod.train_step
    presses = {"once": {3: 1}, "twice": {2: 2}, "background": {3: 1}}  # run -> {step: Ctrl-C presses during it}

    def pressed(run, batch, lr):
        for _ in range(presses[run.out_dir.name].get(run.step, 0)):
            os.kill(os.getpid(), signal.SIGINT)
        return step(run, batch, lr)

    monkeypatch.setattr(pretrain_mod, "train_step", pressed)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal's foreground
    try:
        stopped = pretrain(load_config(overrides(pretrain_shards)), tmp_path / "once")
        assert stopped["stopped"] and stopped["step"] == 4
        assert latest_tag(tmp_path / "once" / "checkpoints") == "step_00000004"
        assert json.loads((tmp_path / "once" / "run_state.json").read_text())["signal"] == signal.SIGINT
        assert "Ctrl-C: stopping after this step with a checkpoint" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            pretrain(load_config(overrides(pretrain_shards)), tmp_path / "twice")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the process's own again
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ran = pretrain(load_config(overrides(pretrain_shards, "pretrain.epochs=1")), tmp_path / "background")
        assert not ran["stopped"] and ran["step"] == 7
    finally:
        signal.signal(signal.SIGINT, outer)
