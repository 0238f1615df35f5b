"""The handoff files: the per-code pass's inputs by bucket, its rows by period, the edges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from spark_jobs.features import series
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


def test_bucket_inputs_file_whole_codes_once_and_read_back(tmp_path):
    codes = [f"{1300 + i}0" for i in range(7)]
    prices = pa.table({"date": pa.array([D1, D2] * 7, pa.date32()),
                       "code": [c for c in codes for _ in (D1, D2)],
                       **{k: np.arange(14, dtype=float) for k in series.INPUT_COLUMNS[2:]}})
    margin = pa.table({"code": [codes[0], codes[3], "99990"], "date": pa.array([D1] * 3, pa.date32()),
                       **{k: [1.0, 2.0, 3.0] for k in series.ASOF_GROUPS["margin"][0]}})
    parts = series.bucket_inputs(prices, {"margin": margin, "statements": None}, buckets=3)
    assert len(parts) == 3
    seen = [set(p.column("code").to_pylist()) for p, _ in parts]
    assert sorted(c for s in seen for c in s) == codes  # each code in one bucket only
    assert sum(p.num_rows for p, _ in parts) == prices.num_rows
    assert all(p.num_rows == 2 * len(s) for (p, _), s in zip(parts, seen, strict=True))
    events = [e for _, e in parts if e is not None]
    got = sorted(c for e in events for c in e.column("code").to_pylist())
    assert got == [codes[0], codes[3]]  # the code without price rows is dropped
    assert all(e.column("_src").to_pylist() == ["margin"] * e.num_rows for e in events)
    for (_, e), s in zip(parts, seen, strict=True):
        assert e is None or set(e.column("code").to_pylist()) <= s  # beside its prices
    h = Handoff(str(tmp_path / "h"))
    for b, (p, e) in enumerate(parts):
        h.write_inputs(b, p, e)
    for b, (p, e) in enumerate(parts):
        back_p, back_e = h.read_inputs(b)
        assert back_p.equals(p) and (back_e is None if e is None else back_e.equals(e))
    assert h.read(P1) is None  # inputs are not a period's rows
