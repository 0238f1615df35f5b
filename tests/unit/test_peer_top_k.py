"""The peer graph's top-k: each row's k largest values, ties broken by column."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.features.peers import _top_k


@pytest.mark.parametrize("n, k", [(300, 10), (12, 10), (11, 10), (5, 2)])
def test_top_k_equals_a_full_sort_by_value_then_column_with_many_ties(n, k):
    rng = np.random.default_rng(n)
    a = rng.integers(0, 6, size=(40, n)).astype(float)  # six values: ties everywhere
    np.fill_diagonal(a, -np.inf)
    cols, vals = _top_k(a, k)
    for row in range(a.shape[0]):
        want = np.lexsort((np.arange(n), -a[row]))[:k]
        assert cols[row].tolist() == want.tolist(), row
        assert vals[row].tolist() == a[row, want].tolist()
