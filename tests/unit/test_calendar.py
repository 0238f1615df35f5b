"""JPX calendar and JST trade-date conversion."""

import datetime as dt

import pytest

from gogooku3.cli import main
from gogooku3.jpx.calendar import (
    CalendarError,
    TradingCalendar,
    offline_trading_days,
    parse_date,
    session_close,
    to_trade_date,
)

D = dt.date


@pytest.fixture(scope="module")
def cal():
    return TradingCalendar()


def test_labor_thanksgiving_day_and_weekend_are_closed(cal):
    assert cal.trading_days(D(2026, 11, 20), D(2026, 11, 25)) == [
        D(2026, 11, 20),
        D(2026, 11, 24),
        D(2026, 11, 25),
    ]
    assert not cal.is_trading_day(D(2026, 11, 23))  # Monday, national holiday
    assert not cal.is_trading_day(D(2026, 11, 21))  # Saturday


def test_year_end_holidays_dec31_to_jan3_are_closed(cal):
    days = cal.trading_days(D(2026, 12, 28), D(2027, 1, 6))
    assert D(2026, 12, 30) in days  # last session of the year (Wednesday)
    for closed in (D(2026, 12, 31), D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3)):
        assert closed not in days
    assert days[days.index(D(2026, 12, 30)) + 1] == D(2027, 1, 4)


def test_previous_next_and_n_back_skip_closed_days(cal):
    assert cal.previous_trading_day(D(2026, 11, 24)) == D(2026, 11, 20)
    assert cal.next_trading_day(D(2026, 11, 20)) == D(2026, 11, 24)
    assert cal.next_trading_day(D(2026, 11, 22)) == D(2026, 11, 24)  # from a Sunday
    assert cal.trading_days_back(D(2026, 11, 25), 1) == D(2026, 11, 25)
    assert cal.trading_days_back(D(2026, 11, 25), 3) == D(2026, 11, 20)
    assert cal.trading_days_back(D(2026, 11, 23), 1) == D(2026, 11, 20)  # holiday -> window ends Fri
    # n back agrees with counting the listed days
    start = cal.trading_days_back(D(2026, 11, 25), 60)
    assert len(cal.trading_days(start, D(2026, 11, 25))) == 60


def test_shift_zero_on_holiday_raises(cal):
    with pytest.raises(CalendarError, match="2026-11-23"):
        cal.shift(D(2026, 11, 23), 0)


@pytest.mark.parametrize(
    ("utc", "jst_date"),
    [
        ("2026-11-23T14:59:59+00:00", D(2026, 11, 23)),  # 23:59:59 JST
        ("2026-11-23T15:00:00+00:00", D(2026, 11, 24)),  # 00:00 JST: UTC still the 23rd
        ("2026-11-23T23:30:00+00:00", D(2026, 11, 24)),  # 08:30 JST
        ("2026-11-24T00:00:00+00:00", D(2026, 11, 24)),  # 09:00 JST
        ("2026-11-24T09:30:00+00:00", D(2026, 11, 24)),  # 18:30 JST, the daily DAG's trigger
    ],
)
def test_utc_instant_maps_to_tokyo_date(utc, jst_date):
    assert to_trade_date(utc) == jst_date
    assert to_trade_date(dt.datetime.fromisoformat(utc)) == jst_date


def test_naive_timestamp_is_taken_as_utc():
    assert to_trade_date(dt.datetime(2026, 11, 23, 20, 0)) == D(2026, 11, 24)


def test_close_moves_to_1530_from_2024_11_05():
    assert session_close(D(2024, 11, 1)).hour == 15 and session_close(D(2024, 11, 1)).minute == 0
    assert session_close(D(2024, 11, 5)).minute == 30


def test_holdiv_rows_override_offline_calendar():
    # a half day ("2") trades; "3" (derivatives-only holiday trading) does not
    cal = TradingCalendar({D(2026, 11, 23): "2", D(2026, 11, 24): "3"})
    assert cal.trading_days(D(2026, 11, 20), D(2026, 11, 25)) == [
        D(2026, 11, 20),
        D(2026, 11, 23),
        D(2026, 11, 25),
    ]


def test_bad_holdiv_is_rejected_with_date():
    with pytest.raises(CalendarError, match="2026-11-23"):
        TradingCalendar({D(2026, 11, 23): "9"})


def test_parse_date_accepts_both_jquants_forms_and_names_bad_input():
    assert parse_date("20261124") == parse_date("2026-11-24") == D(2026, 11, 24)
    with pytest.raises(CalendarError, match="--to"):
        parse_date("2026/11/24", "--to")


def test_calendar_cli_prints_iso_trading_days(capsys):
    assert main(["calendar", "--from", "2026-11-20", "--to", "2026-11-25", "--offline"]) == 0
    assert capsys.readouterr().out.split() == ["2026-11-20", "2026-11-24", "2026-11-25"]


def test_offline_calendar_keeps_the_2020_outage_as_a_business_day():
    """J-Quants serves 2020-10-01 (arrowhead failure) as HolDiv "1" with null bars;
    the offline fallback must agree, or ingestion would skip a day the API has."""
    days = offline_trading_days(dt.date(2020, 9, 30), dt.date(2020, 10, 2))
    assert dt.date(2020, 10, 1) in days
    assert TradingCalendar().shift(dt.date(2020, 9, 30), 1) == dt.date(2020, 10, 1)
