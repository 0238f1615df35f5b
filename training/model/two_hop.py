"""Two-hop peer context: the mean of what a stock's peers' peers showed, itself left out."""

from __future__ import annotations

import torch
from torch import Tensor


def two_hop_mean(x: Tensor, edge_index: Tensor, n_nodes: int) -> Tensor:
    """Mean of ``x`` over each node's walks of length two on the undirected peer graph,
    leaving out the walks that return to the node itself.

    The undirected graph is S = A + A^T (A the directed edges of ``edge_index``), so a
    mutual pair (two stocks that chose each other as peers) weighs 2. Node i gets
    ``sum_{k != i} (S S)_ik x_k / sum_{k != i} (S S)_ik``, computed as
    ``((S S x)_i - (S S)_ii x_i) / ((S S 1)_i - (S S)_ii)`` with ``(S S)_ii = sum_j S_ij^2``;
    a node without such walks gets zeros. A node's own row never enters its mean, so its
    own inputs (e.g. a reversal in its last return) cannot leak in through a peer.

    ``edge_index`` lists each directed edge at most once and holds no self-loop (the
    graph block's check); edges that join only padding rows change no other row.
    Fixed-size scatters and one sort: no data-dependent shape, no host sync.

    Shapes: x [N, F] float, edge_index [2, E] int64 -> [N, F] (x's dtype).
    """
    src, dst = edge_index[0], edge_index[1]
    key, reverse = src * n_nodes + dst, dst * n_nodes + src
    if key.numel():
        ordered = torch.sort(key).values
        at = torch.searchsorted(ordered, reverse).clamp(max=key.numel() - 1)
        mutual = ordered[at] == reverse
    else:
        mutual = torch.zeros_like(key, dtype=torch.bool)
    # S as a list of entries (target <- source), each edge once per direction: a mutual
    # pair's two edges give each direction twice, i.e. S_ij = 2
    targets, sources = torch.cat([dst, src]), torch.cat([src, dst])
    weight = (1.0 + mutual.to(x.dtype)).repeat(2)  # S_ij of the entry's pair

    def spread(values: Tensor) -> Tensor:
        """(S v)_i: the sum of v over the entries pointing to i."""
        out = values.new_zeros((n_nodes, *values.shape[1:]))
        return out.index_add_(0, targets, values[sources])

    ones = x.new_ones(n_nodes)
    degree = spread(ones)                                    # (S 1)_i
    returning = x.new_zeros(n_nodes).index_add_(0, targets, weight)  # (S S)_ii
    total = spread(spread(x)) - returning.unsqueeze(1) * x   # sum_{k != i} (S S)_ik x_k
    count = spread(degree) - returning                       # sum_{k != i} (S S)_ik
    return torch.where(count.unsqueeze(1) > 0.5, total / count.clamp(min=1.0).unsqueeze(1),
                       torch.zeros_like(total))
