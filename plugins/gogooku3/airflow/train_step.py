"""The training step of ``atft_training_weekly`` as one command for both backends.

The process beside Airflow (``local``) and the trainer container (``docker``) run exactly
``python -m gogooku3.cli train --cv-only ...``: the walk-forward CV of
``training.pipeline.train``, whose parent MLflow run id is the last output line, which
the task passes on (XCom) to evaluate and register.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PHASES = ("baseline", "adaptive_norm", "gat", "augmentation", "all")


def train_args(phase: str, overrides: Mapping[str, Any], start: str | None,
               end: str | None) -> list[str]:
    """Arguments after ``python`` for one training step (``key=value`` per override)."""
    if phase not in PHASES:
        raise ValueError(f"train: unknown phase {phase!r}; one of {', '.join(PHASES)}")
    args = ["-m", "gogooku3.cli", "train", "--cv-only", "--phase", phase]
    if start:
        args += ["--start", str(start)]
    if end:
        args += ["--end", str(end)]
    return args + [f"{k}={v}" for k, v in sorted(overrides.items())]
