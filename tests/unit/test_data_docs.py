"""Data Docs built from the gate results stored in ``quality.validations``."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from test_quality_gate import DAYS, clean_bars, ctx

from gogooku3.lake import deltars
from gogooku3.quality import data_docs
from gogooku3.quality.gate import QualityGate, failed_day, write_results

TABLE = "bronze.equities_bars_daily"
EMPTY_DAY = dt.date(2024, 3, 11)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("lake"))
    df = clean_bars()
    df.loc[4, ["H", "L"]] = (900.0, 1100.0)  # DAYS[1]: high below low
    rep = QualityGate().validate(TABLE, df, DAYS, ctx())
    days = [*rep.days.values(), failed_day(TABLE, EMPTY_DAY, "empty_day", "no rows")]
    write_results(days, [rep.quarantine], [*DAYS, EMPTY_DAY], lake_root=lake)
    rows = deltars.read_table("quality.validations", lake_root=lake).to_pylist()
    return lake, rows


def _text(page) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    html = re.sub(r"<(script|style).*?</\1>", " ", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_every_stored_gx_validation_is_one_page(stored, tmp_path):
    lake, rows = stored
    results = {r["date"]: json.loads(r["result_json"]) for r in rows}
    runs = {res.get("batch") or d.isoformat(): res["success"]
            for d, res in results.items() if "results" in res}
    assert results[DAYS[1]]["success"] is False and "batch" not in results[DAYS[1]]
    assert results[DAYS[0]]["batch"] == f"{DAYS[0]}..{DAYS[-1]}"  # stored once, on the first
    for d in DAYS[2:]:  # the other passing days point to it instead of holding a copy
        assert results[d] == {"success": results[DAYS[0]]["success"],
                              "batch": f"{DAYS[0]}..{DAYS[-1]}", "stored_on": DAYS[0].isoformat()}

    s = data_docs.build(DAYS[0], EMPTY_DAY, tmp_path / "site", lake_root=lake)

    assert s.index.is_file() and (tmp_path / "site") in s.index.parents
    assert s.rendered == len(runs) == 2 and s.not_rendered == 1  # the empty day: no GX result
    assert s.failed == sum(not ok for ok in runs.values())
    pages = sorted((s.index.parent / "validations").rglob("*.html"))
    assert sorted(p.stem for p in pages) == sorted(runs)
    day_page = _text(next(p for p in pages if p.stem == DAYS[1].isoformat()))
    failing = [r for r in results[DAYS[1]]["results"] if not r["success"]]
    assert failing and f"Unsuccessful Expectations {len(failing)}" in day_page
    assert f"Run Name {DAYS[1]}" in day_page and "Status: Failed" in day_page
    assert "equities_bars_daily" in s.index.read_text()


def test_a_range_without_results_or_backwards_is_a_clear_error(stored, tmp_path):
    lake, _ = stored
    with pytest.raises(LookupError, match="no GX result for 2023-01-04..2023-01-05"):
        data_docs.build(dt.date(2023, 1, 4), dt.date(2023, 1, 5), tmp_path, lake_root=lake)
    with pytest.raises(ValueError, match="after end"):
        data_docs.build(DAYS[-1], DAYS[0], tmp_path, lake_root=lake)
    with pytest.raises(LookupError, match="quality.validations has not been written"):
        data_docs.build(DAYS[0], DAYS[-1], tmp_path, lake_root=str(tmp_path / "nolake"))


def test_a_range_after_the_batch_start_still_renders_the_batch(stored, tmp_path):
    lake, _ = stored
    s = data_docs.build(DAYS[2], DAYS[-1], tmp_path / "site", lake_root=lake)
    pages = sorted((s.index.parent / "validations").rglob("*.html"))
    assert [p.stem for p in pages] == [f"{DAYS[0]}..{DAYS[-1]}"]
    # the batch validates the accepted rows: DAYS[1]'s bad row was rejected before it
    assert s.rendered == 1 and s.not_rendered == 0 and s.failed == 0
    assert f"Run Name {DAYS[0]}..{DAYS[-1]}" in _text(pages[0])


def test_revalidating_the_batch_home_keeps_the_rest_of_the_batch_rendered(tmp_path):
    """Re-running the first date of a batch replaces the result stored there; the batch's
    other dates must still resolve to the batch's result (moved to the next of them)."""
    lake = str(tmp_path / "lake")
    rep = QualityGate().validate(TABLE, clean_bars(), DAYS, ctx())
    write_results(list(rep.days.values()), [rep.quarantine], DAYS, lake_root=lake)
    before = data_docs.stored_results(DAYS[1], DAYS[-1], lake_root=lake)
    again = QualityGate().validate(TABLE, clean_bars().query("date == @DAYS[0]"), DAYS[:1], ctx())
    write_results(list(again.days.values()), [again.quarantine], DAYS[:1], lake_root=lake)

    rows = {r["date"]: json.loads(r["result_json"])
            for r in deltars.read_table("quality.validations", lake_root=lake).to_pylist()}
    batch = f"{DAYS[0]}..{DAYS[-1]}"
    assert rows[DAYS[0]]["batch"] == f"{DAYS[0]}..{DAYS[0]}"  # the new run's own result
    assert rows[DAYS[1]]["batch"] == batch and "results" in rows[DAYS[1]]
    for d in DAYS[2:]:
        assert rows[d] == {"success": True, "batch": batch, "stored_on": DAYS[1].isoformat()}
    after = data_docs.stored_results(DAYS[1], DAYS[-1], lake_root=lake)
    assert after[1] == 0 and [r[:2] for r in after[0]] == [r[:2] for r in before[0]]
    assert after[0][0][3] == before[0][0][3]  # the same GX result, not a re-run
