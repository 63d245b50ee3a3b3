"""bound_heap: after it, a block above 64 KiB is mmapped (returned to the system when freed), even once glibc's
dynamic threshold has risen; without it, the same block comes from the heap."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                              "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(8 << 20))  # a freed mmapped block raises the dynamic threshold to 8 MiB
if sys.argv[1] == "bound":
    from bassl.memory import bound_heap
    assert bound_heap()
before = libc.mallinfo2().hblks
block = libc.malloc(512 << 10)
print(libc.mallinfo2().hblks - before)
"""


def mmapped_blocks(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_bound_heap_sends_large_blocks_to_mmap_after_the_threshold_has_risen():
    assert mmapped_blocks("default") == 0  # glibc alone: 512 KiB from the heap, where it fragments
    assert mmapped_blocks("bound") == 1
