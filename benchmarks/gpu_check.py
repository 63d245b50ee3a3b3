"""The GPU check: what bassl's GPU paths do on the first GPU it is lent, measured in minutes.

1. the tests marked ``gpu`` (DALI mixed decode against the CPU pipeline, bf16 pre-training steps that lower the
   loss, SyncBN in a 1-rank NCCL group, extraction and fine-tuning on the GPU);
2. pre-training throughput, ``model_preset=resnet50`` at batch 64 (bf16) on synthetic shards: images/s and the
   data-wait share with the DALI loader and with the torch reference loader;
3. ``bassl segment``'s frames/s on a generated H.264 video (small preset, untrained weights: the same work);
4. ``gpu_check[_STAGE].{json,md}`` with the device and the date, rewritten after every step, so a run cut short
   still returns what it measured.

``--stage base`` takes everything that needs no DALI, ``--stage dali`` the DALI test and loader (the GPU machine
receives DALI only after the first command: ``gpu_pack.py``); ``--stage all`` both. ``--combine A B`` joins the
two stages' files into ``gpu_check.{json,md}``. ``--dry-run`` takes the same steps on the CPU with tiny sizes
(tiny preset, batch 8, 3 steps) and writes ``gpu_check_dryrun*``, so CI keeps the check working. Run it
through ``gpu_check.sh``.
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


STAGES = {"all": ("", ("dali", "torch")), "base": ("not dali", ("torch",)), "dali": ("dali", ("dali",))}


def gpu_tests(dry_run: bool, timeout: int, select: str = "") -> dict:
    """Run ``pytest -m gpu [-k select]`` in its own process; per test: passed / failed (with the message) /
    skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "gpu.xml"
        env = {**os.environ, "BASSL_GPU_DRY_RUN": "1" if dry_run else "0", "PYTHONUNBUFFERED": "1"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_gpu.py", f"--junitxml={xml}",
                               "-p", "no:cacheprovider", *(["-k", select] if select else [])],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
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


def throughput(dry_run: bool, steps: int, loaders: tuple[str, ...]) -> dict:
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
        for loader in loaders:
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


def segment_speed(dry_run: bool, loader: str) -> dict:
    """``Segmenter.segment`` on a generated H.264 movie: decode, shot detection, keyframes (through ``loader``),
    encoder and head."""
    import torch
    from bench_ingest import small_segmenter

    from bassl.config import load_config
    from bassl.scenes.segmenter import Segmenter
    from bassl.synth.plan import plan_dataset
    from bassl.synth.video import render_video
    from bassl.video.decode import probe

    size = ["synth.min_scenes=3", "synth.max_scenes=3", "synth.width=216", "synth.height=120"] if dry_run else []
    cfg = load_config(["synth.train_movies=1", "synth.val_movies=0", "synth.test_movies=1",
                       "synth.pretrain_only_movies=0", *size])
    with tempfile.TemporaryDirectory() as tmp:
        video, model = Path(tmp) / "movie.mp4", Path(tmp) / "segmenter.pt"
        render_video(plan_dataset(cfg.synth).movies[0], cfg.synth, video)
        small_segmenter(model, "tiny" if dry_run else "small")
        device = "cuda" if torch.cuda.is_available() and not dry_run else "cpu"
        segmenter = Segmenter.load(model, cfg=load_config([f"pretrain.loader={loader}"]), device=device)
        start = time.perf_counter()
        scenes = segmenter.segment(video, work_dir=Path(tmp) / "work")
        wall = time.perf_counter() - start
        frames = probe(video).frames
    return {"video": f"{frames} frames, {cfg.synth.width}x{cfg.synth.height} H.264, 24 fps",
            "model": f"{'tiny' if dry_run else 'small'} preset on {device}, {loader} loader", "seconds": round(wall, 2),
            "frames_per_s": round(frames / wall, 1), "x_realtime": round(frames / 24 / wall, 2), "scenes": len(scenes)}


def report(result: dict) -> str:
    env, tests = result["environment"], result.get("gpu_tests", {"tests": {}})
    lines = [f"# GPU check{' (dry run on the CPU)' if result['dry_run'] else ''}: {env['device']}, {env['date']}", "",
             f"torch {env['torch']}, DALI {env['dali']}, DeepSpeed {env['deepspeed']}, Python {env['python']}; "
             f"stage {result['stage']}, {result.get('seconds', 0):.0f} s.", "", "| test (tests/test_gpu.py) | result |",
             "|---|---|"]
    lines += [f"| {name} | {outcome} |" for name, outcome in tests["tests"].items()]
    if tp := result.get("throughput"):
        lines += ["", f"Pre-training throughput: {tp['setup']}.", "",
                  "| loader | images/s | steps/s | data-wait share |", "|---|---|---|---|"]
        for loader, r in tp["loaders"].items():
            lines.append(f"| {loader} | {r['images_per_s']:.1f} | {r['steps_per_s']:.3f} | "
                         f"{100 * r['data_wait_share']:.0f} % |" if "error" not in r else f"| {loader} | {r['error']} | | |")
    for loader, seg in result.get("segment", {}).items():
        lines += ["", f"`bassl segment`: {seg['frames_per_s']} frames/s ({seg['x_realtime']}x real time) on "
                      f"{seg['video']}, {seg['model']}; {seg['scenes']} scenes." if "error" not in seg else
                  f"`bassl segment` ({loader} loader): {seg['error']}"]
    return "\n".join(lines) + "\n"


def combine(paths: list[Path]) -> dict:
    """The stages' results as one: tests and loaders joined; the environment of the last (DALI installed)."""
    parts = [json.loads(p.read_text()) for p in paths]
    out = {"dry_run": parts[0]["dry_run"], "stage": "+".join(p["stage"] for p in parts),
           "environment": parts[-1]["environment"], "seconds": sum(p.get("seconds", 0) for p in parts),
           "gpu_tests": {"tests": {}}}
    for p in parts:
        out["gpu_tests"]["tests"].update(p.get("gpu_tests", {}).get("tests", {}))
        if "throughput" in p:
            out.setdefault("throughput", {"setup": p["throughput"]["setup"], "loaders": {}})
            out["throughput"]["loaders"].update(p["throughput"]["loaders"])
        out.setdefault("segment", {}).update(p.get("segment", {}))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    p.add_argument("--stage", choices=sorted(STAGES), default="all", help="base: no DALI; dali: DALI only")
    p.add_argument("--steps", type=int, default=None, help="timed pre-training steps per loader (default 20, dry 3)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where gpu_check*.{json,md} go")
    p.add_argument("--combine", type=Path, nargs="+", metavar="JSON", help="join the stages' files and stop")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.combine:
        result = combine(args.combine)
        stem = "gpu_check_dryrun" if result["dry_run"] else "gpu_check"
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(report(result))
        print(report(result))
        return 0
    start = time.perf_counter()
    stem = ("gpu_check_dryrun" if args.dry_run else "gpu_check") + ("" if args.stage == "all" else f"_{args.stage}")
    result = {"dry_run": args.dry_run, "stage": args.stage, "environment": environment()}

    def save() -> None:  # after every step: a run cut short still returns its figures
        result["seconds"] = time.perf_counter() - start
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(report(result))

    if not args.dry_run and not result["environment"]["cuda"]:
        print("gpu_check: no CUDA device here; run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    select, loaders = STAGES[args.stage]
    save()
    print(f"[gpu_check] {result['environment']['device']}, stage {args.stage}: tests marked gpu ...", flush=True)
    result["gpu_tests"] = gpu_tests(args.dry_run, timeout=300, select=select)
    save()
    print(f"[gpu_check] tests: {result['gpu_tests']['tests']}\n[gpu_check] throughput {loaders} ...", flush=True)
    result["throughput"] = throughput(args.dry_run, args.steps or (3 if args.dry_run else 20), loaders)
    save()
    result["segment"] = {}
    for loader in loaders:
        print(f"[gpu_check] bassl segment, {loader} loader ...", flush=True)
        try:
            result["segment"][loader] = segment_speed(args.dry_run, loader)
        except Exception as e:  # noqa: BLE001 - the other figures stand without it
            result["segment"][loader] = {"error": f"{type(e).__name__}: {e}"[:500]}
        save()
    print(report(result))
    failed = [n for n, o in result["gpu_tests"]["tests"].items() if o.startswith("failed")]
    errors = [k for part in (result["throughput"]["loaders"], result["segment"]) for k, r in part.items() if "error" in r]
    return 1 if failed or errors or not result["gpu_tests"]["tests"] else 0


if __name__ == "__main__":
    sys.exit(main())
