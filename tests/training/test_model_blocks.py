"""ATFT-GAT-FAN building blocks: shapes in and out, and each block's defining property."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.model.denorm import ForecastDenormalizer
from training.model.fan import FrequencyAdaptiveNorm, RealDFTBasis, dominant_components
from training.model.graph import PeerGraphAttention
from training.model.grn import GateAddNorm, GatedResidualNetwork
from training.model.heads import ForecastHeads
from training.model.san import SliceAdaptiveNorm
from training.model.temporal_attention import CausalTemporalAttention
from training.model.tft import TemporalFusionEncoder
from training.model.two_hop import two_hop_mean
from training.model.variable_selection import VariableSelectionNetwork

N, L, F, D, H, Q = 6, 20, 7, 16, 5, 5


def test_grn_and_gate_shapes_with_and_without_context():
    grn = GatedResidualNetwork(F, D, D, d_context=D)
    assert grn(torch.randn(N, L, F), torch.randn(N, D)).shape == (N, L, D)
    assert grn(torch.randn(N, F)).shape == (N, D)
    assert GateAddNorm(F, D)(torch.randn(N, L, F), torch.randn(N, L, D)).shape == (N, L, D)
    with pytest.raises(ValueError, match="context"):
        GatedResidualNetwork(F, D, D)(torch.randn(N, F), torch.randn(N, D))


def test_variable_selection_weights_are_a_distribution_over_features():
    vsn = VariableSelectionNetwork(F, D, d_context=D)
    selected, weights = vsn(torch.randn(N, L, F), torch.randn(N, D))
    assert selected.shape == (N, L, D) and weights.shape == (N, L, F)
    assert torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(N, L))


def test_variable_selection_equals_weighted_sum_of_per_feature_embeddings():
    vsn = VariableSelectionNetwork(F, D).eval()
    x = torch.randn(N, L, F)
    _, weights = vsn(x)
    embeddings = x.unsqueeze(-1) * vsn.weight + vsn.bias  # [N, L, F, D], built explicitly
    expected = vsn.transform((weights.unsqueeze(-1) * embeddings).sum(dim=2))
    torch.testing.assert_close(vsn(x)[0], expected, atol=1e-5, rtol=1e-5)


def test_causal_attention_output_before_t_ignores_inputs_from_t_on():
    attention = CausalTemporalAttention(D, heads=4).eval()
    x = torch.randn(N, L, D)
    t = 12
    changed = x.clone()
    changed[:, t:] += 5.0 * torch.randn(N, L - t, D)
    before, after = attention(x), attention(changed)
    assert before.shape == (N, L, D)
    torch.testing.assert_close(before[:, :t], after[:, :t])
    assert not torch.allclose(before[:, t:], after[:, t:])


@pytest.mark.parametrize("with_context", [False, True])
def test_temporal_fusion_encoder_is_causal_end_to_end(with_context):
    encoder = TemporalFusionEncoder(F, D, heads=4, lstm_layers=2, with_context=with_context).eval()
    context = torch.randn(N, D) if with_context else None
    x = torch.randn(N, L, F)
    t = 9
    changed = x.clone()
    changed[:, t] += 3.0
    sequence = encoder.encode(x, context)
    assert sequence.shape == (N, L, D) and encoder(x, context).shape == (N, D)
    torch.testing.assert_close(sequence[:, :t], encoder.encode(changed, context)[:, :t])
    assert not torch.allclose(sequence[:, t:], encoder.encode(changed, context)[:, t:])


def test_attention_last_step_equals_the_full_sequence_last_row():
    attention = CausalTemporalAttention(D, heads=4).eval()
    x = torch.randn(N, L, D)
    torch.testing.assert_close(attention.last_step(x), attention(x)[:, -1])


@pytest.mark.parametrize("with_context", [False, True])
def test_encoder_forward_is_the_last_step_of_encode(with_context):
    encoder = TemporalFusionEncoder(F, D, heads=4, lstm_layers=2, with_context=with_context).eval()
    context = torch.randn(N, D) if with_context else None
    x = torch.randn(N, L, F, requires_grad=True)
    last = encoder(x, context)
    (grad_last,) = torch.autograd.grad(last.square().sum(), x)
    full = encoder.encode(x, context)[:, -1]
    (grad_full,) = torch.autograd.grad(full.square().sum(), x)
    torch.testing.assert_close(last, full)
    torch.testing.assert_close(grad_last, grad_full)


def test_dominant_components_pick_the_highest_energy_bins():
    t = torch.arange(20, dtype=torch.float32)
    level, amplitude = 1.0, 3.0
    wave = amplitude * torch.cos(2 * math.pi * 2 * t / 20)
    x = (level + wave).repeat(2, 3, 1)  # [2, 3, 20], time last
    # DC energy (20 * 1)^2 = 400 < the cosine pair's 2 * (10 * 3)^2 = 1800: top-1 is the wave
    basis = RealDFTBasis(20)
    torch.testing.assert_close(dominant_components(x, basis, 1)[1, 2], wave, atol=1e-5, rtol=0)
    torch.testing.assert_close(dominant_components(x, basis, 2)[1, 2], level + wave,
                               atol=1e-5, rtol=0)


def test_dominant_components_windows_align_to_the_last_step():
    x = torch.randn(3, 2, 12) + 4.0
    part = dominant_components(x, RealDFTBasis(5), 1)
    assert part.shape == x.shape
    assert torch.all(part[..., :2] == 0)  # 12 % 5 = 2 leading steps belong to no window
    assert torch.all(part[..., 2:] != 0)
    # a constant window: its only energy is DC, so the component is the window itself
    const = torch.full((1, 1, 10), 2.5)
    torch.testing.assert_close(dominant_components(const, RealDFTBasis(5), 1), const)


@pytest.mark.parametrize("window", [20, 10, 7, 5, 4])
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_dominant_components_equal_the_inverse_fft_of_the_top_bins(window, top_k):
    x = torch.randn(4, 3, 23, dtype=torch.float64)
    head = 23 % window
    spectrum = torch.fft.rfft(x[..., head:].unflatten(-1, (23 // window, window)), dim=-1)
    pair = torch.full((spectrum.shape[-1],), 2.0, dtype=torch.float64)
    pair[0] = 1.0
    if window % 2 == 0:
        pair[-1] = 1.0
    top = (spectrum.abs().square() * pair).topk(top_k, dim=-1).indices
    kept = torch.zeros_like(spectrum).scatter_(-1, top, 1.0) * spectrum
    expected = torch.fft.irfft(kept, n=window, dim=-1).flatten(-2)
    got = dominant_components(x.float(), RealDFTBasis(window), top_k).double()
    torch.testing.assert_close(got[..., head:], expected, atol=1e-4, rtol=0)
    assert torch.all(got[..., :head] == 0)


def test_fan_removes_trends_and_reports_what_it_removed():
    fan = FrequencyAdaptiveNorm(F, H, windows=(20, 10, 5), top_k=1)
    x = torch.randn(N, L, F) * 0.1 + 7.0  # a large level on small noise
    residual, stats = fan(x)
    assert residual.shape == (N, L, F) and stats.shape == (N, 2 * F)
    assert residual.abs().mean() < 0.2  # the level is gone
    removed = x - residual
    torch.testing.assert_close(stats[:, :F], removed.mean(1))
    torch.testing.assert_close(stats[:, F:], removed[:, -1])


def test_san_normalizes_each_of_three_slices():
    san = SliceAdaptiveNorm(F, H, slices=3)
    x = torch.randn(N, L, F) * 4.0 + 2.0
    x[:, 14:, 0] = 5.0  # a constant last slice (20 -> 7, 7, 6)
    out, stats = san(x)
    assert out.shape == (N, L, F) and stats.shape == (N, 2 * 3 * F)
    for start, stop in ((0, 7), (7, 14), (14, 20)):
        part = out[:, start:stop, 1:]
        torch.testing.assert_close(part.mean(1), torch.zeros(N, F - 1), atol=1e-5, rtol=0)
        torch.testing.assert_close(part.std(1, correction=0), torch.ones(N, F - 1), atol=1e-3, rtol=0)
    assert torch.all(out[:, 14:, 0] == 0)
    torch.testing.assert_close(stats[:, :F], x[:, :7].mean(1))  # slice 1 means


def test_denormalizer_starts_as_identity_and_applies_scale_then_shift():
    denorm = ForecastDenormalizer(n_stats=4, n_horizons=H)
    y, q, stats = torch.randn(N, H), torch.randn(N, H, Q), torch.randn(N, 4)
    torch.testing.assert_close(denorm(y, stats), y)
    with torch.no_grad():
        denorm.proj.bias[:H] = 0.5  # shift
        denorm.proj.bias[H:] = 0.2  # log scale (|.| < 3: tanh bound nearly linear)
    s = 3.0 * math.tanh(0.2 / 3.0)
    torch.testing.assert_close(denorm(y, stats), y * math.exp(s) + 0.5)
    torch.testing.assert_close(denorm(q, stats), q * math.exp(s) + 0.5)


def test_graph_block_shapes_and_bad_graph_errors():
    block = PeerGraphAttention(D, heads=4, layers=2, edge_dim=2)
    h = torch.randn(N, D)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    assert block(h, edge_index, torch.rand(3, 2)).shape == (N, D)
    with pytest.raises(ValueError, match="outside the batch"):
        block(h, torch.tensor([[0], [N]]), torch.rand(1, 2))
    with pytest.raises(ValueError, match="edge_attr must be"):
        block(h, edge_index, torch.rand(3, 1))
    with pytest.raises(ValueError, match="edge_attr is required"):
        block(h, edge_index, None)
    with pytest.raises(ValueError, match="1 self-loop"):
        block(h, torch.tensor([[0, 2], [1, 2]]), torch.rand(2, 2))


def test_graph_block_self_loops_match_gatv2conv_own_mean_filled_loops():
    from torch_geometric.nn import GATv2Conv

    block = PeerGraphAttention(D, heads=4, layers=2, edge_dim=2).eval()
    own = [GATv2Conv(D, D // 4, heads=4, edge_dim=2, fill_value="mean").eval()
           for _ in block.convs]
    for conv, ref in zip(block.convs, own, strict=True):
        with torch.no_grad():
            for p in conv.parameters():
                p.normal_()  # the attention vector starts at a scale where ties hide errors
        ref.load_state_dict(conv.state_dict())
    h = torch.randn(N, D)
    edge_index = torch.tensor([[1, 2, 3, 4, 0], [0, 0, 1, 1, 2]])  # node 5: no peers
    edge_attr = torch.randn(5, 2)
    expected = h
    for ref, norm in zip(own, block.norms, strict=True):
        expected = norm(expected + torch.nn.functional.elu(ref(expected, edge_index, edge_attr)))
    torch.testing.assert_close(block(h, edge_index, edge_attr), expected)


def test_graph_changes_a_node_only_through_its_edges():
    block = PeerGraphAttention(D, heads=4, layers=2, edge_dim=1).eval()
    h = torch.randn(4, D)
    edge_index = torch.tensor([[1, 3], [0, 1]])  # 1 -> 0 and 3 -> 1; node 2 has no peers
    edge_attr = torch.rand(2, 1)
    changed = h.clone()
    changed[1] += 2.0
    base, out = block(h, edge_index, edge_attr), block(changed, edge_index, edge_attr)
    assert not torch.allclose(base[0], out[0])  # 0 listens to 1
    torch.testing.assert_close(base[2], out[2])  # 2 is not connected
    torch.testing.assert_close(base[3], out[3])  # 3 sends to 1 but does not listen


def _dense_two_hop(x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """The definition, on a dense matrix: S = A + A^T, W = S S without its diagonal,
    each row's W-weighted mean of x (zeros for a row without weight)."""
    n = x.shape[0]
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = 1.0  # a[i, j]: i listens to j
    s = a + a.T
    w = s @ s
    w.fill_diagonal_(0.0)
    rows = w.sum(1, keepdim=True)
    return torch.where(rows > 0, w @ x.double() / rows.clamp(min=1.0), 0.0).float()


def test_two_hop_mean_is_the_walk_weighted_mean_without_the_node_itself():
    gen = torch.Generator().manual_seed(3)
    n = 30
    pairs = torch.randint(0, n - 3, (2, 90), generator=gen)  # nodes n-3.. stay isolated
    pairs = pairs[:, pairs[0] != pairs[1]]
    keys = torch.unique(pairs[0] * n + pairs[1])  # each directed edge once
    edge_index = torch.stack([keys // n, keys % n])
    edge_index = torch.cat([edge_index, torch.tensor([[n - 2], [n - 3]])], dim=1)  # a lone edge
    mutual = torch.isin(edge_index[1] * n + edge_index[0], keys)
    assert mutual.any() and not mutual.all()  # both kinds of pair are exercised
    x = torch.randn(n, 4, generator=gen)
    got = two_hop_mean(x, edge_index, n)
    torch.testing.assert_close(got, _dense_two_hop(x, edge_index), rtol=1e-5, atol=1e-5)
    assert torch.equal(got[n - 1], torch.zeros(4))  # no edge at all
    # n-2 -> n-3 alone: each end's only two-step walk returns to itself
    assert torch.equal(got[n - 3], torch.zeros(4)) and torch.equal(got[n - 2], torch.zeros(4))
    changed = x.clone()
    changed[5] += 10.0
    torch.testing.assert_close(two_hop_mean(changed, edge_index, n)[5], got[5])  # itself: never


def test_two_hop_mean_of_real_rows_ignores_padding_rows_and_edges():
    edge_index = torch.tensor([[1, 2, 0, 3, 1], [0, 0, 1, 1, 2]])
    x = torch.randn(4, 3)
    padded_x = torch.cat([x, torch.randn(2, 3)])
    padding = torch.tensor([[4] * 6, [5] * 6])  # the padded batch's repeated padding edge
    padded = two_hop_mean(padded_x, torch.cat([edge_index, padding], dim=1), 6)
    torch.testing.assert_close(padded[:4], two_hop_mean(x, edge_index, 4))
    assert torch.isfinite(padded).all()


def test_graph_block_with_two_hop_context_needs_the_inputs():
    block = PeerGraphAttention(D, heads=4, layers=2, edge_dim=1, two_hop_inputs=F).eval()
    h, edge_index, edge_attr = torch.randn(4, D), torch.tensor([[1, 2], [0, 1]]), torch.rand(2, 1)
    inputs = torch.randn(4, F)
    base = block(h, edge_index, edge_attr, inputs)
    moved = inputs.clone()
    moved[2] += 3.0  # 2 -> 1 -> 0: node 0's two-hop neighbour
    assert not torch.allclose(block(h, edge_index, edge_attr, moved)[0], base[0])
    with pytest.raises(ValueError, match=r"two-hop context needs inputs \[N=4, F=7\], got None"):
        block(h, edge_index, edge_attr)


def test_heads_shapes_and_monotone_quantiles_for_extreme_inputs():
    heads = ForecastHeads(D, H, Q)
    point, quantiles = heads(torch.randn(50, D) * 100.0)
    assert point.shape == (50, H) and quantiles.shape == (50, H, Q)
    assert point.dtype == quantiles.dtype == torch.float32
    assert torch.all(quantiles.diff(dim=-1) >= 0)


def test_a_process_that_built_the_graph_block_leaves_no_generated_files(tmp_path):
    """PyG writes its GATv2 layer's generated propagate/edge_updater modules to the
    temporary folder; the process removes them when it exits."""
    script = (
        "from training.model.graph import PeerGraphAttention\n"
        "from training.model.pyg_sources import generated_sources\n"
        "PeerGraphAttention(8, 2, 2, edge_dim=1)\n"
        "print(len(generated_sources()))\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    assert int(out.stdout.strip().splitlines()[-1]) >= 1  # written while the process ran
    assert not list(tmp_path.glob("torch_geometric*.py"))
