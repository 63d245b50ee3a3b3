"""The GPU check as the lent GPU machine will run it, on the CPU: packed by benchmarks/gpu_pack.py into payloads
that fit a command, installed from those wheels alone into a venv that holds only the machine's image packages,
run command by command with ``--dry-run``, and joined."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from builders import clean_env

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "benchmarks" / "gpu_pack.py"


def test_the_packed_gpu_check_runs_from_its_wheels_alone(tmp_path):
    python = ".".join(platform.python_version_tuple()[:2])
    pack = tmp_path / "pack"
    made = subprocess.run([sys.executable, str(PACK), "--python", python, "--out", str(pack)], env=clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, (made.stdout + made.stderr)[-4000:]
    plan = json.loads((pack / "plan.json").read_text())
    assert {"deepspeed", "av", "webdataset", "scenedetect-headless"} <= set(plan["base_packages"])
    assert "nvidia-dali-cuda130" in plan["dali_packages"] and "torch" not in plan["base_packages"] | plan["dali_packages"]
    stages = [c["stage"] for c in plan["commands"]]
    assert stages[0] == "base" and stages[-1] == "dali" and set(stages[1:-1]) <= {"stash"}
    for c in plan["commands"]:
        payload = sum(f.stat().st_size for f in (pack / Path(c["carry"]).name).iterdir())
        assert payload <= 60 * 2**20 and payload + plan["tree_mib"] * 2**20 <= 64 * 2**20, c
        assert len(c["command"]) <= 2000

    image = tmp_path / "image"
    made = subprocess.run([sys.executable, str(PACK), "--emulate-image", str(image)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    probe = "import importlib.util as u; print([m for m in ('torch', 'deepspeed', 'av', 'webdataset', 'nvidia.dali') " \
            "if u.find_spec(m.split('.')[0]) and u.find_spec(m)])"
    seen = subprocess.run([str(image / "bin" / "python"), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert seen.stdout.strip() == "['torch']", seen.stdout + seen.stderr  # the image: torch, and none of the rest

    out = tmp_path / "out"
    out.mkdir()
    env = clean_env(PATH=f"{image / 'bin'}{os.pathsep}{os.environ['PATH']}", OUT=str(out),
                    BASSL_GPU_SITE=str(tmp_path / "site"), BASSL_GPU_STAGING=str(tmp_path / "parts"))
    env.pop("PYTHONPATH", None)
    for c in plan["commands"]:
        run = subprocess.run(["bash", "-c", c["command"] + " --dry-run"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=900)
        assert run.returncode == 0, (c["command"], (run.stdout + run.stderr)[-4000:])

    joined = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out),
                             "--combine", str(out / "gpu_check_dryrun_base.json"), str(out / "gpu_check_dryrun_dali.json")],
                            capture_output=True, text=True)
    assert joined.returncode == 0, joined.stderr[-3000:]
    result = json.loads((out / "gpu_check_dryrun.json").read_text())
    assert result["dry_run"] is True and result["environment"]["dali"] == plan["dali_packages"]["nvidia-dali-cuda130"]
    tests = result["gpu_tests"]["tests"]
    assert len(tests) == 4 and all(outcome == "passed" for outcome in tests.values()), tests
    for loader in ("dali", "torch"):
        r = result["throughput"]["loaders"][loader]
        assert r["steps"] == 3 and r["images_per_s"] > 0 and 0 <= r["data_wait_share"] <= 1, r
    for loader in ("dali", "torch"):
        seg = result["segment"][loader]
        assert seg["frames_per_s"] > 0 and seg["scenes"] >= 1, seg
    assert "| dali |" in (out / "gpu_check_dryrun.md").read_text()
