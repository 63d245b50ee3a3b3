"""Stopping a run cleanly: SIGTERM/SIGUSR1 (Slurm preemption, ``scancel --signal=TERM``) and a first Ctrl-C (SIGINT)
end it after the current step with a checkpoint; a second Ctrl-C stops at once. ``run_state.json`` tells batch
scripts how it ended."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist

from bassl.data.atomic import write_json
from bassl.train.distributed import is_distributed

RUN_STATE = "run_state.json"


class StopRequested:
    """Truthy once a stop signal arrived on any rank; every rank sees it at the same step (one all-reduce)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()  # loader workers forked from here inherit the handler: they leave stopping to us
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
            if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue  # a background job's: Ctrl-C was never meant for it
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test harnesses)
                pass

    def close(self) -> None:
        """Give the signals back: after the run, SIGTERM ends the process again (a script may go on for hours)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            return
        if signum == signal.SIGINT:
            if self.signum is not None:  # the second Ctrl-C: at once, as without this handler
                raise KeyboardInterrupt
            print("\n[pretrain] Ctrl-C: stopping after this step with a checkpoint (--resume continues); Ctrl-C again "
                  "stops at once", file=sys.stderr, flush=True)
        self.signum = signum

    def __bool__(self) -> bool:
        flag = torch.tensor([1 if self.signum is not None else 0], device=self.device)
        if is_distributed():
            tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)  # every rank stops at the same step
        return bool(flag.item())


def write_run_state(out_dir: Path, state: str, step: int, target_step: int, signum: int | None) -> Path:
    """How this invocation ended, for batch scripts (scripts/slurm/pretrain.sbatch requeues on "stopped"):
    "stopped" = a signal ended it early and ``--resume`` continues; "done" = it reached its last step."""
    return write_json(Path(out_dir) / RUN_STATE, {"state": state, "step": step, "target_step": target_step,
                                                  "signal": signum}, indent=None)
