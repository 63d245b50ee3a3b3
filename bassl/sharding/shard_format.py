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
import re
from typing import BinaryIO

BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to whole 10 KiB records, as GNU tar and Python's tarfile do
MTIME = 946684800  # 2000-01-01T00:00:00Z, fixed so shards are byte-identical whatever the build date
MODE = 0o644
INDEX_VERSION = "v1.2"  # the format wds2idx (DALI 2.x) writes: "ext data_offset size member_name" per member
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,90}$")  # no dots (readers split at the first), no spaces (index is text)


def keyframe_ext(k: int) -> str:
    return f"{k}.jpg"


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


def jpeg_problem(data: bytes) -> str | None:
    """Why ``data`` is not a whole JPEG, or None. Checks the SOI and EOI markers only (no decode)."""
    if not data:
        return "empty file"
    if data[:2] != b"\xff\xd8":
        return "not a JPEG (no FFD8 start-of-image marker)"
    # Some encoders pad after EOI with zero bytes; a truncated file has no EOI at all.
    if not data.endswith(b"\xff\xd9") and not data[-64:].rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "truncated JPEG (no FFD9 end-of-image marker)"
    return None


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


def ustar_header(name: str, size: int) -> bytes:
    """The 512-byte header Python's ``tarfile`` (USTAR format) writes for our fixed fields."""
    raw = name.encode("ascii")
    if len(raw) > 100:
        raise ValueError(f"member name {name!r} is longer than 100 bytes")
    if size >= 8**11:
        raise ValueError(f"member {name!r} of {size} bytes is too large for a USTAR header")
    h = bytearray(_TEMPLATE)
    h[: len(raw)] = raw
    h[124:136] = _octal(size, 12)
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


class TarStream:
    """Writes samples to a binary file as tar members and remembers each member's data offset and size.

    ``hasher`` (a hashlib object) sees every byte written, so the checksum costs no second read.
    """

    def __init__(self, f: BinaryIO, hasher) -> None:
        self.f = f
        self.hasher = hasher
        self.offset = 0
        self.index: list[list[tuple[str, int, int, str]]] = []  # per sample: (ext, data offset, size, name)

    def add_sample(self, key: str, members: list[tuple[str, bytes]]) -> None:
        parts: list[bytes] = []
        entries = []
        for ext, data in members:
            name = f"{key}.{ext}"
            parts.append(ustar_header(name, len(data)))
            entries.append((ext, self.offset + BLOCK, len(data), name))
            parts.append(data)
            pad = padded(len(data)) - len(data)
            if pad:
                parts.append(bytes(pad))
            self.offset += member_bytes(len(data))
        self._write(b"".join(parts))
        self.index.append(entries)

    def close(self) -> int:
        """End the archive; returns its total size."""
        end = archive_bytes(self.offset)
        self._write(bytes(end - self.offset))
        self.offset = end
        return end

    def _write(self, data: bytes) -> None:
        self.f.write(data)
        self.hasher.update(data)


def index_text(samples: list[list[tuple[str, int, int, str]]]) -> str:
    """The DALI webdataset index, byte-for-byte what ``wds2idx`` writes for the same tar."""
    lines = [f"{INDEX_VERSION} {len(samples)}"]
    lines += [" ".join(f"{ext} {offset} {size} {name}" for ext, offset, size, name in sample) for sample in samples]
    return "\n".join(lines) + "\n"
