"""ATFT-GAT-FAN, one block per module: config, normalizations (fan, san, denorm), TFT
blocks (grn, variable_selection, temporal_attention, tft), graph, heads, and the model."""

from training.model.atft_gat_fan import ATFTGATFAN, ModelOutput
from training.model.config import ModelConfig

__all__ = ["ATFTGATFAN", "ModelConfig", "ModelOutput"]
