"""The progress bar of one training epoch: steps done, running loss and samples/s.

A bar is drawn (rich, on stderr) when ``train.progress`` is ``true``, or ``auto`` and
stderr is a terminal (``gogooku3 train`` typed in a shell); the Airflow train task's
subprocess writes to its log, which keeps only the trainer's one line per epoch. The running loss lives
on the training device: the bar reads it at most every ``interval`` seconds, so a CUDA
epoch pays one host sync per read, not one per step.
"""

from __future__ import annotations

import sys
import time

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PROGRESS_MODES = ("auto", True, False)


def progress_enabled(mode: object) -> bool:
    """``train.progress`` -> whether to draw bars: ``auto`` (a terminal on stderr), true,
    false; anything else is a ValueError naming the key."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"train.progress must be auto, true or false, got {mode!r}")
    return sys.stderr.isatty() if mode == "auto" else bool(mode)


class EpochProgress:
    """Context manager around one epoch's steps; a no-op when not ``enabled``.

    ``step(samples, loss_sum, count)`` after every optimizer step: ``samples`` stock-days
    in that step, ``loss_sum`` the epoch's running sum of sample-weighted total losses (a
    0-dim tensor on any device) over ``count`` samples so far.
    """

    def __init__(self, description: str, steps: int, enabled: bool,
                 console: Console | None = None, interval: float = 0.5) -> None:
        self.enabled, self.interval, self.steps = enabled, interval, steps
        self._done, self._samples, self._read_at = 0, 0, float("-inf")
        self._start = time.perf_counter()
        if not enabled:
            return
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:,.0f} samples/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=console or Console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task(description, total=steps, loss=float("nan"), rate=0.0)

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._bar.stop()

    def step(self, samples: int, loss_sum: torch.Tensor, count: int) -> None:
        self._done, self._samples = self._done + 1, self._samples + samples
        if not self.enabled:
            return
        now = time.perf_counter()
        fields = {"rate": self._samples / max(now - self._start, 1e-9)}
        if self._done >= self.steps or now - self._read_at >= self.interval:
            fields["loss"] = float(loss_sum) / max(count, 1)  # reading it syncs the device
            self._read_at = now
        self._bar.update(self._task, advance=1, **fields)
