"""What a video file's name becomes where only ASCII will do: a video id (a shard key, a folder name) and the text of
an EDL. Accented letters lose their accents (été -> ete); letters with no ASCII form (電影) cannot be spelled, and
each kind of name says what it does with them."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from bassl.data.shard_format import KEY_RE
from bassl.errors import DataError


def without_accents(text: str) -> str:
    """``text`` with combining marks dropped after Unicode decomposition (NFKD): é -> e, ﬁ -> fi; other non-ASCII
    characters are kept for the caller to judge."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def video_id(path: Path) -> str:
    """A stable id from the file name: ASCII letters, digits, '_' and '-' kept, accents dropped, anything else
    becomes '_'. A name with letters that have no ASCII form (電影.mp4, 第1話.mp4) gets 8 hex digits of its hash,
    so that two such names stay two ids and a movie keeps its id across runs."""
    stem = without_accents(path.stem)
    vid = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")
    if any(not c.isascii() for c in stem):
        # one name, one id: the composed form (macOS stores names decomposed), bytes as the file system gave them
        name = unicodedata.normalize("NFC", path.stem).encode("utf-8", "surrogateescape")
        vid = f"{vid[:71].rstrip('_') or 'video'}-{hashlib.sha1(name).hexdigest()[:8]}"
    vid = vid[:80] or "video"
    if not KEY_RE.match(f"{vid}_0000"):
        raise DataError(f"{path}: cannot make a video id from its name; rename it (letters, digits, _ and -)")
    return vid


def edl_text(text: str) -> str:
    """``text`` as CMX3600 takes it: one line of ASCII (accents dropped, other letters as ``_``), whatever a file's
    name holds."""
    return "".join(c if c.isascii() else "_" for c in without_accents(" ".join(text.split())))
