"""``gogooku3 features --start D --end D``: the feature build from the project CLI."""

from __future__ import annotations

import argparse


def _features(args: argparse.Namespace) -> int:
    from gogooku3.lake.spark import get_spark
    from spark_jobs import build_features

    build_features.check_range(args.start, args.end)
    spark = get_spark("gogooku3-build-features")
    try:
        rows = build_features.run(spark, args.start, args.end, lake_root=args.lake,
                                  chunk_days=args.chunk_days)
    finally:
        spark.stop()
    for table, n in rows.items():
        print(f"{table}\t{n}")
    return 0


def add_commands(sub) -> None:
    """Register ``features`` on the ``gogooku3`` subparsers (options: ``build_features``)."""
    from spark_jobs import build_features

    p = sub.add_parser(
        "features",
        help="build gold.features / gold.labels / gold.peer_graph for a trade-date range",
        description="Replace [start, end] of gold.features, gold.labels and gold.peer_graph "
        "from silver (reads 260 trading days of look-back).",
    )
    build_features.add_arguments(p)
    p.set_defaults(func=_features)
