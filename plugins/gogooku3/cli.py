"""The ``gogooku3`` command line: thin wrappers over library functions.

Subcommands register themselves through small ``add_commands(subparsers)``
functions so each component owns its CLI next to its code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from gogooku3.settings import SettingsError, get_settings

log = logging.getLogger("gogooku3")


def _config_show(args: argparse.Namespace) -> int:
    settings = get_settings()
    print(json.dumps(settings.redacted(), indent=2, default=str))
    return 0


def _config_get(args: argparse.Namespace) -> int:
    value = get_settings().get(args.key)
    print("" if value is None else value)
    return 0


def _calendar(args: argparse.Namespace) -> int:
    from gogooku3.jpx.calendar import TradingCalendar, parse_date

    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to")
    cal = TradingCalendar() if args.offline else TradingCalendar.from_lake()
    for day in cal.trading_days(start, end):
        print(day.isoformat())
    return 0


def _lake_ls(args: argparse.Namespace) -> int:
    from gogooku3.lake import catalog, deltars

    rows = []
    for spec in catalog.tables():
        info = deltars.table_info(spec)
        if info.version is None and not args.all:
            continue
        rows.append(
            (
                spec.name,
                "-" if info.version is None else str(info.version),
                str(info.rows),
                f"{info.first_date or '-'}..{info.last_date or '-'}" if spec.partition_by else "(whole)",
                str(info.dates) if spec.partition_by else "-",
            )
        )
    header = ("table", "version", "rows", "dates", "n_dates")
    if not rows:
        print(f"no tables under {get_settings().lake_uri} (use --all to list the catalogue)")
        return 0
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gogooku3", description="gogooku3: J-Quants -> Delta lakehouse -> features -> model"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="show resolved settings").add_subparsers(
        dest="config_command", required=True
    )
    config.add_parser("show", help="print all settings (secrets redacted)").set_defaults(
        func=_config_show
    )
    get = config.add_parser("get", help="print one setting")
    get.add_argument("key")
    get.set_defaults(func=_config_get)

    cal = sub.add_parser("calendar", help="print JPX trading days, one ISO date per line")
    cal.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    cal.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    cal.add_argument(
        "--offline", action="store_true", help="ignore the lake's J-Quants calendar rows"
    )
    cal.set_defaults(func=_calendar)

    lake = sub.add_parser("lake", help="inspect the Delta lake").add_subparsers(
        dest="lake_command", required=True
    )
    ls = lake.add_parser("ls", help="tables with Delta version, rows and date range")
    ls.add_argument("--all", action="store_true", help="include tables not written yet")
    ls.set_defaults(func=_lake_ls)

    for register in _component_commands():
        register(sub)
    return parser


def _component_commands():
    """``add_commands`` functions of components that ship CLI subcommands."""
    import importlib

    found = []
    for module in (
        "gogooku3.market.cli_sim",
        "gogooku3.ingest.cli",
        "gogooku3.quality.data_docs",
        "spark_jobs.cli",
        "training.cli",
        "gogooku3.serving.cli",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # component not built yet
            raise
        found.append(mod.add_commands)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (SettingsError, ValueError, LookupError) as exc:
        # Domain errors (bad dates, unknown keys or tables) carry a precise message.
        print(f"gogooku3: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
