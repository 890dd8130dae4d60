"""The cell store: every finished cell, kept once, whichever profile asked for it (torch-free).

A cell's result depends only on the cell (data set, model, method, fold, seed, s_e, batch size)
and its fingerprint (settings, fold data, code, library versions: :meth:`mlabs.settings.TrainConfig.fingerprint`).
The store keys each finished cell by the hash of both, :meth:`CellStore.key`, and keeps it in
``<root>/<key[:2]>/<key>/`` with ``result.json`` and ``curves.tsv`` (about 25 KB), tracked in git:
a cell is written there, atomically, the moment it finishes, so a stage stopped midway keeps its
finished cells, a commit publishes them, and a fresh clone has them without training.

Beside them a cell folder may hold the timing sidecar ``timing.json`` (:data:`mlabs.results.TIMING_FILE`),
also tracked in git: where and how fast the cell ran, added once (with the cell, or later to a
cell stored without one) and never replaced. The manifests leave it out of their digests, so a
sidecar added later does not make a report stage stale: its timing tables pick it up when the
stage next runs.

A pipeline stage does not output the cells (two profiles may share one, and DVC refuses an output
in two stages); it outputs a small *manifest* (:func:`write_manifest`): the cells it reports, each
with its key and the digest of its files, which the report stage depends on. :func:`materialize`
lays the cells of some manifests out as the result tree :mod:`mlabs.results` describes, which the
report reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ._io import write_json_atomic
from .results import TIMING_FILE

__all__ = ["CellStore", "CELL_FILES", "write_manifest", "read_manifest", "manifest_path", "materialize"]

#: the files of a stored cell (the timing sidecar aside): what the cell computed, nothing else
CELL_FILES = ("result.json", "curves.tsv")


def _identity(cell) -> dict:
    return asdict(cell) if is_dataclass(cell) else dict(cell)


class CellStore:
    """A content-addressed folder of finished cells.

    Parameters
    ----------
    root : path
        The store's folder (the study's is ``cells/`` at the project root).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"CellStore({str(self.root)!r})"

    @staticmethod
    def key(cell, fingerprint: str) -> str:
        """The store key of ``cell`` (a :class:`~mlabs.settings.Cell` or its dict) trained under
        ``fingerprint``: 24 hex digits of the SHA-256 of both."""
        payload = json.dumps({"cell": _identity(cell), "fingerprint": fingerprint}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def path(self, key: str) -> Path:
        """The folder of the cell ``key`` (it may not exist)."""
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        """Whether the store holds the finished cell ``key``."""
        folder = self.path(key)
        return all((folder / name).is_file() for name in CELL_FILES)

    def get(self, key: str) -> dict | None:
        """The ``result.json`` of the cell ``key``, or None when the store has no such cell."""
        if not self.has(key):
            return None
        return json.loads((self.path(key) / "result.json").read_text())

    def put(self, key: str, result: Mapping, curves: str, timing: Mapping | None = None) -> Path:
        """Store a finished cell (its result, its curves as TSV text, its optional timing sidecar).

        The folder appears whole or not at all: it is written under a temporary name and renamed.
        A cell already stored is kept as it is (the same key is the same computation); only its
        timing sidecar is added when it has none.
        """
        if result.get("status") != "ok":
            raise ValueError(f"only finished cells are stored; cell {key} has status {result.get('status')!r}")
        folder = self.path(key)
        if not self.has(key):
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
            try:
                (tmp / "result.json").write_text(json.dumps(result, indent=2) + "\n")
                (tmp / "curves.tsv").write_text(curves)
                if timing is not None:
                    (tmp / TIMING_FILE).write_text(json.dumps(timing, indent=2) + "\n")
                tmp.chmod(0o755)
                try:
                    os.rename(tmp, folder)
                except OSError:  # another process stored it meanwhile (or a torn folder is there)
                    if not self.has(key):
                        shutil.rmtree(folder, ignore_errors=True)
                        os.rename(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif timing is not None and not (folder / TIMING_FILE).exists():
            write_json_atomic(dict(timing), folder / TIMING_FILE)
        return folder

    def digest(self, key: str) -> str:
        """SHA-256 (16 hex digits) of the cell's stored files: what a manifest records."""
        h = hashlib.sha256()
        for name in CELL_FILES:
            h.update((self.path(key) / name).read_bytes())
        return h.hexdigest()[:16]


def write_manifest(path: str | os.PathLike, entries: Iterable[Mapping]) -> Path:
    """Write a stage's manifest: one entry per cell it reports, sorted by ``path``.

    Each entry holds ``path`` (the cell's folder in the result tree, relative to its root:
    :func:`mlabs.results.cell_dir`) and either ``key`` and ``digest`` (a finished cell in the
    store) or ``failed`` (the failure record of a cell that did not finish).
    """
    cells = sorted((dict(e) for e in entries), key=lambda e: e["path"])
    return write_json_atomic({"cells": cells}, path)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The entries of a manifest written by :func:`write_manifest`."""
    return list(json.loads(Path(path).read_text())["cells"])


def materialize(manifests: Iterable[str | os.PathLike], store: CellStore, out: str | os.PathLike) -> Path:
    """Lay out the cells of ``manifests`` as a result tree under ``out`` (emptied first).

    A finished cell's files (and its timing sidecar, where the store has one) are copied from
    the store; a failed cell gets its failure record as ``result.json``. A manifest that does not
    exist contributes no cell (a stage that has not run, as an absent result folder did); a
    finished cell missing from the store (a manifest committed without its cells) raises
    ``FileNotFoundError``.
    """
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for manifest in manifests:
        if not Path(manifest).is_file():
            continue
        for entry in read_manifest(manifest):
            target = out / entry["path"]
            target.mkdir(parents=True, exist_ok=True)
            if "failed" in entry:
                write_json_atomic(entry["failed"], target / "result.json")
                continue
            source = store.path(entry["key"])
            if not store.has(entry["key"]):
                raise FileNotFoundError(f"{manifest} lists cell {entry['path']} ({entry['key']}), which is not in "
                                        f"{store.root}/: commit the store with the manifests, or rerun the train stage")
            for name in (*CELL_FILES, TIMING_FILE):
                if (source / name).is_file():
                    shutil.copyfile(source / name, target / name)
    return out


def manifest_path(cells_dir: str | os.PathLike, dataset: str, model: str) -> Path:
    """Where the train stage of (``dataset``, ``model``) writes its manifest."""
    return Path(cells_dir) / f"{dataset}-{model}.json"
