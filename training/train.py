"""The training loop of one model on one fold: AdamW, gradient clipping, bf16 autocast on
CUDA (fp32 on CPU), early stopping on the validation loss with the best weights kept.

A step is one day batch (``training.data.batches``); the loss is the model engineer's
``forecast_loss`` on labels scaled by the fold's label standard deviation. Augmentation
(training only): Gaussian noise on observed inputs and feature dropout (a feature of a
stock is zeroed over its whole window). Validation never changes a weight: it only picks
which epoch's weights are kept.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from training.data.batches import DayBatch, DaySampler, DevicePanel
from training.losses import LossConfig, forecast_loss
from training.model import ATFTGATFAN, ModelConfig
from training.progress import EpochProgress, progress_enabled

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available (use train=cpu)")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA for ``auto``/``bf16``; None (fp32) on CPU or for ``fp32``."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision in ("auto", "bf16"):
        return torch.bfloat16
    raise ValueError(f"train.precision must be auto, fp32 or bf16, got {precision!r}")


COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def compile_step(fn: Callable, mode: str, backend: str | Callable = "inductor") -> Callable:
    """``fn`` compiled by ``torch.compile`` in ``mode`` (one of ``COMPILE_MODES`` but
    ``none``) for fixed shapes, the LSTM traced into the graph: without that, Dynamo
    breaks the graph at every ``nn.LSTM`` call and the step runs as several graphs with
    eager code between them (no whole-step CUDA graph under ``reduce-overhead``)."""
    compiled = torch.compile(fn, mode=None if mode == "default" else mode, dynamic=False,
                             backend=backend)

    def step(*args):
        with torch._dynamo.config.patch(allow_rnn=True):
            return compiled(*args)

    return step


def build_model(model_cfg: dict, n_inputs: int, window: int) -> ATFTGATFAN:
    """The model for ``n_inputs`` channels and windows of ``window`` days."""
    return ATFTGATFAN(ModelConfig.from_dict({**model_cfg, "n_features": n_inputs,
                                             "seq_len": window}))


@dataclass
class FitResult:
    """Best weights (lowest validation loss), the weights after the last epoch, and one
    history row per epoch (``epoch``, ``train/total_loss``, ``val/total_loss``, ...)."""

    best_state: dict
    final_state: dict
    best_epoch: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)


def _augment(x: torch.Tensor, n_features: int, noise_std: float, dropout: float,
             gen: torch.Generator) -> torch.Tensor:
    feats = x[..., :n_features]
    if noise_std > 0:  # drawn on x's device (``gen`` lives there): no host copy per step
        noise = torch.randn(feats.shape, generator=gen, device=x.device)
        feats = feats + noise_std * noise * (feats != 0)
    if dropout > 0:
        keep = torch.rand((x.shape[0], 1, n_features), generator=gen, device=x.device) >= dropout
        feats = feats * keep.to(x.dtype)
    return torch.cat([feats, x[..., n_features:]], dim=2) if x.shape[2] > n_features else feats


def _accumulate(sums: dict[str, torch.Tensor], losses: dict[str, torch.Tensor],
                samples: int) -> None:
    """Add a batch's losses, weighted by its ``samples``, to ``sums`` (on the device: no
    host sync)."""
    for name, value in losses.items():
        sums[name] = sums.get(name, 0.0) + value.detach() * samples


def _means(sums: dict[str, torch.Tensor], n: int, prefix: str) -> dict[str, float]:
    """Per-sample means under ``<prefix>/total_loss`` and ``<prefix>/<term>`` (one read of
    each sum)."""
    return {f"{prefix}/{k}_loss" if k == "total" else f"{prefix}/{k}": float(v) / max(n, 1)
            for k, v in sums.items()}


class Trainer:
    """Fits one model on one fold's train days, selecting epochs on its validation days."""

    def __init__(self, model: ATFTGATFAN, panel: DevicePanel, train_cfg: dict,
                 loss_cfg: dict, use_graph: bool = True):
        self.model, self.panel, self.cfg = model, panel, train_cfg
        self.loss_cfg = LossConfig.from_dict(loss_cfg)
        self.device = panel.device
        self.amp = autocast_dtype(train_cfg["precision"], self.device)
        self.use_graph = use_graph
        self.model.to(self.device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=float(train_cfg["lr"]),
                                     weight_decay=float(train_cfg["weight_decay"]),
                                     fused=self.device.type == "cuda")  # one kernel per step
        self.gen = torch.Generator(self.device).manual_seed(int(train_cfg["seed"]))
        mode = str(train_cfg.get("compile", "none"))
        if mode not in COMPILE_MODES:
            raise ValueError(f"train.compile must be one of {', '.join(COMPILE_MODES)}, "
                             f"got {mode!r}")
        # compiled: the training step's model + loss as one graph over fixed shapes
        self.train_loss = (self._forward_loss if mode == "none" else
                           compile_step(self._forward_loss, mode))
        self.pad = mode != "none"
        self.progress = progress_enabled(train_cfg.get("progress", False))
        aug = train_cfg.get("augment") or {}
        self.noise_std = float(aug.get("noise_std", 0))
        self.feature_dropout = float(aug.get("feature_dropout", 0))

    def _forward_loss(self, x: torch.Tensor, edge_index: torch.Tensor | None,
                      edge_attr: torch.Tensor | None, y: torch.Tensor,
                      y_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32,
                            enabled=self.amp is not None):
            out = self.model(x, edge_index, edge_attr)
        out.point, out.quantiles = out.point.float(), out.quantiles.float()
        return forecast_loss(out, y, y_mask, self.loss_cfg)

    def _loss(self, batch: DayBatch, train: bool = False) -> dict[str, torch.Tensor]:
        graph = (batch.edge_index, batch.edge_attr) if self.use_graph else (None, None)
        fn = self.train_loss if train else self._forward_loss
        return fn(batch.x, *graph, batch.y, batch.y_mask)

    def train_epoch(self, sampler: DaySampler, epoch: int, label: str | None = None
                    ) -> dict[str, float]:
        """One pass over ``sampler``'s day batches; mean losses and samples/s. With
        ``train.progress`` a bar (``label``, default "epoch <epoch + 1>") shows it."""
        self.model.train()
        sampler.set_epoch(epoch)
        sums: dict[str, torch.Tensor] = {}  # on the device: no host sync per step
        n, t0 = 0, time.perf_counter()
        pad_to = sampler.max_stocks + 2 if self.pad else None
        bar = EpochProgress(label or f"epoch {epoch + 1}", len(sampler), self.progress)
        with bar:
            for day, stocks in sampler:
                n += self._train_step(self.panel.batch(day, stocks, pad_to), sums)
                bar.step(len(stocks), sums["total"], n)
        out = _means(sums, n, "train")
        secs = time.perf_counter() - t0
        out["train/samples_per_s"] = n / secs if secs > 0 else 0.0
        return out

    def _train_step(self, batch: DayBatch, sums: dict[str, torch.Tensor]) -> int:
        """One optimizer step on ``batch``; adds its sample-weighted losses to ``sums``
        (on the device) and returns its number of real stocks."""
        if self.noise_std or self.feature_dropout:
            batch.x = _augment(batch.x, self.panel.panel.features.shape[2], self.noise_std,
                               self.feature_dropout, self.gen)
        # the previous step's gradients are dropped before this forward: under CUDA graphs
        # they live in the graphs' memory, which this replay reuses
        self.opt.zero_grad(set_to_none=True)
        losses = self._loss(batch, train=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.cfg["grad_clip"]))
        self.opt.step()
        _accumulate(sums, losses, len(batch.stocks))
        return len(batch.stocks)

    @torch.no_grad()
    def evaluate(self, sampler: DaySampler) -> dict[str, float]:
        """Mean validation losses over ``sampler`` (weights unchanged)."""
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}  # on the device: read once, at the end
        n = 0
        for day, stocks in sampler:
            _accumulate(sums, self._loss(self.panel.batch(day, stocks)), len(stocks))
            n += len(stocks)
        return _means(sums, n, "val")

    def fit(self, train: DaySampler, val: DaySampler,
            on_epoch: Callable[[int, dict], None] | None = None) -> FitResult:
        """Train up to ``epochs`` epochs; stop after ``patience`` epochs without a lower
        ``val/total_loss``; return the best and final weights and the history."""
        epochs, patience = int(self.cfg["epochs"]), int(self.cfg["patience"])
        best, best_epoch, best_state, history = float("inf"), -1, None, []
        for epoch in range(epochs):
            row = {"epoch": epoch, **self.train_epoch(train, epoch, f"epoch {epoch + 1}/{epochs}"),
                   **self.evaluate(val)}
            history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, row)
            log.info("epoch %d/%d  train %.4f  val %.4f  %.0f samples/s", epoch + 1, epochs,
                     row["train/total_loss"], row.get("val/total_loss", float("nan")),
                     row["train/samples_per_s"])
            val_loss = row.get("val/total_loss", float("inf"))
            if val_loss < best:
                best, best_epoch = val_loss, epoch
                best_state = copy.deepcopy(self.model.state_dict())
            elif epoch - best_epoch >= patience:
                log.info("early stop at epoch %d (best %d, val %.4f)", epoch + 1,
                         best_epoch + 1, best)
                break
        final = copy.deepcopy(self.model.state_dict())
        if best_state is None:
            best_state = final
        self.model.load_state_dict(best_state)
        return FitResult(best_state, final, best_epoch, best, history)
