"""``gogooku3 serve ...`` end to end on the session's gold lake, Redis (materialized once by
the session fixture, so the CLI run repeats it) and a chdb directory."""

from __future__ import annotations

import pytest

from gogooku3.cli import main
from gogooku3.settings import get_settings


@pytest.fixture
def serve_env(monkeypatch, serving_gold, serving_settings, materialized, tmp_path):
    monkeypatch.setenv("GOGOOKU_LAKE", serving_gold.lake_root)
    monkeypatch.setenv("REDIS_URL", serving_settings.redis_url)
    monkeypatch.setenv("GOGOOKU_FEAST_DATA_DIR", serving_settings.feast_data_dir)
    monkeypatch.setenv("CLICKHOUSE_URL", f"chdb://{tmp_path / 'ch'}")
    get_settings.cache_clear()
    yield serving_gold
    get_settings.cache_clear()


def test_materialize_then_online_prints_dates_and_names_missing_codes(serve_env, capsys):
    last = serve_env.dates[-1]
    assert main(["serve", "materialize", "--end", str(last)]) == 0
    assert f"stock_forecast_vector\tup to {last}" in capsys.readouterr().out
    assert main(["serve", "online", "--codes", "72030", "00000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"72030  features {last} (")
    row = serve_env.predictions.set_index(["date", "code"]).loc[(last, "72030")]
    for h in (1, 2, 3, 5, 10):
        value = row[f"pred_{h}d"]
        assert (f"pred_{h}d={value:+.4f}" if value == value else f"pred_{h}d=-") in out
    assert "missing: 00000 (not in the online store)" in out


def test_online_json_names_every_value_and_writes_nulls_as_null(serve_env, capsys):
    import json

    last = serve_env.dates[-1]
    assert main(["serve", "online", "--codes", "72030", "00000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out,
                     parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert out["missing"] == ["00000"]
    row = out["rows"][0]
    gold = serve_env.features.set_index(["date", "code"]).loc[(last, "72030")]
    assert set(row["features"]) <= set(gold.index) and len(row["features"]) > 100
    assert None in row["features"].values()  # a null gold value, served as NaN
    for name, value in row["features"].items():
        assert value is None if gold[name] != gold[name] else value == pytest.approx(gold[name])


def test_online_with_redis_down_names_the_server(serve_env, monkeypatch, capsys):
    from gogooku3.serving.redis_server import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    assert main(["serve", "online", "--codes", "72030"]) == 2
    err = capsys.readouterr().err
    assert "Redis at 127.0.0.1:" in err and "not reachable" in err and "s3cret" not in err


def test_load_clickhouse_then_query_top_decile(serve_env, capsys):
    first, last = serve_env.dates[0], serve_env.dates[-1]
    assert main(["serve", "load-clickhouse", "--start", str(first), "--end", str(last)]) == 0
    out = capsys.readouterr().out
    assert f"predictions\t{len(serve_env.predictions) * 5}" in out
    assert main(["serve", "query", "top_decile", "horizon=1", f"start={last}",
                 f"end={last}"]) == 0
    best = serve_env.predictions[serve_env.predictions.date == last].nlargest(1, "pred_1d")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["date", "code"] and best.code.iloc[0] in lines[1]


def test_redis_start_stop_stops_only_what_it_started(monkeypatch, tmp_path, capsys, redis_url):
    from urllib.parse import urlparse

    from gogooku3.serving.redis_server import RedisServer, free_port

    monkeypatch.setenv("GOGOOKU_FEAST_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    port = free_port()
    probe = RedisServer(port, tmp_path)
    assert main(["serve", "redis", "start", "--port", str(port)]) == 0
    assert capsys.readouterr().out.strip() == f"redis://127.0.0.1:{port}/0" and probe.answers()
    assert main(["serve", "redis", "stop", "--port", str(port)]) == 0
    assert not probe.answers()
    session_port = urlparse(redis_url).port
    assert main(["serve", "redis", "start", "--port", str(session_port)]) == 0
    assert "already running, not started by gogooku3" in capsys.readouterr().out
    assert main(["serve", "redis", "stop", "--port", str(session_port)]) == 0
    assert "no redis-server started by gogooku3" in capsys.readouterr().out
    assert RedisServer(session_port, tmp_path).answers()
    get_settings.cache_clear()
