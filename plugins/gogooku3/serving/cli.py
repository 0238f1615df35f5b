"""``gogooku3 serve ...``: Feast materialization and lookups, ClickHouse loads and queries,
the local redis-server of the embedded default."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from gogooku3.jpx.calendar import parse_date


def _materialize(args: argparse.Namespace) -> int:
    from gogooku3.serving.feast_store import materialize

    end = parse_date(args.end, "--end")
    start = parse_date(args.start, "--start") if args.start else None
    result = materialize(end, start)
    for source, dates in sorted(result.exported.items()):
        span = f"{dates[0]}..{dates[-1]}" if dates else "no dates"
        print(f"exported\t{source}\t{len(dates)} dates\t{span}")
    for view in result.views:
        print(f"online\t{view}\tup to {end}")
    for name, why in sorted(result.skipped.items()):
        print(f"skipped\t{name}\t{why}")
    return 0


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.4f}" if isinstance(value, float) else str(value)


def _json_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _online(args: argparse.Namespace) -> int:
    from gogooku3.serving.feast_store import online_lookup

    result = online_lookup(args.codes)
    if args.json:
        print(json.dumps(
            {"rows": [{"code": r.code, "feature_date": str(r.feature_date),
                       "forecast_date": str(r.forecast_date),
                       "features": {k: _json_value(v) for k, v in r.features.items()},
                       "forecast": {k: _json_value(v) for k, v in r.forecast.items()}}
                      for r in result.rows],
             "missing": result.missing}, indent=1, default=str))
        return 0
    for row in result.rows:
        n = sum(v is not None and not (isinstance(v, float) and math.isnan(v))
                for v in row.features.values())
        print(f"{row.code}  features {row.feature_date or '-'} ({n}/{len(row.features)} non-null)"
              f"  forecast {row.forecast_date or '-'} model {row.forecast.get('model_version') or '-'}")
        points = [(k, v) for k, v in row.forecast.items() if k.startswith("pred_") and "_q" not in k]
        print("  forecast " + "  ".join(f"{k}={_fmt(v)}" for k, v in points))
        raw = [(k, v) for k, v in row.features.items() if not k.endswith("_cs_z")]
        print("  raw      " + "  ".join(f"{k}={_fmt(v)}" for k, v in raw))
        zs = list(row.features.items())[:6]
        print("  cs_z     " + "  ".join(f"{k}={_fmt(v)}" for k, v in zs) + "  ... (--json: all)")
    if result.missing:
        print(f"missing: {' '.join(result.missing)} (not in the online store)")
    return 0


def _load_clickhouse(args: argparse.Namespace) -> int:
    from gogooku3.serving.analytics import load_clickhouse
    from gogooku3.settings import get_settings

    start, end = parse_date(args.start, "--start"), parse_date(args.end, "--end")
    for table, rows in load_clickhouse(start, end, get_settings().clickhouse_url).items():
        print(f"{table}\t{rows}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from gogooku3.serving.clickhouse import ClickHouse
    from gogooku3.settings import get_settings

    params = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"serve query: parameter {item!r} is not key=value")
        params[key] = value
    with ClickHouse(get_settings().clickhouse_url) as ch:
        frame = ch.query(args.name, **params)
    print(frame.head(args.limit).to_string(index=False))
    if len(frame) > args.limit:
        print(f"... {len(frame)} rows")
    return 0


def _redis(args: argparse.Namespace) -> int:
    from urllib.parse import urlparse

    from gogooku3.serving.redis_server import RedisServer
    from gogooku3.settings import get_settings

    settings = get_settings()
    port = args.port or urlparse(settings.redis_url).port or 6379
    server = RedisServer(port, Path(settings.resolved_path("feast_data_dir")) / "redis")
    if args.action == "start" and server.answers():
        # e.g. the Debian package's own service: use it, and never stop it
        print(f"{server.url} (already running, not started by gogooku3)")
    elif args.action == "start":
        print(server.start().url)
    elif not server.stop():
        print(f"no redis-server started by gogooku3 on 127.0.0.1:{port}")
    return 0


def add_commands(sub) -> None:
    """Register ``serve`` and its subcommands on the ``gogooku3`` subparsers."""
    serve = sub.add_parser("serve", help="Feast/Redis online serving and ClickHouse analytics")
    cmds = serve.add_subparsers(dest="serve_command", required=True)

    p = cmds.add_parser("materialize", help="export gold to Feast, apply, load Redis up to --end")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--start", metavar="YYYY-MM-DD",
                   help="first date to export (default: --end minus the views' 14-day TTL)")
    p.set_defaults(func=_materialize)

    p = cmds.add_parser("online", help="online feature vector and forecast of codes")
    p.add_argument("--codes", nargs="+", required=True, metavar="CODE")
    p.add_argument("--json", action="store_true", help="every feature, as JSON")
    p.set_defaults(func=_online)

    p = cmds.add_parser("load-clickhouse", help="replace [start, end] of the analytics tables")
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD")
    p.set_defaults(func=_load_clickhouse)

    p = cmds.add_parser("query", help="run a named query of configs/clickhouse/queries")
    p.add_argument("name")
    p.add_argument("params", nargs="*", metavar="key=value")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_query)

    p = cmds.add_parser("redis", help="start/stop the local redis-server of the embedded default")
    p.add_argument("action", choices=("start", "stop"))
    p.add_argument("--port", type=int, help="default: the port of REDIS_URL")
    p.set_defaults(func=_redis)
