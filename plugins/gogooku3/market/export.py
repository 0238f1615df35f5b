"""Write a simulated market as J-Quants-shaped files (what users download from the API).

Layout: ``<out>/<endpoint>.<parquet|csv>`` with the API's column names, one file per
endpoint: ``equities_master``, ``equities_bars_daily``, ``indices_topix``,
``markets_calendar``, ``fins_summary``, ``investor_types``, ``margin_interest``; plus
``oracle.json`` (the planted signal's mean daily RankIC per horizon, ``{"1d": …}``) and
``oracle_daily.<fmt>`` (``Date`` and one column per horizon) beside them.

Values keep the API's types: bars and flows numeric, ``UL``/``LL``/``HolDiv`` and every
``/fins/summary`` value strings, codes 5-character strings (read CSVs with
``dtype=str`` for ``Code`` so "130A0" and leading digits survive).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gogooku3.market.sim import SimulatedMarket


class ExportError(ValueError):
    """An unsupported export format."""


def market_frames(market: SimulatedMarket) -> dict[str, pd.DataFrame]:
    """Endpoint name → frame in API column names."""
    return {
        "equities_master": market.master,
        "equities_bars_daily": market.bars,
        "indices_topix": market.topix,
        "markets_calendar": pd.DataFrame(market.calendar_rows(market.days[0], market.days[-1])),
        "fins_summary": market.fins,
        "investor_types": market.investor_types,
        "margin_interest": market.margin,
    }


def export_market(market: SimulatedMarket, out: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write every endpoint's frame under ``out`` (created if missing; files replaced);
    returns the written paths. Raises ``ExportError`` for a format other than parquet/csv."""
    if fmt not in ("parquet", "csv"):
        raise ExportError(f"format must be parquet or csv, got {fmt!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in market_frames(market).items():
        path = root / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        written.append(path)
    daily = root / f"oracle_daily.{fmt}"
    if fmt == "parquet":
        market.oracle_daily.to_parquet(daily, index=False)
    else:
        market.oracle_daily.to_csv(daily, index=False)
    written.append(daily)
    oracle = root / "oracle.json"
    oracle.write_text(json.dumps({f"{h}d": v for h, v in market.oracle.items()}, indent=2))
    written.append(oracle)
    return written
