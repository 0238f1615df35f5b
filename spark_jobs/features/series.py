"""The build's per-code pass: every series feature of a code, one task per bucket of codes.

Codes are split into buckets (``spark.sql.shuffle.partitions`` per ``BUCKET_DATES``
dates read) and each bucket is one call of ``code_columns`` (pure pandas/numpy): its
codes' rows become ``CodePanel``s and every group — prices, technical (windowed and
recursive), volume, the stock side of the market group — is a vectorized kernel over
them. The bucket's margin and statement rows arrive beside its price rows (the driver
files both per bucket) and the as-of groups (``fundamentals``) are pandas kernels over
them, so no feature group is joined onto the build's rows afterwards. The trailing returns
(1/5/20/60 rows) are computed once here and handed on as ``_r1``/``_r5``/``_r20`` to the
sector and peer passes, the 20-row average raw volume ``_adv20`` to the margin group.

The features and trailing returns leave the pass as files (``handoff``: the bucket's
rows dated ``>= start``, one file per snapshot period, read by the cross-sectional
pass); only the keys and the trailing returns come back to the driver, for the rows dated
``>= emit_from`` (the build's range plus the few weeks of returns the sector windows and
the first peer snapshot need, which the driver computes from). A code's values do not
depend on its bucket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

from spark_jobs.features import fundamentals, market, prices, technical, volume
from spark_jobs.features.handoff import Handoff
from spark_jobs.features.sessions import trading_index
from spark_jobs.features.windows import BAR_COLUMNS, CodePanel, trailing_returns, trailing_sum

#: the as-of groups of the pass: group -> (the source columns it reads, its kernel)
ASOF_GROUPS: dict[str, tuple[list[str], Callable[..., dict[str, np.ndarray]]]] = {
    "margin": (fundamentals.MARGIN_COLUMNS, fundamentals.margin_features),
    "statements": (fundamentals.STATEMENT_COLUMNS, fundamentals.statement_features),
}
FEATURES: list[str] = [*prices.FEATURES, *technical.FEATURES, *volume.FEATURES, *market.FEATURES,
                       *fundamentals.MARGIN_FEATURES, *fundamentals.STATEMENT_FEATURES]
#: helper columns handed to the later passes
CARRIED: list[str] = ["_r1", "_r5", "_r20"]
INPUT_COLUMNS: list[str] = [
    "date", "code", *BAR_COLUMNS, "adj_volume", "volume", "turnover",
    "upper_limit_hit", "lower_limit_hit", "is_traded",
]
ADV_WINDOW = 20
#: dates of price rows per ``spark.sql.shuffle.partitions`` buckets (more dates: more buckets)
BUCKET_DATES = 260


def _trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Rows view: mean of the non-null values among the last ``n`` positions (fewer at a
    code's first rows); NaN when there is none."""
    have = np.isfinite(x)
    s = trailing_sum(np.where(have, x, 0.0), n)
    k = trailing_sum(have.astype(float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, s / k, np.nan)


class PriceKeyError(ValueError):
    """The price rows of a bucket hold a null or repeated ``(date, code)``."""


def _check_keys(dates: np.ndarray, codes: np.ndarray) -> None:
    """Raise ``PriceKeyError`` naming the first few bad keys of rows sorted by
    ``(code, date)``: the features' keys are these rows' keys (``gold.features``'s
    primary key is checked here, where its rows originate)."""
    if pd.isna(dates).any() or pd.isna(codes).any():
        raise PriceKeyError("per-code pass: price rows with a null date or code")
    again = np.flatnonzero((codes[1:] == codes[:-1]) & (dates[1:] == dates[:-1]))
    if len(again):
        keys = ", ".join(f"date={dates[i]}, code={codes[i]}" for i in again[:5])
        raise PriceKeyError(f"per-code pass: {len(again)} repeated price rows (date, code): {keys}")


def code_columns(pdf: pd.DataFrame, start: dt.date, emit_from: dt.date,
                 tidx: Mapping[dt.date, int] | None = None,
                 events: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """One bucket's price rows (``INPUT_COLUMNS`` + ``market.INDEX_COLUMNS``) → the columns
    ``date, code, FEATURES, CARRIED`` of its rows dated ``>= emit_from`` (module
    docstring), rows in ``(code, date)`` order; the features are NaN before ``start``.
    ``tidx`` maps every date of ``pdf`` to its ``_tidx`` (computed from the offline
    calendar without it).

    ``events`` holds the bucket's as-of source rows, ``_src`` naming the group of
    ``ASOF_GROUPS`` each feeds; a group whose source is absent from the build is left out
    of ``events`` (``None``: all of them) and comes out null."""
    pdf = pdf.sort_values(["code", "date"], kind="stable").reset_index(drop=True)
    dates, codes = pdf["date"].to_numpy(), pdf["code"].to_numpy()
    _check_keys(dates, codes)
    col = {k: pdf[k].to_numpy(dtype=float, na_value=np.nan) for k in
           (*BAR_COLUMNS, "adj_volume", "volume", "turnover", *market.INDEX_COLUMNS)}
    for k in ("upper_limit_hit", "lower_limit_hit"):
        col[k] = pdf[k].fillna(False).to_numpy(dtype=float)
    traded = pdf["is_traded"].fillna(False).to_numpy(dtype=bool)
    for k in BAR_COLUMNS:
        traded &= np.isfinite(col[k])
    tidx = pdf["date"].map(tidx or trading_index(dates)).to_numpy(dtype=np.int64)
    p = CodePanel.from_rows(codes, tidx, traded)
    bars = {k: p.series(col[k]) for k in (*BAR_COLUMNS, "adj_volume", "turnover",
                                          "upper_limit_hit", "lower_limit_hit")}
    wanted = dates >= start
    rec_series = {}
    ohlcv = [col[k][traded] for k in (*BAR_COLUMNS, "adj_volume")]
    values = technical.recursive_values(p.row_code[traded], tidx[traded], ohlcv, wanted[traded])
    for k, v in values.items():
        rec = np.full(len(pdf), np.nan)
        rec[traded] = v
        rec_series[k] = p.series(rec)
    series = {**prices.price_features(p, bars), **technical.technical_features(p, bars, rec_series),
              **volume.volume_features(p, bars)}
    out = {k: p.from_series_view(v) for k, v in series.items()}
    rets = trailing_returns(p.rows(col["adj_close"]), (1, 5, 20, 60))
    index = {k: p.rows(col[k]) for k in market.INDEX_COLUMNS}
    out |= {k: p.from_rows_view(v) for k, v in market.market_relative(rets, index).items()}
    out |= {k: col[k] for k in market.INDEX_COLUMNS if k in market.FEATURES}
    keep = dates >= emit_from
    cols: dict[str, np.ndarray] = {"date": dates[keep], "code": codes[keep]}
    late = wanted[keep]
    for k in FEATURES:
        v = out[k][keep] if k in out else np.full(int(keep.sum()), np.nan)
        cols[k] = np.where(late & np.isfinite(v), v, np.nan)
    for n in (1, 5, 20):
        cols[f"_r{n}"] = p.from_rows_view(rets[n])[keep]
    adv20 = p.from_rows_view(_trailing_mean(p.rows(col["volume"]), ADV_WINDOW))
    keys = pd.DataFrame({"date": dates, "code": codes, "_adv20": adv20})[keep & wanted]
    src = events["_src"].to_numpy() if events is not None else np.array([], dtype=object)
    for group, (_, kernel) in ASOF_GROUPS.items():
        mine = src == group
        if mine.any():
            for k, v in kernel(keys, events[mine]).items():
                cols[k][late] = v
    return cols


def bucket_inputs(prices: pa.Table, sources: Mapping[str, pa.Table | None], buckets: int
                  ) -> list[tuple[pa.Table, pa.Table | None]]:
    """Split the pass's inputs into ``buckets`` groups of whole codes: each bucket's price
    rows (``INPUT_COLUMNS``) and as-of source rows (``code``, ``date``, the group's
    columns, ``_src`` naming the group; ``None`` when it has none). A code's bucket is
    its rank among the sorted distinct codes modulo ``buckets`` (buckets of even size);
    source rows of a code without price rows are dropped (no row of the build uses
    them). Buckets without price rows are left out."""
    codes = pc.unique(prices.column("code")).sort()

    def split(table: pa.Table) -> list[pa.Table]:
        bucket = np.asarray(pc.index_in(table.column("code"), value_set=codes).to_numpy(
            zero_copy_only=False), dtype=float)
        keep = np.isfinite(bucket)
        bucket = np.where(keep, bucket, -1).astype(np.int64) % buckets
        order = np.flatnonzero(keep)[np.argsort(bucket[keep], kind="stable")]
        table = table.take(pa.array(order))
        bounds = np.searchsorted(bucket[order], np.arange(buckets + 1))
        return [table.slice(bounds[b], bounds[b + 1] - bounds[b]) for b in range(buckets)]

    price_parts = split(prices.select(INPUT_COLUMNS))
    parts = []
    for group, table in (sources or {}).items():
        if table is not None:
            columns = ["code", "date", *ASOF_GROUPS[group][0]]
            table = table.select(columns).append_column(
                "_src", pa.array([group] * table.num_rows, pa.string()))
            parts.append(table)
    event_parts = split(pa.concat_tables(parts, promote_options="default")) if parts else None
    return [(p, None if event_parts is None or not event_parts[b].num_rows else event_parts[b])
            for b, p in enumerate(price_parts) if p.num_rows]


def series_features(spark: SparkSession, prices: pa.Table, index: pd.DataFrame,
                    dates: list[dt.date], start: dt.date, emit_from: dt.date,
                    handoff: Handoff, period_of: Mapping[dt.date, dt.date],
                    sources: Mapping[str, pa.Table | None] | None = None) -> DataFrame:
    """The per-code pass over ``prices`` (silver price rows with their look-back, dated
    among ``dates``): returns ``date, code, CARRIED`` of the rows dated ``>= emit_from``
    and writes ``date, code, FEATURES, CARRIED`` of the rows dated ``>= start`` to
    ``handoff``, filed under ``period_of[date]``. The frame is lazy: the files exist once
    it has been computed.

    The driver files each bucket's inputs in ``handoff`` (``bucket_inputs``) and the pass
    is one task per bucket reading them: the rows go from the driver's Arrow tables to
    the workers' without a Spark scan, shuffle or row conversion. ``index`` is
    ``market.market_series`` (shipped with the function: each row looks its date up);
    ``sources`` maps the groups of ``ASOF_GROUPS`` to their silver rows
    (``silver.margin_interest``, ``silver.fins_statements``; ``None`` or missing: the
    group is null). The trading-day index of ``dates`` is computed here, on the driver,
    and shipped with the function (no calendar in the Python workers)."""
    tidx = trading_index(dates)
    schema = StructType([StructField("date", DateType()), StructField("code", StringType()),
                         *[StructField(k, DoubleType()) for k in CARRIED]])
    wide = pa.schema([("date", pa.date32()), ("code", pa.string()),
                      *[(k, pa.float64()) for k in (*FEATURES, *CARRIED)]])
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    # a bucket is one pandas frame in a Python worker: more of them for a longer read
    parts = bucket_inputs(prices, sources or {}, partitions * -(-len(dates) // BUCKET_DATES))
    for bucket, (rows, events) in enumerate(parts):
        handoff.write_inputs(bucket, rows, events)
    index = index[market.INDEX_COLUMNS]
    period_of = dict(period_of)

    def per_bucket(bucket: int) -> pa.RecordBatch:
        rows, events = handoff.read_inputs(bucket)
        cols = code_columns(rows.to_pandas().join(index, on="date"), start, emit_from, tidx,
                            None if events is None else events.to_pandas())
        late = cols["date"] >= start
        if late.any():
            days = cols["date"][late]
            table = pa.table([pa.array(days, pa.date32()), pa.array(cols["code"][late], pa.string()),
                              *[pa.array(cols[k][late]) for k in (*FEATURES, *CARRIED)]],
                             schema=wide)
            handoff.write(bucket, pd.Series(days).map(period_of).to_numpy(), table)
        return pa.RecordBatch.from_arrays(
            [pa.array(cols["date"], pa.date32()), pa.array(cols["code"], pa.string()),
             *[pa.array(cols[k], pa.float64(), from_pandas=True) for k in CARRIED]],
            names=["date", "code", *CARRIED])

    def per_task(batches):
        for batch in batches:
            for bucket in batch.column(0).to_pylist():
                yield per_bucket(bucket)

    return spark.range(len(parts), numPartitions=max(len(parts), 1)).mapInArrow(per_task, schema)
