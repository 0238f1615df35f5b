"""The gold panel, day graphs, index-gathered windows and day batches on the tiny lake."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from tr_lake import FEATURE_COLUMNS

from gogooku3.lake import deltars
from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.data.graph import load_peer_graphs
from training.data.panel import GoldCoverageError, check_gold_range, load_panel


@pytest.fixture(scope="module")
def panel(gold_lake):
    return load_panel(None, None, FEATURE_COLUMNS, gold_lake["root"])


def test_panel_matches_gold_rows(panel, gold_lake):
    raw = deltars.read_table("gold.features", columns=["date", "code", FEATURE_COLUMNS[0]],
                             lake_root=gold_lake["root"]).to_pandas()
    assert panel.listed.sum() == len(raw)
    row = raw.dropna().iloc[len(raw) // 2]
    d, s = panel.days.index(row["date"]), panel.codes.index(row["code"])
    assert panel.features[d, s, 0] == np.float32(row[FEATURE_COLUMNS[0]])
    assert panel.observed[d, s, 0]
    missing = raw[raw[FEATURE_COLUMNS[0]].isna()].iloc[0]
    d, s = panel.days.index(missing["date"]), panel.codes.index(missing["code"])
    assert panel.features[d, s, 0] == 0 and not panel.observed[d, s, 0]
    labels = deltars.read_table("gold.labels", columns=["date", "code", "fwd_ret_5d_dm"],
                                lake_root=gold_lake["root"]).to_pandas().dropna()
    assert panel.label_ok[:, :, 3].sum() == len(labels)
    # a stock not listed on a day has neither features nor labels
    assert not (panel.label_ok.any(axis=2) & ~panel.listed).any()


def test_uncovered_range_names_table_and_dates(gold_lake):
    first = gold_lake["days"][0]
    with pytest.raises(GoldCoverageError, match=rf"gold.features: requested range starts "
                                                rf"2020-01-06 but the table starts {first}"):
        check_gold_range(dt.date(2020, 1, 6), None, gold_lake["root"])
    with pytest.raises(GoldCoverageError, match="gold.features: .* ends 2031-01-06"):
        load_panel(None, dt.date(2031, 1, 6), FEATURE_COLUMNS, gold_lake["root"])


def test_day_graph_is_latest_snapshot_at_or_before_the_day(panel, gold_lake):
    graphs = load_peer_graphs(panel.days, panel.codes, gold_lake["root"])
    snaps = graphs.snapshot_dates
    for d, day in enumerate(panel.days):
        k = graphs.snapshot_of_day[d]
        earlier = [s for s in snaps if s <= day]
        if not earlier:
            assert k == -1
            assert graphs.day_edges(d, torch.arange(10))[0].shape == (2, 0)
        else:
            assert snaps[k] == max(earlier)
    edges = deltars.read_table("gold.peer_graph", lake_root=gold_lake["root"]).to_pandas()
    d = len(panel.days) - 1
    stocks = torch.arange(0, len(panel.codes), 2)  # every other stock: edges to others drop
    ei, ea = graphs.day_edges(d, stocks)
    snap = edges[edges["date"] == snaps[graphs.snapshot_of_day[d]]]
    kept = {(c, p) for c, p in zip(snap["code"], snap["peer_code"], strict=True)
            if panel.codes.index(c) % 2 == 0 and panel.codes.index(p) % 2 == 0}
    got = {(panel.codes[int(stocks[j])], panel.codes[int(stocks[i])])
           for i, j in ei.T.tolist()}
    assert got == kept and ea.shape == (len(kept), 1)


def test_windows_are_the_panel_days_before_and_including_the_day(panel):
    train = list(range(0, 60))
    scaler = FoldScaler.fit(panel, train)
    dp = DevicePanel(panel, scaler, None, "cpu", window=20, mask_channels=True)
    stocks = np.flatnonzero(panel.listed[50])[:7]
    b = dp.batch(50, stocks)
    F = len(FEATURE_COLUMNS)
    assert b.x.shape == (7, 20, 2 * F)
    for i, s in enumerate(stocks):
        for step, day in ((0, 31), (19, 50)):
            raw = panel.features[day, s]
            want = np.clip((raw - scaler.median) / scaler.scale, -5, 5) * panel.observed[day, s]
            np.testing.assert_allclose(b.x[i, step, :F].numpy(), want, rtol=1e-6)
            np.testing.assert_array_equal(b.x[i, step, F:].numpy(), panel.observed[day, s])
    np.testing.assert_allclose(b.y.numpy() * scaler.label_std, panel.labels[50, stocks], rtol=1e-6)
    early = dp.batch(5, stocks)  # window reaches before the panel: zeros, unobserved
    assert early.x[:, :14].abs().sum() == 0


def test_scaler_reads_only_training_days(panel):
    train = list(range(0, 80))
    a = FoldScaler.fit(panel, train)
    panel.features[100:] *= 1000.0
    try:
        b = FoldScaler.fit(panel, train)
    finally:
        panel.features[100:] /= 1000.0
    np.testing.assert_array_equal(a.median, b.median)
    np.testing.assert_array_equal(a.scale, b.scale)


def test_day_batches_hold_one_date_within_bounds(panel):
    days = list(range(30, 90))
    sampler = DaySampler(panel, days, max_stocks=64, min_stocks=20, shuffle=True, seed=3)
    seen = []
    for day, stocks in sampler:
        assert day in days
        assert 20 <= len(stocks) <= 64
        assert panel.listed[day, stocks].all()
        seen.append((day, tuple(stocks)))
    # each eligible (day, stock) exactly once per epoch
    per_day = {}
    for day, stocks in seen:
        per_day.setdefault(day, []).extend(stocks)
    for day, stocks in per_day.items():
        assert sorted(stocks) == list(np.flatnonzero(panel.listed[day]
                                                     & panel.label_ok[day].any(axis=1)))
    order1 = [d for d, _ in seen]
    sampler.set_epoch(1)
    order2 = [d for d, _ in sampler]
    assert order1 != order2 and sorted(order1) == sorted(order2)
    small = DaySampler(panel, days, max_stocks=4096, min_stocks=len(panel.codes) + 1)
    assert len(small) == 0


def test_padded_batches_have_fixed_shapes_and_leave_every_real_row_unchanged(panel, gold_lake):
    from training.train import Trainer, build_model

    graphs = load_peer_graphs(panel.days, panel.codes, gold_lake["root"])
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(60)), graphs, "cpu", 20)
    torch.manual_seed(0)
    trainer = Trainer(build_model({"hidden": 16, "heads": 4, "dropout": 0.0}, dp.n_inputs, 20),
                      dp, {"precision": "fp32", "lr": 1e-3, "weight_decay": 0.0, "seed": 0,
                           "grad_clip": 0.8}, {"rankic_weight": 1.0})
    d, rows = len(panel.days) - 12, 80
    stocks = np.flatnonzero(panel.listed[d])[::3][:50]  # a chunk: some peers outside it
    plain, padded = dp.batch(d, stocks), dp.batch(d, stocks, pad_to=rows)
    assert padded.x.shape[0] == padded.y.shape[0] == rows
    assert padded.edge_index.shape[1] == rows * graphs.max_in_degree
    assert 0 < plain.edge_index.shape[1] < padded.edge_index.shape[1]
    n = len(stocks)
    real = (padded.edge_index < n).all(dim=0)
    assert torch.equal(padded.edge_index[:, real], plain.edge_index)
    assert torch.equal(padded.edge_attr[real], plain.edge_attr)
    # every other edge is the padding edge: it joins two padding rows, attribute 0
    assert (padded.edge_index[:, ~real] == torch.tensor([[n], [n + 1]])).all()
    assert not padded.edge_attr[~real].any()
    assert not padded.y_mask[len(stocks):].any()
    grads = []
    for batch in (plain, padded):
        trainer.model.zero_grad()
        loss = trainer._loss(batch)["total"]
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in trainer.model.parameters()]))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than 2 padding rows"):
        dp.batch(d, stocks, pad_to=len(stocks) + 1)
