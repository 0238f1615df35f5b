"""The gold check: what a feature build wrote for a window of trade dates.

Failures (``GoldCheckFailed``, one line per table, date and check): a JPX trading day
without rows in ``gold.features`` or ``gold.labels``, a null or repeated ``(date, code)``
key, labels whose keys differ from the features' keys.

Warnings, not failures: a feature group whose columns are all null on a date (an
*empty group*). Flows, margin and statements are optional sources (a J-Quants plan may
not include them), and a build without one leaves its groups null by design; the check
reports them so a missing source is visible, and the build still publishes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd

log = logging.getLogger(__name__)

GOLD_TABLES = ("gold.features", "gold.labels")


class GoldCheckFailed(Exception):
    """Gold rows of a trade date failed a check (message: table, date, check)."""


@dataclass(frozen=True)
class GoldReport:
    """Outcome of a passing check: rows per table, the window's trading days and, per
    date, the feature groups that are entirely null."""

    rows: dict[str, int]
    days: list[dt.date]
    empty_groups: dict[dt.date, list[str]] = field(default_factory=dict)

    def summary(self) -> dict:
        """The report as plain JSON values (ISO dates), e.g. for an XCom."""
        return {"rows": self.rows, "trade_dates": [d.isoformat() for d in self.days],
                "empty_groups": {d.isoformat(): g for d, g in self.empty_groups.items()}}


def _key_problems(table: str, df: pd.DataFrame, days: list[dt.date]) -> list[str]:
    problems = []
    present = set(df["date"].dropna())
    problems += [f"{table} on {d}: rows_present (no rows for a trading day)"
                 for d in days if d not in present]
    nulls = df[df["code"].isna() | df["date"].isna()]
    for d in sorted(set(nulls["date"].dropna())):
        problems.append(f"{table} on {d}: not_null_key ({(nulls['date'] == d).sum()} rows)")
    dup = df[df.duplicated(["date", "code"], keep=False)]
    for d in sorted(set(dup["date"])):
        problems.append(f"{table} on {d}: unique_key ({(dup['date'] == d).sum()} rows)")
    return problems


def _label_key_problems(features: pd.DataFrame, labels: pd.DataFrame) -> list[str]:
    both = features[["date", "code"]].assign(_f=1).merge(
        labels[["date", "code"]].assign(_l=1), on=["date", "code"], how="outer")
    off = both[both["_f"].isna() | both["_l"].isna()]
    return [f"gold.labels on {d}: same_keys_as_features ({(off['date'] == d).sum()} codes differ)"
            for d in sorted(set(off["date"]))]


def empty_groups(features: pd.DataFrame, groups: dict[str, list[str]]
                 ) -> dict[dt.date, list[str]]:
    """Per date, the groups (catalogue order) whose raw columns are null in every row.
    Groups with no column in ``features`` are not judged."""
    out: dict[dt.date, list[str]] = {}
    for group, names in groups.items():
        cols = [c for c in names if c in features.columns]
        if not cols:
            continue
        filled = features[cols].notna().any(axis=1).groupby(features["date"]).any()
        for day in filled[~filled].index:
            out.setdefault(day, []).append(group)
    return dict(sorted(out.items()))


def check_gold(start: dt.date, end: dt.date, lake_root: str | None = None) -> GoldReport:
    """Check ``gold.features`` and ``gold.labels`` over ``[start, end]`` (see the module
    docstring). Raises ``GoldCheckFailed`` naming table, date and check; logs one warning
    per date with empty feature groups and returns the ``GoldReport``."""
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.lake import deltars
    from gogooku3.lake.features_schema import feature_groups
    from gogooku3.settings import get_settings

    lake_root = lake_root or get_settings().lake_uri
    days = TradingCalendar.from_lake(lake_root).trading_days(start, end)
    groups = feature_groups()
    wanted = {"gold.features": ["date", "code", *[c for g in groups.values() for c in g]],
              "gold.labels": ["date", "code"]}
    problems: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    for table in GOLD_TABLES:
        try:
            frames[table] = deltars.read_table(table, start, end, columns=wanted[table],
                                               lake_root=lake_root).to_pandas()
        except deltars.TableNotFound:
            problems.append(f"{table} on {start}..{end}: table_exists (no Delta table)")
            continue
        problems += _key_problems(table, frames[table], days)
    if len(frames) == len(GOLD_TABLES):
        problems += _label_key_problems(frames["gold.features"], frames["gold.labels"])
    if problems:
        raise GoldCheckFailed("gold check failed:\n  " + "\n  ".join(problems))
    empty = empty_groups(frames["gold.features"], groups)
    for day, names in empty.items():
        log.warning("gold check: gold.features on %s: empty groups %s (every value null; "
                    "an optional source is absent?)", day, ", ".join(names))
    report = GoldReport({t: len(df) for t, df in frames.items()}, days, empty)
    log.info("gold check %s..%s passed: %s over %d trading days; %d date(s) with empty "
             "groups", start, end, report.rows, len(days), len(empty))
    return report
