"""A heap that does not grow with the input, for the long single-process runs (``segment``, ``ingest``).

glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after which DALI's and the
decoders' per-batch buffers come from the heap and fragment it: measured on an 80-minute video, ``segment``'s
anonymous memory climbed by ~400 MB over its first ~15 batches and then levelled off. A fixed threshold of
64 KiB sends those buffers to mmap, which returns them to the system when they are freed (docs/videos.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
HEAP_MMAP_THRESHOLD = 64 * 1024


def bound_heap(threshold: int = HEAP_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes and trim the heap's top eagerly; process-wide, for
    allocations from now on. False where the C library is not glibc (nothing changes there)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, 0))
