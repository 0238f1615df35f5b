"""Forecasts of a trained model for whole days, in return units, as a long frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from training.data.batches import DaySampler, DevicePanel
from training.data.panel import HORIZONS

QUANTILE_NAMES = ("q10", "q25", "q50", "q75", "q90")


def prediction_columns() -> list[str]:
    """``pred_{h}d`` then its five quantiles, for each horizon (gold.predictions order)."""
    return [c for h in HORIZONS for c in (f"pred_{h}d", *[f"pred_{h}d_{q}" for q in QUANTILE_NAMES])]


@torch.no_grad()
def predict_days(model: torch.nn.Module, panel: DevicePanel, sampler: DaySampler,
                 use_graph: bool = True) -> pd.DataFrame:
    """``date, code`` + ``prediction_columns()`` for every (day, stock) the sampler yields.

    Outputs are scaled back by the fold's label standard deviation (return units of the
    demeaned forward return).
    """
    model.eval()
    std = torch.as_tensor(panel.label_std, device=panel.device)
    parts_day, parts_stock, parts_val = [], [], []
    for day, stocks in sampler:
        b = panel.batch(day, stocks)
        out = model(b.x, b.edge_index if use_graph else None, b.edge_attr if use_graph else None)
        point = out.point.float() * std
        quant = out.quantiles.float() * std[None, :, None]
        vals = torch.cat([point[:, :, None], quant], dim=2).reshape(len(stocks), -1)
        parts_day.append(np.full(len(stocks), day))
        parts_stock.append(np.asarray(stocks))
        parts_val.append(vals.cpu().numpy().astype(np.float64))
    cols = prediction_columns()
    if not parts_day:
        return pd.DataFrame(columns=["date", "code", *cols])
    days = np.concatenate(parts_day)
    stocks = np.concatenate(parts_stock)
    frame = pd.DataFrame(np.concatenate(parts_val), columns=cols)
    frame.insert(0, "code", np.asarray(panel.panel.codes, dtype=object)[stocks])
    frame.insert(0, "date", np.asarray(panel.panel.days, dtype=object)[days])
    return frame


def label_frame(panel: DevicePanel, days) -> pd.DataFrame:
    """``date, code, fwd_ret_{h}d`` (demeaned, NaN where missing) for ``days`` x listed stocks."""
    p = panel.panel
    rows = []
    for d in days:
        s = np.flatnonzero(p.listed[d])
        y = np.where(p.label_ok[d, s], p.labels[d, s], np.nan)
        f = pd.DataFrame(y, columns=[f"fwd_ret_{h}d" for h in HORIZONS])
        f.insert(0, "code", np.asarray(p.codes, dtype=object)[s])
        f.insert(0, "date", p.days[d])
        rows.append(f)
    return pd.concat(rows, ignore_index=True)
