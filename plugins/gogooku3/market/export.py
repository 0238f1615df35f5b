"""Write a simulated market as J-Quants-shaped files (what users download from the API).

Layout: ``<out>/<endpoint>.<parquet|csv>`` with the API's column names, one file per
endpoint: ``equities_master``, ``equities_bars_daily``, ``indices_topix``,
``markets_calendar``, ``fins_summary``, ``investor_types``, ``margin_interest``; plus
``oracle.json`` (the planted signal's RankIC per horizon).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gogooku3.market.calendar import holdiv_rows
from gogooku3.market.sim import SimulatedMarket


def market_frames(market: SimulatedMarket) -> dict[str, pd.DataFrame]:
    """Endpoint name → frame in API column names."""
    return {
        "equities_master": market.master,
        "equities_bars_daily": market.bars,
        "indices_topix": market.topix,
        "markets_calendar": pd.DataFrame(holdiv_rows(market.days[0], market.days[-1])),
        "fins_summary": market.fins,
        "investor_types": market.investor_types,
        "margin_interest": market.margin,
    }


def export_market(market: SimulatedMarket, out: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write every endpoint's frame under ``out``; returns the written paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
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
    oracle = root / "oracle.json"
    oracle.write_text(json.dumps({f"{h}d": v for h, v in market.oracle.items()}, indent=2))
    written.append(oracle)
    return written
