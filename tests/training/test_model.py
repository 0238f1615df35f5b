"""ATFT-GAT-FAN as a whole: config, phases, no BatchNorm, graph use, bf16, and learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from training.losses import LossConfig, forecast_loss
from training.model import ATFTGATFAN, ModelConfig, ModelOutput

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
N, L, F = 24, 10, 6
TINY = {"n_features": F, "seq_len": L, "hidden": 16, "heads": 2, "dropout": 0.0}


def _graph(n: int, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Each node listens to the k next nodes (mod n); edge attribute in [0, 1)."""
    dst = torch.arange(n).repeat_interleave(k)
    src = (dst + torch.arange(1, k + 1).repeat(n)) % n
    return torch.stack([src, dst]), torch.rand(n * k, 1)


def batchnorm_modules(module: nn.Module) -> list[str]:
    """Names of every BatchNorm (any dimension, incl. SyncBatchNorm and PyG's) in the tree."""
    return [name for name, m in module.named_modules() if "batchnorm" in type(m).__name__.lower()]


def test_config_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="hiden"):
        ModelConfig.from_dict({"n_features": 3, "hiden": 8})
    with pytest.raises(ValueError, match="n_features"):
        ModelConfig.from_dict({"hidden": 8})
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(n_features=3, hidden=10, heads=4)
    cfg = ModelConfig.from_dict({"n_features": 3, "horizons": [1, 5]})
    assert cfg.horizons == (1, 5) and hash(cfg)


@pytest.mark.parametrize(
    ("phase", "blocks"),
    [("baseline", set()), ("adaptive_norm", {"fan", "san"}), ("gat", {"fan", "san", "graph"}),
     (None, {"fan", "san", "graph"})],
)
def test_each_phase_builds_its_blocks(phase, blocks):
    fields = yaml.safe_load((CONFIGS / "model" / "default.yaml").read_text())
    if phase is not None:  # a phase file switches the default model's blocks
        fields |= yaml.safe_load((CONFIGS / "phase" / f"{phase}.yaml").read_text())["model"]
    cfg = ModelConfig.from_dict({**fields, "n_features": F})
    model = ATFTGATFAN(cfg)
    present = {b for b in ("fan", "san", "graph") if getattr(model, b) is not None}
    assert present == blocks
    assert (model.context is not None) == bool(blocks & {"fan", "san"})


def test_no_batchnorm_anywhere_and_the_walk_would_see_one():
    full = ATFTGATFAN(ModelConfig(n_features=F, seq_len=L))
    assert batchnorm_modules(full) == []
    full.heads.extra = nn.BatchNorm1d(4)
    assert batchnorm_modules(full) == ["heads.extra"]


@pytest.mark.parametrize("use_graph", [False, True])
def test_forward_shapes_and_monotone_quantiles(use_graph):
    cfg = ModelConfig(**TINY)
    model = ATFTGATFAN(cfg)
    with torch.no_grad():  # a non-trivial de-normalization must keep quantile order too
        for norm in (model.fan, model.san):
            norm.denormalizer.proj.weight.normal_(std=0.5)
    edge_index, edge_attr = _graph(N) if use_graph else (None, None)
    out = model(torch.randn(N, L, F) * 3.0, edge_index, edge_attr)
    assert isinstance(out, ModelOutput)
    assert out.point.shape == (N, 5) and out.quantiles.shape == (N, 5, 5)
    assert out.levels == cfg.quantiles
    assert torch.all(out.quantiles.diff(dim=-1) >= 0)


def test_wrong_input_shape_names_the_expected_shape():
    model = ATFTGATFAN(ModelConfig(**TINY))
    with pytest.raises(ValueError, match=r"\[N, L=10, F=6\]"):
        model(torch.randn(N, L, F + 1))


def test_graph_is_skipped_without_edges_or_when_disabled():
    x = torch.randn(N, L, F)
    model = ATFTGATFAN(ModelConfig(**TINY)).eval()
    edge_index, edge_attr = _graph(N)
    with torch.no_grad():
        no_graph, graph = model(x), model(x, edge_index, edge_attr)
    assert not torch.allclose(no_graph.point, graph.point)
    ablation = ATFTGATFAN(ModelConfig(**TINY, use_gat=False)).eval()
    with torch.no_grad():
        torch.testing.assert_close(ablation(x, edge_index, edge_attr).point, ablation(x).point)


def test_a_peer_moves_a_stock_forecast_only_through_an_edge():
    model = ATFTGATFAN(ModelConfig(**TINY)).eval()
    x = torch.randn(4, L, F)
    edge_index, edge_attr = torch.tensor([[1], [0]]), torch.rand(1, 1)  # 0 listens to 1
    changed = x.clone()
    changed[1] += 1.0
    with torch.no_grad():
        base, out = model(x, edge_index, edge_attr), model(changed, edge_index, edge_attr)
    assert not torch.allclose(base.point[0], out.point[0])
    torch.testing.assert_close(base.point[2:], out.point[2:])


def test_bf16_autocast_forward_on_cpu_is_finite():
    model = ATFTGATFAN(ModelConfig(**TINY)).eval()
    edge_index, edge_attr = _graph(N)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(N, L, F), edge_index, edge_attr)
    assert out.point.dtype == torch.float32
    assert torch.isfinite(out.point).all() and torch.isfinite(out.quantiles).all()
    assert torch.all(out.quantiles.diff(dim=-1) >= 0)


def test_full_model_overfits_a_small_fixed_batch():
    model = ATFTGATFAN(ModelConfig(**TINY))
    x = torch.randn(N, L, F)
    edge_index, edge_attr = _graph(N)
    target = torch.randn(N, 5)
    mask = torch.ones(N, 5, dtype=torch.bool)
    loss_cfg = LossConfig(sharpe_weight=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = forecast_loss(model(x, edge_index, edge_attr), target, mask, loss_cfg)["total"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20


def _peer_day(generator: torch.Generator, n: int = 64):
    """A day where each stock's return is its one peer's last feature-0 value."""
    x = torch.randn(n, L, F, generator=generator)
    order = torch.randperm(n, generator=generator)
    peer = torch.empty_like(order)
    peer[order] = order.roll(1)  # one cycle: nobody is its own peer
    edge_index = torch.stack([peer, torch.arange(n)])
    target = x[peer, -1, 0].unsqueeze(1).repeat(1, 5)
    return x, edge_index, torch.ones(n, 1), target


@pytest.mark.parametrize("use_gat", [True, False])
@pytest.mark.parametrize(("skip", "two_hop"), [(False, False), (True, False), (True, True)])
def test_only_the_graph_model_learns_a_peer_signal(use_gat, skip, two_hop):
    """With or without the last-step skip and the two-hop context (the default: both), a
    peer's value reaches a stock only by an edge."""
    model = ATFTGATFAN(ModelConfig(**TINY, use_gat=use_gat, graph_input_skip=skip,
                                   graph_two_hop=two_hop))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    mask = torch.ones(64, 5, dtype=torch.bool)
    train = torch.Generator().manual_seed(0)
    for _ in range(100):  # a fresh day every step: learning, not memorizing
        x, edge_index, edge_attr, target = _peer_day(train)
        loss = forecast_loss(model(x, edge_index, edge_attr), target, mask,
                             LossConfig(sharpe_weight=0.0))["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, edge_index, edge_attr, target = _peer_day(torch.Generator().manual_seed(1))
    with torch.no_grad():
        point = model.eval()(x, edge_index, edge_attr).point[:, 0]
    corr = torch.corrcoef(torch.stack([point, target[:, 0]]))[0, 1].item()
    assert corr > 0.8 if use_gat else abs(corr) < 0.3
