"""Graph attention over the day's peer graph (PyG GATv2Conv with edge attributes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv

from training.model import pyg_sources  # noqa: F401 - PyG's generated files removed at exit
from training.model.two_hop import two_hop_mean


def check_graph(edge_index: Tensor, edge_attr: Tensor | None, n_nodes: int, edge_dim: int) -> None:
    """Raise ValueError naming what is wrong with a day's graph for ``n_nodes`` stocks
    (shape, dtype, a node outside the batch, a self-loop, mismatched attributes)."""
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must be int64, got {edge_index.dtype}")
    if edge_index.numel() and not torch.compiler.is_compiling():  # value checks sync the host
        low, high = torch.aminmax(edge_index)
        loops = (edge_index[0] == edge_index[1]).sum()
        low, high, loops = torch.stack([low, high, loops]).tolist()  # one host sync
        if low < 0 or high >= n_nodes:
            raise ValueError(f"edge_index refers to node {high} or {low}, "
                             f"outside the batch's {n_nodes} stocks")
        if loops:
            raise ValueError(f"edge_index holds {loops} self-loop(s): a stock is not its own "
                             "peer (the block adds one loop per stock itself)")
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

    With ``two_hop_inputs`` = F > 0, the node input first gains a linear map of the
    two-hop mean of ``inputs`` (``two_hop_mean``: the peers' peers on the undirected
    graph, the stock itself left out), which the 2 attention layers cannot form on their
    own without the stock's own walks back to itself mixed in.

    Shapes: h: [N, d], edge_index: [2, E] int64, edge_attr: [E, edge_dim],
    inputs: [N, F] (with ``two_hop_inputs``) -> [N, d] float32.
    """

    def __init__(self, d: int, heads: int, layers: int, edge_dim: int, dropout: float = 0.0,
                 two_hop_inputs: int = 0) -> None:
        super().__init__()
        self.edge_dim = edge_dim
        self.two_hop = nn.Linear(two_hop_inputs, d) if two_hop_inputs else None
        self.convs = nn.ModuleList(
            GATv2Conv(d, d // heads, heads=heads, edge_dim=edge_dim, dropout=dropout,
                      add_self_loops=False)  # added once in forward, without a host sync
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, edge_index: Tensor, edge_attr: Tensor,
                inputs: Tensor | None = None) -> Tensor:
        check_graph(edge_index, edge_attr, h.shape[0], self.edge_dim)
        if self.two_hop is not None:
            want = (h.shape[0], self.two_hop.in_features)
            if inputs is None or tuple(inputs.shape) != want:
                got = None if inputs is None else tuple(inputs.shape)
                raise ValueError(f"the two-hop context needs inputs [N={want[0]}, "
                                 f"F={want[1]}], got {got}")
        with torch.autocast(h.device.type, enabled=False):
            h = h.float()
            if self.two_hop is not None:
                h = h + self.two_hop(two_hop_mean(inputs.float(), edge_index, h.shape[0]))
            edge_index, edge_attr = with_self_loops(edge_index, edge_attr.float(), h.shape[0])
            for conv, norm in zip(self.convs, self.norms, strict=True):
                h = norm(h + self.dropout(F.elu(conv(h, edge_index, edge_attr))))
        return h


def with_self_loops(edge_index: Tensor, edge_attr: Tensor, n_nodes: int) -> tuple[Tensor, Tensor]:
    """Append the loop (i -> i) of every node, its attributes the mean of the node's incoming
    edges' (zeros without any): what GATv2Conv's own ``fill_value="mean"`` loops hold, built
    with fixed-size scatters (no data-dependent shapes, so no host sync on CUDA). The graph
    must hold no self-loop already (``check_graph``).

    Shapes: edge_index [2, E], edge_attr [E, D] -> [2, E + N], [E + N, D].
    """
    dst = edge_index[1]
    sums = edge_attr.new_zeros(n_nodes, edge_attr.shape[1]).index_add_(0, dst, edge_attr)
    counts = edge_attr.new_zeros(n_nodes).index_add_(0, dst, edge_attr.new_ones(dst.shape[0]))
    nodes = torch.arange(n_nodes, device=edge_index.device)
    return (torch.cat([edge_index, torch.stack([nodes, nodes])], dim=1),
            torch.cat([edge_attr, sums / counts.clamp(min=1.0).unsqueeze(1)]))
