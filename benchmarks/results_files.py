"""Where a benchmark's figures go, and the date and machine every result is stamped with: one writer for all the
scripts here, so each result is a ``results/<stem>.json`` for programs beside a ``results/<stem>.md`` to quote."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bassl.data.atomic import write_atomic, write_json

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """The machine in a few words, e.g. ``x86_64, 2 CPUs, no GPU``: ratios are compared only within one."""
    torch = sys.modules.get("torch")  # not imported here: most scripts never need it
    gpu = torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {gpu}"


def measured_on() -> dict[str, str]:
    """``date`` and ``machine``, the head of every result: figures from another day or machine are not comparable."""
    return {"date": datetime.now().isoformat(timespec="seconds"), "machine": machine()}


def write_results(stem: str, result: dict[str, Any], markdown: str | list[str], out: Path = RESULTS) -> Path:
    """``out/<stem>.json`` (``result``) and ``out/<stem>.md`` (``markdown``, lines or text), each written whole or
    not at all; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", result)
    text = markdown if isinstance(markdown, str) else "\n".join(markdown)
    return write_atomic(out / f"{stem}.md", text.rstrip("\n") + "\n")
