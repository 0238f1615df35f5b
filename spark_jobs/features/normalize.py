"""Same-day cross-sectional normalization: winsorize, z-score and percentile rank per date.

For each trade date and each raw feature, over that date's non-null values only:

1. **winsorize**: clip at the date's 1st and 99th percentiles (linear interpolation
   between order statistics, numpy's default);
2. ``<name>_cs_z`` = (clipped − mean) / std of the clipped values (population std);
   0.0 when every value of the day is equal (no dispersion), null with fewer than 2 values;
3. ``<name>_cs_rank`` = (average rank − 1) / (n − 1) of the raw value, in [0, 1]
   (ties share their mean rank), null with fewer than 2 values.

A null raw value stays null in all three columns — nothing is zero-filled. NaN/±inf raw
values are treated as null. No statistic crosses dates, so a day's normalized values
depend on that day's rows only.

Raw features are computed in float64 and stored as float32 (what the model reads): the
statistics are computed (in float64) from the raw values rounded to float32, so a stored
z-score and rank describe exactly the stored raw values; every output is float32.

Pure pandas/numpy over one date's rows, run by the build's cross-sectional pass
(``crosssection``). Why not Spark aggregates: exact 1st/99th percentiles and ranks for ~100 columns would take one sort per
column in Spark, and the partial sums of a distributed ``avg``/``stddev`` are merged in
an order that depends on partitioning, so a daily run and a full rebuild could differ in
the last bit; here each date's rows are sorted by code and reduced in that fixed order.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

WINSOR_QUANTILES = (1.0, 99.0)


def normalized_names(features: Sequence[str]) -> list[str]:
    """Output column order: raw features, then every ``_cs_z``, then every ``_cs_rank``."""
    return [*features, *[f"{f}_cs_z" for f in features], *[f"{f}_cs_rank" for f in features]]


def cross_section(pdf: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """One date's rows → date, code and ``normalized_names(features)`` (module docstring)."""
    pdf = pdf.sort_values("code", kind="stable").reset_index(drop=True)
    x = pdf[list(features)].to_numpy(dtype=np.float32).astype(float)
    x[~np.isfinite(x)] = np.nan
    valid = ~np.isnan(x)
    n = valid.sum(axis=0)
    enough = n >= 2
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-null columns: nan stats
        lo, hi = np.nanpercentile(x, WINSOR_QUANTILES, axis=0)
        clipped = np.clip(x, lo, hi)
        mean = np.nanmean(clipped, axis=0)
        std = np.nanstd(clipped, axis=0)
        z = np.where(std > 0, (clipped - mean) / std, 0.0)
        ranks = pd.DataFrame(x).rank(method="average").to_numpy()
        pct = (ranks - 1.0) / (n - 1.0)
    z = np.where(valid & enough, z, np.nan)
    pct = np.where(valid & enough, pct, np.nan)
    out = pd.DataFrame({"date": pdf["date"], "code": pdf["code"]})
    x, z, pct = (a.astype(np.float32) for a in (x, z, pct))
    cols = dict(zip(features, x.T, strict=True))
    cols |= {f"{f}_cs_z": z[:, i] for i, f in enumerate(features)}
    cols |= {f"{f}_cs_rank": pct[:, i] for i, f in enumerate(features)}
    return pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
