"""benchmarks/gpu_check.sh --dry-run: the GPU check takes all its steps on the CPU, so it works when a GPU comes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from builders import clean_env

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                         env=clean_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    result = json.loads((tmp_path / "gpu_check_dryrun.json").read_text())
    assert result["dry_run"] is True and result["environment"]["device"]
    tests = result["gpu_tests"]["tests"]
    assert len(tests) == 4 and all(outcome == "passed" for outcome in tests.values()), tests
    for loader in ("dali", "torch"):
        r = result["throughput"]["loaders"][loader]
        assert r["steps"] == 3 and r["images_per_s"] > 0 and 0 <= r["data_wait_share"] <= 1, r
    assert "| dali |" in (tmp_path / "gpu_check_dryrun.md").read_text()
