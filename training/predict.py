"""``gogooku3 predict --date D``: the champion's forecasts for one trade date -> gold.predictions.

Loads alias ``champion`` of the registered model, reads the feature windows ending on
``D`` from gold.features (and the day's peer graph), scales them with the scaler stored
with the model (fit on its training fold) and replaces exactly date ``D`` of
gold.predictions in one delta-rs commit. A date without gold.features rows fails naming
the date; nothing is written then.
"""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import numpy as np
import pyarrow as pa

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.lake import deltars
from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.data.graph import load_peer_graphs
from training.data.panel import GoldCoverageError, load_panel
from training.inference import predict_days
from training.registry import champion_version, setup_tracking

log = logging.getLogger(__name__)


def predict_date(day: dt.date, model_name: str = "atft_gat_fan", lake_root: str | None = None,
                 tracking_uri: str | None = None) -> dict:
    """Write the champion's forecasts for trade date ``day``; return ``{"date", "rows",
    "model_version", "delta_version"}``.

    Raises ``NoChampionError`` when no champion exists and ``GoldCoverageError`` when
    gold.features has no rows for ``day``.
    """
    setup_tracking(tracking_uri)
    version = champion_version(model_name)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
    forecaster = loaded.unwrap_python_model()
    meta = forecaster.meta
    window = int(meta["window"])
    start = TradingCalendar.from_lake(lake_root).trading_days_back(day, window)
    info = deltars.table_info("gold.features", lake_root)
    if info.first_date is not None and start < info.first_date:
        start = info.first_date
    panel = load_panel(start, day, meta["features"], lake_root, check=False)
    d = panel.day_index(day)
    graphs = load_peer_graphs(panel.days, panel.codes, lake_root) if meta["use_graph"] else None
    dp = DevicePanel(panel, FoldScaler.from_dict(meta["scaler"]), graphs, "cpu", window,
                     bool(meta["mask_channels"]))
    sampler = DaySampler(panel, [d], max_stocks=4096, min_stocks=1, require_label=False)
    frame = predict_days(forecaster.model, dp, sampler, bool(meta["use_graph"]))
    if frame.empty:
        raise GoldCoverageError(f"gold.features: no listed stocks on {day.isoformat()}")
    frame.insert(2, "model_name", model_name)
    frame.insert(3, "model_version", str(version.version))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    commit = deltars.write_dates(table, "gold.predictions", [day], lake_root)
    log.info("gold.predictions %s: %d rows from %s v%s", day, len(frame), model_name,
             version.version)
    return {"date": day.isoformat(), "rows": int(len(frame)),
            "model_version": str(version.version), "delta_version": int(commit.version),
            "mean_abs_pred_5d": float(np.abs(frame["pred_5d"]).mean())}
