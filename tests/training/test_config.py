"""Composed training configuration: groups, overrides, unknown keys."""

from __future__ import annotations

import pytest

from training.config import ConfigError, compose


def test_groups_and_overrides_compose_in_order():
    cfg = compose(["train=production", "train.epochs=3", "model.hidden=16", "cv.embargo=25"],
                  phase="baseline")
    assert cfg["train"]["device"] == "cuda" and cfg["train"]["precision"] == "bf16"
    assert cfg["train"]["epochs"] == 3
    assert cfg["model"]["hidden"] == 16
    assert cfg["model"]["use_gat"] is False and cfg["model"]["use_fan"] is False
    assert cfg["cv"]["embargo"] == 25
    full = compose(["model.use_gat=false"], phase="augmentation")
    assert full["model"]["use_gat"] is False, "command line wins over the phase file"
    assert full["train"]["augment"]["noise_std"] > 0


@pytest.mark.parametrize("override,named", [
    ("train.epoch=1", "'train.epoch'"), ("model.hiden=16", "'hiden'"),
    ("nosuch.key=1", "'nosuch.key'"), ("optimizer=adam", "'optimizer'"),
    ("train=gpu", "'gpu'"), ("loss.mse_weigth=1", "'mse_weigth'")])
def test_unknown_keys_are_errors_naming_the_key(override, named):
    with pytest.raises(ConfigError, match=named):
        compose([override])


def test_unknown_phase_is_rejected():
    with pytest.raises(ConfigError, match="unknown phase 'gnn'"):
        compose([], phase="gnn")
