"""Feature build: silver → ``gold.features``, ``gold.labels`` and ``gold.peer_graph``.

    spark-submit spark_jobs/build_features.py --start 2025-01-06 --end 2025-01-10
    python -m spark_jobs.build_features --start D --end D     # same, in-process Spark
    gogooku3 features --start D --end D                       # same, through the CLI

Reads silver prices from ``LOOKBACK`` (260) trading days before ``start`` (context tables
further back, see ``inputs``), computes every feature group of ``configs/features.yaml``
in a few passes (``compose``), normalizes each date cross-sectionally and replaces
exactly the trading days of ``[start, end]`` in ``gold.features`` and ``gold.peer_graph``. ``gold.labels`` is replaced
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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.lake.worker_files import WorkerFiles
    from spark_jobs.features.handoff import Handoff
    from spark_jobs.features.inputs import BuildInputs

log = logging.getLogger("spark_jobs.build_features")


#: trading days built per chunk of a long range (about five years): each chunk reads its own
#: 260-day look-back and pays the build's fixed jobs and commits again; memory grows with the
#: chunk (the wide features are never held by Spark: 6.1 GiB peak at 4,000 stocks x 500 days)
CHUNK_DAYS = 1250
#: a chunk of at most this many trading days (a daily run, a short catch-up: ~20,000
#: feature rows at 4,000 stocks, one clustered file) has its features collected to the
#: driver and written by delta-rs, as labels and peer graph always are (``_build_chunk``)
DRIVER_WRITE_DAYS = 5


class FeatureBuildError(ValueError):
    """A feature build cannot run: bad range or a catalogue/code mismatch."""


def check_range(start: dt.date, end: dt.date) -> None:
    """Raise ``FeatureBuildError`` when ``start`` is after ``end`` (before Spark starts)."""
    if start > end:
        raise FeatureBuildError(f"feature build: --start {start} is after --end {end}")


def code_groups() -> dict[str, list[str]]:
    """Group name → the feature columns its module adds, in composition order."""
    from spark_jobs.features import (
        flows,
        fundamentals,
        market,
        peers,
        prices,
        sector,
        technical,
        volume,
    )

    return {  # the order of configs/features.yaml and of the composed frame
        "prices": prices.FEATURES,
        "technical": technical.FEATURES,
        "volume": volume.FEATURES,
        "market": market.FEATURES,
        "sector": sector.FEATURES,
        "flows": flows.FEATURES,
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
    """One build's features (a lazy DataFrame, and how many rows it must hold), its
    peer graph, the driver computation of its labels, and the dates each replaces."""

    features: DataFrame
    feature_rows: int
    labels: Callable[[], pa.Table]
    peer_graph: pa.Table
    feature_dates: list[dt.date]
    label_dates: list[dt.date]


@dataclass(frozen=True)
class BuildSettings:
    """What every chunk of one build shares, read and checked once per build."""

    names: list[str]
    peer_graph: dict[str, int]
    calendar: TradingCalendar


def build_settings(lake_root: str | None = None, peer_cadence: int | None = None) -> BuildSettings:
    """The catalogue's features (checked against the code), its peer-graph parameters
    (``peer_cadence`` overrides the cadence; checked against the look-back) and the lake's
    trading calendar."""
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.lake.features_schema import peer_graph_params
    from spark_jobs.features.sessions import LOOKBACK

    pg = peer_graph_params()
    if peer_cadence:
        pg = {**pg, "cadence": peer_cadence}
    if pg["window"] + pg["cadence"] > LOOKBACK:
        raise FeatureBuildError(
            f"configs/features.yaml peer_graph: window {pg['window']} + cadence {pg['cadence']}"
            f" reaches past the {LOOKBACK}-trading-day look-back"
        )
    return BuildSettings(catalogue_features(), pg, TradingCalendar.from_lake(lake_root))


def compose(spark: SparkSession, inputs: BuildInputs, settings: BuildSettings,
            handoff: Handoff, sink: WorkerFiles | None = None
            ) -> tuple[DataFrame, int, pa.Table]:
    """Silver inputs → rows of ``[inputs.start, inputs.end]`` with every feature,
    normalized per date; also returns how many there are (the per-code pass's rows of
    the range: each is a trading day of the range (``read_inputs``) and unique (the
    per-code pass checks its rows' keys)) and the peer graph's rows of the range.

    Passes: (1) per code, one pass over the look-back (the driver files each bucket of
    codes' price, margin and statement rows in ``handoff``, a task per bucket) computes
    every per-code group plus the trailing returns the later passes use (``series``):
    the features and returns of the build's rows go to ``handoff`` as files, filed by
    snapshot period; the returns come back to the driver as Arrow, for the build's rows
    and the few weeks before them that the sector windows and the first peer snapshot
    need; (2) on the driver, from those
    returns: the peer graph (``peers.peer_graph`` on sector-relative returns, each row's
    sector from the master as of its date; each snapshot's edges filed in ``handoff``)
    and the per-date context — sector statistics by ``(date, sector)``
    (``sector.sector_stats``) and the flows of each date (``flows.flow_daily``);
    (3) the cross-sectional pass, one group per snapshot period: sector and flow
    features, peer statistics and normalization, reading the period's rows and edges
    from ``handoff`` (``crosssection``; with a ``sink`` its workers write the rows as
    the sink's files and the frame lists them). No row is shuffled: Spark runs the two
    passes' tasks, the rows travel as files. Each silver table is read once (on the
    driver, ``inputs``). A group whose optional source is absent (``inputs.absent``) is
    null. The returned frame is lazy; ``handoff`` must outlive its evaluation.
    """
    import bisect

    import pyarrow as pa
    import pyarrow.compute as pc

    from spark_jobs.features import crosssection, flows, market, peers, sector, series

    start = inputs.start
    dates = inputs.dates
    pg = settings.peer_graph
    snaps = peers.graph_snapshots(dates, pg["window"], pg["cadence"], start)
    first = dates[max(0, bisect.bisect_left(dates, start) - sector.MOM_WINDOW)]
    emit_from = min([first, *[days[0] for _, days in snaps]])
    in_range = [d for d in dates if d >= start]
    period_of = crosssection.periods(in_range, [s for s, _ in snaps])
    sources = {"margin": inputs.margin, "statements": inputs.statements}
    returns = series.series_features(spark, inputs.prices, market.market_series(inputs.topix),
                                     dates, start, emit_from, handoff, period_of, sources
                                     ).toArrow()
    day = returns.column("date")
    # each row's sector as of its date, looked up once for the graph and the sector stats
    returns = returns.append_column("sector", pa.array(sector.membership(
        day.to_numpy(), returns.column("code").to_numpy(), inputs.master_asof), pa.string()))
    graph = peers.peer_graph(returns.select(["date", "code", "_r1", "sector"]).filter(
        pc.is_valid(returns.column("_r1"))), dates, k=pg["k"], window=pg["window"],
        cadence=pg["cadence"], start=start)
    for snap, edges in graph.items():
        handoff.write_edges(snap, edges)
    history = returns.filter(pc.greater_equal(day, pa.scalar(first, pa.date32())))
    context = crosssection.Context(
        sector.sector_stats(history.to_pandas(date_as_object=False)),
        inputs.master_asof,
        None if inputs.flows is None else flows.flow_daily(inputs.flows, in_range))
    features = crosssection.cross_sectional_pass(
        spark, list(period_of.values()), settings.names, handoff, context, sink)
    rows = pc.sum(pc.greater_equal(day, pa.scalar(start, pa.date32()))).as_py() or 0
    graph_rows = [e for s, e in graph.items() if start <= s <= inputs.end]
    graph_rows = pa.concat_tables(graph_rows) if graph_rows else peers.GRAPH_SCHEMA.empty_table()
    return features, rows, graph_rows


def plan(spark: SparkSession, start: dt.date, end: dt.date, settings: BuildSettings,
         handoff: Handoff, lake_root: str | None = None,
         sink: WorkerFiles | None = None) -> FeatureFrames:
    """Read silver and build the (lazy) frames of a ``[start, end]`` build (``features``
    lists the ``sink``'s files when one is given, ``compose``; ``handoff`` must outlive
    their evaluation); raises
    ``FeatureBuildError``/``FeatureInputError`` naming what is wrong before any write."""
    from functools import partial

    from gogooku3.lake import deltars
    from gogooku3.lake.errors import TableNotFound
    from spark_jobs.features.inputs import read_inputs
    from spark_jobs.features.labels import HORIZONS, read_labels

    check_range(start, end)
    cal = settings.calendar
    days = cal.trading_days(start, end)
    if not days:
        raise FeatureBuildError(f"feature build: no JPX trading day in {start}..{end}")
    inputs = read_inputs(start, end, calendar=cal, lake_root=lake_root)
    if inputs.absent:
        groups = code_groups()
        log.warning("feature build %s..%s: null groups: %s", start, end, "; ".join(
            f"{g} ({len(groups[g])} features: {why})" for g, why in inputs.absent.items()))
    features, rows, graph = compose(spark, inputs, settings, handoff, sink)

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
    labels = partial(read_labels, label_dates, horizon_end, lake_root)
    return FeatureFrames(features, rows, labels, graph, days, label_dates)


def run(spark: SparkSession, start: dt.date, end: dt.date, lake_root: str | None = None,
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
    threading.Thread(target=_start_python_workers, args=(spark,), name="python-workers",
                     daemon=True).start()
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


def _start_python_workers(spark: SparkSession) -> None:
    """Start one Python worker per core with the passes' kernels imported (a two-line job).

    The executors are idle while the driver reads the Delta logs and plans the build;
    a Python worker started then, and reused by the per-code pass (Spark keeps idle
    workers), spares that pass's first tasks the workers' start and imports (2-7 s on
    this 2-core machine, depending on its load). Best effort: a failure is logged."""
    def load(batches):
        import spark_jobs.features.crosssection  # noqa: F401
        import spark_jobs.features.series  # noqa: F401

        yield from batches

    try:
        n = spark.sparkContext.defaultParallelism
        spark.range(n, numPartitions=n).mapInArrow(load, "id long").collect()
    except Exception as exc:  # the build's own jobs report real failures
        log.debug("starting the Python workers early failed: %s", exc)


def _build_chunk(spark: SparkSession, start: dt.date, end: dt.date, settings: BuildSettings,
                 lake_root: str | None) -> dict[str, int | None]:
    """Compute, check and write one chunk's three tables: every table's rows are checked
    before any is written (bad rows fail the chunk with nothing stored), then each is
    replaced in its own Delta commit.

    Labels and peer graph (a few columns) are computed on the driver as Arrow, checked
    there (``deltars.check_write``) and written by delta-rs: Spark's Delta writer spent
    more in its snapshot, check and rewrite jobs than in writing them. So are the
    features of a chunk of at most ``DRIVER_WRITE_DAYS``; a longer chunk's features are
    written by the cross-sectional pass's workers (``worker_files``) and committed only
    once the files hold as many rows as there are keys (``compose``: checked as they
    arise; counted beside the pass)."""
    from gogooku3.lake import catalog
    from gogooku3.lake.worker_files import WorkerFiles
    from spark_jobs.features.handoff import Handoff

    small = len(settings.calendar.trading_days(start, end)) <= DRIVER_WRITE_DAYS
    sink = None if small else WorkerFiles.start(catalog.table("gold.features"), lake_root)
    handoff = Handoff.start(lake_root)
    try:
        frames = plan(spark, start, end, settings, handoff, lake_root, sink)
        try:
            return _check_and_write(frames, sink, lake_root)
        except BaseException:
            if sink is not None:
                sink.discard()
            raise
    finally:
        handoff.remove()


def _check_and_write(frames: FeatureFrames, sink: WorkerFiles | None,
                     lake_root: str | None) -> dict[str, int | None]:
    """``_build_chunk``'s checks and writes; the collects and the workers' pass run
    concurrently, the commits after every check."""
    from concurrent.futures import ThreadPoolExecutor

    from gogooku3.lake import deltars

    writes = [("gold.features", frames.features.toArrow, frames.feature_dates),
              ("gold.labels", frames.labels, frames.label_dates),
              ("gold.peer_graph", lambda: frames.peer_graph, frames.feature_dates)]
    if sink is not None:
        writes = writes[1:]
    with ThreadPoolExecutor(len(writes) + 1, thread_name_prefix="gold") as pool:
        if sink is not None:
            files = pool.submit(frames.features.collect)
        data = list(pool.map(lambda w: w[1](), writes))
        checked = [deltars.check_write(rows, table, dates, lake_root=lake_root)
                   for (table, _, dates), rows in zip(writes, data, strict=True)]
        rows = {}
        if sink is not None:
            expected = frames.feature_rows
            written = files.result()
            count = sum(f["rows"] for f in written)
            if count != expected:
                raise FeatureBuildError(f"feature build: the cross-sectional pass wrote {count}"
                                        f" rows for {expected} keys")
            rows["gold.features"] = sink.commit(written, frames.feature_dates).rows
    return rows | {w.spec.name: w.commit().rows for w in checked}


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
    from gogooku3.jpx.calendar import load_offline
    from gogooku3.lake.spark import get_spark

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    # the offline JPX calendar (days past the lake's HolDiv rows, e.g. label horizons)
    # loads while the JVM starts instead of after
    threading.Thread(target=load_offline, name="offline-calendar", daemon=True).start()
    spark = get_spark("gogooku3-build-features")
    try:
        run(spark, args.start, args.end, lake_root=args.lake, chunk_days=args.chunk_days)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
