"""The feature job end to end (``spark_jobs.build_features.run``) on a small simulated market.

One full build of the last ``RANGE`` trading days of ``sim_silver`` is the reference; the
other builds are compared with it bit for bit:

* the same build again (idempotence);
* the range without its last day, then a daily run of that day (incremental = rebuild);
* the same range after every silver value dated after ``CUT`` was changed (no look-ahead).

Normalization and labels are checked against independent pandas/numpy computations on
silver; a split day against the raw close.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import rankdata
from sj_helpers import read_gold

from gogooku3.lake import catalog, deltars
from gogooku3.lake.features_schema import feature_names
from spark_jobs import build_features
from spark_jobs.features.inputs import FeatureInputError
from spark_jobs.features.labels import HORIZONS

pytestmark = [pytest.mark.spark, pytest.mark.slow]

RANGE = 36  # reaches back to the 2025-02-13 splits of the simulated market
GOLD = ("gold.features", "gold.labels", "gold.peer_graph")


@pytest.fixture(scope="module")
def window(sim_silver) -> tuple[dt.date, dt.date, dt.date]:
    """(start, cut, end): the build range and the point-in-time cut inside it."""
    days = sim_silver.days
    return days[-RANGE], days[-RANGE // 2], days[-1]


@pytest.fixture(scope="module")
def reference(spark, sim_silver, window, tmp_path_factory):
    """The full build of ``window`` in its own lake: (lake root, rows written, gold frames)."""
    start, _, end = window
    root = sim_silver.copy_to(tmp_path_factory.mktemp("reference") / "lake")
    rows = build_features.run(spark, start, end, lake_root=root)
    return root, rows, {t: read_gold(root, t) for t in GOLD}


def test_features_table_has_every_catalogue_feature_raw_z_and_rank(reference, sim_silver,
                                                                   window):
    _, rows, gold = reference
    names = feature_names()
    assert len(names) >= 62
    feats = gold["gold.features"]
    assert list(feats.columns) == ["date", "code", *names, *[f"{n}_cs_z" for n in names],
                                   *[f"{n}_cs_rank" for n in names]]
    start, _, end = window
    prices = sim_silver.frames["silver.equities_prices_daily"]
    want = prices[(prices["date"] >= start) & (prices["date"] <= end)]
    assert rows["gold.features"] == len(feats) == len(want)
    assert set(zip(feats["date"], feats["code"], strict=True)) == set(
        zip(want["date"], want["code"], strict=True))
    # every feature is populated on most rows of the last day (none silently all-null)
    last = feats[feats["date"] == end]
    filled = last[names].notna().mean()
    assert (filled > 0.5).all(), filled[filled <= 0.5]


def test_rebuilding_the_range_reproduces_identical_tables(spark, reference, window):
    root, _, gold = reference
    start, _, end = window
    build_features.run(spark, start, end, lake_root=root)
    for table in GOLD:
        pd.testing.assert_frame_equal(read_gold(root, table), gold[table], check_exact=True)


def test_a_range_built_in_chunks_equals_the_one_piece_build(spark, sim_silver, reference,
                                                              window, tmp_path):
    _, rows, gold = reference
    start, _, end = window
    root = sim_silver.copy_to(tmp_path / "lake")
    chunked = build_features.run(spark, start, end, lake_root=root, chunk_days=RANGE // 3 + 1)
    assert chunked["gold.features"] == rows["gold.features"]
    assert not any(Path(root, "_scratch").iterdir()), "a chunk left its handoff files"
    for table in GOLD:
        pd.testing.assert_frame_equal(read_gold(root, table), gold[table], check_exact=True,
                                      obj=table)


def _dated(frames: dict[str, pd.DataFrame], keep) -> dict[str, pd.DataFrame]:
    """The date-partitioned silver frames restricted to rows whose date passes ``keep``."""
    return {name: df[keep(df["date"])] for name, df in frames.items() if "date" in df.columns}


def test_a_daily_run_equals_that_day_of_a_full_rebuild(spark, sim_silver, reference, window,
                                                       tmp_path):
    """Day by day as in production: silver up to the day before, its build; then the new
    day lands in silver and the daily run builds it and fills in the labels it completes."""
    _, _, gold = reference
    start, _, end = window
    prev = sim_silver.days[-2]
    upto_prev = {**sim_silver.frames, **_dated(sim_silver.frames, lambda d: d <= prev)}
    root = sim_silver.copy_to(tmp_path / "lake", upto_prev)
    build_features.run(spark, start, prev, lake_root=root)
    before = read_gold(root, "gold.labels")
    assert before[before["date"] == prev]["fwd_ret_1d"].isna().all(), "the future is unknown"

    new_day = {k: v for k, v in _dated(sim_silver.frames, lambda d: d == end).items() if len(v)}
    sim_silver.write(new_day, root)
    build_features.run(spark, end, end, lake_root=root)
    for table in GOLD:
        pd.testing.assert_frame_equal(read_gold(root, table), gold[table], check_exact=True,
                                      obj=table)
    now = read_gold(root, "gold.labels")
    assert now[now["date"] == prev]["fwd_ret_1d"].notna().any()


def _perturbed_after(frames: dict[str, pd.DataFrame], cut: dt.date, days: list[dt.date],
                     seed: int = 3) -> dict[str, pd.DataFrame]:
    """Every silver value dated after ``cut`` changed; a sector change right after it."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, df in frames.items():
        df = df.copy()
        if "date" in df.columns:
            later = (df["date"] > cut).to_numpy()
            num = [c for c in df.columns if c != "date" and pd.api.types.is_float_dtype(df[c])]
            scale = rng.uniform(0.5, 1.5, len(df))
            if name == "silver.equities_prices_daily":  # one factor per row keeps OHLC valid
                for c in ("open", "high", "low", "close", "adj_open", "adj_high", "adj_low",
                          "adj_close"):
                    df[c] = np.where(later, df[c] * scale, df[c])
                for c in ("volume", "adj_volume", "turnover"):
                    df[c] = np.where(later, df[c] * rng.uniform(0.2, 5, len(df)), df[c])
            else:
                for c in num:
                    df[c] = np.where(later, df[c] * rng.uniform(0.5, 1.5, len(df)), df[c])
        out[name] = df
    master = out["silver.equities_master_asof"]
    nxt = days[days.index(cut) + 1]
    open_ended = master[master["valid_to"].isna() & (master["valid_from"] <= cut)]
    moved = open_ended.iloc[::3]
    master.loc[moved.index, "valid_to"] = nxt
    sectors = sorted(master["sector33_code"].dropna().unique())
    new = moved.assign(valid_from=nxt, valid_to=None,
                       sector33_code=[sectors[(sectors.index(s) + 1) % len(sectors)]
                                      for s in moved["sector33_code"]])
    out["silver.equities_master_asof"] = pd.concat([master, new], ignore_index=True)
    return out


def test_changing_every_silver_value_after_a_date_leaves_earlier_gold_bit_identical(
        spark, sim_silver, reference, window, tmp_path):
    _, _, gold = reference
    start, cut, end = window
    frames = _perturbed_after(sim_silver.frames, cut, sim_silver.days)
    root = sim_silver.copy_to(tmp_path / "lake", frames)
    build_features.run(spark, start, end, lake_root=root)
    for table in ("gold.features", "gold.peer_graph"):
        got, ref = read_gold(root, table), gold[table]
        early = lambda df: df[df["date"] <= cut].reset_index(drop=True)  # noqa: E731
        pd.testing.assert_frame_equal(early(got), early(ref), check_exact=True, obj=table)
        # and the perturbation did reach the later days
        late_got, late_ref = got[got["date"] > cut], ref[ref["date"] > cut]
        assert not late_got.reset_index(drop=True).equals(late_ref.reset_index(drop=True))


def _cs_reference(day: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Winsorize at that day's 1st/99th percentiles, z-score; percentile rank of the raw."""
    x = day[name].to_numpy(dtype=float)
    ok = np.isfinite(x)
    z, rank = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if ok.sum() < 2:
        return z, rank
    v = x[ok]
    lo, hi = np.percentile(v, [1, 99])
    w = np.clip(v, lo, hi)
    sd = w.std()
    z[ok] = (w - w.mean()) / sd if sd > 0 else 0.0
    rank[ok] = (rankdata(v) - 1) / (ok.sum() - 1)
    return z, rank


def test_cs_z_and_rank_use_that_days_rows_only(reference, window):
    """Gold stores float32: the reference works (in float64) on the stored raw values, and
    the stored z-scores and ranks must equal it to float32 precision."""
    _, _, gold = reference
    feats = gold["gold.features"]
    names = feature_names()
    assert (feats[names].dtypes == np.float32).all()
    for day in (window[0], window[2]):
        rows = feats[feats["date"] == day]
        for name in names:
            z, rank = _cs_reference(rows, name)
            np.testing.assert_allclose(rows[f"{name}_cs_z"], z, rtol=1e-6, atol=1e-6,
                                       err_msg=f"{day} {name}_cs_z")
            np.testing.assert_allclose(rows[f"{name}_cs_rank"], rank, rtol=1e-7, atol=0,
                                       err_msg=f"{day} {name}_cs_rank")
    # missing stays missing: a null raw value is null in both normalized columns
    raw_null = feats[names].isna().to_numpy()
    assert raw_null.any()
    assert feats[[f"{n}_cs_z" for n in names]].isna().to_numpy()[raw_null].all()


def test_labels_are_forward_adjusted_returns_null_where_the_future_is_unknown(
        reference, sim_silver, window):
    _, _, gold = reference
    labels = gold["gold.labels"]
    prices = sim_silver.frames["silver.equities_prices_daily"]
    px = prices.assign(px=prices["adj_close"].where(prices["is_traded"].astype(bool))).pivot(
        index="date", columns="code", values="px").sort_index()
    for h in HORIZONS:
        fwd = (px.shift(-h) / px - 1).stack(future_stack=True).rename("want")
        got = labels.set_index(["date", "code"])[f"fwd_ret_{h}d"]
        joined = pd.concat([got, fwd], axis=1, join="inner")
        assert len(joined) == len(labels)
        np.testing.assert_allclose(joined.iloc[:, 0], joined["want"], rtol=1e-12,
                                   err_msg=f"fwd_ret_{h}d")
        dm = labels[f"fwd_ret_{h}d"] - labels.groupby("date")[f"fwd_ret_{h}d"].transform("mean")
        np.testing.assert_allclose(labels[f"fwd_ret_{h}d_dm"], dm, rtol=1e-9, atol=1e-15)
    last = labels[labels["date"] == window[2]]
    assert last[[f"fwd_ret_{h}d" for h in HORIZONS]].isna().all().all()


def test_a_split_day_shows_no_return_spike(reference, sim_silver, window):
    _, _, gold = reference
    feats = gold["gold.features"].set_index(["date", "code"])
    prices = sim_silver.frames["silver.equities_prices_daily"].sort_values(["code", "date"])
    prices = prices[prices["is_traded"].astype(bool)].copy()
    prices["raw_ret"] = prices.groupby("code")["close"].pct_change()
    splits = prices[(prices["adj_factor"] != 1.0) & prices["date"].between(window[0], window[2])]
    if splits.empty:
        pytest.fail("the simulated market has no split inside the build range")
    for row in splits.itertuples():
        assert abs(row.raw_ret) > 0.3, "the raw close jumps on the split day"
        f = feats.loc[(row.date, row.code)]
        assert abs(f["ret_1d"]) < 0.25, (row.code, row.date, f["ret_1d"])
        assert abs(f["overnight_ret_1d"]) < 0.25
        assert f["vol_5d"] < 0.1


def test_bad_ranges_and_missing_silver_fail_naming_what_before_any_write(spark, sim_silver,
                                                                         tmp_path):
    with pytest.raises(build_features.FeatureBuildError, match="no JPX trading day"):
        build_features.run(spark, dt.date(2025, 1, 1), dt.date(2025, 1, 3),
                           lake_root=sim_silver.lake_root)
    with pytest.raises(FeatureInputError, match="silver.equities_prices_daily"):
        build_features.run(spark, dt.date(2025, 3, 3), dt.date(2025, 3, 3),
                           lake_root=str(tmp_path / "empty"))
    for table in GOLD:
        assert not (tmp_path / "empty" / "gold" / table.split(".")[1]).exists()


def test_a_price_row_on_a_day_without_trading_fails_naming_it_before_any_write(
        spark, sim_silver, window, tmp_path):
    day = window[2]
    saturday = day - dt.timedelta(days=(day.weekday() - 5) % 7 or 7)  # in the look-back
    root = sim_silver.copy_to(tmp_path / "lake")
    prices = catalog.table("silver.equities_prices_daily")
    row = deltars.read_table(prices, day, day, lake_root=root).slice(0, 1)
    row = row.set_column(row.schema.get_field_index("date"), "date",
                         pa.array([saturday], pa.date32()))
    deltars.write_dates(row, prices, [saturday], lake_root=root)
    with pytest.raises(FeatureInputError, match=f"not JPX trading days: {saturday}"):
        build_features.run(spark, day, day, lake_root=root)
    for table in GOLD:
        assert not (Path(root) / "gold" / table.split(".")[1]).exists()


def test_without_optional_sources_their_groups_are_null_and_the_build_says_so(
        spark, sim_silver, reference, window, tmp_path, caplog):
    """No margin or statements table and an empty flows table (the per-code pass then has
    no source rows to cogroup): the day builds, those groups are null, the other groups
    equal the reference build's, and one log line names the null groups."""
    _, _, gold = reference
    end = window[2]
    frames = {k: v for k, v in sim_silver.frames.items()
              if k not in ("silver.margin_interest", "silver.investor_flows",
                           "silver.fins_statements")}
    root = sim_silver.copy_to(tmp_path / "lake", frames)
    flows = catalog.table("silver.investor_flows")
    deltars.write_dates(flows.arrow_schema().empty_table(), flows, [sim_silver.days[0]],
                        lake_root=root)
    with caplog.at_level(logging.WARNING, logger="spark_jobs.build_features"):
        build_features.run(spark, end, end, lake_root=root)
    feats = read_gold(root, "gold.features")
    groups = build_features.code_groups()
    absent = groups["margin"] + groups["flows"] + groups["statements"]
    assert len(feats) > 0 and feats[absent].isna().all().all()
    present = [n for n in feature_names() if n not in absent]
    ref = gold["gold.features"]
    ref = ref[ref["date"] == end].reset_index(drop=True)
    pd.testing.assert_frame_equal(feats[["date", "code", *present]], ref[["date", "code", *present]],
                                  check_exact=True)
    lines = [r.getMessage() for r in caplog.records if "null groups" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "margin" in lines[0] and "silver.margin_interest is missing" in lines[0]
    assert "flows" in lines[0] and "silver.investor_flows has no rows" in lines[0]
    assert "statements" in lines[0] and "silver.fins_statements is missing" in lines[0]
