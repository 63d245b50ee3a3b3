"""Pack the GPU check for the lent GPU machine: no package index there, at most 64 MiB of files per command.

The machine's image has Python 3.12, torch and most of the scientific stack (``gpu_image_packages.txt``) but not
DeepSpeed, PyAV, WebDataset, PySceneDetect or DALI. This script builds, here, one folder per command under
``.gpu_pack/`` (git-ignored; each travels as the command's ``carry``):

- ``1/``: the wheels of every package bassl needs that the image lacks, DALI aside, for the target Python
  (DeepSpeed has no wheel on the index: it is built here). bassl itself is the working tree.
- ``1/`` … ``N/`` also: the DALI wheels (and what they need), tarred and split into parts that fill each command;
  each command copies its part out of the tree, and the last one joins them, checks the sha256 and installs.

The versions are those installed here (the ones the tests ran with). Every payload is checked against
``--limit-mib`` (60 MiB) and, with the tree, against the 64 MiB a command takes; the DALI parts are cut to fit
both. It prints the commands in order, with their carry path, payload and timeout, and writes them to
``.gpu_pack/plan.{json,md}``.

    .venv/bin/python benchmarks/gpu_pack.py [--python 3.12] [--out .gpu_pack]
    .venv/bin/python benchmarks/gpu_pack.py --emulate-image DIR   # a venv holding only the image's packages

``--emulate-image`` is how the dry run (tests/test_gpu_check.py) stands in for the GPU machine: a fresh venv in
which exactly the image's packages that are installed here are importable (linked file by file, with no other).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
IMAGE_LIST = Path(__file__).with_name("gpu_image_packages.txt")
BASE_ROOTS = ("deepspeed", "av", "webdataset", "scenedetect-headless")  # what bassl imports beyond the image
DALI_ROOTS = ("nvidia-dali-cuda130",)
# In the image, but carried anyway: pydantic needs typing-extensions>=4.16 and the image's version is not known
# (a newer typing-extensions in front of the image's is backward compatible).
CARRIED_ANYWAY = ("typing-extensions",)
MIB = 1 << 20
COMMAND_LIMIT_MIB = 64  # what one device command carries, the working tree included
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(17, 40)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]
TIMEOUTS = {"base": 360, "stash": 45, "dali": 200}  # seconds per command (gpu_check.sh stops its Python sooner)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_packages() -> set[str]:
    words = [w for line in IMAGE_LIST.read_text().splitlines() if not line.startswith("#") for w in line.split()]
    return {canonical(w) for w in words}


def needed(roots: tuple[str, ...], present: set[str], python: str) -> dict[str, str]:
    """name -> installed version: ``roots`` and everything they require (extras followed), less ``present``."""
    env = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0",
           "sys_platform": "linux", "platform_machine": "x86_64"}
    found: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(r, "") for r in roots]
    while todo:
        name, extra = todo.pop()
        key = canonical(name)
        if key in present or (key, extra) in seen:
            continue
        seen.add((key, extra))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"gpu_pack: {name} is needed but not installed here; install bassl as the README says") from None
        found[key] = dist.version
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({**env, "extra": extra}):
                todo += [(req.name, "")] + [(req.name, e) for e in req.extras]
    return dict(sorted(found.items()))


def wheel_for(name: str, version: str, python: str, dest: Path) -> Path:
    """The wheel of ``name==version`` for the target Python in ``dest``: downloaded, or built here if the index
    has none (DeepSpeed)."""
    def present() -> list[Path]:
        stem = f"{canonical(name).replace('-', '_')}-{version}-"
        return [p for p in dest.glob("*.whl") if p.name.lower().startswith(stem)]

    if not present():
        pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
        got = subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", python,
                              "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)],
                              "-d", str(dest), f"{name}=={version}"], capture_output=True, text=True)
        if got.returncode != 0 or not present():
            built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dest), f"{name}=={version}"],
                                   capture_output=True, text=True)
            if built.returncode != 0 or not present():
                raise SystemExit(f"gpu_pack: no wheel of {name}=={version} for Python {python}:\n"
                                 f"{(got.stderr + built.stderr)[-1500:]}")
    return present()[0]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def tree_bytes() -> int:
    """What travels with every command besides its carry: the tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return sum((ROOT / p).stat().st_size for p in out.decode().split("\0") if p and (ROOT / p).is_file())


def pack(out: Path, python: str, limit_mib: float) -> dict:
    present = image_packages()
    base = needed(BASE_ROOTS + CARRIED_ANYWAY, present - set(CARRIED_ANYWAY), python)
    dali = {k: v for k, v in needed(DALI_ROOTS, present | set(base), python).items()}
    cache = out / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    for folder in out.glob("[0-9]*"):  # a re-pack replaces the command folders
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()

    first = out / "1"
    first.mkdir()
    for name, version in base.items():
        w = wheel_for(name, version, python, cache)
        os.link(w, first / w.name)
    # DALI: one tar of its wheels, split into parts that each fit a command
    tar = cache / "dali.tar"
    with tarfile.open(tar, "w") as t:
        for name, version in dali.items():
            w = wheel_for(name, version, python, cache)
            t.add(w, arcname=w.name)
    tree = tree_bytes()
    part = min(int(limit_mib * MIB), COMMAND_LIMIT_MIB * MIB - tree - MIB // 2)  # each command carries the tree too
    room = part - sum(f.stat().st_size for f in first.iterdir())  # command 1 takes the first part
    parts = []
    with tar.open("rb") as f:
        while block := f.read(room if not parts else part):
            folder = out / str(1 + len(parts))
            folder.mkdir(exist_ok=True)
            parts.append(folder / f"dali.tar.{len(parts):02d}")
            parts[-1].write_bytes(block)
    (parts[-1].parent / "dali.sha256").write_text(f"{sha256(tar)}  dali.tar {len(parts)}\n")
    tar.unlink()

    rel = os.path.relpath(out, ROOT) if out.resolve().is_relative_to(ROOT) else str(out.resolve())
    commands = [{"stage": "base", "carry": f"{rel}/1",
                 "command": f"bash benchmarks/gpu_check.sh --stage base --pack {rel}/1 --out \"$OUT\""}]
    for p in parts[1:]:
        stage = "dali" if p == parts[-1] else "stash"
        tail = ' --out "$OUT"' if stage == "dali" else ""
        commands.append({"stage": stage, "carry": f"{rel}/{p.parent.name}",
                         "command": f"bash benchmarks/gpu_check.sh --stage {stage} --pack {rel}/{p.parent.name}{tail}"})
    for c in commands:
        folder = out / Path(c["carry"]).name
        c["payload_mib"] = round(sum(f.stat().st_size for f in folder.iterdir()) / MIB, 1)
        c["timeout_s"] = TIMEOUTS[c["stage"]]
        c["files"] = sorted(f.name for f in folder.iterdir())
    over = [c for c in commands if c["payload_mib"] > limit_mib or c["payload_mib"] + tree / MIB > COMMAND_LIMIT_MIB]
    plan = {"python": python, "tree_mib": round(tree / MIB, 1), "limit_mib": limit_mib, "base_packages": base,
            "dali_packages": dali, "commands": commands}
    (out / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    (out / "plan.md").write_text(plan_text(plan))
    if over:
        raise SystemExit(f"gpu_pack: payload over the limit ({limit_mib} MiB, or {COMMAND_LIMIT_MIB} MiB with the "
                         f"{tree / MIB:.1f} MiB tree): " + ", ".join(f"{c['carry']} {c['payload_mib']} MiB" for c in over))
    return plan


def plan_text(plan: dict) -> str:
    gpu_s = sum(c["timeout_s"] for c in plan["commands"])
    lines = [f"GPU check: {len(plan['commands'])} commands for Python {plan['python']}, one after the other on the "
             f"same machine, each within 30 s of the last (files outside the tree live only that long); at most "
             f"{gpu_s / 60:.0f} min of commands, plus 1-2 min of start-up. Tree {plan['tree_mib']} MiB.", ""]
    for i, c in enumerate(plan["commands"], 1):
        lines += [f"{i}. carry {c['carry']} ({c['payload_mib']} MiB), timeout_s {c['timeout_s']}:",
                  f"   {c['command']}"]
    lines += ["", "Then, here: .venv/bin/python benchmarks/gpu_check.py --combine <files of command 1> <files of the "
              "last command>  (writes benchmarks/results/gpu_check.{json,md})."]
    return "\n".join(lines) + "\n"


def emulate_image(dest: Path) -> Path:
    """A venv in which only the image's packages (those installed here) are importable; returns its python."""
    venv.create(dest, with_pip=False, symlinks=True)
    site = next((dest / "lib").glob("python3*/site-packages"))
    present, linked = image_packages(), []
    for dist in md.distributions():
        if canonical(dist.metadata["Name"]) not in present:
            continue
        linked.append(dist.metadata["Name"])
        for f in dist.files or []:
            src, dst = Path(dist.locate_file(f)), site / f
            if str(f).startswith("..") or not src.exists() or dst.exists() or "__pycache__" in f.parts:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dst)
    print(f"[gpu_pack] {dest}: {len(linked)} of the image's packages linked in", flush=True)
    return dest / "bin" / "python"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default="3.12", help="the GPU machine's Python (major.minor)")
    p.add_argument("--out", type=Path, default=ROOT / ".gpu_pack")
    p.add_argument("--limit-mib", type=float, default=60.0, help="the largest payload of one command")
    p.add_argument("--emulate-image", type=Path, metavar="DIR", help="only build a venv that stands in for the image")
    args = p.parse_args()
    if args.emulate_image:
        print(emulate_image(args.emulate_image))
        return
    plan = pack(args.out, args.python, args.limit_mib)
    print(plan_text(plan), end="")


if __name__ == "__main__":
    main()
