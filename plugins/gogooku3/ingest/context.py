"""What the stages of one ingestion run share: the run's summary and its context.

``IngestContext`` carries the endpoints, the trading calendar, the lake root, the quality
gate and the summary that every stage of a run (fetch, gate and bronze, silver, ledger)
needs, so they pass one object instead of the same parameters.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from gogooku3.jpx.calendar import TradingCalendar
from gogooku3.jquants.endpoints import Endpoint, endpoint, plan_endpoints
from gogooku3.jquants.errors import JQuantsAuthError
from gogooku3.lake import catalog, deltars
from gogooku3.quality.gate import QualityGate
from gogooku3.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    """What a run did: rows per table, published and failed dates, client counters, and
    the endpoints skipped because the plan does not include them (name -> message)."""

    start: dt.date
    end: dt.date
    trading_days: int = 0
    skipped: list[dt.date] = field(default_factory=list)
    published: list[dt.date] = field(default_factory=list)
    failed: dict[dt.date, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    fetch_seconds: float = 0.0
    gx_seconds: float = 0.0
    requests: int = 0
    retries: int = 0
    not_in_plan: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no trade date failed (skipped endpoints do not count)."""
        return not self.failed

    def add_rows(self, table: str, n: int) -> None:
        """Count ``n`` more rows written to ``table``."""
        self.rows[table] = self.rows.get(table, 0) + n

    def table_lines(self, lake_root: str | None = None) -> list[str]:
        """One line per bronze/silver/quality table: rows, dates, version (for the CLI)."""
        out = []
        for spec in catalog.tables():
            if spec.layer not in ("bronze", "silver", "quality"):
                continue
            info = deltars.table_info(spec, lake_root=lake_root)
            if info.version is None:
                continue
            span = f"{info.first_date}..{info.last_date}" if info.first_date else "(whole)"
            out.append(f"{spec.name:34s} {info.rows:>10,d} rows  {span:24s} "
                       f"{info.dates:>4d} dates  v{info.version}")
        return out


def not_in_plan_line(name: str) -> str:
    """The one line that says an endpoint answered 403 and was skipped."""
    return (f"{name} is not in your plan (HTTP 403): skipped; "
            "set JQUANTS_PLAN or --endpoints")


def endpoints_named(names: Iterable[str] | None) -> list[Endpoint]:
    """The endpoints called ``names``, or the plan's (setting ``jquants_plan``) when None."""
    return [endpoint(n) for n in (names or plan_endpoints(get_settings().jquants_plan))]


@dataclass
class IngestContext:
    """One run's shared state: fetched endpoints (never the calendar), the calendar, the
    lake root, the quality gate (one GX context per run) and the summary it fills."""

    eps: list[Endpoint]
    cal: TradingCalendar
    lake_root: str
    summary: IngestSummary
    quality: QualityGate = field(default_factory=QualityGate)

    def __post_init__(self) -> None:
        self.eps = [e for e in self.eps if e.name != "calendar"]

    @property
    def names(self) -> set[str]:
        """Names of the endpoints in this run."""
        return {e.name for e in self.eps}

    def drop_not_in_plan(self, refused: dict[str, str]) -> None:
        """Leave out the endpoints that answered 403 (name -> message), each reported in
        one line and in the summary; when none is left the key itself is refused: raise."""
        if not refused:
            return
        for name, message in refused.items():
            if name not in self.summary.not_in_plan:
                log.warning("%s", not_in_plan_line(name))
            self.summary.not_in_plan[name] = message
        left = [e for e in self.eps if e.name not in refused]
        if not left:
            raise JQuantsAuthError(
                f"every endpoint answered HTTP 403 ({', '.join(refused)}): check "
                "JQUANTS_API_KEY and JQUANTS_PLAN", path=self.eps[0].path, status=403)
        self.eps = left

    def owner(self, day: dt.date) -> dt.date:
        """The trade date whose run owns ``day`` (a holiday belongs to the next trade date)."""
        return day if self.cal.is_trading_day(day) else self.cal.shift(day, 1)
