"""Run a project command as a child process of a task, its output in the task log.

The model tasks call the CLIs of ``training/`` and ``serving/`` as processes of this
interpreter (``python -m ...``): the task's ``PATH`` does not matter, a crash or a CUDA
abort stays in the child, and the command is the one a user types.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finished:
    """Exit status and the last non-empty output line of a finished command."""

    returncode: int
    last_line: str


def gogooku3_cli(*args: str) -> list[str]:
    """``gogooku3 <args>`` run by this interpreter."""
    return [sys.executable, "-m", "gogooku3.cli", *args]


def run_logged(argv: Sequence[str], what: str) -> Finished:
    """Run ``argv``, streaming its stdout and stderr line by line into the log; returns
    when it exits (any exit status: the caller decides what a status means)."""
    log.info("%s: %s", what, " ".join(argv))
    last = ""
    with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            log.info("%s", line)
            last = line or last
    log.info("%s exited %d", what, proc.returncode)
    return Finished(proc.returncode, last)


def run_checked(argv: Sequence[str], what: str) -> Finished:
    """``run_logged``; raises ``CommandFailed`` naming the command when it exits non-zero."""
    done = run_logged(argv, what)
    if done.returncode != 0:
        raise CommandFailed(f"{what} exited {done.returncode}: {' '.join(argv)}")
    return done


class CommandFailed(Exception):
    """A task's command exited non-zero (message: what, status, the command)."""
