"""Multi-head temporal self-attention with a causal mask and a gated skip connection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.grn import GateAddNorm


def causal_mask(length: int, device: torch.device) -> Tensor:
    """Boolean [L, L] mask, True where attention is forbidden: query t may not see keys > t."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(diagonal=1)


class CausalTemporalAttention(nn.Module):
    """Self-attention over time in which step t attends only to steps <= t.

    out_t = LayerNorm(x_t + GLU(MHA(x_t; x_{<=t}))). Because every step sees only its
    past, the output at time t does not depend on inputs after t.

    Shapes: x: [N, L, d] -> [N, L, d]; ``last_step``: x: [N, L, d] -> [N, d], equal to
    ``forward(x)[:, -1]``.
    """

    def __init__(self, d: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.gate = GateAddNorm(d, d, dropout)

    def forward(self, x: Tensor) -> Tensor:
        mask = causal_mask(x.shape[1], x.device)
        attended, _ = self.attention(x, x, x, attn_mask=mask, need_weights=False, is_causal=True)
        return self.gate(attended, x)

    def last_step(self, x: Tensor) -> Tensor:
        """The output at the last step alone: its one query attends to all L steps, which
        the causal mask allows the last step, so no mask is needed."""
        query = x[:, -1:]
        attended, _ = self.attention(query, x, x, need_weights=False)
        return self.gate(attended, query)[:, 0]
