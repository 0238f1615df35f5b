"""ATFT-GAT-FAN: adaptive normalization -> temporal fusion encoder -> peer graph -> heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training.model.config import ModelConfig
from training.model.fan import FrequencyAdaptiveNorm
from training.model.graph import PeerGraphAttention
from training.model.grn import GatedResidualNetwork
from training.model.heads import ForecastHeads
from training.model.san import SliceAdaptiveNorm
from training.model.tft import TemporalFusionEncoder


@dataclass
class ModelOutput:
    """Forecasts for the N stocks of one batch: ``point`` [N, H] and ``quantiles`` [N, H, Q]
    (non-decreasing along Q), both float32, in return units; ``levels`` are the Q quantile
    levels (from the model's config)."""

    point: Tensor
    quantiles: Tensor
    levels: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)


class ATFTGATFAN(nn.Module):
    """The full model; each block can be switched off by the config (the phases' ablations).

    Forward, top to bottom:
    1. normalize: FAN then SAN (if enabled) each return the normalized window and the
       statistics they removed; the statistics are also encoded by a GRN into a per-stock
       context [N, d] for the encoder (so level and scale are not lost);
    2. select variables and encode time (``TemporalFusionEncoder``) -> last step [N, d],
       plus a linear map of the raw last-step inputs x[:, -1] if ``graph_input_skip``;
    3. graph: GATv2 over the day's peer graph, its input joined by the two-hop mean of
       the raw last-step inputs if ``graph_two_hop`` (skipped if ``use_gat`` is False or no
       ``edge_index`` is given: the no-graph ablation);
    4. heads: point [N, H] and monotone quantiles [N, H, Q];
    5. de-normalize in reverse order (SAN, then FAN): y -> y * exp(s) + b per stock and
       horizon, with (s, b) learned from each normalization's statistics.

    Shapes: x: [N stocks, L days, F features] (finite), edge_index: [2, E] int64 or None,
    edge_attr: [E, edge_dim] or None -> ModelOutput(point [N, H], quantiles [N, H, Q]).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, n_h = cfg.hidden, len(cfg.horizons)
        self.fan = (
            FrequencyAdaptiveNorm(cfg.n_features, n_h, cfg.fan_windows, cfg.fan_top_k)
            if cfg.use_fan else None
        )
        self.san = SliceAdaptiveNorm(cfg.n_features, n_h, cfg.san_slices) if cfg.use_san else None
        n_stats = sum(norm.n_stats for norm in (self.fan, self.san) if norm is not None)
        self.context = (
            GatedResidualNetwork(n_stats, d, d, cfg.dropout) if n_stats else None
        )
        self.encoder = TemporalFusionEncoder(
            cfg.n_features, d, cfg.heads, cfg.dropout, cfg.lstm_layers,
            with_context=self.context is not None,
        )
        self.last_step = nn.Linear(cfg.n_features, d) if cfg.graph_input_skip else None
        self.graph = (
            PeerGraphAttention(d, cfg.heads, cfg.gat_layers, cfg.edge_dim, cfg.dropout,
                               two_hop_inputs=cfg.n_features if cfg.graph_two_hop else 0)
            if cfg.use_gat else None
        )
        self.heads = ForecastHeads(d, n_h, len(cfg.quantiles), cfg.dropout)

    def forward(
        self, x: Tensor, edge_index: Tensor | None = None, edge_attr: Tensor | None = None
    ) -> ModelOutput:
        self._check_input(x)
        h, fan_stats, san_stats = x, None, None
        if self.fan is not None:
            h, fan_stats = self.fan(h)
        if self.san is not None:
            h, san_stats = self.san(h)
        context = None
        if self.context is not None:
            stats = [s for s in (fan_stats, san_stats) if s is not None]
            context = self.context(torch.cat(stats, dim=-1))
        z = self.encoder(h, context)
        if self.last_step is not None:
            z = z + self.last_step(x[:, -1])
        if self.graph is not None and edge_index is not None:
            z = self.graph(z, edge_index, edge_attr, x[:, -1])
        point, quantiles = self.heads(z)
        for norm, removed in ((self.san, san_stats), (self.fan, fan_stats)):
            if norm is not None:
                point = norm.denormalize(point, removed)
                quantiles = norm.denormalize(quantiles, removed)
        return ModelOutput(point=point, quantiles=quantiles, levels=self.cfg.quantiles)

    def _check_input(self, x: Tensor) -> None:
        cfg = self.cfg
        if x.dim() != 3 or x.shape[1] != cfg.seq_len or x.shape[2] != cfg.n_features:
            raise ValueError(
                f"ATFTGATFAN input must be [N, L={cfg.seq_len}, F={cfg.n_features}], "
                f"got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError("ATFTGATFAN input has no stocks (N = 0)")
