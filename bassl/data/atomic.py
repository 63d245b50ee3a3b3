"""The one way bassl writes a file that a crash could leave half-written: a hidden temp name, then ``os.replace``.

A reader sees the old file or the new one, never a part. Temp names carry the host and the process id
(``.<name>.<host>.<pid>.tmp``), so writers on several machines sharing a file system never collide, and a
dead writer's leftovers can be recognised (:func:`parse_temp_name`) and removed.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.tmp$")


def temp_path(path: str | Path) -> Path:
    """The hidden temp name beside ``path`` for this process on this machine."""
    path = Path(path)
    host = socket.gethostname().split(".")[0] or "host"
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.tmp")


def parse_temp_name(name: str) -> tuple[str, str, int] | None:
    """(final file name, writer host, writer pid) of a temp name made by :func:`temp_path`, else None."""
    m = _TEMP_RE.match(name)
    return (m.group("name"), m.group("host"), int(m.group("pid"))) if m else None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write ``path`` through (``torch.save``, ``pq.write_table``, a stream); on success it
    replaces ``path`` in one step, on an exception it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def write_json(path: str | Path, doc: Any, indent: int | None = 1) -> Path:
    """A JSON document (reports, records, state files), atomically, ending in a newline."""
    return write_atomic(path, json.dumps(doc, indent=indent) + "\n")
