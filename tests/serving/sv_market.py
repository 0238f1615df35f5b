"""The serving tests' tiny market: its trade dates and codes (one delisted half-way)."""

import pandas as pd

DATES = [d.date() for d in pd.bdate_range("2025-03-03", "2025-03-18")]
CODES = ["72030", "67580", *[f"{1300 + 7 * i:04d}0" for i in range(22)]]
DELISTED = CODES[-1]  # present on the first half of DATES only
