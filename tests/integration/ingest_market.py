"""A small J-Quants-shaped market written as files (for ``--source files`` tests).

Not a server: rows in the API's field names for a few endpoints, deterministic, with
one 1:2 split, so bronze -> gate -> silver can be exercised without the network.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from gogooku3.market.calendar import TradingCalendar

SPLIT_CODE, SPLIT_DAY_INDEX = "13010", 10


def make_market(start: dt.date, end: dt.date, n_codes: int = 40, seed: int = 7):
    """``{endpoint_name: DataFrame}`` of API rows (dates as ISO strings)."""
    rng = np.random.default_rng(seed)
    days = TradingCalendar().trading_days(start, end)
    codes = [f"{1301 + i:04d}0" for i in range(n_codes - 1)] + ["130A0"]
    codes[0] = SPLIT_CODE
    bars, master = [], []
    for ci, code in enumerate(codes):
        price = float(rng.uniform(500, 3000))
        closes, factors = [], []
        for di, d in enumerate(days):
            f = 0.5 if (code == SPLIT_CODE and di == SPLIT_DAY_INDEX) else 1.0
            price = round(price * f * (1 + rng.normal(0, 0.01)), 1)
            o = round(price * (1 + rng.normal(0, 0.003)), 1)
            h, low = max(o, price) + 1.0, min(o, price) - 1.0
            traded = not (ci == 5 and di == 3)  # one stock without a trade one day
            closes.append(price)
            factors.append(f)
            vol = float(rng.integers(1000, 100000))
            bars.append({"Date": d.isoformat(), "Code": code,
                         "O": o if traded else None, "H": h if traded else None,
                         "L": low if traded else None, "C": price if traded else None,
                         "UL": "0", "LL": "0", "Vo": vol if traded else None,
                         "Va": vol * price if traded else None, "AdjFactor": f})
            master.append({"Date": d.isoformat(), "Code": code, "CoName": f"Co{code}",
                           "CoNameEn": f"Co{code}", "S17": "1", "S17Nm": "x",
                           "S33": "0050" if di < 20 or ci % 2 else "3050", "S33Nm": "x",
                           "ScaleCat": "TOPIX Small 1", "Mkt": "0111", "MktNm": "Prime",
                           "Mrgn": "1", "MrgnNm": "x"})
        # API Adj* columns: backward adjustment to the last day, one decimal
        later = np.cumprod(np.array(factors[::-1]))[::-1]
        after = np.append(later[1:], 1.0)
        for k, row in enumerate(bars[-len(days):]):
            for src, dst in (("O", "AdjO"), ("H", "AdjH"), ("L", "AdjL"), ("C", "AdjC")):
                row[dst] = None if row[src] is None else round(row[src] * after[k], 1)
            row["AdjVo"] = None if row["Vo"] is None else round(row["Vo"] / after[k], 1)
    topix = [{"Date": d.isoformat(), "O": 2000.0, "H": 2010.0, "L": 1990.0, "C": 2005.0}
             for d in days]
    fins = [{"DiscDate": days[3].isoformat(), "DiscTime": t, "Code": c, "DiscNo": f"{i}",
             "DocType": "FY", "CurPerType": "FY", "CurPerSt": "2023-04-01",
             "CurPerEn": "2024-03-31", "CurFYSt": "2023-04-01", "CurFYEn": "2024-03-31",
             **{k: 1.0 for k in "Sales OP OdP NP EPS TA Eq BPS FSales FOP FOdP FNP FEPS ShOutFY"
                .split()}}
            for i, (c, t) in enumerate([(codes[1], "13:00:00"), (codes[2], "16:00:00"),
                                        (codes[3], None)])]
    return {"bars_daily": pd.DataFrame(bars), "master": pd.DataFrame(master),
            "topix": pd.DataFrame(topix), "fins_summary": pd.DataFrame(fins)}, days, codes


FILE_NAMES = {"bars_daily": "equities_bars_daily.csv", "master": "equities_master.csv",
              "topix": "indices_topix.csv", "fins_summary": "fins_summary.csv"}


def write_market(path, frames) -> None:
    """Write the frames as J-Quants-shaped CSV files under ``path``."""
    for name, df in frames.items():
        df.to_csv(path / FILE_NAMES[name], index=False)
