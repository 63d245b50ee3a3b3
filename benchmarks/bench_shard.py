"""`bassl shard` against plain `tar -cf` of the same keyframes: one process, and `--workers 2`.

    .venv/bin/python benchmarks/bench_shard.py                       # generate the default synthetic set first
    .venv/bin/python benchmarks/bench_shard.py --source /tmp/bench_src --replicate 8 --repeats 5
    .venv/bin/python benchmarks/bench_shard.py synth.train_movies=4  # key=value: overrides for the generator

Both sides read the same files from a warm page cache and write to the same file system; runs are interleaved
(the order rotates each repeat) so background load hits all sides alike, and the median is reported. MB/s
counts source JPEG bytes. `bassl shard` is timed end to end as a command (interpreter start, plan, build,
merge); the time it reports itself (no interpreter start) is kept too. `--replicate R` adds R-1 copies of every
movie as hard links under new ids, a bigger input without more disk or generation time.

Writes benchmarks/results/shard.json (and prints a table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "shard.json"


def generate(root: Path, overrides: list[str]) -> None:
    from bassl.config import load_config
    from bassl.synth.generate import generate as synth

    synth(root, load_config(overrides).synth, progress=False)


def replicate(source: Path, dest: Path, copies: int) -> Path:
    """``dest``: the source's anno files, and every movie ``copies`` times (hard links; ids ``<vid>r<i>``)."""
    shutil.copytree(source / "anno", dest / "anno")
    frames = dest / "240P_frames"
    for movie in sorted((source / "240P_frames").iterdir()):
        for i in range(copies):
            target = frames / (movie.name if i == 0 else f"{movie.name}r{i}")
            target.mkdir(parents=True)
            for f in movie.iterdir():
                os.link(f, target / f.name)
    return dest


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="an existing MovieNet-SSeg layout (default: generate one)")
    parser.add_argument("--replicate", type=int, default=8, help="copies of each movie (hard links); 1 = as is")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shard-size", default="64MB")
    parser.add_argument("--workdir", type=Path, help="where outputs go (default: a temp dir beside /tmp)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("overrides", nargs="*", help="synth.* overrides when generating")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_shard_", dir=args.workdir))
    try:
        source = args.source
        if source is None:
            source = work / "generated"
            t = time.perf_counter()
            generate(source, args.overrides)
            print(f"generated {source} in {time.perf_counter() - t:.0f} s", flush=True)
        if args.replicate > 1:
            source = replicate(source, work / "src", args.replicate)
        files = sorted((source / "240P_frames").glob("*/*.jpg"))
        data_bytes = 0
        for f in files:  # warm the page cache: both sides then read from memory
            data_bytes += len(f.read_bytes())
        movies = len({f.parent.name for f in files})
        shots = len([f for f in files if f.name.endswith("_img_0.jpg")])
        print(f"source {source}: {movies} movies, {shots} shots, {len(files)} keyframes, {data_bytes / 1e6:.0f} MB",
              flush=True)

        out = work / "out"
        bassl = [sys.executable, "-m", "bassl", "shard", "--source", str(source), "--shard-size", args.shard_size,
                 "--no-progress"]
        sides = {
            # --hard-dereference: the replicas are hard links, which tar would otherwise store once
            "tar": ["tar", "--hard-dereference", "-cf", str(out / "all.tar"), "-C", str(source), "240P_frames"],
            "bassl_shard_1_process": [*bassl, "--out", str(out), "--workers", "1"],
            "bassl_shard_2_workers": [*bassl, "--out", str(out), "--workers", "2"],
        }
        runs: dict[str, list[tuple[float, float, float | None]]] = {k: [] for k in sides}
        load_before = os.getloadavg()
        names = list(sides)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                wall, cpu, stdout = timed(sides[name])
                m = re.search(r" in ([\d.]+) s \(", stdout)  # what `bassl shard` reports: start of plan to manifest
                runs[name].append((wall, cpu, float(m.group(1)) if m else None))
                print(f"  {name:24s} {wall:6.2f} s  ({data_bytes / 1e6 / wall:6.0f} MB/s)", flush=True)
        load_after = os.getloadavg()

        def summary(name: str) -> dict:
            walls = [w for w, _, _ in runs[name]]
            inner = [i for _, _, i in runs[name] if i is not None]
            med = statistics.median(walls)
            row = {"wall_s": [round(w, 3) for w in walls], "median_s": round(med, 3), "min_s": round(min(walls), 3),
                   "mb_per_s": round(data_bytes / 1e6 / med, 1),
                   "cpu_s_median": round(statistics.median(c for _, c, _ in runs[name]), 3)}
            if inner:
                row["in_command_median_s"] = round(statistics.median(inner), 3)
                row["in_command_mb_per_s"] = round(data_bytes / 1e6 / statistics.median(inner), 1)
            return row

        results = {name: summary(name) for name in sides}
        tar_rate = results["tar"]["mb_per_s"]
        for name in sides:
            results[name]["vs_tar"] = round(results[name]["mb_per_s"] / tar_rate, 2)
        one, two = results["bassl_shard_1_process"], results["bassl_shard_2_workers"]
        report = {
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)]},
            "data": {"movies": movies, "shots": shots, "keyframes": len(files), "mb": round(data_bytes / 1e6, 1),
                     "replicate": args.replicate, "page_cache": "warm (read once before timing)"},
            "settings": {"repeats": args.repeats, "shard_size": args.shard_size, "workdir": str(work.parent)},
            "results": results,
            "speedup_2_workers_vs_1": round(one["median_s"] / two["median_s"], 2),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print("\n| side | median s | MB/s | vs tar | CPU s | in-command MB/s |\n|---|---|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['median_s']} | {r['mb_per_s']} | {r['vs_tar']} | {r['cpu_s_median']} | "
                  f"{r.get('in_command_mb_per_s', '')} |")
        print(f"2 workers vs 1: {report['speedup_2_workers_vs_1']}x; load avg {load_before[0]:.2f} -> {load_after[0]:.2f}")
        print(f"results: {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
