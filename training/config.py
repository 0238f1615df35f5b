"""Composable training configuration: YAML groups under ``configs/`` plus ``key=value``.

``configs/training.yaml`` holds the sections (``data``, ``cv``, ``train``, ``model``,
``loss``, ``registry``) and ``defaults`` naming one option per group. Group files merge
into their own section — ``configs/train/<option>.yaml`` into ``train``,
``configs/model/<option>.yaml`` into ``model`` — except ``configs/phase/<option>.yaml``,
whose top-level sections merge into the root (a phase switches model blocks and
augmentation). Order: base, model, train, phase, then command-line overrides.

Overrides: ``train=dev`` picks a group option; ``a.b=value`` sets a key that must exist
(``model`` and ``loss`` keys may be any field of the model's ``ModelConfig`` /
``LossConfig``). Values are parsed as YAML (``1e-3``, ``true``, ``[a, b]``). An unknown
key, group or option raises ``ConfigError`` naming it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gogooku3.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "configs"
ROOT_FILE = "training.yaml"
GROUPS = ("model", "train", "phase")
PHASES = ("baseline", "adaptive_norm", "gat", "augmentation")


class ConfigError(ValueError):
    """A configuration key, group or value that cannot be used (the message names it)."""


def _load(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _merge(base: dict, extra: dict, where: str, strict: bool) -> dict:
    for key, value in extra.items():
        if strict and key not in base:
            raise ConfigError(f"unknown config key {where}{key!r}")
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, f"{where}{key}.", strict)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _open_sections() -> dict[str, set[str]]:
    """Sections whose keys come from a dataclass rather than from the base file."""
    from training.losses import LossConfig
    from training.model.config import ModelConfig

    return {"model": {f.name for f in dataclasses.fields(ModelConfig)} - {"n_features"},
            "loss": {f.name for f in dataclasses.fields(LossConfig)}}


def _check_open(cfg: dict, open_keys: dict[str, set[str]]) -> None:
    for section, allowed in open_keys.items():
        unknown = sorted(set(cfg.get(section) or {}) - allowed)
        if unknown:
            raise ConfigError(f"unknown config key {section}.{unknown[0]!r} "
                              f"(known: {', '.join(sorted(allowed))})")


def compose(overrides: Sequence[str] = (), phase: str | None = None,
            config_dir: Path | str = CONFIG_DIR) -> dict:
    """The resolved configuration for ``overrides`` (see module doc); ``phase`` (one of
    ``PHASES``) replaces the phase group's choice."""
    if phase is not None and phase not in PHASES:
        raise ConfigError(f"unknown phase {phase!r} (phases: {', '.join(PHASES)}, all)")
    config_dir = Path(config_dir)
    cfg = _load(config_dir / ROOT_FILE)
    choices = dict(cfg.pop("defaults", {}) or {})
    sets: list[tuple[str, Any]] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        value = yaml.safe_load(raw) if raw else ""
        if "." not in key:
            if key not in GROUPS:
                raise ConfigError(f"unknown config group {key!r} (groups: {', '.join(GROUPS)})")
            choices[key] = str(value)
        else:
            sets.append((key, value))
    if phase is not None:
        choices["phase"] = phase
    open_keys = _open_sections()
    for group in GROUPS:
        option = choices.get(group)
        if option is None:
            continue
        path = config_dir / group / f"{option}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
            raise ConfigError(f"unknown {group} option {option!r} (known: {', '.join(known)})")
        data = _load(path)
        if group == "phase":
            _merge(cfg, data, "", strict=False)
        else:
            cfg.setdefault(group, {})
            _merge(cfg[group], data, f"{group}.", strict=group not in open_keys)
    for key, value in sets:
        section, *rest = key.split(".")
        if section not in cfg and section not in open_keys:
            raise ConfigError(f"unknown config key {key!r}")
        node = cfg.setdefault(section, {})
        for part in rest[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {key!r}")
            node = node[part]
        leaf = rest[-1] if rest else None
        if leaf is None or (section not in open_keys and leaf not in node):
            raise ConfigError(f"unknown config key {key!r}")
        node[leaf] = value
    _check_open(cfg, open_keys)
    cfg["choices"] = {g: choices.get(g) for g in GROUPS}
    return cfg


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf (lists as strings), e.g. for MLflow params."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return out
