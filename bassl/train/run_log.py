"""A pre-training run's log on disk, its one reader and writer: ``metrics.jsonl`` beside the run (a line per step:
``step``, the loss terms, ``lr``; a line per evaluated epoch: ``step``, ``epoch``, ``eval``), the loss curve across
resumes, and ``checkpoints/evaluation.json``, the step of the last end-of-epoch evaluation and its monitors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bassl.data.atomic import write_atomic, write_json

METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """One line: a step's (``{"step", terms..., "lr"}``) or an epoch's evaluation (``{"step", "epoch", "eval"}``)."""
    with Path(path).open("a") as f:
        f.write(json.dumps(record) + "\n")


def _lines(path: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """Each line with its record; None for a line cut short by a crash."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError:
            out.append((line, None))
    return out


def read_metrics(path: str | Path) -> tuple[list[dict[str, float]], list[dict[str, Any]]]:
    """(the step records, the epoch evaluations), in order. A line cut short by a crash is skipped."""
    records = [d for _, d in _lines(Path(path)) if d is not None]
    return [d for d in records if "eval" not in d], [d for d in records if "eval" in d]


def truncate_metrics(path: Path, step: int, drop_eval_at_step: bool = False) -> None:
    """Keep the lines up to ``step`` (a resumed run goes on from its checkpoint: the steps after it were lost with a
    crash and are logged again) and, with ``drop_eval_at_step``, drop that step's evaluation, which a resume owes
    and logs again. A line cut short counts as after every step."""
    def logged_step(d: dict[str, Any] | None) -> float:
        return d["step"] if isinstance(d, dict) and isinstance(d.get("step"), int) else math.inf

    keep = [line for line, d in (_lines(path) if path.exists() and step else [])
            if logged_step(d) <= step and not (drop_eval_at_step and logged_step(d) == step and "eval" in d)]
    write_atomic(path, "".join(line + "\n" for line in keep))


def write_evaluation(ckpt_dir: Path, step: int, monitors: dict[str, Any] | None) -> None:
    """Recorded as soon as an epoch's evaluation ran: a stop before that epoch's checkpoint does not owe it again."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(ckpt_dir / EVALUATION, {"step": step, "monitors": monitors}, indent=None)


def read_evaluation(ckpt_dir: Path) -> dict[str, Any] | None:
    """What :func:`write_evaluation` last recorded in ``ckpt_dir``; None when nothing (or a file from before it)."""
    try:
        doc = json.loads((ckpt_dir / EVALUATION).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("step"), int) else None
