"""Quality suites per bronze table: row-level checks (pandas) and the matching GX expectations.

Each suite turns a bronze frame into a *prepared* frame with one boolean column
``ok_<check>`` per derived check (True = row passes), and lists Great Expectations 1.x
expectations over it: native ones (unique keys, non-null, ranges, schema) plus
"``ok_<check>`` is True" for checks GX cannot express. Row-level failures are computed
here too, so failing rows can be quarantined with their reason; GX records the
validation. Day-level checks (a listed code missing, row count vs the universe) are
reported per date. Failing rows are rejected (quarantined, not published); the gate
decides per date whether the rest publishes (``gogooku3.quality.gate``).

Daily bars (spec: eq-bars-daily; docs/ingestion.md):

* ``ohlc``: on traded rows (C not null) prices > 0, L <= O <= H and L <= C <= H; untraded
  rows must have all of O/H/L/C null (a listed stock with no trade still has a row).
* ``volume``: Vo >= 0 and Va >= 0.
* ``adj_factor``: AdjFactor > 0.
* ``price_limits``: H and L within the TSE limits around the base price (previous close x
  AdjFactor), and a touched limit carries its flag (UL/LL "1").
* ``daily_return``: |C / base - 1| <= 50% (base as above), i.e. a raw move beyond 50% is
  accepted only when AdjFactor != 1 explains it.
* ``adj_cross_check``: the API's AdjC agrees with our forward adjustment (silver).
* ``known_code``: Code is in that day's master; day-level ``missing_codes``: every listed
  code has a row; ``unique_key``, ``not_null_key``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gogooku3.jpx.price_limits import limit_prices

MAX_ABS_RETURN = 0.5
_EPS = 1e-6


@dataclass
class SuiteContext:
    """What a suite needs beyond the day's rows.

    ``universe``: date -> set of listed codes (from that day's master);
    ``prev_close``: code -> last traded close before the batch (from silver);
    ``adj_mismatch``: (date, code) pairs whose AdjC failed the cross-check;
    ``max_bad_share``: share of listed codes a date may lack (set by the gate).
    """

    universe: Mapping[dt.date, set[str]] = field(default_factory=dict)
    prev_close: Mapping[str, float] = field(default_factory=dict)
    adj_mismatch: set[tuple[dt.date, str]] = field(default_factory=set)
    max_bad_share: float = 0.01


@dataclass
class Prepared:
    """A prepared frame (bronze columns + ``ok_*``) and the day-level failures."""

    table: str
    frame: pd.DataFrame
    day_failures: dict[dt.date, dict[str, list[dict]]] = field(default_factory=dict)

    def failing_rows(self) -> pd.Series:
        """Names of the failed row checks per row ("" when the row passes)."""
        oks = [c for c in self.frame.columns if c.startswith("ok_")]
        if not oks:
            return pd.Series("", index=self.frame.index)
        bad = ~self.frame[oks].astype(bool)
        any_bad = bad.any(axis=1)
        out = pd.Series("", index=self.frame.index, dtype=object)
        if any_bad.any():
            names = np.array([c[3:] for c in oks], dtype=object)
            out[any_bad] = [",".join(names[r]) for r in bad[any_bad].to_numpy()]
        return out


def _gx():
    import great_expectations.expectations as gxe

    return gxe


def _key_checks(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    df["ok_not_null_key"] = df[key].notna().all(axis=1)
    df["ok_unique_key"] = ~df.duplicated(key, keep=False)
    return df


def _common_expectations(df: pd.DataFrame, key: list[str], numeric: list[str]) -> list:
    gxe = _gx()
    unique = (gxe.ExpectCompoundColumnsToBeUnique(column_list=key) if len(key) > 1
              else gxe.ExpectColumnValuesToBeUnique(column=key[0]))
    exps = [
        unique,
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in key],
        *[gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=["float64", "float32"])
          for c in numeric],
    ]
    exps += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=[True])
             for c in df.columns if c.startswith("ok_") and c not in ("ok_unique_key",
                                                                      "ok_not_null_key")]
    return exps


def bars_suite(bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
    """Checks for ``bronze.equities_bars_daily`` over consecutive trade dates."""
    df = bronze.drop(columns=["_ingested_at", "_source"], errors="ignore").copy()
    df = _key_checks(df, ["date", "Code"])
    o, h, low, c = (df[x].astype(float) for x in ("O", "H", "L", "C"))
    traded = c.notna()
    all_null = df[["O", "H", "L", "C"]].isna().all(axis=1)
    consistent = (low > 0) & (low <= o + _EPS) & (o <= h + _EPS) & (low <= c + _EPS) & (c <= h + _EPS)
    df["ok_ohlc"] = np.where(traded, consistent.fillna(False), all_null)
    df["ok_volume"] = ~((df["Vo"] < 0) | (df["Va"] < 0))
    factor = df["AdjFactor"].astype(float)
    df["ok_adj_factor"] = factor.isna() | (factor > 0)

    # base price: previous traded close (of rows that are themselves sane) x AdjFactor
    sane = df["ok_ohlc"] & df["ok_unique_key"] & df["ok_not_null_key"] & traded
    order = df.sort_values(["Code", "date"], kind="stable").index
    s = df.loc[order]
    close_if_sane = s["C"].where(sane.loc[order])
    prev = close_if_sane.groupby(s["Code"]).shift(1)
    prev = prev.groupby(s["Code"]).ffill()
    first_prev = s["Code"].map(dict(ctx.prev_close)).astype(float)
    prev = prev.fillna(first_prev)
    base = (prev * s["AdjFactor"].astype(float).fillna(1.0)).reindex(df.index)
    lo_lim, hi_lim = limit_prices(base.to_numpy())
    tol = 1e-6 * np.maximum(1.0, np.abs(np.nan_to_num(base.to_numpy())))
    has_base = base.notna() & traded
    within = (h <= hi_lim + tol) & (low >= lo_lim - tol)
    touched_up = h >= hi_lim - tol
    touched_dn = low <= lo_lim + tol
    flags_ok = (~touched_up | df["UL"].eq("1")) & (~touched_dn | df["LL"].eq("1"))
    df["ok_price_limits"] = ~has_base | (within & flags_ok).fillna(False)
    ret = c / base - 1.0
    df["ok_daily_return"] = ~has_base | (ret.abs() <= MAX_ABS_RETURN).fillna(False)
    keys = list(zip(df["date"], df["Code"], strict=True))
    df["ok_adj_cross_check"] = [k not in ctx.adj_mismatch for k in keys]
    if ctx.universe:
        df["ok_known_code"] = [code in ctx.universe.get(d, ()) for d, code in keys]
    prepared = Prepared("bronze.equities_bars_daily", df)
    if ctx.universe:
        have = df.groupby("date")["Code"].agg(set).to_dict()
        for d in sorted(have):
            missing = sorted(set(ctx.universe.get(d, ())) - have[d])
            if missing:
                prepared.day_failures.setdefault(d, {})["missing_codes"] = [
                    {"date": d.isoformat(), "Code": m} for m in missing]
    return prepared


def bars_expectations(df: pd.DataFrame, ctx: SuiteContext) -> list:
    """GX expectations for a prepared bars frame (any subset of its dates)."""
    gxe = _gx()
    exps = _common_expectations(
        df, ["date", "Code"], ["O", "H", "L", "C", "Vo", "Va", "AdjFactor", "AdjC"])
    exps += [
        gxe.ExpectColumnValuesToBeBetween(column="Vo", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="H", column_B="L", or_equal=True, ignore_row_if="either_value_is_missing"),
        gxe.ExpectColumnValuesToBeInSet(column="UL", value_set=["0", "1"]),
        gxe.ExpectColumnValuesToBeInSet(column="LL", value_set=["0", "1"]),
    ]
    if ctx.universe:
        listed = sum(len(ctx.universe.get(d, ())) for d in df["date"].unique())
        exps.append(gxe.ExpectTableRowCountToBeBetween(
            min_value=int(listed * (1 - ctx.max_bad_share)), max_value=listed))
    return exps


def master_suite(bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
    """``bronze.equities_master``: unique (date, Code), 5-character codes, sector present."""
    df = bronze.drop(columns=["_ingested_at", "_source"], errors="ignore").copy()
    df = _key_checks(df, ["date", "Code"])
    df["ok_code_format"] = df["Code"].astype("string").str.fullmatch(r"[0-9A-Z]{5}").fillna(False)
    df["ok_sector"] = df["S33"].notna() & df["S17"].notna()
    return Prepared("bronze.equities_master", df)


def topix_suite(bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
    """``bronze.indices_topix``: one row per date, OHLC consistent and positive."""
    df = bronze.drop(columns=["_ingested_at", "_source"], errors="ignore").copy()
    df = _key_checks(df, ["date"])
    o, h, low, c = (df[x] for x in ("O", "H", "L", "C"))
    df["ok_ohlc"] = ((low > 0) & (low <= o + _EPS) & (o <= h + _EPS) & (low <= c + _EPS)
                     & (c <= h + _EPS)).fillna(False)
    return Prepared("bronze.indices_topix", df)


def keyed_suite(key: list[str], nonneg: tuple[str, ...] = ()):
    """A suite with key checks and non-negative columns (statements, flows, margin, calendar)."""

    def suite(bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
        df = bronze.drop(columns=["_ingested_at", "_source"], errors="ignore").copy()
        df = _key_checks(df, key)
        if nonneg:
            df["ok_non_negative"] = ~(df[list(nonneg)] < 0).any(axis=1)
        return Prepared("", df)

    return suite


def calendar_suite(bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
    df = bronze.drop(columns=["_ingested_at", "_source"], errors="ignore").copy()
    df = _key_checks(df, ["date"])
    df["ok_holdiv"] = df["HolDiv"].isin(["0", "1", "2", "3"])
    return Prepared("bronze.markets_calendar", df)


def _keyed(key: list[str], numeric: tuple[str, ...] = ()):
    return lambda df, ctx: _common_expectations(df, key, list(numeric))


# table -> (prepare, expectations)
SUITES = {
    "bronze.equities_bars_daily": (bars_suite, bars_expectations),
    "bronze.equities_master": (master_suite, _keyed(["date", "Code"])),
    "bronze.indices_topix": (topix_suite, _keyed(["date"], ("O", "H", "L", "C"))),
    "bronze.markets_calendar": (calendar_suite, _keyed(["date"])),
    "bronze.fins_summary": (keyed_suite(["date", "Code", "DiscNo"]),
                            _keyed(["date", "Code", "DiscNo"])),
    "bronze.investor_types": (keyed_suite(["date", "Section", "StDate"]),
                              _keyed(["date", "Section", "StDate"])),
    "bronze.margin_interest": (
        keyed_suite(["date", "Code", "AsOfDate"], nonneg=("ShrtVol", "LongVol")),
        _keyed(["date", "Code", "AsOfDate"], ("ShrtVol", "LongVol")),
    ),
}


def prepare(table: str, bronze: pd.DataFrame, ctx: SuiteContext) -> Prepared:
    """Run ``table``'s row and day checks over ``bronze`` (one or more trade dates)."""
    prep = SUITES[table][0](bronze, ctx)
    prep.table = table
    return prep


def expectations(table: str, frame: pd.DataFrame, ctx: SuiteContext) -> list:
    """Fresh GX expectation objects for a prepared frame (or a slice of it)."""
    return SUITES[table][1](frame, ctx)
