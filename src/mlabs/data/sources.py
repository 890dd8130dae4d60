"""Loading a data set by name, with checksum verification."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .arff import MultiLabelData, load_mulan
from .registry import _FIX_FILES, DataError, _resolve_dir, dataset_info

def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, verify: bool = True) -> MultiLabelData:
    """Load one of the shipped data sets by name.

    Parameters
    ----------
    name : str
        A name from :func:`dataset_names` (case-insensitive).
    data_dir : path-like, optional
        Folder with ``<name>.arff.gz`` and ``<name>.xml``; default :func:`data_dir`.
    verify : bool, default True
        Check the sha256 of both files against the registry before parsing.

    Raises
    ------
    DataError
        Unknown name (lists the known ones), missing file, checksum mismatch, or a shape that differs
        from the registry.
    """
    info = dataset_info(name)
    folder = _resolve_dir(data_dir)
    arff, xml = folder / info.arff_file, folder / info.xml_file
    for path in (arff, xml):
        if not path.is_file():
            raise DataError(f"data set {info.name!r}: file {path} not found; {_FIX_FILES}")
    if verify:
        for path, expected in ((arff, info.sha256_arff), (xml, info.sha256_xml)):
            actual = _sha256(path)
            if actual != expected:
                raise DataError(f"data set {info.name!r}: checksum mismatch for {path}: expected sha256 {expected}, "
                                f"got {actual}; the file is modified or incomplete, restore it with `dvc pull` "
                                "or `dvc checkout data.dvc`")
    data = load_mulan(arff, xml, name=info.name)
    shape = (data.n_samples, data.n_features, data.n_labels)
    expected_shape = (info.n_instances, info.n_features, info.n_labels)
    if shape != expected_shape:
        raise DataError(f"data set {info.name!r}: loaded (instances, features, labels) = {shape}, expected "
                        f"{expected_shape}; {_FIX_FILES}")
    return data
