"""Where the reported cells were computed: the committed summary of their timing sidecars.

Each cell's machine record lives in its timing sidecar (:func:`mlabs.results.load_timing`), which
is not cached by DVC (in the cell store it is committed with the cell, :mod:`mlabs.store`).
``reports/machines.json`` is the part of it the report commits: every distinct machine
record once (CPU model, torch CPU capability, threads, Python, torch and numpy versions, device;
no host name, no time), named by a digest of its content, and per cell the record that computed
it and a digest of the cell's ``result.json``. The same results computed on machines of the
same kind therefore give the same file, and ``scripts/compare_runs.py`` can say whether two
committed runs came from the same kind of machine.

A cell without a sidecar (stored without one, or restored by ``dvc pull``) keeps the record that the
previous summary gave the same result (same digest), and is ``null`` (unknown) otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .._io import write_json_atomic
from ..results import load_timing

__all__ = ["machine_summary", "write_machines", "cell_machines"]


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def machine_summary(cells: Iterable[tuple[str, str | os.PathLike]], previous: dict | None = None) -> dict:
    """The machines summary of ``cells``.

    Parameters
    ----------
    cells : iterable of (str, path)
        Each cell's key (its folder as the project names it, e.g.
        ``artifacts/runs/emotions/dela/random-b64/fold0-seed0``) and its folder on disk, which
        holds ``result.json`` and, where the cell has one, the timing sidecar.
    previous : dict, optional
        The summary written before, whose records are kept for cells that have no sidecar now
        but the same ``result.json``.

    Returns
    -------
    dict
        ``{"machines": {id: record}, "cells": {key: {"machine": id or None, "result": digest}}}``.
    """
    previous = previous or {}
    old_machines, old_cells = previous.get("machines", {}), previous.get("cells", {})
    machines, entries = {}, {}
    for key, folder in cells:
        result = Path(folder) / "result.json"
        if not result.is_file():
            continue
        digest = _digest(result.read_bytes())
        timing = load_timing(folder)
        record = timing.get("machine") if timing else None
        if record is None and old_cells.get(key, {}).get("result") == digest:
            record = old_machines.get(old_cells[key].get("machine"))
        mid = None
        if record is not None:
            mid = _digest(json.dumps(record, sort_keys=True))
            machines[mid] = record
        entries[key] = {"machine": mid, "result": digest}
    return {"machines": machines, "cells": entries}


def write_machines(cells: Iterable[tuple[str, str | os.PathLike]], path: str | os.PathLike) -> Path:
    """Write :func:`machine_summary` of ``cells`` to ``path``, keeping what the file there knew."""
    path = Path(path)
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = None
    return write_json_atomic(machine_summary(cells, previous), path)


def cell_machines(summary: dict) -> dict[str, dict | None]:
    """{cell key: machine record or None (unknown)} of a summary."""
    machines = summary.get("machines", {})
    return {key: machines.get(entry.get("machine")) for key, entry in summary.get("cells", {}).items()}
