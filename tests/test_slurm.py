"""The Slurm batch scripts in scripts/slurm/.

Two parts:

* the scripts' own logic (checks, the exact command, requeue decisions) with stand-in ``srun``/``sbatch``/
  ``scontrol``/``scancel`` executables: fast, runs everywhere;
* the real thing: ``scripts/slurm/local_cluster.sh`` brings up a one-node Slurm on localhost (installing
  Debian's slurm-wlm and munge when absent), and the pipeline is submitted to it on a tiny synthetic data set:
  the shard array (2 tasks) + merge, a 2-rank CPU pre-training job that gets ``scancel --signal=TERM``,
  requeues itself and resumes from its checkpoint, extraction on 2 ranks, fine-tuning + evaluation.
  Under CI (``CI=true``) a Slurm that cannot be had is a failure; elsewhere the test skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "slurm"
BIN = Path(sys.executable).parent  # the venv's bin: bassl, wds2idx
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# variables of a launcher or of an enclosing Slurm job must not leak into the jobs we submit
LEAKY = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without launcher/Slurm variables. PATH stays as it is: the jobs find bassl
    through BASSL=<venv>/bin/bassl. (Putting the venv's bin first would switch the ninja that DeepSpeed's JIT
    op build uses when a system ninja also exists; two ninja versions hash the build log differently, so each
    switch recompiles the op, ~30 s.)"""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY and not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["BASSL"] = str(BIN / "bassl")
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------------
# The scripts' logic, with stand-in Slurm commands
# --------------------------------------------------------------------------------------------------

FAKE_SRUN = """#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_LOG"
echo "env MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT RANK=${RANK:-unset}" >> "$FAKE_LOG"
if [ -n "${FAKE_STATE:-}" ]; then echo "{\\"state\\": \\"$FAKE_STATE\\", \\"step\\": 7}" > "$BASSL_RUN/run_state.json"; fi
exit "${FAKE_RC:-0}"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_LOG"
case "$1 $2" in
  "show hostnames") printf 'node-a\\nnode-b\\n' ;;
  "show job") echo "JobId=$3 JobName=x"; echo "   JobState=${FAKE_JOB_STATE:-RUNNING} Reason=None" ;;
esac
"""
FAKE_SBATCH = """#!/usr/bin/env bash
echo "sbatch $*" >> "$FAKE_LOG"
n=$(( $(cat "$FAKE_LOG.n" 2>/dev/null || echo 100) + 1 )); echo $n > "$FAKE_LOG.n"
echo "$n;cluster"
"""
FAKE_LOGGER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
"""


@pytest.fixture
def fake(tmp_path):
    """A bin directory with stand-ins for srun/scontrol/scancel/sbatch/bassl, and the log they append to."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL), ("sbatch", FAKE_SBATCH),
                       ("scancel", FAKE_LOGGER), ("bassl", FAKE_LOGGER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "shards").mkdir()
    (tmp_path / "data").mkdir()
    log = tmp_path / "fake.log"

    def run(script: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, str]:
        base = {k: v for k, v in os.environ.items() if k not in LEAKY and not k.startswith(("SLURM_", "BASSL"))}
        base.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_LOG=str(log), RANK="5")
        base.update(env)
        log.write_text("")
        proc = subprocess.run(["bash", str(SCRIPTS / script), *args], env=base, capture_output=True, text=True, timeout=60)
        return proc, log.read_text()

    run.tmp = tmp_path
    return run


def job_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "node-[a-b]",
           "SLURM_CPUS_PER_TASK": "3", "BASSL_SHARDS": str(tmp / "shards"), "BASSL_RUN": str(tmp / "run")}
    env.update(extra)
    return env


def test_pretrain_prints_the_command_and_requeues_when_stopped(fake):
    proc, calls = fake("pretrain.sbatch", "model_preset=tiny", **job_env(fake.tmp, FAKE_STATE="stopped",
                                                                             BASSL_MAX_STEPS="9"))
    assert proc.returncode == 0, proc.stderr
    run = fake.tmp / "run"
    assert (f"+ srun --kill-on-bad-exit=1 --cpus-per-task=3 bassl pretrain --out {run} --resume --max-steps 9 "
            f"data.shards={fake.tmp / 'shards'} model_preset=tiny") in proc.stdout
    assert f"srun --kill-on-bad-exit=1 --cpus-per-task=3 bassl pretrain --out {run} --resume" in calls
    # master = first host of the allocation, port from the job id; a launcher's RANK does not leak in
    assert "MASTER_ADDR=node-a MASTER_PORT=14242 RANK=unset" in calls
    assert "scontrol requeue 4242" in calls
    assert "requeueing job 4242" in proc.stdout


def test_pretrain_done_ends_without_requeue(fake):
    proc, calls = fake("pretrain.sbatch", **job_env(fake.tmp, FAKE_STATE="done", SLURM_RESTART_COUNT="2"))
    assert proc.returncode == 0, proc.stderr
    assert "requeue" not in calls and "pre-training finished" in proc.stdout
    assert "MASTER_PORT=10080" in calls  # 10000 + (4242 + 7919 * 2) % 20000: a new port per restart


@pytest.mark.parametrize("rc,state,job_state,restarts,requeued,exit_code,message", [
    ("143", "", "RUNNING", "0", True, 0, "requeueing"),  # TERM before bassl's handler was installed
    ("1", "", "RUNNING", "0", False, 1, "pre-training failed (srun exit code 1)"),
    ("0", "stopped", "CANCELLED", "0", False, 0, "job state is CANCELLED, not requeueing"),  # plain scancel
    ("0", "stopped", "RUNNING", "50", False, 1, "after 50 restarts (BASSL_MAX_RESTARTS=50)"),
    ("0", "", "RUNNING", "0", False, 1, "says 'nothing'"),
])
def test_pretrain_requeue_decisions(fake, rc, state, job_state, restarts, requeued, exit_code, message):
    proc, calls = fake("pretrain.sbatch", **job_env(fake.tmp, FAKE_RC=rc, FAKE_STATE=state, FAKE_JOB_STATE=job_state,
                                                    SLURM_RESTART_COUNT=restarts))
    assert proc.returncode == exit_code, proc.stdout + proc.stderr
    assert ("scontrol requeue 4242" in calls) == requeued, calls
    assert message in proc.stdout + proc.stderr


@pytest.mark.parametrize("script,env,message", [
    ("pretrain.sbatch", {"SLURM_JOB_ID": ""}, "not inside a Slurm job"),
    ("pretrain.sbatch", {"BASSL_SHARDS": ""}, "BASSL_SHARDS is not set"),
    ("pretrain.sbatch", {"BASSL_SHARDS": "/nonexistent/shards"}, "BASSL_SHARDS=/nonexistent/shards does not exist"),
    ("pretrain.sbatch", {"BASSL_RUN": ""}, "BASSL_RUN is not set"),
    ("pretrain.sbatch", {"BASSL": "/nonexistent/bassl"}, "'/nonexistent/bassl' not found"),
    ("pretrain.sbatch", {"GPUS_PER_NODE": "8"}, "one task per GPU: 4 task(s) on 2 node(s) with 8 GPU(s) each"),
    ("extract.sbatch", {}, "BASSL_WEIGHTS="),  # run/encoder.pt does not exist yet
    ("finetune.sbatch", {}, "features.json does not exist: run scripts/slurm/extract.sbatch first"),
    ("finetune.sbatch", {"BASSL_DATA": ""}, "BASSL_DATA is not set"),
    ("shard.sbatch", {}, "not an array task"),
    ("shard.sbatch", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "BASSL_DATA": "/nonexistent"},
     "BASSL_DATA=/nonexistent does not exist"),
    ("shard.sbatch", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "2"},
     "number it 0..N-1"),
    ("shard_merge.sbatch", {"BASSL_SHARDS": ""}, "BASSL_SHARDS is not set"),
])
def test_missing_paths_and_bad_sizes_fail_fast_with_a_message(fake, script, env, message):
    base = job_env(fake.tmp, BASSL_DATA=str(fake.tmp / "data"))
    proc, calls = fake(script, **{**base, **env})
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "srun" not in calls and "bassl" not in calls  # nothing started


def test_shard_array_task_builds_its_part(fake):
    env = job_env(fake.tmp, BASSL_DATA=str(fake.tmp / "data"), SLURM_ARRAY_JOB_ID="7", SLURM_ARRAY_TASK_ID="1",
                  SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_COUNT="4")
    proc, calls = fake("shard.sbatch", "--on-error", "skip", **env)
    assert proc.returncode == 0, proc.stderr
    cmd = (f"bassl shard --source {fake.tmp / 'data'} --out {fake.tmp / 'shards'} --workers 3 --part 1/4 "
           "--no-progress --on-error skip")
    assert cmd in proc.stdout and cmd in calls
    # re-running a few tasks of a 16-part build: BASSL_PARTS keeps N
    proc, calls = fake("shard.sbatch", **{**env, "SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "3",
                                          "SLURM_ARRAY_TASK_COUNT": "2", "BASSL_PARTS": "16"})
    assert proc.returncode == 0 and "--part 11/16" in calls, proc.stderr


def test_submit_shard_submits_the_array_then_an_afterok_merge(fake):
    proc, calls = fake("submit_shard.sh", "--partition=cpu", "--", "--on-error", "skip", BASSL_DATA=str(fake.tmp / "data"),
                       BASSL_SHARDS=str(fake.tmp / "shards"), BASSL_PARTS="3", CPUS_PER_TASK="2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "shard=101 merge=102"
    array, merge = calls.splitlines()
    assert array.startswith("sbatch --parsable --array=0-2 --cpus-per-task=2 --partition=cpu ")
    assert array.endswith("shard.sbatch --on-error skip")
    assert merge.startswith("sbatch --parsable --dependency=afterok:101 --partition=cpu ")


def test_ingest_array_task_and_submit(fake):
    videos = fake.tmp / "videos"
    videos.mkdir()
    env = job_env(fake.tmp, BASSL_VIDEOS=str(videos), BASSL_DATA=str(fake.tmp / "layout"), SLURM_ARRAY_JOB_ID="7",
                  SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_COUNT="3")
    proc, calls = fake("ingest.sbatch", "--on-error", "skip", **env)
    assert proc.returncode == 0, proc.stderr
    cmd = f"bassl ingest {videos} --out {fake.tmp / 'layout'} --part 2/3 --no-progress video.workers=3 --on-error skip"
    assert cmd in calls
    proc, calls = fake("ingest.sbatch", **{**env, "SLURM_ARRAY_TASK_ID": "3"})
    assert proc.returncode != 0 and "is not a part of 3" in proc.stderr and "bassl" not in calls
    proc, calls = fake("submit_ingest.sh", "--partition=cpu", BASSL_VIDEOS=str(videos), BASSL_DATA=str(fake.tmp / "layout"),
                       BASSL_PARTS="4")
    assert proc.returncode == 0 and proc.stdout.strip() == "ingest=101 merge=102", proc.stderr
    array, merge = calls.splitlines()
    assert array.startswith("sbatch --parsable --array=0-3 --cpus-per-task=4 --partition=cpu ")
    assert merge.startswith("sbatch --parsable --dependency=afterok:101 --partition=cpu ")
    assert merge.endswith("ingest_merge.sbatch")


@pytest.mark.parametrize("gpus,expected", [
    ("8", ["--nodes=2 --ntasks-per-node=8 --cpus-per-task=6 --gpus-per-node=8 --time=1:00:00",
           "--dependency=afterok:103 --nodes=2 --ntasks-per-node=8 --cpus-per-task=6 --gpus-per-node=8",
           "--dependency=afterok:104 --nodes=1 --ntasks=1 --cpus-per-task=6 --gpus-per-node=1"]),
    ("0", ["--nodes=2 --ntasks-per-node=1 --cpus-per-task=6 --time=1:00:00",
           "--dependency=afterok:103 --nodes=2 --ntasks-per-node=1 --cpus-per-task=6 ",
           "--dependency=afterok:104 --nodes=1 --ntasks=1 --cpus-per-task=6 "]),
])
def test_submit_pipeline_chains_the_stages(fake, gpus, expected):
    proc, calls = fake("submit_pipeline.sh", "model_preset=tiny", BASSL_DATA=str(fake.tmp / "data"),
                       BASSL_WORK=str(fake.tmp / "work"), NODES="2", GPUS_PER_NODE=gpus, CPUS_PER_TASK="6",
                       PRETRAIN_SBATCH="--time=1:00:00")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "shard=101 merge=102 pretrain=103 extract=104 finetune=105"
    lines = calls.splitlines()
    assert len(lines) == 5
    assert "--dependency=afterok:102 " in lines[2]
    for line, want, script in zip(lines[2:], expected, ("pretrain", "extract", "finetune"), strict=True):
        assert want in line, line
        assert line.endswith(f"{script}.sbatch model_preset=tiny"), line
        assert ("--gpus" in line) == (gpus != "0"), line


# --------------------------------------------------------------------------------------------------
# A real Slurm on localhost
# --------------------------------------------------------------------------------------------------


def _unavailable(reason: str):
    """Under CI a missing Slurm is a failure; elsewhere a skip."""
    if IN_CI:
        pytest.fail(f"CI=true but no usable Slurm: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node cluster for this module: SLURM_CONF path; its daemons are stopped afterwards."""
    if not IN_CI and not shutil.which("sbatch") and (os.geteuid() != 0 or not shutil.which("apt-get")):
        pytest.skip("Slurm is not installed, and installing it needs root and apt-get")
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run([str(SCRIPTS / "local_cluster.sh"), "up", str(state)], capture_output=True, text=True,
                        timeout=600, env=clean_env())
    conf = state / "slurm.conf"
    try:
        if up.returncode != 0:
            _unavailable(f"local_cluster.sh up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
        if not shutil.which("sbatch"):
            _unavailable("sbatch not found after local_cluster.sh up")
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=clean_env(SLURM_CONF=str(conf)))
        if sinfo.returncode != 0 or "idle" not in sinfo.stdout:
            _unavailable(f"sinfo failed or the node is not idle: {sinfo.stdout} {sinfo.stderr}")
        yield conf
    finally:
        subprocess.run([str(SCRIPTS / "local_cluster.sh"), "down", str(state)], capture_output=True, text=True, timeout=120)


def slurm_query(conf: Path, *cmd: str) -> str | None:
    """stdout of a Slurm client command, or None when it failed (a busy controller can time out: ask again)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=clean_env(SLURM_CONF=str(conf)))
    return proc.stdout if proc.returncode == 0 else None


def scontrol_job(conf: Path, job: str) -> dict[str, str]:
    for _ in range(10):
        out = slurm_query(conf, "scontrol", "show", "job", job)
        if out is not None:
            return dict(re.findall(r"(\w+)=(\S+)", out))
        time.sleep(1)
    return {}


def queued(conf: Path, jobs: list[str]) -> str | None:
    """The jobs still in the queue ("" when none), None when squeue did not answer."""
    out = slurm_query(conf, "squeue", "-h", "-j", ",".join(jobs), "-o", "%i %j %T %r")
    return None if out is None else out.strip()


def logs(log_dir: Path, state_dir: Path) -> str:
    parts = [f"==== {p.name}\n{p.read_text(errors='replace')[-6000:]}" for p in sorted(log_dir.glob("*.out"))]
    for name in ("slurmctld.log", "slurmd.log"):
        p = state_dir / "log" / name
        if p.exists():
            parts.append(f"==== {name} (tail)\n" + "\n".join(p.read_text(errors="replace").splitlines()[-40:]))
    return "\n".join(parts)


def test_pipeline_on_a_real_slurm(slurm, tmp_path):
    from bassl.data.features import load_features
    from bassl.loaders.shards import open_shots
    from bassl.models.weights import load_weights

    t0 = time.monotonic()
    data, work, log_dir = tmp_path / "data", tmp_path / "work", tmp_path / "logs"
    log_dir.mkdir()
    env = clean_env(SLURM_CONF=str(slurm), PYTHONUNBUFFERED="1")
    synth = subprocess.run([str(BIN / "bassl"), "synth", "--out", str(data), "synth.train_movies=2", "synth.val_movies=1",
                            "synth.test_movies=1", "synth.pretrain_only_movies=0", "synth.min_scenes=2",
                            "synth.max_scenes=3", "synth.width=96", "synth.height=64"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert synth.returncode == 0, synth.stdout + synth.stderr
    shots = len(list(data.glob("240P_frames/*/shot_*_img_0.jpg")))
    assert shots > 0

    max_steps = 80
    submit = subprocess.run(
        [str(SCRIPTS / "submit_pipeline.sh"), "model_preset=tiny", "pretrain.effective_batch=8", "pretrain.num_workers=1",
         "pretrain.knn_every_epoch=false", "pretrain.log_every=1",
         "pretrain.epochs=50",  # the schedule spans more than max_steps
         "extract.batch_size=16", "finetune.epochs=1", "finetune.effective_batch=32"],
        env={**env, "BASSL_DATA": str(data), "BASSL_WORK": str(work), "BASSL_PARTS": "2", "SHARD_CPUS": "1",
             "SHARD_ARGS": "--shard-size 200KB",  # ~10 shards, so each array task builds some
             "NODES": "1", "GPUS_PER_NODE": "0", "TASKS_PER_NODE": "2", "CPUS_PER_TASK": "1",
             "BASSL_MAX_STEPS": str(max_steps)},
        cwd=log_dir, capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    ids = dict(item.split("=") for item in submit.stdout.split())
    assert set(ids) == {"shard", "merge", "pretrain", "extract", "finetune"}, submit.stdout
    jobs = list(ids.values())

    def fail(message: str) -> None:
        pytest.fail(f"{message}\nqueue: {queued(slurm, jobs)}\n{logs(log_dir, slurm.parent)}")

    # once pre-training is in its loop, stop it the way a time limit or preemption does
    pretrain_log = log_dir / f"bassl-pretrain-{ids['pretrain']}.out"
    deadline = time.monotonic() + 300
    while "[pretrain] step " not in (pretrain_log.read_text() if pretrain_log.exists() else ""):
        queue = queued(slurm, jobs)
        if time.monotonic() > deadline or (queue is not None and ids["pretrain"] not in queue):
            fail("pre-training never reached its loop")
        time.sleep(0.3)
    for _ in range(5):
        if slurm_query(slurm, "scancel", "--signal=TERM", ids["pretrain"]) is not None:
            break
        time.sleep(2)
    else:
        fail("scancel --signal=TERM failed five times")

    deadline = time.monotonic() + 420
    while (queue := queued(slurm, jobs)) is None or queue:
        if time.monotonic() > deadline:
            fail("the jobs did not finish in time")
        time.sleep(1)
    for name, job in ids.items():
        info = scontrol_job(slurm, job)
        if info.get("JobState") != "COMPLETED" or info.get("ExitCode") != "0:0":
            fail(f"job {name} ({job}): JobState={info.get('JobState')} ExitCode={info.get('ExitCode')}")
    try:
        # sharding: 2 array tasks, then the merge; the manifest holds every shot of the data set
        task_logs = sorted(log_dir.glob(f"bassl-shard-{ids['shard']}_*.out"))
        assert [re.search(r"^part (\d)/2: (\d+) shards", p.read_text(), re.M).group(1) for p in task_logs] == ["0", "1"]
        manifest = json.loads((work / "shards" / "manifest.json").read_text())
        assert manifest["num_shots"] == shots == sum(s["samples"] for s in manifest["shards"])
        assert manifest["num_shards"] == len(manifest["shards"]) >= 2 and not manifest["skipped"]
        assert all((work / "shards" / s["name"]).is_file() and (work / "shards" / s["index"]).is_file()
                   for s in manifest["shards"])
        assert open_shots(work / "shards").num_rows == shots

        # pre-training: stopped by the signal with a checkpoint, requeued once, resumed past it, finished
        text = pretrain_log.read_text()
        assert scontrol_job(slurm, ids["pretrain"]).get("Restarts") == "1"
        stopped = int(re.search(r"\[pretrain\] signal 15: checkpoint at step (\d+) saved", text).group(1))
        resumed = int(re.search(r"\[pretrain\] resumed from \S+ at step (\d+)", text).group(1))
        assert 1 <= stopped == resumed < max_steps, (stopped, resumed)
        assert "requeueing job" in text and "pre-training finished" in text
        run = work / "pretrain"
        assert (run / "checkpoints" / "latest").read_text().strip() == f"step_{max_steps:08d}"
        assert json.loads((run / "run_state.json").read_text())["state"] == "done"
        assert load_weights(run / "encoder.pt")["encoder"]

        # extraction on 2 ranks: one row per shot
        manifest = json.loads((run / "features" / "features.json").read_text())
        assert manifest["rows"] == shots == open_shots(work / "shards", "trainvaltest").num_rows
        assert int(load_features(run / "features").counts.sum()) == shots

        # fine-tuning + evaluation
        assert (run / "finetune" / "report.json").is_file()
        assert (run / "finetune" / "eval" / "report.json").is_file()
    except AssertionError as e:
        fail(f"output check failed: {e!r}")
    print(f"\n[test_slurm] pipeline on a real Slurm: {time.monotonic() - t0:.0f} s "
          f"(stopped at step {stopped}, resumed to {max_steps})")


def test_ingest_array_on_a_real_slurm(slurm, tmp_path):
    """Ten videos ingested by a 3-task array job and merged by a dependent job into one layout."""
    from video_files import write_video

    from bassl.data.movienet import MovieNetSource

    videos, layout, log_dir = tmp_path / "videos", tmp_path / "layout", tmp_path / "logs"
    videos.mkdir()
    log_dir.mkdir()
    for i in range(10):
        write_video(videos / f"clip {i:02d}.mp4", [12, 12, 12])
    env = clean_env(SLURM_CONF=str(slurm), BASSL_VIDEOS=str(videos), BASSL_DATA=str(layout), BASSL_PARTS="3",
                    CPUS_PER_TASK="1")
    submit = subprocess.run([str(SCRIPTS / "submit_ingest.sh")], env=env, cwd=log_dir, capture_output=True, text=True,
                            timeout=60)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    ids = dict(item.split("=") for item in submit.stdout.split())
    deadline = time.monotonic() + 300
    while (queue := queued(slurm, list(ids.values()))) is None or queue:
        if time.monotonic() > deadline:
            pytest.fail(f"the ingest jobs did not finish in time\n{logs(log_dir, slurm.parent)}")
        time.sleep(1)
    for name, job in ids.items():
        info = scontrol_job(slurm, job)
        assert info.get("JobState") == "COMPLETED", f"{name}: {info}\n{logs(log_dir, slurm.parent)}"
    assert len(sorted(log_dir.glob(f"bassl-ingest-{ids['ingest']}_*.out"))) == 3
    source = MovieNetSource(layout)
    assert sorted(source.split("pretrain")) == [f"clip_{i:02d}" for i in range(10)]
    assert all(len(source.shot_timing(f"clip_{i:02d}")) == 3 for i in range(10))
    assert json.loads((layout / "ingest_report.json").read_text())["videos"] == 10
