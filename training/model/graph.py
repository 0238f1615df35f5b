"""Graph attention over the day's peer graph (PyG GATv2Conv with edge attributes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv


def check_graph(edge_index: Tensor, edge_attr: Tensor | None, n_nodes: int, edge_dim: int) -> None:
    """Raise ValueError naming what is wrong with a day's graph for ``n_nodes`` stocks."""
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must be int64, got {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_nodes):
        raise ValueError(
            f"edge_index refers to node {int(edge_index.max())} or {int(edge_index.min())}, "
            f"outside the batch's {n_nodes} stocks"
        )
    if edge_attr is None:
        raise ValueError("edge_attr is required with edge_index (edge_dim is set)")
    if edge_attr.dim() != 2 or edge_attr.shape != (edge_index.shape[1], edge_dim):
        raise ValueError(
            f"edge_attr must be [E={edge_index.shape[1]}, edge_dim={edge_dim}], "
            f"got {tuple(edge_attr.shape)}"
        )


class PeerGraphAttention(nn.Module):
    """Stacked GATv2 layers over one trade date's peer graph.

    Nodes are the day's stocks (the rows of the batch); an edge (j -> i), i.e. column
    ``[j, i]`` of ``edge_index``, lets stock i attend to its peer j, with the edge's
    attributes (e.g. the return correlation) entering the attention score. Every layer is
    ``h = LayerNorm(h + dropout(ELU(GATv2(h))))`` with ``heads`` heads of size d/heads
    concatenated, and self-loops added (their attributes: the mean of the node's incoming
    edges), so a stock keeps its own representation. A stock without peers is changed only
    through its self-loop. Runs in float32 with autocast off (the scatter softmax and sums
    stay exact on any device).

    Shapes: h: [N, d], edge_index: [2, E] int64, edge_attr: [E, edge_dim] -> [N, d] float32.
    """

    def __init__(self, d: int, heads: int, layers: int, edge_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.edge_dim = edge_dim
        self.convs = nn.ModuleList(
            GATv2Conv(d, d // heads, heads=heads, edge_dim=edge_dim, dropout=dropout)
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        check_graph(edge_index, edge_attr, h.shape[0], self.edge_dim)
        with torch.autocast(h.device.type, enabled=False):
            h, edge_attr = h.float(), edge_attr.float()
            for conv, norm in zip(self.convs, self.norms, strict=True):
                h = norm(h + self.dropout(F.elu(conv(h, edge_index, edge_attr))))
        return h
