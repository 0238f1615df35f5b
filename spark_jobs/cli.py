"""``gogooku3 features --start D --end D``: the feature build from the project CLI."""

from __future__ import annotations

import argparse


def _features(args: argparse.Namespace) -> int:
    from gogooku3.lake.spark import get_spark
    from gogooku3.market.calendar import parse_date
    from spark_jobs import build_features

    start = parse_date(args.start, "--start")
    end = parse_date(args.end, "--end")
    if start > end:
        raise build_features.FeatureBuildError(f"features: --start {start} is after --end {end}")
    spark = get_spark("gogooku3-build-features")
    try:
        rows = build_features.run(spark, start, end, lake_root=args.lake)
    finally:
        spark.stop()
    for table, n in rows.items():
        print(f"{table}\t{n}")
    return 0


def add_commands(sub) -> None:
    """Register ``features`` on the ``gogooku3`` subparsers."""
    p = sub.add_parser(
        "features",
        help="build gold.features / gold.labels / gold.peer_graph for a trade-date range",
        description="Replace [start, end] of gold.features, gold.labels and gold.peer_graph "
        "from silver (reads 260 trading days of look-back).",
    )
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--lake", default=None, help="lake root (default: GOGOOKU_LAKE / settings)")
    p.set_defaults(func=_features)
