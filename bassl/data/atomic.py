"""The one way bassl writes a file that a crash could leave half-written: a hidden temp name, then ``os.replace``.

A reader sees the old file or the new one, never a part. Temp names carry the host and the process id
(``.<name>.<host>.<pid>.tmp``), so writers on several machines sharing a file system never collide, and a
dead writer's leftovers can be recognised (:func:`parse_temp_name`) and removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)\.(?P<pid>\d+)\.bassl\.tmp$")


def writer_host() -> str:
    """Where this process's pids mean something: the host name and the pid namespace (containers that share a host
    name, as with host networking, each count their own pids), e.g. ``node7-4026531836``."""
    host = socket.gethostname().split(".")[0] or "host"
    try:
        return f"{host}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


def temp_path(path: str | Path) -> Path:
    """The hidden temp name beside ``path`` for this process on this machine (``.<name>.<host>.<pid>.bassl.tmp``:
    only bassl's own temp files look like that)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{writer_host()}.{os.getpid()}.bassl.tmp")


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


STALE_TEMP_SECONDS = 600  # a shard temp file untouched this long belongs to a dead run (a live writer adds every MB)
OTHER_HOST_STALE_SECONDS = 6 * 3600  # any other temp of another machine's: a keyframe folder may wait long between
#   writes (a long shot of a slow video), and no pid can be asked there


def writer_running(pid: int) -> bool:
    """True for a live process; False for no process or a zombie (killed, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def remove_dead_temps(directory: str | Path) -> int:
    """Remove the temp files and folders (:func:`temp_path`) in ``directory`` whose writers are dead: of this host
    (and pid namespace), no such process; of another, untouched for :data:`OTHER_HOST_STALE_SECONDS`. A stage calls
    it at its start, so a run killed part way leaves nothing behind once the next one starts; another remover or a
    writer finishing at the same moment is no error. Returns how many were removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    host, now, removed = writer_host(), time.time(), 0
    for entry in os.scandir(directory):
        parsed = parse_temp_name(entry.name)
        if parsed is None:
            continue
        _, writer, pid = parsed
        try:
            if writer == host:
                dead = pid != os.getpid() and not writer_running(pid)
            else:  # no way to ask another machine: a writer that has not written for this long is taken for dead
                dead = now - entry.stat(follow_symlinks=False).st_mtime > OTHER_HOST_STALE_SECONDS
            if dead:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # renamed into place, or removed by another run, since the listing
            continue
    return removed
