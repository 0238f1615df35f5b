"""Gated residual network (GRN) and gate-add-norm: the TFT's basic nonlinear unit."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class GateAddNorm(nn.Module):
    """Gated skip connection: ``LayerNorm(skip + GLU(dropout(x)))``.

    GLU(a) = (W_v a) * sigmoid(W_g a), so the gate can switch the branch off and leave
    ``skip`` unchanged.

    Shapes: x: [..., d_in], skip: [..., d_out] -> [..., d_out].
    """

    def __init__(self, d_in: int, d_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.glu = nn.Linear(d_in, 2 * d_out)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.norm(skip + F.glu(self.glu(self.dropout(x)), dim=-1))


class GatedResidualNetwork(nn.Module):
    """GRN(a, c) = LayerNorm(skip(a) + GLU(W1 ELU(W2 a + W3 c))).

    ``skip`` is the identity when d_in == d_out, a linear map otherwise. The optional
    context c (e.g. the adaptive-normalization statistics) is broadcast over any middle
    dimensions of ``a``.

    Shapes: a: [..., d_in], context: [B, d_context] with B = a.shape[0] (or None)
    -> [..., d_out].
    """

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        d_out: int,
        dropout: float = 0.0,
        d_context: int | None = None,
    ) -> None:
        super().__init__()
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)
        self.fc_in = nn.Linear(d_in, d_hidden)
        self.fc_context = nn.Linear(d_context, d_hidden, bias=False) if d_context else None
        self.fc_hidden = nn.Linear(d_hidden, d_hidden)
        self.gate = GateAddNorm(d_hidden, d_out, dropout)

    def forward(self, a: Tensor, context: Tensor | None = None) -> Tensor:
        h = self.fc_in(a)
        if context is not None:
            if self.fc_context is None:
                raise ValueError("GatedResidualNetwork: context given but d_context was not set")
            c = self.fc_context(context)
            h = h + c.reshape(c.shape[0], *([1] * (a.dim() - 2)), c.shape[-1])
        h = self.fc_hidden(F.elu(h))
        return self.gate(h, self.skip(a))

