"""Process pools for CPU-bound work over independent items (shards, videos): ``map`` over N processes.

fork when this process has one thread (workers start in milliseconds, as from the CLI), spawn otherwise: a fork
copies other threads' locks mid-use (DALI, torch and tqdm's monitor may hold some); spawn costs each worker a
fresh interpreter and its imports (~0.3 s), which only matters for small inputs. With one worker everything runs
in this process, which keeps tracebacks and debuggers simple.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def resolve_workers(n: int) -> int:
    """``n``, or for 0 one per core this process may use."""
    return n if n > 0 else len(os.sched_getaffinity(0))


def start_method() -> str:
    try:
        single = len(os.listdir("/proc/self/task")) == 1
    except OSError:
        single = False
    return "fork" if single and "fork" in mp.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class Maps:
    ordered: Callable  # like map
    unordered: Callable  # results as they finish


@contextmanager
def process_maps(workers: int) -> Iterator[Maps]:
    """``map`` over ``workers`` processes, or the builtin ``map`` for one. Leaving the block ends the pool, also on
    an error (a worker's exception re-raises in the caller)."""
    if workers <= 1:
        yield Maps(map, map)
        return
    with mp.get_context(start_method()).Pool(workers, initializer=_ignore_interrupts) as pool:
        yield Maps(lambda fn, xs: pool.imap(fn, xs, chunksize=4), lambda fn, xs: pool.imap_unordered(fn, xs))


def _ignore_interrupts() -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker it stops inside a queue's lock leaves that
    lock held, and the pool's shutdown then waits on it for ever. Workers ignore it; the parent stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
