"""A tiny self-contained planted market for the training-loop tests that need no lake
(the CUDA tests run with ``pytest --noconftest`` on a bare GPU machine)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import torch

from training.data.graph import PeerGraphs
from training.data.panel import Panel
from training.train import build_model

DAYS, STOCKS, FEATURES, WINDOW = 60, 96, 8, 10


def planted_panel(seed: int = 0) -> tuple[Panel, PeerGraphs]:
    """Labels of every horizon = feature 0 of the day + noise; a ring graph of peers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((DAYS, STOCKS, FEATURES), dtype=np.float32)
    y = np.repeat(x[:, :, :1], 5, axis=2) + 0.5 * rng.standard_normal((DAYS, STOCKS, 5))
    day0 = dt.date(2025, 1, 6)
    panel = Panel([day0 + dt.timedelta(days=i) for i in range(DAYS)],
                  [f"{1000 + i}" for i in range(STOCKS)],
                  [f"f{i}_cs_z" for i in range(FEATURES)], x, np.ones_like(x, bool),
                  y.astype(np.float32), np.ones(y.shape, bool), np.ones((DAYS, STOCKS), bool))
    dst = np.arange(STOCKS)
    src = (dst + 1) % STOCKS
    graphs = PeerGraphs([panel.days[0]], [(src, dst, np.full(STOCKS, 0.5, np.float32))],
                        np.zeros(DAYS, dtype=int), STOCKS)
    return panel, graphs


def small_model():
    """The full model at hidden 32, seeded."""
    torch.manual_seed(0)
    return build_model({"hidden": 32, "heads": 4, "dropout": 0.0}, FEATURES, WINDOW)
