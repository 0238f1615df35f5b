"""Feature build: silver → ``gold.features``, ``gold.labels`` and ``gold.peer_graph``.

    spark-submit spark_jobs/build_features.py --start 2025-01-06 --end 2025-01-10
    python -m spark_jobs.build_features --start D --end D     # same, in-process Spark
    gogooku3 features --start D --end D                       # same, through the CLI

Reads silver prices from ``LOOKBACK`` (260) trading days before ``start`` (context tables
further back, see ``inputs``), composes every feature group of ``configs/features.yaml``,
normalizes each date cross-sectionally and replaces exactly the trading days of
``[start, end]`` in ``gold.features`` and ``gold.peer_graph``. ``gold.labels`` is replaced
on ``[start, end]`` plus the up to ``max(HORIZONS)`` earlier trading days that already
have features: their forward returns become known as new days arrive, and a daily run
must fill them in (their keys stay exactly the features' keys).

Guarantees: a feature on ``T`` uses silver rows dated ``<= T`` (and ``>= T − 259``
trading days) only; rebuilding a range reproduces identical tables; a one-day run
equals that day of a full rebuild.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger("spark_jobs.build_features")


#: trading days built per chunk of a long range (about a year)
CHUNK_DAYS = 250


class FeatureBuildError(ValueError):
    """A feature build cannot run: bad range or a catalogue/code mismatch."""


def check_range(start: dt.date, end: dt.date) -> None:
    """Raise ``FeatureBuildError`` when ``start`` is after ``end`` (before Spark starts)."""
    if start > end:
        raise FeatureBuildError(f"feature build: --start {start} is after --end {end}")


def code_groups() -> dict[str, list[str]]:
    """Group name → the feature columns its module adds, in composition order."""
    from spark_jobs.features import fundamentals, market, peers, prices, sector, technical, volume

    return {
        "prices": prices.FEATURES,
        "technical": technical.FEATURES,
        "volume": volume.FEATURES,
        "market": market.FEATURES,
        "sector": sector.FEATURES,
        "flows": fundamentals.FLOW_FEATURES,
        "margin": fundamentals.MARGIN_FEATURES,
        "statements": fundamentals.STATEMENT_FEATURES,
        "peers": peers.FEATURES,
    }


def catalogue_features() -> list[str]:
    """Feature names of ``configs/features.yaml``, checked against the code's groups."""
    from gogooku3.lake.features_schema import FEATURES_YAML, feature_groups

    yaml_groups, code = feature_groups(), code_groups()
    if yaml_groups != code:
        diff = [
            f"{g}: yaml {yaml_groups.get(g)} vs code {code.get(g)}"
            for g in dict.fromkeys([*yaml_groups, *code])
            if yaml_groups.get(g) != code.get(g)
        ]
        raise FeatureBuildError(f"{FEATURES_YAML} does not match the feature modules: " + "; ".join(diff))
    return [n for names in code.values() for n in names]


@dataclass
class FeatureFrames:
    """Lazy DataFrames of one build and the dates each one replaces."""

    features: object
    labels: object
    peer_graph: object
    feature_dates: list[dt.date]
    label_dates: list[dt.date]
    cached: list = field(default_factory=list)

    def release(self) -> None:
        """Unpersist the frames the build cached."""
        for df in self.cached:
            df.unpersist()


@dataclass(frozen=True)
class BuildSettings:
    """What every chunk of one build shares, read and checked once per build."""

    names: list[str]
    peer_graph: dict[str, int]
    calendar: object


def build_settings(lake_root: str | None = None, peer_cadence: int | None = None) -> BuildSettings:
    """The catalogue's features (checked against the code), its peer-graph parameters
    (``peer_cadence`` overrides the cadence; checked against the look-back) and the lake's
    trading calendar."""
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.lake.features_schema import peer_graph_params
    from spark_jobs.features.inputs import LOOKBACK

    pg = peer_graph_params()
    if peer_cadence:
        pg = {**pg, "cadence": peer_cadence}
    if pg["window"] + pg["cadence"] > LOOKBACK:
        raise FeatureBuildError(
            f"configs/features.yaml peer_graph: window {pg['window']} + cadence {pg['cadence']}"
            f" reaches past the {LOOKBACK}-trading-day look-back"
        )
    return BuildSettings(catalogue_features(), pg, TradingCalendar.from_lake(lake_root))


def compose(inputs, settings: BuildSettings):
    """Base price frame (with look-back) → every raw feature group → rows of
    ``[inputs.start, inputs.end]`` normalized per date; also returns the peer graph and
    the frames this build cached (to unpersist once its tables are written).

    Each group is computed from the same narrow, cached base frame (silver price columns
    plus ``_tidx``/``_traded``), cut to the build's dates right after its windows, and
    the groups are joined on ``(date, code)`` to the build's price rows. Chaining the
    groups instead would carry every earlier feature through every later window and
    join: plans of hundreds of columns whose code generation and task serialization,
    not the arithmetic, took most of a build's time.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from spark_jobs.features import fundamentals, market, peers, prices, sector, technical, volume
    from spark_jobs.features.normalize import normalize_cross_section

    base = prices.prepare(inputs.prices).persist(StorageLevel.MEMORY_AND_DISK)
    pg = settings.peer_graph
    graph = peers.build_peer_graph(
        inputs.prices, k=pg["k"], window=pg["window"], cadence=pg["cadence"], start=inputs.start
    ).persist(StorageLevel.MEMORY_AND_DISK)
    frames = {
        "prices": prices.add_price_features(base),
        "technical": technical.add_technical_features(base, since=inputs.start),
        "volume": volume.add_volume_features(base),
        "market": market.add_market_features(base, inputs.topix),
        "sector": sector.add_sector_features(base, inputs.master_asof),
        "flows": fundamentals.add_flow_features(base, inputs.flows),
        "margin": fundamentals.add_margin_features(base, inputs.margin),
        "statements": fundamentals.add_statement_features(base, inputs.statements),
        "peers": peers.add_peer_features(base, graph),
    }
    in_range = (F.col("date") >= F.lit(inputs.start)) & (F.col("date") <= F.lit(inputs.end))
    out = base.filter(in_range).select("date", "code")
    for group, names in code_groups().items():
        out = out.join(frames[group].filter(in_range).select("date", "code", *names),
                       on=["date", "code"], how="left")
    features = normalize_cross_section(out, settings.names)
    return features, graph.filter(in_range), [base, graph]


def plan(spark, start: dt.date, end: dt.date, settings: BuildSettings,
         lake_root: str | None = None) -> FeatureFrames:
    """Read silver and build the (lazy) frames of a ``[start, end]`` build; raises
    ``FeatureBuildError``/``FeatureInputError`` naming what is wrong before any write."""
    from pyspark.sql import functions as F

    from gogooku3.lake import deltars, spark_io
    from gogooku3.lake.errors import TableNotFound
    from spark_jobs.features.inputs import read_inputs
    from spark_jobs.features.labels import HORIZONS, compute_labels

    check_range(start, end)
    cal = settings.calendar
    days = cal.trading_days(start, end)
    if not days:
        raise FeatureBuildError(f"feature build: no JPX trading day in {start}..{end}")
    inputs = read_inputs(spark, start, end, calendar=cal, lake_root=lake_root)
    features, graph, cached = compose(inputs, settings)

    # labels: the build's days plus earlier days (within the longest horizon) that have features
    back = cal.shift(days[0], -max(HORIZONS))
    try:
        built = deltars.read_table("gold.features", columns=["date"], lake_root=lake_root,
                                   start=back, end=days[0] - dt.timedelta(days=1))
        earlier = sorted(set(built.column("date").to_pylist()))
    except TableNotFound:
        earlier = []
    label_dates = [*earlier, *days]
    horizon_end = cal.shift(days[-1], max(HORIZONS))
    label_prices = spark_io.read_table(spark, "silver.equities_prices_daily", label_dates[0],
                                       horizon_end, lake_root=lake_root)
    labels = compute_labels(label_prices).filter(F.col("date").isin(label_dates))
    return FeatureFrames(features, labels, graph, days, label_dates, cached)


def run(spark, start: dt.date, end: dt.date, lake_root: str | None = None,
        peer_cadence: int | None = None, chunk_days: int = CHUNK_DAYS) -> dict[str, int]:
    """Build and write ``[start, end]`` (module docstring); returns rows written per table.

    A long range is built in consecutive chunks of ``chunk_days`` trading days, each
    read with its own look-back and written as one atomic replace of its dates: memory
    stays bounded by the chunk, and the tables equal a one-piece build (a feature on
    ``T`` depends on ``T``'s look-back only). A crash leaves the finished chunks
    written and the rest as before; re-running the range is idempotent.
    """
    check_range(start, end)
    if chunk_days < 1:
        raise FeatureBuildError(f"feature build: chunk_days must be >= 1, got {chunk_days}")
    settings = build_settings(lake_root, peer_cadence)
    days = settings.calendar.trading_days(start, end)
    chunks = [days[i: i + chunk_days] for i in range(0, len(days), chunk_days)] or [[start, end]]
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    for i, chunk in enumerate(chunks, 1):
        if len(chunks) > 1:
            log.info("chunk %d/%d: %s..%s", i, len(chunks), chunk[0], chunk[-1])
        for table, n in _build_chunk(spark, chunk[0], chunk[-1], settings, lake_root).items():
            rows[table] = rows.get(table, 0) + (n or 0)
    log.info("feature build %s..%s done in %.1f s", start, end, time.perf_counter() - t0)
    return rows


def _build_chunk(spark, start: dt.date, end: dt.date, settings: BuildSettings,
                 lake_root: str | None) -> dict[str, int | None]:
    from gogooku3.lake import spark_io

    frames = plan(spark, start, end, settings, lake_root)
    rows: dict[str, int | None] = {}
    try:
        for table, df, dates in (
            ("gold.features", frames.features, frames.feature_dates),
            ("gold.labels", frames.labels, frames.label_dates),
            ("gold.peer_graph", frames.peer_graph, frames.feature_dates),
        ):
            rows[table] = spark_io.write_dates(df, table, dates, lake_root=lake_root).rows
    finally:
        frames.release()
    return rows


def _trade_date(flag: str):
    from gogooku3.jpx.calendar import parse_date

    def parse(text: str) -> dt.date:
        try:
            return parse_date(text, flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's options, shared by spark-submit's entry point and ``gogooku3 features``."""
    parser.add_argument("--start", required=True, type=_trade_date("--start"),
                        metavar="YYYY-MM-DD", help="first trade date")
    parser.add_argument("--end", required=True, type=_trade_date("--end"),
                        metavar="YYYY-MM-DD", help="last trade date")
    parser.add_argument("--lake", default=None, help="lake root (default: settings / GOGOOKU_LAKE)")
    parser.add_argument("--chunk-days", type=int, default=CHUNK_DAYS, metavar="N",
                        help=f"trading days per chunk of a long range (default {CHUNK_DAYS})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_features", description="silver -> gold.features / gold.labels / gold.peer_graph"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_range(args.start, args.end)
    except FeatureBuildError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit entry point: parse, get the session from the lake layer, run."""
    from gogooku3.lake.spark import get_spark

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spark = get_spark("gogooku3-build-features")
    try:
        run(spark, args.start, args.end, lake_root=args.lake, chunk_days=args.chunk_days)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
