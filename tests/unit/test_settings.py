"""Typed settings: YAML + environment, errors that name the key, secrets redacted."""

import json

import pytest

from gogooku3.cli import main
from gogooku3.settings import SettingsError, get_settings, load_settings


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "pipeline.yaml"
    monkeypatch.setenv("GOGOOKU_CONFIG", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_environment_overrides_yaml(config_file, monkeypatch):
    config_file.write_text("jquants_max_concurrent: 20\nspark_master: spark://h:7077\n")
    monkeypatch.setenv("JQUANTS_MAX_CONCURRENT", "42")
    s = load_settings()
    assert s.jquants_max_concurrent == 42
    assert s.spark_master == "spark://h:7077"


def test_unknown_yaml_key_is_an_error_naming_it(config_file):
    config_file.write_text("lake_rot: /tmp/x\n")
    with pytest.raises(SettingsError, match="lake_rot"):
        load_settings()


def test_wrong_type_names_the_key(config_file):
    config_file.write_text("jquants_max_concurrent: many\n")
    with pytest.raises(SettingsError, match="jquants_max_concurrent"):
        load_settings()


def test_relative_lake_root_resolves_against_project_root(config_file, monkeypatch):
    monkeypatch.delenv("GOGOOKU_LAKE", raising=False)
    config_file.write_text("lake_root: data/lake\n")
    s = load_settings()
    assert s.lake_uri.endswith("/data/lake") and s.lake_uri.startswith("/")
    config_file.write_text("lake_root: s3://bucket/lake\n")
    assert load_settings().lake_uri == "s3://bucket/lake"


def test_config_show_redacts_the_api_key(config_file, monkeypatch, capsys):
    config_file.write_text("")
    monkeypatch.setenv("JQUANTS_API_KEY", "super-secret-key-123")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "super-secret-key-123" not in out
    assert json.loads(out)["jquants_api_key"] == "***"


def test_config_get_prints_one_value(config_file, monkeypatch, capsys):
    config_file.write_text("mlflow_tracking_uri: http://mlflow:5000\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["config", "get", "mlflow_tracking_uri"]) == 0
    assert capsys.readouterr().out.strip() == "http://mlflow:5000"
    assert main(["config", "get", "nope"]) == 2


def test_plan_sets_the_endpoints_and_the_default_requests_per_minute(monkeypatch):
    from gogooku3.jquants.endpoints import plan_endpoints, requests_per_minute

    def pace(s):
        return requests_per_minute(s.jquants_plan, s.jquants_requests_per_minute)

    monkeypatch.setenv("JQUANTS_PLAN", "Light")
    s = load_settings()
    assert s.jquants_plan == "light" and pace(s) == 60
    light = plan_endpoints(s.jquants_plan)
    assert "margin_interest" not in light and "topix" in light
    assert plan_endpoints("free") == ("calendar", "master", "bars_daily", "fins_summary")
    assert pace(load_settings(jquants_plan="standard", jquants_requests_per_minute=30)) == 30
    assert pace(load_settings(jquants_plan="premium")) == 500
    monkeypatch.delenv("JQUANTS_PLAN")
    unset = load_settings()
    assert pace(unset) is None and "margin_interest" in plan_endpoints(unset.jquants_plan)
    with pytest.raises(SettingsError, match="jquants_plan"):
        load_settings(jquants_plan="gold")
