"""The per-code pass's handoff files, and the cross-sectional pass's join onto them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from spark_jobs.features.crosssection import with_per_code
from spark_jobs.features.handoff import Handoff

D1, D2, D3 = dt.date(2025, 1, 6), dt.date(2025, 1, 7), dt.date(2025, 1, 8)
P1, P2 = dt.date(2025, 1, 6), dt.date(2025, 1, 8)


def _rows(days, codes, value):
    return pa.table({"date": pa.array(days, pa.date32()), "code": codes,
                     "x": np.full(len(days), value, dtype=float)})


def test_rows_are_filed_by_period_and_a_rewrite_replaces_the_bucket_file(tmp_path):
    h = Handoff(str(tmp_path / "h"))
    h.write(0, np.array([P1, P1, P2], dtype=object), _rows([D1, D2, D3], ["A", "A", "A"], 1.0))
    h.write(1, np.array([P1], dtype=object), _rows([D1], ["B"], 2.0))
    # a retried task of bucket 0 writes the same rows again: still one file per bucket
    h.write(0, np.array([P1, P1, P2], dtype=object), _rows([D1, D2, D3], ["A", "A", "A"], 1.0))
    (tmp_path / "h" / "2025-01-06" / ".tmp-unfinished").write_bytes(b"partial")
    first = h.read(P1).to_pandas().sort_values(["date", "code"]).reset_index(drop=True)
    assert first[["date", "code"]].values.tolist() == [[D1, "A"], [D1, "B"], [D2, "A"]]
    assert h.read(P2).num_rows == 1
    assert h.read(dt.date(2025, 2, 3)) is None
    # a period's edges sit beside its buckets, read on their own
    edges = pa.table({"code": ["A"], "peer_code": ["B"], "rank": pa.array([1], pa.int32())})
    h.write_edges(P1, edges)
    assert h.read_edges(P1).equals(edges)
    assert h.read(P1).num_rows == 3 and h.read_edges(P2) is None
    h.remove()
    assert not (tmp_path / "h").exists()
    h.remove()  # removing twice is fine


def test_the_join_puts_each_rows_features_beside_it_and_refuses_other_keys():
    rows = pd.DataFrame({"date": [D2, D1, D1], "code": ["A", "B", "A"], "r": [3.0, 2.0, 1.0]})
    wide = pa.table({"date": pa.array([D1, D2, D1], pa.date32()), "code": ["A", "A", "B"],
                     "x": [10.0, 30.0, 20.0]})
    joined = with_per_code(rows, wide, P1)
    assert joined[["code", "r", "x"]].values.tolist() == [["A", 1.0, 10.0], ["B", 2.0, 20.0],
                                                          ["A", 3.0, 30.0]]
    with pytest.raises(RuntimeError, match="period 2025-01-06: 3 rows but 2 per-code rows"):
        with_per_code(rows, wide.slice(0, 2), P1)
    with pytest.raises(RuntimeError, match="period 2025-01-06: 3 rows but 0 per-code rows"):
        with_per_code(rows, None, P1)
    other = wide.set_column(1, "code", pa.array(["A", "A", "C"]))
    with pytest.raises(RuntimeError, match="keys differ from the rows' \\(code\\)"):
        with_per_code(rows, other, P1)
