"""Where shards live: a local directory, or object storage (``s3://``, ``gs://``, ``https://``) through fsspec.

One small interface for both, :class:`Store`: whole objects, byte ranges (many at once), uploads that appear under
their final name only when complete. Remote stores take their endpoint and credentials from the standard
environment and config files of their client (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``~/.aws/config``,
``GOOGLE_APPLICATION_CREDENTIALS``, ...), never from bassl's config, and nothing of them is logged.

Faults: a dropped connection, a cut-short body or a 5xx is retried with backoff (botocore's standard retry mode
plus s3fs's own retries of streaming errors); a missing object is a :class:`DataError` naming it. A store
is safe to use from forked DataLoader workers: each process opens its own client.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from bassl.data.atomic import atomic_path
from bassl.errors import DataError

REMOTE = re.compile(r"^(s3|s3a|gs|gcs|https?)://", re.IGNORECASE)
S3_OPTIONS = {"config_kwargs": {"retries": {"mode": "standard", "max_attempts": 6}, "max_pool_connections": 32}}
MAX_GAP = 1 << 20  # ranges closer than this are fetched in one request: one request per window of shots


def is_remote(location: str | Path) -> bool:
    return bool(REMOTE.match(str(location)))


def join(location: str | Path, name: str) -> str:
    """``location/name`` for a directory or a URL prefix."""
    return f"{str(location).rstrip('/')}/{name}" if is_remote(location) else str(Path(location) / name)


def coalesce(ranges: Sequence[tuple[int, int]], max_gap: int = MAX_GAP) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, end)`` spans covering every range; ranges less than ``max_gap`` apart share a span."""
    spans: list[list[int]] = []
    for start, end in sorted(ranges):
        if spans and start - spans[-1][1] < max_gap:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(a, b) for a, b in spans]


class Store:
    """Objects under one location (a directory or a URL prefix), named by their relative path."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location).rstrip("/") if is_remote(location) else str(Path(location).expanduser().resolve())
        self.remote = is_remote(self.location)
        self._fs = None
        self._pid = -1

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    def __getstate__(self) -> dict:  # the client is per process (fsspec's are not fork-safe); reopen after unpickling
        return {"location": self.location, "remote": self.remote, "_fs": None, "_pid": -1}

    @property
    def fs(self):
        """The fsspec file system, opened once per process."""
        if self._fs is None or self._pid != os.getpid():
            import fsspec

            protocol = self.location.split("://", 1)[0].lower()
            options = S3_OPTIONS if protocol in ("s3", "s3a") else {}
            self._fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
            self._pid = os.getpid()
        return self._fs

    def url(self, name: str) -> str:
        return join(self.location, name)

    def _path(self, name: str) -> str:
        url = self.url(name)
        return url if url.lower().startswith("http") else url.split("://", 1)[-1]

    def _missing(self, name: str, e: Exception) -> DataError:
        return DataError(f"{self.url(name)}: no such object ({type(e).__name__}); is data.shards the URL `bassl shard "
                         f"--out` wrote to, and can this machine's credentials read it?")

    # ---- reading -------------------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return self.fs.exists(self._path(name)) if self.remote else Path(self.url(name)).exists()

    def size(self, name: str) -> int:
        try:
            return int(self.fs.size(self._path(name))) if self.remote else Path(self.url(name)).stat().st_size
        except (FileNotFoundError, OSError) as e:
            raise self._missing(name, e) from e

    def read(self, name: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(name)) if self.remote else Path(self.url(name)).read_bytes()
        except FileNotFoundError as e:
            raise self._missing(name, e) from e

    def read_ranges(self, names: Sequence[str], starts: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        """``[name[start:end] ...]``, fetched concurrently from a remote store; each must come back whole."""
        if not names:
            return []
        if not self.remote:
            out = []
            for name, s, e in zip(names, starts, ends, strict=True):
                with open(self.url(name), "rb") as f:
                    f.seek(s)
                    out.append(f.read(e - s))
        else:
            out = self.fs.cat_ranges([self._path(n) for n in names], list(starts), list(ends), on_error="return")
        for name, s, e, data in zip(names, starts, ends, out, strict=True):
            if isinstance(data, FileNotFoundError):
                raise self._missing(name, data)
            if isinstance(data, BaseException):
                raise DataError(f"{self.url(name)}: reading bytes {s}-{e} failed after retries ({data})") from data
            if len(data) != e - s:
                raise DataError(f"{self.url(name)}: asked for bytes {s}-{e} and got {len(data)}; the object is shorter "
                                "than the manifest says (or the server ignores Range requests)")
        return out

    # ---- writing -------------------------------------------------------------------------------------

    def write(self, name: str, data: bytes) -> None:
        """One object, visible only once complete (one PUT remotely; the atomic writer locally)."""
        if self.remote:
            self.fs.pipe_file(self._path(name), data)
        else:
            with atomic_path(self.url(name)) as tmp:
                tmp.write_bytes(data)

    def write_json(self, name: str, doc: object) -> None:
        """A JSON document as :func:`bassl.data.atomic.write_json` writes one (indent 1, ending in a newline)."""
        self.write(name, (json.dumps(doc, indent=1) + "\n").encode())

    def upload(self, local: str | Path, name: str) -> None:
        """A local file as object ``name``: a single PUT, or a multipart upload that S3 shows only when complete."""
        if not self.remote:
            raise ValueError("upload() is for remote stores")
        self.fs.put_file(str(local), self._path(name))
