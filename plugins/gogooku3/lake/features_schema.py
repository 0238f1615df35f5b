"""``gold.features`` schema, built from the feature catalogue ``configs/features.yaml``.

Columns: ``date``, ``code``, every raw feature in catalogue order, then ``<name>_cs_z``
for each, then ``<name>_cs_rank`` for each. Features are computed in float64 and stored
as float32 (what the model reads); the table is clustered by date (``lake.spec``). The job checks that what it
computes equals this list, so the catalogue, the schema and the code cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gogooku3.lake.spec import CLUSTERED, TableSpec
from gogooku3.settings import PROJECT_ROOT

FEATURES_YAML = PROJECT_ROOT / "configs" / "features.yaml"
REQUIRED_KEYS = ("name", "window", "definition")


class FeatureCatalogError(ValueError):
    """``configs/features.yaml`` is malformed (message: file, group, feature, problem)."""


def feature_groups(path: Path | str = FEATURES_YAML) -> dict[str, list[str]]:
    """Group name → feature names, in file order; validates every entry."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    groups = doc.get("groups")
    if not isinstance(groups, dict) or not groups:
        raise FeatureCatalogError(f"{path}: top-level 'groups' mapping is missing or empty")
    out: dict[str, list[str]] = {}
    seen: set[str] = set()
    for group, entries in groups.items():
        if not isinstance(entries, list) or not entries:
            raise FeatureCatalogError(f"{path}: group {group!r} has no feature list")
        names = []
        for entry in entries:
            missing = [k for k in REQUIRED_KEYS if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise FeatureCatalogError(f"{path}: group {group!r} entry {entry!r} lacks {missing}")
            name = str(entry["name"])
            if name in seen or name in ("date", "code"):
                raise FeatureCatalogError(f"{path}: feature {name!r} (group {group!r}) is repeated")
            seen.add(name)
            names.append(name)
        out[str(group)] = names
    return out


PEER_GRAPH_KEYS = ("k", "window", "cadence")


def peer_graph_params(path: Path | str = FEATURES_YAML) -> dict[str, int]:
    """``peer_graph`` of the catalogue: ``{"k", "window", "cadence"}``, positive integers."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) or {}
    params = doc.get("peer_graph")
    if not isinstance(params, dict) or set(params) != set(PEER_GRAPH_KEYS):
        raise FeatureCatalogError(
            f"{path}: 'peer_graph' must map exactly {list(PEER_GRAPH_KEYS)}, got {params!r}")
    bad = {k: v for k, v in params.items() if not isinstance(v, int) or isinstance(v, bool)
           or v < 1}
    if bad:
        raise FeatureCatalogError(f"{path}: peer_graph values must be integers >= 1: {bad}")
    if params["window"] < 2 or params["k"] < 1:
        raise FeatureCatalogError(f"{path}: peer_graph window must be >= 2, got {params}")
    return {k: int(params[k]) for k in PEER_GRAPH_KEYS}


def feature_names(path: Path | str = FEATURES_YAML) -> list[str]:
    """Every raw feature name, in catalogue order."""
    return [n for names in feature_groups(path).values() for n in names]


def features_table(path: Path | str = FEATURES_YAML) -> TableSpec:
    """The ``gold.features`` TableSpec (see module docstring)."""
    names = feature_names(path)
    cols = [*names, *[f"{n}_cs_z" for n in names], *[f"{n}_cs_rank" for n in names]]
    return TableSpec(
        name="gold.features",
        columns=(("date", "date"), ("code", "string"), *[(c, "float") for c in cols]),
        primary_key=("date", "code"),
        description=(
            "point-in-time features per (date, code): raw, same-day winsorized z-score "
            "(_cs_z) and percentile rank (_cs_rank); catalogue configs/features.yaml"
        ),
        storage=CLUSTERED,
    )
