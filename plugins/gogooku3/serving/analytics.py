"""Gold tables -> the ClickHouse analytics tables (``gogooku3 serve load-clickhouse``).

- ``predictions``: ``gold.predictions`` melted long by horizon (point + quantiles);
- ``model_metrics_daily``: per-date IC, RankIC, hit rate and decile spread of every
  horizon's point forecast against ``gold.labels`` (``training.metrics.daily_metrics``,
  the training package's definition); dates whose labels are not known yet get no row
  until a later load;
- ``feature_coverage_daily``: per date and ``gold.features`` column, the share of
  non-null (and non-NaN) values and their mean and sample standard deviation.

Each load replaces exactly ``[start, end]`` of its table.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from gogooku3.lake import deltars
from gogooku3.lake.errors import TableNotFound
from gogooku3.serving.clickhouse import ClickHouse

log = logging.getLogger(__name__)

QUANTILES = ("q10", "q25", "q50", "q75", "q90")
_POINT = re.compile(r"^pred_(\d+)d$")


def horizons(columns: list[str]) -> list[int]:
    """Horizons (days) of the ``pred_<h>d`` columns, ascending."""
    return sorted(int(m.group(1)) for c in columns if (m := _POINT.match(c)))


def predictions_long(wide: pd.DataFrame) -> pa.Table:
    """``gold.predictions`` rows -> one row per (date, code, horizon) for ClickHouse."""
    parts = []
    for h in horizons(list(wide.columns)):
        part = wide[["date", "code"]].copy()
        part["horizon"] = np.uint8(h)
        part["point"] = wide[f"pred_{h}d"]
        for q in QUANTILES:
            part[q] = wide[f"pred_{h}d_{q}"]
        part["model_name"] = wide["model_name"]
        part["model_version"] = wide["model_version"]
        parts.append(part)
    if not parts:
        return pa.table({"date": pa.array([], pa.date32())})
    return pa.Table.from_pandas(pd.concat(parts, ignore_index=True), preserve_index=False)


def feature_coverage(features: pd.DataFrame) -> pa.Table:
    """Per (date, feature): non-null share, mean, sample std and rows of that date."""
    values = features.drop(columns=["code"]).set_index("date")
    grouped = values.groupby(level="date")
    share = grouped.count().div(grouped.size(), axis=0)
    out = pd.concat(
        {"non_null_share": share.stack(future_stack=True),
         "mean": grouped.mean().stack(future_stack=True),
         "std": grouped.std().stack(future_stack=True)},
        axis=1,
    ).rename_axis(["date", "feature"]).reset_index()
    out["n"] = out["date"].map(grouped.size()).astype("uint32")
    return pa.Table.from_pandas(out, preserve_index=False)


def model_metrics(wide: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per-date metrics of every horizon's point forecast (``training.metrics.daily_metrics``)."""
    from training.metrics import daily_metrics

    frames = []
    for h in horizons(list(wide.columns)):
        for model, rows in wide.groupby("model_name"):
            pred = rows[["date", "code"]].assign(score=rows[f"pred_{h}d"])
            lab = labels[["date", "code"]].assign(fwd_ret=labels[f"fwd_ret_{h}d"]).dropna()
            frames.append(daily_metrics(pred, lab, model=str(model), horizon=h))
    if not frames:
        return pd.DataFrame(columns=["date", "model", "horizon", "ic", "rank_ic", "hit_rate",
                                     "decile_spread", "n"])
    out = pd.concat(frames, ignore_index=True)
    return out.astype({"horizon": "uint8", "n": "uint32"})


def load_clickhouse(start: dt.date, end: dt.date, url: str,
                    lake_root: str | None = None) -> dict[str, int | str]:
    """Replace ``[start, end]`` of the three analytics tables from gold; rows per table.

    A gold table that does not exist yet leaves its ClickHouse table untouched and is
    reported as a string in the result instead of a row count.
    """
    if start > end:
        raise ValueError(f"serve load-clickhouse: start {start} is after end {end}")
    result: dict[str, int | str] = {}
    with ClickHouse(url) as ch:
        try:
            wide = deltars.read_table("gold.predictions", start, end, lake_root=lake_root).to_pandas()
        except TableNotFound as exc:
            wide = None
            result["predictions"] = result["model_metrics_daily"] = f"skipped: {exc}"
        if wide is not None:
            result["predictions"] = ch.replace_dates("predictions", predictions_long(wide), start, end)
            try:
                labels = deltars.read_table("gold.labels", start, end,
                                            lake_root=lake_root).to_pandas()
                metrics = pa.Table.from_pandas(model_metrics(wide, labels), preserve_index=False)
                result["model_metrics_daily"] = ch.replace_dates(
                    "model_metrics_daily", metrics, start, end)
            except TableNotFound as exc:
                result["model_metrics_daily"] = f"skipped: {exc}"
        try:
            features = deltars.read_table("gold.features", start, end,
                                          lake_root=lake_root).to_pandas()
            result["feature_coverage_daily"] = ch.replace_dates(
                "feature_coverage_daily", feature_coverage(features), start, end)
        except TableNotFound as exc:
            result["feature_coverage_daily"] = f"skipped: {exc}"
    return result
