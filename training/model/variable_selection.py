"""Variable selection network: per-feature embeddings mixed by learned softmax weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.grn import GatedResidualNetwork


class VariableSelectionNetwork(nn.Module):
    """Select and embed the F input variables at every time step.

    Each feature f has its own linear embedding e_f(x_f) = x_f * W_f + b_f (W_f, b_f in
    R^d). A GRN over the whole feature vector (plus an optional context) gives softmax
    weights v over the F features, and the output is sum_f v_f e_f(x_f). Because the
    embeddings are linear this sum equals ``(v * x) @ W + v @ B`` (W, B: [F, d]), so the
    [N, L, F, d] tensor of all embeddings is never built; a GRN on the selected vector then
    adds the nonlinearity.

    Shapes: x: [N, L, F], context: [N, d_context] or None
    -> (selected [N, L, d], weights [N, L, F], summing to 1 over F).
    """

    def __init__(
        self, n_features: int, d: int, dropout: float = 0.0, d_context: int | None = None
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, d))
        self.bias = nn.Parameter(torch.zeros(n_features, d))
        self.selector = GatedResidualNetwork(n_features, d, n_features, dropout, d_context)
        self.transform = GatedResidualNetwork(d, d, d, dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embedding weights ~ U(-1, 1) as for a Linear(1, d) per feature; biases zero."""
        nn.init.uniform_(self.weight, -1.0, 1.0)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        weights = torch.softmax(self.selector(x, context), dim=-1)
        selected = (weights * x) @ self.weight + weights @ self.bias
        return self.transform(selected), weights
