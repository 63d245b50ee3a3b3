"""The README's two set-up commands are the ones CI runs, and its documented behaviour holds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith((".venv/bin/", "python3 -m venv"))]


def test_ci_runs_exactly_the_readme_commands():
    readme = _commands((ROOT / "README.md").read_text())
    ci = _commands((ROOT / ".ci" / "run").read_text())
    assert len(ci) == 2, ci
    assert readme[:2] == ci


def test_every_listed_subcommand_exists():
    from bassl.cli import COMMANDS

    listed = set(re.findall(r"^\| `bassl ([a-z-]+)", (ROOT / "README.md").read_text(), flags=re.M))
    assert listed and listed <= set(COMMANDS), listed - set(COMMANDS)
