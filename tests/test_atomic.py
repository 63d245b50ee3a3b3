"""Atomic writes and what killed writers leave: their temp files are recognised and removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bassl.data.atomic import OTHER_HOST_STALE_SECONDS, remove_dead_temps, write_atomic, writer_host


def test_dead_writers_temps_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    host = writer_host()
    (tmp_path / f".part-00000.parquet.{host}.{dead_pid}.bassl.tmp").write_bytes(b"PAR1 half")  # a killed extract's
    (tmp_path / f".vid0.{host}.{dead_pid}.bassl.tmp").mkdir()  # a killed ingest's keyframe folder
    (tmp_path / f".vid0.{host}.{dead_pid}.bassl.tmp" / "shot_0000_img_0.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / f".mine.{host}.{os.getpid()}.bassl.tmp").write_bytes(b"")  # this process's own: being written
    (tmp_path / f".x.{host}-1.{dead_pid}.bassl.tmp").write_bytes(b"")  # another pid namespace's: its pids not ours
    (tmp_path / ".a.otherhost.1.bassl.tmp").write_bytes(b"")  # another machine's, written just now: may be alive
    old = tmp_path / ".b.otherhost.2.bassl.tmp"
    old.write_bytes(b"")
    os.utime(old, (time.time() - OTHER_HOST_STALE_SECONDS - 5,) * 2)  # another machine's, untouched for long: dead
    (tmp_path / "report.json").write_text("{}")  # not a temp file
    (tmp_path / ".report.json.12345.tmp").write_text("{}")  # another tool's temp-like name: not bassl's
    assert remove_dead_temps(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".mine.{host}.{os.getpid()}.bassl.tmp", f".x.{host}-1.{dead_pid}.bassl.tmp", ".a.otherhost.1.bassl.tmp",
         "report.json", ".report.json.12345.tmp"])
    assert remove_dead_temps(tmp_path / "nowhere") == 0


def test_an_atomic_write_shows_the_old_file_or_the_new_one(tmp_path):
    path = write_atomic(tmp_path / "a" / "f.txt", "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new" and [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temp left
