"""The one-sort normalization kernel against numpy's percentiles and scipy's ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from spark_jobs.features.normalize import normalize_columns


def _reference(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One column, float64: winsorize at nanpercentile 1/99, z-score; average rank."""
    ok = ~np.isnan(col)
    z, pct = np.full(len(col), np.nan), np.full(len(col), np.nan)
    if ok.sum() < 2:
        return z, pct
    v = col[ok]
    w = np.clip(v, *np.percentile(v, [1, 99]))
    z[ok] = (w - w.mean()) / w.std() if w.std() > 0 else 0.0
    pct[ok] = (rankdata(v) - 1) / (ok.sum() - 1)
    return z, pct


@pytest.mark.parametrize("rows", [1, 2, 3, 17, 250, 3001])
def test_z_and_rank_match_numpy_and_scipy_with_ties_nulls_and_signed_zeros(rows):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 9)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1])  # many ties
    x[:, 2] = 1.5  # no dispersion: z 0
    x[:, 3] = np.nan  # all null
    x[:, 4] = np.where(rng.random(rows) < 0.5, -0.0, 0.0)  # -0.0 and 0.0 tie
    x[:, 5] = np.nan
    x[0, 5] = 4.0  # one value: null statistics
    x[:, 6] *= 1e30  # large magnitudes
    x[:, 7] = -np.abs(x[:, 7])  # negatives only
    x[rng.random(x.shape) < 0.2] = np.nan
    z, pct = (a.T for a in normalize_columns(np.ascontiguousarray(x.T)))
    for j in range(x.shape[1]):
        want_z, want_pct = _reference(x[:, j].astype(float))
        np.testing.assert_array_equal(np.isnan(z[:, j]), np.isnan(want_z), err_msg=f"col {j}")
        np.testing.assert_allclose(z[:, j], want_z, rtol=1e-12, atol=1e-12, err_msg=f"col {j}")
        np.testing.assert_array_equal(pct[:, j], want_pct, err_msg=f"col {j}")
