"""Removal of the source files PyG generates for its message-passing layers.

PyG renders each ``MessagePassing`` class's ``propagate`` and ``edge_updater`` from a jinja
template into a ``<tmp>/torch_geometric.nn.conv.*.py`` file, imports it and never deletes
it: every process that builds a GATv2 layer would leave two files in the temporary folder
(thousands over a year of daily training and prediction runs). The imported modules stay
in ``sys.modules``, so the files are only read again for tracebacks; this process's are
removed when it exits (not a forked child's exit, which would take its parent's).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile
from pathlib import Path

_PREFIX = "torch_geometric.nn."
_SUFFIXES = ("_propagate", "_edge_updater")


def generated_sources() -> list[Path]:
    """This process's PyG-generated module files that are still on disk."""
    tmp = Path(tempfile.gettempdir()).resolve()
    out = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(_PREFIX) and name.endswith(_SUFFIXES) and path:
            path = Path(path).resolve()
            if path.parent == tmp and path.exists():
                out.append(path)
    return out


def _remove_at_exit(owner: int) -> None:
    if os.getpid() != owner:
        return
    for path in generated_sources():
        with contextlib.suppress(OSError):
            path.unlink()


atexit.register(_remove_at_exit, os.getpid())
