"""Atomic writes and what killed writers leave: their temp files are recognised and removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bassl.data.atomic import STALE_TEMP_SECONDS, parse_temp_name, remove_dead_temps, temp_path, write_atomic


def test_dead_writers_temps_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    host = parse_temp_name(temp_path(tmp_path / "x").name)[1]
    (tmp_path / f".part-00000.parquet.{host}.{dead_pid}.tmp").write_bytes(b"PAR1 half")  # a killed extract's
    (tmp_path / f".vid0.{host}.{dead_pid}.tmp").mkdir()  # a killed ingest's keyframe folder
    (tmp_path / f".vid0.{host}.{dead_pid}.tmp" / "shot_0000_img_0.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / f".mine.{host}.{os.getpid()}.tmp").write_bytes(b"")  # this process's own: being written
    (tmp_path / ".a.otherhost.1.tmp").write_bytes(b"")  # another machine's, written just now: may be alive
    old = tmp_path / ".b.otherhost.2.tmp"
    old.write_bytes(b"")
    os.utime(old, (time.time() - STALE_TEMP_SECONDS - 5,) * 2)  # another machine's, untouched for long: dead
    (tmp_path / "report.json").write_text("{}")  # not a temp file
    assert remove_dead_temps(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".mine.{host}.{os.getpid()}.tmp", ".a.otherhost.1.tmp", "report.json"])
    assert remove_dead_temps(tmp_path / "nowhere") == 0


def test_an_atomic_write_shows_the_old_file_or_the_new_one(tmp_path):
    path = write_atomic(tmp_path / "a" / "f.txt", "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new" and [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temp left
