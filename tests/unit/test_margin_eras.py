"""Margin interest's two eras: weekly without PubDate (derived publication), then daily."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from gogooku3.ingest import silver
from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jpx.margin import weekly_publication
from gogooku3.jquants.endpoints import endpoint

CAL = TradingCalendar()  # offline JPX: 2026-09-21..23 and 2026-05-04..06 are holidays
d = dt.date


def test_weekly_balance_is_published_on_the_second_business_day_of_the_next_week():
    assert weekly_publication(d(2026, 9, 11), CAL) == d(2026, 9, 15)  # Mon 14th is the 1st
    # Silver Week: Mon-Wed closed, so Thu 24th is the 1st business day and Fri 25th the 2nd
    assert weekly_publication(d(2026, 9, 18), CAL) == d(2026, 9, 25)
    # Golden Week: Thu 7th and Fri 8th are the only business days of the week of May 4th
    assert weekly_publication(d(2026, 5, 1), CAL) == d(2026, 5, 8)


def test_silver_uses_pubdate_when_present_and_derives_it_when_empty():
    bronze = pd.DataFrame({
        "PubDate": [None, None, d(2026, 9, 28), d(2026, 10, 2)],
        "AsOfDate": [d(2026, 9, 11), d(2026, 9, 18), d(2026, 9, 25), d(2026, 10, 1)],
        "Code": ["13010"] * 4, "ShrtVol": [1.0, 2, 3, 4], "LongVol": [5.0, 6, 7, 8],
    })
    out = silver.margin_interest(bronze, CAL)
    assert out["published_date"].tolist() == [d(2026, 9, 15), d(2026, 9, 25), d(2026, 9, 28),
                                               d(2026, 10, 2)]
    # usable from the trade date after publication (published after the close)
    assert out["date"].tolist() == [d(2026, 9, 16), d(2026, 9, 28), d(2026, 9, 29),
                                    d(2026, 10, 5)]
    assert out["long_volume"].tolist() == [5.0, 6, 7, 8]


def test_history_is_asked_by_record_date_and_the_daily_era_by_publication_date():
    ep = endpoint("margin_interest")
    week = [{"date": f"2026-09-{x:02d}"} for x in (14, 15, 16, 17, 18)]
    # weekly era: no published_date= (the service answers nothing there)
    assert ep.day_queries(d(2026, 9, 15), CAL) == [{"date": f"2026-09-{x:02d}"}
                                                   for x in (7, 8, 9, 10, 11)]
    assert ep.day_queries(d(2026, 9, 16), CAL) == []
    # the switch: the 25th publishes the last full weekly record and the first daily days
    assert ep.day_queries(d(2026, 9, 25), CAL) == [{"published_date": "2026-09-25"}, *week]
    assert ep.day_queries(d(2026, 9, 29), CAL) == [{"published_date": "2026-09-29"},
                                                   {"date": "2026-09-24"}]
    assert ep.day_queries(d(2026, 10, 3), CAL) == [{"published_date": "2026-10-03"}]


def test_files_without_pubdate_land_in_the_derived_publication_partition(tmp_path):
    from gogooku3.ingest.bronze import BronzeError, load_files

    (tmp_path / "margin_interest.csv").write_text(
        "PubDate,Date,Code,IssType,ShrtVol,LongVol,ShrtNegVol,LongNegVol,ShrtStdVol,LongStdVol\n"
        ",2026-09-18,13010,2,100,500,30,100,70,400\n"
        "2026-09-28,2026-09-25,13010,2,110,510,33,102,77,408\n")
    ep = endpoint("margin_interest")
    now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    t = load_files(tmp_path, [ep], d(2026, 9, 1), d(2026, 10, 31), ingested_at=now,
                   calendar=CAL)["margin_interest"]
    assert t.column("date").to_pylist() == [d(2026, 9, 25), d(2026, 9, 28)]
    assert t.column("PubDate").to_pylist() == [None, d(2026, 9, 28)]  # kept as received
    with pytest.raises(BronzeError, match="trading calendar"):
        load_files(tmp_path, [ep], d(2026, 9, 1), d(2026, 10, 31), ingested_at=now)


def test_daily_era_week_on_week_margin_change_compares_with_the_record_a_week_back():
    from spark_jobs.features.fundamentals import margin_features

    records = CAL.trading_days(d(2026, 10, 1), d(2026, 10, 30))  # daily era: one per day
    margin = pd.DataFrame({
        "code": "13010", "date": [CAL.shift(r, 1) for r in records], "as_of_date": records,
        "long_volume": [1000.0 + 10 * i for i in range(len(records))],
        "short_volume": [500.0] * len(records)})
    day = d(2026, 10, 27)  # Tuesday: uses Monday 26th's record
    keys = pd.DataFrame({"date": [day], "code": ["13010"], "_adv20": [1e4]})
    got = margin_features(keys, margin)
    now = margin.set_index("as_of_date").loc[d(2026, 10, 26), "long_volume"]
    week_ago = margin.set_index("as_of_date").loc[d(2026, 10, 20), "long_volume"]  # Tue 20th
    assert got["margin_long_chg_1w"][0] == pytest.approx(now / week_ago - 1)
    assert got["margin_short_chg_1w"][0] == pytest.approx(0.0)


def test_weekly_era_margin_change_compares_with_the_previous_week_even_after_a_holiday():
    from spark_jobs.features.fundamentals import margin_features

    # Friday records, but Thu 2026-09-17 stands in for a week (as if Fri were closed)
    records = [d(2026, 9, 4), d(2026, 9, 11), d(2026, 9, 17)]
    margin = pd.DataFrame({"code": "13010", "date": [d(2026, 9, 8), d(2026, 9, 15),
                                                     d(2026, 9, 24)],
                           "as_of_date": records, "long_volume": [100.0, 200.0, 300.0],
                           "short_volume": [50.0, 50.0, 50.0]})
    keys = pd.DataFrame({"date": [d(2026, 9, 24)], "code": ["13010"], "_adv20": [1e4]})
    got = margin_features(keys, margin)
    assert got["margin_long_chg_1w"][0] == pytest.approx(300.0 / 200.0 - 1)
