"""The one catalogue of lake tables: name, schema, partition columns, primary key.

Every table lives at ``<lake_root>/<layer>/<name>`` (e.g. ``lake/silver/equities_prices_daily``).
Panels are replaced by ``date`` (the JST trade date the rows belong to) and keyed by
``(date, code)``; bronze and silver keep a Delta partition per date, the wide gold panels
are clustered by date in few large files (``gogooku3.lake.spec``). Column types are the
short names of ``spec.TYPES``, so both writers (Spark and delta-rs) enforce one schema.

Bronze keeps J-Quants v2 column names (spec: jpx-jquants.com/en/spec) typed, plus the
partition column ``date`` and ingest metadata. Delta (and Spark) column names are
case-insensitive, so an API field ``Date`` cannot sit beside ``date``: where ``Date`` is the
partition field it *is* the ``date`` column; elsewhere (margin interest) it is renamed
``AsOfDate``. Silver and gold use snake_case domain names.
"""

from __future__ import annotations

from collections.abc import Callable

from gogooku3.lake.features_schema import features_table
from gogooku3.lake.spec import CLUSTERED, TYPES, TableSpec

__all__ = ["TYPES", "TableSpec", "UnknownTableError", "table", "tables"]

INGEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_ingested_at", "timestamp"),
    ("_source", "string"),
)


class UnknownTableError(KeyError):
    """A table name that the catalogue does not define."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``"a:string b:double ..."`` (type defaults to double)."""
    out = []
    for tok in spec.split():
        name, _, typ = tok.partition(":")
        out.append((name, typ or "double"))
    return tuple(out)


def _bronze(name: str, api_cols: str, key: tuple[str, ...], doc: str) -> TableSpec:
    return TableSpec(
        name=f"bronze.{name}",
        columns=(("date", "date"), *_cols(api_cols), *INGEST_COLUMNS),
        primary_key=key,
        description=doc,
    )


_INVESTOR_GROUPS = (
    "Prop Brk Tot Ind Frgn SecCo InvTr BusCo OthCo InsCo Bank TrstBnk OthFin"
).split()
_INVESTOR_VALUES = " ".join(f"{g}{s}" for g in _INVESTOR_GROUPS for s in ("Sell", "Buy", "Tot", "Bal"))

_TABLES = [
    # ---- bronze: as received, partitioned by the trade date the rows belong to
    _bronze(
        "markets_calendar", "HolDiv:string", ("date",),
        "/markets/calendar; date = Date",
    ),
    _bronze(
        "equities_master",
        "Code:string CoName:string CoNameEn:string S17:string S17Nm:string "
        "S33:string S33Nm:string ScaleCat:string Mkt:string MktNm:string Mrgn:string MrgnNm:string",
        ("date", "Code"), "/equities/master snapshot as of date",
    ),
    _bronze(
        "equities_bars_daily",
        "Code:string O H L C UL:string LL:string Vo Va AdjFactor AdjO AdjH AdjL AdjC AdjVo",
        ("date", "Code"),
        "/equities/bars/daily; date = Date; UL/LL are '1'/'0' flags; null OHLC = no trade",
    ),
    _bronze(
        "indices_topix", "O H L C", ("date",), "/indices/bars/daily/topix; date = Date",
    ),
    _bronze(
        "fins_summary",
        "DiscDate:date DiscTime:string Code:string DiscNo:string DocType:string "
        "CurPerType:string CurPerSt:date CurPerEn:date CurFYSt:date CurFYEn:date "
        "Sales OP OdP NP EPS TA Eq BPS FSales FOP FOdP FNP FEPS ShOutFY",
        ("date", "Code", "DiscNo"), "/fins/summary; date = DiscDate",
    ),
    _bronze(
        "investor_types",
        f"PubDate:date StDate:date EnDate:date Section:string {_INVESTOR_VALUES}",
        ("date", "Section", "StDate"), "/equities/investor-types; date = PubDate",
    ),
    _bronze(
        "margin_interest",
        "PubDate:date AsOfDate:date Code:string IssType:string ShrtVol LongVol ShrtNegVol "
        "LongNegVol ShrtStdVol LongStdVol",
        ("date", "Code", "AsOfDate"),
        "/markets/margin-interest; date = PubDate; API field Date stored as AsOfDate",
    ),
    # ---- silver: typed, adjusted, point-in-time
    TableSpec(
        name="silver.equities_prices_daily",
        columns=_cols(
            "date:date code:string open high low close volume turnover "
            "adj_factor adj_open adj_high adj_low adj_close adj_volume "
            "upper_limit_hit:boolean lower_limit_hit:boolean is_traded:boolean cum_adj_factor"
        ),
        primary_key=("date", "code"),
        description=(
            "daily bars split-adjusted by gogooku3 with the forward cumulative factor "
            "cum_adj_factor = prod(AdjFactor up to date): adj_price = raw / cum, "
            "adj_volume = raw * cum (append-only, no look-ahead; docs/ingestion.md)"
        ),
    ),
    TableSpec(
        name="silver.equities_master_asof",
        columns=_cols(
            "code:string valid_from:date valid_to:date company_name:string "
            "sector17_code:string sector33_code:string sector33_name:string "
            "market_code:string scale_category:string"
        ),
        primary_key=("code", "valid_from"),
        partition_by=(),
        description="master attributes valid on [valid_from, valid_to) (valid_to null = current)",
    ),
    TableSpec(
        name="silver.indices_topix_daily",
        columns=_cols("date:date open high low close"),
        primary_key=("date",),
        description="TOPIX daily bars",
    ),
    TableSpec(
        name="silver.fins_statements",
        columns=_cols(
            "date:date code:string disc_no:string disclosed_at:timestamp doc_type:string "
            "period_type:string fiscal_year_end:date sales operating_profit ordinary_profit "
            "net_income eps total_assets equity bps forecast_sales forecast_operating_profit "
            "forecast_net_income forecast_eps disc_date:date shares_outstanding"
        ),
        primary_key=("date", "code", "disc_no"),
        description="statements keyed by effective trade date (date): usable from that day on",
    ),
    TableSpec(
        name="silver.investor_flows",
        columns=_cols(
            "date:date section:string start_date:date end_date:date "
            "foreign_balance individual_balance proprietary_balance trust_bank_balance "
            "investment_trust_balance total_turnover published_date:date"
        ),
        primary_key=("date", "section", "start_date"),
        description="weekly investor-type flows keyed by the trade date they become usable",
    ),
    TableSpec(
        name="silver.margin_interest",
        columns=_cols(
            "date:date code:string as_of_date:date short_volume long_volume published_date:date"
        ),
        primary_key=("date", "code", "as_of_date"),
        description="margin interest keyed by the trade date it becomes usable",
    ),
    # ---- gold
    TableSpec(
        name="gold.labels",
        columns=_cols(
            "date:date code:string "
            + " ".join(f"fwd_ret_{h}d fwd_ret_{h}d_dm" for h in (1, 2, 3, 5, 10))
        ),
        primary_key=("date", "code"),
        description="forward adjusted close-to-close returns; the only look-ahead columns",
        storage=CLUSTERED,
    ),
    TableSpec(
        name="gold.peer_graph",
        columns=_cols("date:date code:string peer_code:string rank:int corr"),
        primary_key=("date", "code", "peer_code"),
        description="k nearest peers by trailing 60-day return correlation, per snapshot date",
    ),
    TableSpec(
        name="gold.predictions",
        columns=_cols(
            "date:date code:string model_name:string model_version:string "
            + " ".join(f"pred_{h}d " + " ".join(f"pred_{h}d_q{q}" for q in (10, 25, 50, 75, 90))
                       for h in (1, 2, 3, 5, 10))
        ),
        primary_key=("date", "code"),
        description="model forecasts of fwd_ret_{h}d (point and quantiles) by `gogooku3 predict`",
    ),
    # ---- quality
    TableSpec(
        name="quality.validations",
        columns=_cols(
            "date:date table_name:string success:boolean rows:long failed_rows:long "
            "failed_checks:string result_json:string run_at:timestamp"
        ),
        primary_key=("date", "table_name"),
        description="quality-gate outcome per table and trade date (GX result JSON included)",
    ),
    TableSpec(
        name="quality.quarantine",
        columns=_cols(
            "date:date table_name:string check:string reason:string row_json:string "
            "run_at:timestamp"
        ),
        primary_key=("date", "table_name", "check", "row_json"),
        description="rows rejected by the quality gate, with the failed check",
    ),
]

_CATALOGUE: dict[str, TableSpec] = {t.name: t for t in _TABLES}

#: tables whose schema comes from config: built on first use, here and nowhere else
_CONFIGURED: dict[str, Callable[[], TableSpec]] = {"gold.features": features_table}
_LAYERS = ("bronze", "silver", "gold", "quality")


def table(name: str) -> TableSpec:
    """The spec for ``name`` (``layer.table``); raises ``UnknownTableError`` naming it."""
    spec = _CATALOGUE.get(name)
    if spec is None and name in _CONFIGURED:
        spec = _CATALOGUE[name] = _CONFIGURED[name]()
    if spec is None:
        known = sorted({*_CATALOGUE, *_CONFIGURED})
        raise UnknownTableError(f"unknown lake table {name!r}; known: {', '.join(known)}")
    return spec


def tables() -> list[TableSpec]:
    """All catalogued tables (config-built ones included), by layer, then catalogue order."""
    for name in _CONFIGURED:
        table(name)
    specs = list(_CATALOGUE.values())
    rank = {n: i for i, n in enumerate(_LAYERS)}
    return sorted(specs, key=lambda t: rank.get(t.layer, len(_LAYERS)))
