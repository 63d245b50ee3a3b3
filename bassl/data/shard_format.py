"""The bytes of a bassl shard: one WebDataset sample per shot, deterministic tar members, the DALI index.

A sample is ``<video_id>_<shot:04d>`` with members ``<key>.0.jpg``, ``<key>.1.jpg``, ``<key>.2.jpg`` (the
source JPEG bytes, never re-encoded) and ``<key>.json`` (``{"video_id", "shot", "num_shots"}``). Both
readers split a member name at the first dot, so the key holds none and the extension is ``0.jpg``:
``webdataset`` decodes it as an image (it looks at the last suffix), DALI selects it with ``ext=["0.jpg", ...]``.

The tar is plain USTAR with every header field fixed except name and size (mtime, mode, uid/gid and owner
names are constants), so the same input gives the same bytes on any machine. Because we write every
header ourselves we know each member's data offset, and the DALI index (the ``v1.2`` text that ``wds2idx``
writes) comes for free instead of a second pass over the tar.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import BinaryIO

from bassl.errors import DataError

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to whole 10 KiB records, as GNU tar and Python's tarfile do
MTIME = 946684800  # 2000-01-01T00:00:00Z, fixed so shards are byte-identical whatever the build date
MODE = 0o644
INDEX_VERSION = "v1.2"  # the format wds2idx (DALI 2.x) writes: "ext data_offset size member_name" per member
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,90}$")  # no dots (readers split at the first), no spaces (index is text)


def keyframe_ext(k: int) -> str:
    return f"{k}.jpg"


_KEYFRAME_EXT = re.compile(r"^(\d+)\.jpg$")


def keyframe_of_ext(ext: str) -> int | None:
    """The keyframe number of a member extension (``"2.jpg"`` -> 2), None for other members (``json``)."""
    m = _KEYFRAME_EXT.match(ext)
    return int(m.group(1)) if m else None


def member_exts(keyframes_per_shot: int) -> list[str]:
    """What DALI's ``ext=`` takes to read a whole sample, in member order."""
    return [keyframe_ext(k) for k in range(keyframes_per_shot)] + ["json"]


def sample_key(video_id: str, shot: int) -> str:
    key = f"{video_id}_{shot:04d}"
    if not KEY_RE.match(key):
        raise ValueError(f"sample key {key!r}: video ids may use letters, digits, '_' and '-' only (no dots or spaces)")
    return key


def sample_json(video_id: str, shot: int, num_shots: int) -> bytes:
    return json.dumps({"video_id": video_id, "shot": shot, "num_shots": num_shots}, separators=(",", ":")).encode()


def padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def member_bytes(size: int) -> int:
    """Bytes a member of ``size`` data bytes takes in the tar: header plus data padded to a block."""
    return BLOCK + padded(size)


def archive_bytes(members_bytes: int) -> int:
    """Total tar size for members taking ``members_bytes``: two zero blocks, then padding to a record."""
    return -(-(members_bytes + 2 * BLOCK) // RECORD) * RECORD


def jpeg_problem(data) -> str | None:
    """Why ``data`` (bytes or a memoryview) is not a whole JPEG, or None. Checks SOI and EOI markers only."""
    if not len(data):
        return "empty file"
    if bytes(data[:2]) != b"\xff\xd8":
        return "not a JPEG (no FFD8 start-of-image marker)"
    # Some encoders pad after EOI with zero bytes; a truncated file has no EOI at all.
    tail = bytes(data[-64:])
    if not tail.endswith(b"\xff\xd9") and not tail.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "truncated JPEG (no FFD9 end-of-image marker)"
    return None


def jpeg_file_problem(path: str | Path) -> str | None:
    """:func:`jpeg_problem` of a file, read from its first 2 and last 64 bytes only (``bassl validate`` checks every
    keyframe of a data set)."""
    with open(path, "rb") as f:
        head = f.read(2)
        size = f.seek(0, os.SEEK_END)
        if size <= 66:
            f.seek(0)
            return jpeg_problem(f.read())
        f.seek(size - 64)
        return jpeg_problem(head + f.read())


# ---- USTAR headers ------------------------------------------------------------------------------


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _template() -> bytearray:
    h = bytearray(BLOCK)
    h[100:108] = _octal(MODE, 8)
    h[108:116] = _octal(0, 8)  # uid
    h[116:124] = _octal(0, 8)  # gid
    h[136:148] = _octal(MTIME, 12)
    h[148:156] = b"        "  # checksum field counts as spaces while summing
    h[156:157] = b"0"  # regular file
    h[257:265] = b"ustar\x0000"
    return h  # uname, gname, devmajor, devminor stay NUL, as tarfile writes them for a regular file


_TEMPLATE = bytes(_template())


_TEMPLATE_SUM = sum(_TEMPLATE)


def _put_header(buf: bytearray, p: int, name: str, size: int) -> None:
    """The 512-byte header Python's ``tarfile`` (USTAR format) writes for our fixed fields, at ``buf[p:]``."""
    raw = name.encode("ascii")
    if len(raw) > 100 or size >= 8**11:
        raise ValueError(f"member {name!r} ({size} bytes) does not fit a USTAR header")
    size_field = b"%011o\x00" % size
    buf[p : p + BLOCK] = _TEMPLATE
    buf[p : p + len(raw)] = raw
    buf[p + 124 : p + 136] = size_field
    buf[p + 148 : p + 156] = b"%06o\x00 " % (_TEMPLATE_SUM + sum(raw) + sum(size_field))


def ustar_header(name: str, size: int) -> bytes:
    h = bytearray(BLOCK)
    _put_header(h, 0, name, size)
    return bytes(h)


FLUSH_BYTES = 1 << 20  # write + hash every MB: the buffer stays in cache (4 MB measured slower)


class TarStream:
    """Writes samples to a binary file as tar members and remembers each member's data offset and size.

    Keyframes are read straight into one reusable buffer behind their headers, which is written (and fed to
    ``hasher``, a hashlib object, so the checksum costs no second read) every few MB: no per-file copies.
    A sample is staged with :meth:`add_file` / :meth:`add_bytes` and then either committed with
    :meth:`end_sample` or dropped with :meth:`drop_sample`.
    """

    def __init__(self, f: BinaryIO, hasher) -> None:
        self.f = f
        self.hasher = hasher
        self.offset = 0  # archive bytes committed (written or waiting in the buffer)
        self.index: list[list[tuple[str, int, int, str]]] = []  # per sample: (ext, data offset, size, name)
        self._buf = bytearray(2 * FLUSH_BYTES)
        self._fill = 0  # committed bytes in the buffer
        self._pos = 0  # end of the staged sample
        self._entries: list[tuple[str, int, int, str]] = []
        self._key = ""

    def begin_sample(self, key: str) -> None:
        self._key, self._pos, self._entries = key, self._fill, []

    def _ensure(self, need: int) -> None:
        if self._pos + need > len(self._buf):
            self._buf.extend(bytes(max(need, len(self._buf))))

    def _member(self, ext: str, size: int) -> None:
        """Header at the staging position for data already placed behind it; zero the padding."""
        name = f"{self._key}.{ext}"
        p, buf = self._pos, self._buf
        _put_header(buf, p, name, size)
        end = p + BLOCK + size
        stop = p + BLOCK + padded(size)
        buf[end:stop] = bytes(stop - end)
        self._entries.append((ext, self.offset + (p - self._fill) + BLOCK, size, name))
        self._pos = stop

    def add_bytes(self, ext: str, data: bytes) -> None:
        self._ensure(BLOCK + padded(len(data)))
        self._buf[self._pos + BLOCK : self._pos + BLOCK + len(data)] = data
        self._member(ext, len(data))

    def add_file(self, ext: str, path: str, check=jpeg_problem) -> str | None:
        """Read the file into the sample; returns why it is unusable (then drop the sample), or None."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            return f"unreadable keyframe ({e.strerror or e})"
        try:
            size = 0
            while True:
                self._ensure(BLOCK + size + (1 << 16))
                start = self._pos + BLOCK + size
                n = os.readv(fd, [memoryview(self._buf)[start:]])
                if n == 0:
                    break
                size += n
        except OSError as e:
            return f"unreadable keyframe ({e.strerror or e})"
        finally:
            os.close(fd)
        data = memoryview(self._buf)[self._pos + BLOCK : self._pos + BLOCK + size]
        problem = check(data) if check else None
        data.release()
        if problem is None:
            self._member(ext, size)
        return problem

    def drop_sample(self) -> None:
        self._pos, self._entries = self._fill, []

    def end_sample(self) -> None:
        self.offset += self._pos - self._fill
        self._fill = self._pos
        self.index.append(self._entries)
        self._entries = []
        if self._fill >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        with memoryview(self._buf)[: self._fill] as view:
            self.f.write(view)
            self.hasher.update(view)
        self._fill = self._pos = 0

    def close(self) -> int:
        """End the archive (zero blocks, padding to a record); returns its total size."""
        end = archive_bytes(self.offset)
        self._ensure(end - self.offset)
        self._buf[self._fill : self._fill + end - self.offset] = bytes(end - self.offset)
        self._fill += end - self.offset
        self.offset = end
        self._flush()
        return end


def index_text(samples: list[list[tuple[str, int, int, str]]]) -> str:
    """The DALI webdataset index, byte-for-byte what ``wds2idx`` writes for the same tar."""
    lines = [f"{INDEX_VERSION} {len(samples)}"]
    lines += [" ".join(f"{ext} {offset} {size} {name}" for ext, offset, size, name in sample) for sample in samples]
    return "\n".join(lines) + "\n"


def parse_index(text: str, where: str) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """A DALI webdataset index (ours, or ``wds2idx``'s): per sample, its key and ``{ext: (data offset, size)}``."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("v1"):
        raise DataError(f"{where}: not a DALI webdataset index (first line {lines[:1]!r}); rebuild the shards with "
                        "`bassl shard` (it keeps finished shards)")
    samples = []
    for line in lines[1:]:
        parts = line.split()
        if not parts or len(parts) % 4:
            raise DataError(f"{where}: malformed line {line[:80]!r} (expected groups of: ext offset size name)")
        key = parts[3].split(".", 1)[0]
        samples.append((key, {parts[i]: (int(parts[i + 1]), int(parts[i + 2])) for i in range(0, len(parts), 4)}))
    return samples


def parse_sample_key(key: str) -> tuple[str, int]:
    """``<video_id>_<shot:04d>`` -> (video id, shot): the inverse of :func:`sample_key`."""
    vid, _, shot = key.rpartition("_")
    if not vid or not shot.isdigit():
        raise DataError(f"sample key {key!r} is not <video_id>_<shot>; these shards were not written by `bassl shard`")
    return vid, int(shot)


def index_name(shard_name: str) -> str:
    """The DALI index file beside a shard: ``shard-000003.tar`` -> ``shard-000003.idx``."""
    return shard_name[: -len(".tar")] + ".idx"
