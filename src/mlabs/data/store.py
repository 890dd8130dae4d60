"""One ``.npz`` file per prepared data set."""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mlabs._io import atomic_path

from .preprocess import PreparedData
from .registry import DataError


_FORMAT = "mlabs.prepared/1"


def save_prepared(prepared: PreparedData, path: str | os.PathLike) -> Path:
    """Write ``prepared`` to one compressed ``.npz`` file, atomically; return the path.

    Sparse ``X`` is stored as its CSR parts. Everything is stored without pickles.
    """
    if not isinstance(prepared, PreparedData):
        raise TypeError(f"prepared must be a PreparedData, got {type(prepared).__name__}")
    path = Path(path)
    meta = {
        "format": _FORMAT, "name": prepared.name, "seed": prepared.seed, "feature_ratio": prepared.feature_ratio,
        "min_label_positives": prepared.min_label_positives, "n_folds": prepared.n_folds,
        "original_shape": list(prepared.original_shape), "sparse": bool(sp.issparse(prepared.X)),
    }
    arrays = {
        "Y": prepared.Y, "fold": prepared.fold, "part": prepared.part,
        "feature_names": np.asarray(prepared.feature_names, dtype=str),
        "label_names": np.asarray(prepared.label_names, dtype=str),
        "feature_indices": prepared.feature_indices, "label_indices": prepared.label_indices,
        "meta": np.asarray(json.dumps(meta)),
    }
    if sp.issparse(prepared.X):
        X = sp.csr_matrix(prepared.X)
        arrays.update(X_data=X.data, X_indices=X.indices, X_indptr=X.indptr, X_shape=np.asarray(X.shape))
    else:
        arrays["X"] = np.asarray(prepared.X)
    with atomic_path(path) as tmp:
        _write_npz(tmp, arrays)
    return path


def _write_npz(path: Path, arrays: dict) -> None:
    """``np.savez_compressed`` with fixed zip timestamps: the same arrays give the same bytes.

    DVC compares outputs by hash, so a re-run of the prepare stage that yields the same data leaves
    the training stages up to date instead of invalidating them through a new timestamp.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


def load_prepared(path: str | os.PathLike) -> PreparedData:
    """Read a file written by :func:`save_prepared`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DataError(f"prepared data file {path} not found") from None
    except (OSError, ValueError, zlib.error, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    try:
        meta = json.loads(str(files["meta"]))
    except KeyError:
        raise DataError(f"{path}: not a prepared data file (no metadata)") from None
    if meta.get("format") != _FORMAT:
        raise DataError(f"{path}: unsupported format {meta.get('format')!r}, expected {_FORMAT!r}")
    if meta["sparse"]:
        X = sp.csr_matrix((files["X_data"], files["X_indices"], files["X_indptr"]), shape=tuple(files["X_shape"]))
    else:
        X = files["X"]
    return PreparedData(
        X=X, Y=files["Y"], fold=files["fold"], part=files["part"],
        feature_names=files["feature_names"].tolist(), label_names=files["label_names"].tolist(),
        name=meta["name"], seed=meta["seed"], feature_ratio=meta["feature_ratio"],
        min_label_positives=meta["min_label_positives"], n_folds=meta["n_folds"],
        feature_indices=files["feature_indices"], label_indices=files["label_indices"],
        original_shape=tuple(meta["original_shape"]),
    )
