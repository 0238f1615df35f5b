"""The per-code pass checks the keys of the price rows it turns into feature rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from spark_jobs.features.series import PriceKeyError, _check_keys

D1, D2 = dt.date(2025, 1, 6), dt.date(2025, 1, 7)


def test_distinct_keys_pass_and_a_repeated_or_null_key_is_named():
    _check_keys(np.array([D1, D2, D1], dtype=object), np.array(["A", "A", "B"], dtype=object))
    with pytest.raises(PriceKeyError, match="1 repeated price rows .*date=2025-01-07, code=A"):
        _check_keys(np.array([D1, D2, D2], dtype=object), np.array(["A", "A", "A"], dtype=object))
    with pytest.raises(PriceKeyError, match="null date or code"):
        _check_keys(np.array([D1, None], dtype=object), np.array(["A", "A"], dtype=object))
