"""``gogooku3 train``, ``gogooku3 baselines`` and ``gogooku3 predict``: argument parsing
only; the work is in ``training.pipeline`` (imported inside the commands, so the CLI starts
without torch)."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_NO_CHAMPION = 3


def _train(args: argparse.Namespace) -> int:
    from training import pipeline

    coverage = pipeline.check_gold_range(args.start, args.end)
    print("gold coverage: " + ", ".join(f"{t} {c['first']}..{c['last']}"
                                        for t, c in coverage.items()))
    run_id = pipeline.train(args.phase, args.overrides, args.start, args.end)
    if args.cv_only:  # the Airflow train task: the run id is its last output line (XCom)
        print(run_id, flush=True)
        return 0
    print(f"CV run: {run_id}")
    if not args.skip_baselines:
        table = pipeline.evaluate_baselines(run_id)
        print(table["table"])
    version = pipeline.register(run_id)
    decision = pipeline.promote(version, args.overrides)
    print("promotion: " + json.dumps(decision))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from training import pipeline
    from training.registry import NoChampionError

    try:
        result = pipeline.predict(args.date)
    except NoChampionError as exc:
        print(f"gogooku3 predict: {exc}", file=sys.stderr)
        return EXIT_NO_CHAMPION
    print(json.dumps(result))
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from training import pipeline

    print(pipeline.baselines_table(args.run))
    return 0


def add_commands(sub) -> None:
    """Register ``train``, ``baselines`` and ``predict`` on the ``gogooku3`` subparsers."""
    train = sub.add_parser(
        "train", help="walk-forward CV training of ATFT-GAT-FAN, baselines, registry",
        description="Overrides are key=value (e.g. train=dev train.epochs=1 model.hidden=16).")
    train.add_argument("--phase", default="all",
                       choices=["baseline", "adaptive_norm", "gat", "augmentation", "all"])
    train.add_argument("--start", metavar="YYYY-MM-DD", help="first gold date (default: all)")
    train.add_argument("--end", metavar="YYYY-MM-DD", help="last gold date (default: all)")
    train.add_argument("--skip-baselines", action="store_true",
                       help="do not train ridge/LightGBM/no-graph baselines")
    train.add_argument("--cv-only", action="store_true",
                       help="run the walk-forward CV only and print its MLflow run id last "
                            "(Airflow's train task; evaluate/register/promote are tasks of "
                            "their own)")
    train.add_argument("overrides", nargs="*", metavar="key=value")
    train.set_defaults(func=_train)
    baselines = sub.add_parser(
        "baselines", help="print the RankIC table (models vs baselines vs oracle) of a CV run",
        description="The table evaluate_baselines logged (default: the latest CV run with one).")
    baselines.add_argument("--run", metavar="RUN_ID", help="MLflow run id of the CV run")
    baselines.set_defaults(func=_baselines)
    predict = sub.add_parser("predict", help="champion forecasts for one date -> gold.predictions")
    predict.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    predict.set_defaults(func=_predict)
