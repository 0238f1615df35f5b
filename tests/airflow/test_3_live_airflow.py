"""``make airflow`` for real: scheduler + API server + DAG processor + triggerer on SQLite.

A backfill over 2026-11-19..23 (two trading days and a holiday) through Airflow's own
backfill (scheduler-executed runs), its re-run,
and the UI driven by headless Chromium from Debian through Selenium (screenshots under
reports/).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pendulum
import pytest
from af_helpers import ROOT, STOCKS, AirflowAPI, wait_until

from gogooku3.lake import deltars

DAGS = ("jquants_daily_ingest", "spark_features_daily", "atft_training_weekly",
        "daily_inference")
# Thu..Mon: cron ticks on the 19th, 20th and 23rd (Labor Thanksgiving Day, no trading)
WEEK = (dt.date(2026, 11, 19), dt.date(2026, 11, 23))
TRADING = [dt.date(2026, 11, d) for d in (19, 20)]
TICKS = 3
REPORTS = ROOT / "reports"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def airflow_processes(home) -> list[str]:
    """``pid cmdline`` of every process whose environment has this ``AIRFLOW_HOME``."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if marker not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode()
            found.append(f"{pid} {cmd}")
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="module")
def live(airflow_env, history, tmp_path_factory):
    """``make airflow`` in its own process group; stopped at the end with SIGTERM to that
    group (what ``timeout`` or a supervisor sends), which must leave no Airflow process."""
    log = tmp_path_factory.mktemp("make_airflow") / "make-airflow.log"
    fh = open(log, "w")
    # `-o setup`: the environment is installed (`make test` did it); a test never reinstalls
    proc = subprocess.Popen(["make", "-s", "-o", "setup", "airflow"], cwd=ROOT,
                            env=airflow_env.env, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def started():
        if proc.poll() is not None:
            raise AssertionError(f"make airflow exited {proc.returncode}:\n{log.read_text()}")
        return "Airflow UI:" in log.read_text()

    wait_until(started, 180, "make airflow to print the UI URL")
    text = log.read_text()
    url = next(x.split()[-1] for x in text.splitlines() if "Airflow UI:" in x)
    password = json.loads((airflow_env.home / "simple_auth_manager_passwords.json")
                          .read_text())["admin"]
    assert password in text, "make airflow prints the login"

    api = AirflowAPI(url, "admin", password)

    def parsed():
        return {d["dag_id"] for d in api.get("/dags?limit=100")["dags"]} >= set(DAGS)

    wait_until(parsed, 120, "the DAG processor to parse every DAG", interval=3)
    yield {"url": url, "password": password, "proc": proc, "api": api}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=90)
        left = []

        def none_left():
            left[:] = airflow_processes(airflow_env.home)
            return not left

        try:
            wait_until(none_left, 120, "every Airflow process to exit", interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; left:\n" + "\n".join(left)) from None
    finally:
        for line in airflow_processes(airflow_env.home):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        fh.close()
    assert "stopping Airflow" in log.read_text()


def test_unpause_puts_every_dag_on_its_tokyo_schedule(airflow_env, live):
    subprocess.run(["bash", "scripts/airflow_unpause.sh"], cwd=ROOT, env=airflow_env.env,
                   check=True, capture_output=True)
    dags = {d["dag_id"]: d for d in live["api"].get("/dags?limit=100")["dags"]}
    assert not any(dags[d]["is_paused"] for d in DAGS)
    ingest = pendulum.parse(dags["jquants_daily_ingest"]["next_dagrun_run_after"])
    train = pendulum.parse(dags["atft_training_weekly"]["next_dagrun_run_after"])
    tokyo = ingest.in_timezone("Asia/Tokyo"), train.in_timezone("Asia/Tokyo")
    assert (tokyo[0].hour, tokyo[0].minute) == (18, 30) and tokyo[0].isoweekday() <= 5
    assert (tokyo[1].hour, tokyo[1].minute, tokyo[1].isoweekday()) == (10, 0, 6)


def _snapshot(lake: str) -> dict[str, list]:
    out = {}
    for table in ("bronze.equities_bars_daily", "bronze.equities_master",
                  "bronze.indices_topix", "silver.equities_prices_daily",
                  "silver.indices_topix_daily", "silver.fins_statements",
                  "silver.equities_master_asof"):
        df = deltars.read_table(table, lake_root=lake).to_pandas()
        if "date" in df and table != "silver.equities_master_asof":
            df = df[(df["date"] >= WEEK[0]) & (df["date"] <= WEEK[1])]
        df = df.drop(columns=[c for c in df.columns if c.startswith("_")])
        out[table] = sorted(map(repr, df.to_dict("records")))
    return out


def _backfill(api, reprocess: str = "none") -> list[dict]:
    """Airflow's own backfill over WEEK (created through the REST API: no CLI process)."""
    body = {"dag_id": "jquants_daily_ingest",
            "from_date": f"{WEEK[0].isoformat()}T00:00:00+09:00",
            "to_date": f"{WEEK[1].isoformat()}T23:59:00+09:00",
            "max_active_runs": 2, "reprocess_behavior": reprocess}

    def no_backfill_running():
        # the scheduler marks a backfill complete a few seconds after its last run
        bfs = api.get("/backfills?dag_id=jquants_daily_ingest")["backfills"]
        return all(b["completed_at"] for b in bfs)

    # SQLite may refuse one of the request's writes at once ("database is locked": a stale
    # WAL read snapshot is not waited for, whatever the busy timeout; see
    # gogooku3.airflow.metadata_db). Inside the backfill's creation Airflow answers 503;
    # at the request's own commit (its action log) a 500 "Database error". Either may come
    # after some runs were created. Then wait for those to finish and create it again:
    # existing runs are kept, the rest created, and the assertions below still see every
    # run and the lake as one backfill leaves them.
    for attempt in range(1, 4):
        wait_until(no_backfill_running, 300, "the previous backfill to be marked complete",
                   interval=1)
        try:
            api.post("/backfills", body)
            break
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            if attempt > 1 and exc.code == 409 and "already a running backfill" in detail:
                break  # the refused attempt's backfill was committed before its action log
            if "database is locked" not in detail.lower() or attempt == 3:
                raise AssertionError(f"POST /backfills {body}: {exc} (attempt {attempt}):\n"
                                     f"{detail}") from None
            print(f"POST /backfills attempt {attempt}: {exc}: {detail[:300]}")

    def done():
        runs = [r for r in api.runs("jquants_daily_ingest")
                if r["dag_run_id"].startswith("backfill")]
        if len(runs) == TICKS and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        return None

    return wait_until(done, 600, f"the backfill's {TICKS} runs to finish", interval=1)


def test_the_history_load_ran_now_so_the_ui_shows_its_real_duration(live):
    """``make demo``'s path: one run now with the range in its conf. A ``dags test`` dated
    in the past gets that date as its start_date: the UI shows it days old, lasting days."""
    runs = [r for r in live["api"].runs("jquants_daily_ingest")
            if (r.get("conf") or {}).get("start") == "2025-09-01"]
    assert runs, "the session's history-load run"
    run = runs[0]
    after, start, end = (pendulum.parse(run[k]) for k in ("run_after", "start_date", "end_date"))
    assert abs(start - after) < dt.timedelta(minutes=5)
    assert dt.timedelta(0) < end - start < dt.timedelta(hours=1)
    assert pendulum.now("UTC") - after < dt.timedelta(hours=3)


def test_backfill_gives_one_partition_per_trading_day_and_rerun_changes_nothing(
        airflow_env, live):
    af = airflow_env
    live["api"].patch("/dags/jquants_daily_ingest", {"is_paused": False})
    started = time.monotonic()
    runs = _backfill(live["api"])
    assert {r["state"] for r in runs} == {"success"}, runs
    lake = af.lake
    for table in ("bronze.equities_bars_daily", "bronze.equities_master",
                  "silver.equities_prices_daily"):
        df = deltars.read_table(table, WEEK[0], WEEK[1], lake_root=lake).to_pandas()
        code = "code" if "code" in df else "Code"
        assert sorted(set(df["date"])) == TRADING, table
        assert not df.duplicated(["date", code]).any(), table
        assert df.groupby("date").size().between(1, STOCKS).all(), table
        files = deltars_partitions(table, lake)
        assert files >= set(TRADING) and dt.date(2026, 11, 23) not in files
    first = _snapshot(lake)
    print(f"backfill: {time.monotonic() - started:.0f}s")
    started = time.monotonic()
    again = _backfill(live["api"], "completed")
    assert {r["state"] for r in again} == {"success"}
    assert _snapshot(lake) == first
    print(f"backfill re-run: {time.monotonic() - started:.0f}s")


def deltars_partitions(table: str, lake: str) -> set[dt.date]:
    """Trade dates of the table's live Delta partitions (from the log, not the data)."""
    from deltalake import DeltaTable

    from gogooku3.lake import catalog

    spec = catalog.table(table)
    layer, name = spec.name.split(".", 1)
    dt_ = DeltaTable(f"{lake}/{layer}/{name}")
    import pyarrow as pa

    parts = pa.table(dt_.get_add_actions(flatten=True)).to_pydict()
    return {dt.date.fromisoformat(str(v)[:10]) for v in parts["partition.date"]}


def _browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the UI test needs Debian's chromium and chromium-driver ({CHROMIUM}, "
                    f"{CHROMEDRIVER}); run `make sysdeps`")
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,960"):
        opts.add_argument(arg)
    # a browser in Tokyo: the UI shows times in the browser's zone (Airflow 3 has no
    # server-side default), so this is what a user in Japan sees
    service = webdriver.ChromeService(CHROMEDRIVER, env={**os.environ, "TZ": "Asia/Tokyo"})
    return webdriver.Chrome(options=opts, service=service)


def test_ui_login_dag_list_and_ingest_and_training_grids_in_headless_chromium(live):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    REPORTS.mkdir(exist_ok=True)
    url = live["url"]
    with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=10) as r:
        assert r.status == 200
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys(live["password"])
        driver.save_screenshot(str(REPORTS / "airflow_login.png"))
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "login" not in d.current_url)

        driver.get(f"{url}/dags")
        wait.until(lambda d: all(dag in d.page_source for dag in DAGS))
        body = driver.find_element(By.TAG_NAME, "body").text
        assert all(dag in body for dag in DAGS)
        # on the Tokyo clock: the zone in the header, the unpaused DAGs' next runs at
        # 18:30 (ingest) and 10:00 (training) JST
        assert "+09:00" in body
        assert "18:30:00" in body and "10:00:00" in body
        driver.save_screenshot(str(REPORTS / "airflow_dags.png"))

        driver.get(f"{url}/dags/jquants_daily_ingest")  # the grid is the DAG page's left pane
        wait.until(lambda d: "is_trading_day" in d.page_source)
        time.sleep(2)  # let the grid's cells paint before the screenshot
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "jquants_daily_ingest" in body
        for task in ("is_trading_day", "fetch", "quality_gate", "build_silver"):
            assert task in driver.page_source, task
        driver.save_screenshot(str(REPORTS / "airflow_ingest_grid.png"))

        driver.get(f"{url}/dags/atft_training_weekly")
        wait.until(lambda d: "check_gold_range" in d.page_source)
        time.sleep(2)
        for task in ("check_gold_range", "train", "evaluate_baselines", "register", "promote"):
            assert task in driver.page_source, task
        driver.save_screenshot(str(REPORTS / "airflow_training_grid.png"))
    finally:
        driver.quit()
    for name in ("airflow_login.png", "airflow_dags.png", "airflow_ingest_grid.png",
                 "airflow_training_grid.png"):
        assert (REPORTS / name).stat().st_size > 10_000, name
