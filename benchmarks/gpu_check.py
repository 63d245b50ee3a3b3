"""The GPU check: what bassl's GPU paths do on the first GPU it is lent, measured in minutes.

1. the tests marked ``gpu`` (DALI mixed decode against the CPU pipeline, bf16 pre-training steps that lower the
   loss, SyncBN in a 1-rank NCCL group, extraction and fine-tuning on the GPU);
2. pre-training throughput, ``model_preset=resnet50`` at batch 64 (bf16) on synthetic shards: images/s and the
   data-wait share with the DALI loader and with the torch reference loader, side by side;
3. ``benchmarks/results/gpu_check.{json,md}`` with the device, the date and both.

``--dry-run`` takes the same steps on the CPU with tiny sizes (tiny preset, batch 8, 3 steps) and writes
``gpu_check_dryrun.{json,md}``, so CI keeps the check working. Run it through ``gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def environment() -> dict:
    import torch

    env = {"date": datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
           "torch": torch.__version__, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count()}
    env["device"] = torch.cuda.get_device_name(0) if env["cuda"] else f"{platform.machine()} CPU (no GPU)"
    for name, module in (("dali", "nvidia.dali"), ("deepspeed", "deepspeed")):
        try:
            env[name] = __import__(module, fromlist=["__version__"]).__version__
        except ImportError as e:
            env[name] = f"not installed ({e})"
    return env


def gpu_tests(dry_run: bool, timeout: int) -> dict:
    """Run ``pytest -m gpu`` in its own process; per test: passed / failed (with the message) / skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "gpu.xml"
        env = {**os.environ, "BASSL_GPU_DRY_RUN": "1" if dry_run else "0", "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py", f"--junitxml={xml}",
                               "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        results = {}
        if xml.is_file():
            for case in ET.parse(xml).getroot().iter("testcase"):
                failure = case.find("failure") if case.find("failure") is not None else case.find("error")
                skipped = case.find("skipped")
                results[case.get("name")] = ("failed: " + (failure.get("message") or "")[:300] if failure is not None
                                             else "skipped: " + (skipped.get("message") or "") if skipped is not None
                                             else "passed")
    return {"returncode": proc.returncode, "seconds": round(time.perf_counter() - start, 1), "tests": results,
            "output_tail": (proc.stdout + proc.stderr)[-2000:]}


def throughput(dry_run: bool, steps: int) -> dict:
    """Pre-training steps/s, images/s and data-wait share per loader, on the same synthetic shards."""
    from bassl.config import load_config
    from bassl.sharding.run import build_shards
    from bassl.synth.generate import generate
    from bassl.train.pretrain import pretrain

    size = ["model_preset=tiny", "pretrain.effective_batch=8"] if dry_run else \
        ["model_preset=resnet50", "pretrain.effective_batch=64", "pretrain.num_workers=8"]
    base = [*size, "pretrain.knn_every_epoch=false", "pretrain.log_every=1000", "pretrain.checkpoint_every=100000",
            "synth.train_movies=2", "synth.val_movies=1", "synth.test_movies=1", "synth.pretrain_only_movies=1"]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = load_config(base)
        generate(tmp / "movienet", cfg.synth, progress=False)
        build_shards(cfg, tmp / "movienet", tmp / "shards", progress=False)
        for loader in ("dali", "torch"):
            cfg = load_config([*base, f"data.root={tmp / 'movienet'}", f"data.shards={tmp / 'shards'}",
                               f"pretrain.loader={loader}"])
            try:
                pretrain(cfg, tmp / f"run_{loader}", max_steps=2)  # warm-up: allocation, cuDNN autotuning
                run = pretrain(cfg, tmp / f"run_{loader}", resume=True, max_steps=2 + steps)
                rows[loader] = {k: round(v, 4) for k, v in run["throughput"].items()}
            except Exception as e:  # noqa: BLE001 - one loader failing must not hide the other's numbers
                rows[loader] = {"error": f"{type(e).__name__}: {e}"[:500]}
    return {"setup": f"{cfg.method}, {cfg.model_preset} ({cfg.model.encoder.arch}, {cfg.augment.image_size} px), "
                     f"batch {cfg.pretrain.effective_batch}, precision {cfg.pretrain.precision}, {steps} timed steps "
                     "after 2 warm-up steps", "loaders": rows}


def report(result: dict) -> str:
    env, tests, tp = result["environment"], result["gpu_tests"], result["throughput"]
    lines = [f"# GPU check{' (dry run on the CPU)' if result['dry_run'] else ''}: {env['device']}, {env['date']}", "",
             f"torch {env['torch']}, DALI {env['dali']}, DeepSpeed {env['deepspeed']}, Python {env['python']}; "
             f"whole check {result['seconds']:.0f} s.", "", "| test (tests/test_gpu.py) | result |", "|---|---|"]
    lines += [f"| {name} | {outcome} |" for name, outcome in tests["tests"].items()]
    lines += ["", f"Pre-training throughput: {tp['setup']}.", "", "| loader | images/s | steps/s | data-wait share |",
              "|---|---|---|---|"]
    for loader, r in tp["loaders"].items():
        lines.append(f"| {loader} | {r['images_per_s']:.1f} | {r['steps_per_s']:.3f} | {100 * r['data_wait_share']:.0f} % |"
                     if "error" not in r else f"| {loader} | {r['error']} | | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    p.add_argument("--steps", type=int, default=None, help="timed pre-training steps per loader (default 20, dry 3)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where gpu_check[_dryrun].{json,md} go")
    args = p.parse_args()
    start = time.perf_counter()
    result = {"dry_run": args.dry_run, "environment": environment()}
    if not args.dry_run and not result["environment"]["cuda"]:
        print("gpu_check: no CUDA device here; run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    print(f"[gpu_check] {result['environment']['device']}: tests marked gpu ...", flush=True)
    result["gpu_tests"] = gpu_tests(args.dry_run, timeout=300)
    print(f"[gpu_check] tests: {result['gpu_tests']['tests']}\n[gpu_check] throughput ...", flush=True)
    result["throughput"] = throughput(args.dry_run, args.steps or (3 if args.dry_run else 20))
    result["seconds"] = time.perf_counter() - start
    stem = "gpu_check_dryrun" if args.dry_run else "gpu_check"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(report(result))
    print(report(result))
    failed = [n for n, o in result["gpu_tests"]["tests"].items() if o.startswith("failed")]
    errors = [k for k, r in result["throughput"]["loaders"].items() if "error" in r]
    return 1 if failed or errors or not result["gpu_tests"]["tests"] else 0


if __name__ == "__main__":
    sys.exit(main())
