"""``python -m gogooku3.airflow.train_step``: the training step of ``atft_training_weekly``.

One command for both backends — the process beside Airflow (``local``) and the trainer
container (``docker``) run exactly these arguments. It calls
``training.pipeline.train(phase, overrides, start, end)`` and prints the parent MLflow run
id as its last output line, which the task passes on (XCom) to evaluate and register.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

PHASES = ("baseline", "adaptive_norm", "gat", "augmentation", "all")


def train_args(phase: str, overrides: Mapping[str, Any], start: str | None,
               end: str | None) -> list[str]:
    """Arguments after ``python`` for one training step (``key=value`` per override)."""
    if phase not in PHASES:
        raise ValueError(f"train: unknown phase {phase!r}; one of {', '.join(PHASES)}")
    args = ["-m", "gogooku3.airflow.train_step", "--phase", phase]
    if start:
        args += ["--start", str(start)]
    if end:
        args += ["--end", str(end)]
    return args + [f"{k}={v}" for k, v in sorted(overrides.items())]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments ``train_args`` builds, train, print the run id."""
    p = argparse.ArgumentParser(prog="python -m gogooku3.airflow.train_step")
    p.add_argument("--phase", choices=PHASES, default="all")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    ns = p.parse_args(argv)
    bad = [o for o in ns.overrides if "=" not in o]
    if bad:
        p.error(f"overrides must be key=value, got {bad}")
    from training.pipeline import train

    run_id = train(ns.phase, dict(o.split("=", 1) for o in ns.overrides), ns.start, ns.end)
    print(run_id, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
