"""The typed configuration of ATFT-GAT-FAN (one frozen object, built from YAML or code)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of ATFT-GAT-FAN.

    ``n_features`` counts every input channel, including mask channels the data layer
    appends. ``seq_len`` is the window length L the model accepts. ``use_fan``,
    ``use_san`` and ``use_gat`` switch the adaptive normalizations and the graph block
    (the phases baseline -> adaptive_norm -> gat of ``configs/model/``).
    ``fan_windows`` are the FAN window lengths (coarse to fine; windows longer than
    ``seq_len`` are skipped), ``fan_top_k`` the number of dominant rFFT bins removed per
    window, ``san_slices`` the number of SAN slices over the sequence.
    ``graph_input_skip`` adds a linear map of each stock's last-step inputs to its encoding
    before the graph block (before the heads when the graph is off, so the no-graph
    ablation keeps the same shortcut): a stock's peers then pass on their latest raw
    values, not only what the temporal encoder kept of them.
    ``graph_two_hop`` (with ``use_gat``) adds to the graph block's input a linear map of
    the mean raw last-step inputs of each stock's peers' peers on the undirected peer
    graph, the stock itself left out (``training.model.two_hop``).
    """

    n_features: int
    seq_len: int = 20
    hidden: int = 64
    heads: int = 4
    dropout: float = 0.1
    horizons: tuple[int, ...] = (1, 2, 3, 5, 10)
    quantiles: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    use_fan: bool = True
    use_san: bool = True
    use_gat: bool = True
    gat_layers: int = 2
    edge_dim: int = 1
    lstm_layers: int = 1
    fan_windows: tuple[int, ...] = (20, 10, 5)
    fan_top_k: int = 1
    san_slices: int = 3
    graph_input_skip: bool = True
    graph_two_hop: bool = True

    def __post_init__(self) -> None:
        for name in ("horizons", "quantiles", "fan_windows"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _check(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build a config from a mapping (e.g. a parsed YAML group).

        Raises ValueError naming any unknown key, or a missing ``n_features``.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        if "n_features" not in d:
            raise ValueError("model config: missing required key n_features")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain Python values (tuples become lists), e.g. for MLflow params."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _check(cfg: ModelConfig) -> None:
    """Raise ValueError naming the first field whose value the model cannot use."""
    positive = ("n_features", "seq_len", "hidden", "heads", "gat_layers", "edge_dim",
                "lstm_layers", "fan_top_k", "san_slices")
    for name in positive:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model config: {name} must be a positive int, got {value!r}")
    if cfg.hidden % cfg.heads:
        raise ValueError(f"model config: hidden ({cfg.hidden}) must be divisible by heads ({cfg.heads})")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"model config: dropout must be in [0, 1), got {cfg.dropout!r}")
    if not cfg.horizons or any(h < 1 for h in cfg.horizons) or list(cfg.horizons) != sorted(set(cfg.horizons)):
        raise ValueError(f"model config: horizons must be distinct increasing positive ints, got {cfg.horizons!r}")
    q = cfg.quantiles
    if not q or any(not 0.0 < t < 1.0 for t in q) or list(q) != sorted(set(q)):
        raise ValueError(f"model config: quantiles must be distinct increasing values in (0, 1), got {q!r}")
    if any(w < 2 for w in cfg.fan_windows):
        raise ValueError(f"model config: fan_windows must be ints >= 2, got {cfg.fan_windows!r}")
    if cfg.use_san and cfg.seq_len < cfg.san_slices:
        raise ValueError(
            f"model config: seq_len ({cfg.seq_len}) must be >= san_slices ({cfg.san_slices})"
        )
