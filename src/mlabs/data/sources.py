"""Loading a data set by name: a shipped one (verified against the registry) or your own.

A name that is not one of the 14 shipped data sets is a *user* data set: its files are found in the
data directory by the conventions of :func:`user_files` (or named in its description, the entry
``data.custom.<name>`` of ``params.yaml``). Its checksums are recorded in a checksum file (the
pipeline uses ``user-data.sha256`` in the project root) when it is first prepared; a later change
of a file is an error instead of a silent re-use of folds and runs made from the old file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mlabs._io import write_text_atomic

from .arff import LABEL_POSITIONS, NOMINAL_ENCODINGS, MultiLabelData, load_mulan
from .registry import FIX_MISSING_FILES, BY_FOLDED_NAME, DataError, resolve_data_dir, dataset_info, dataset_names

__all__ = ["USER_CHECKSUMS", "UserDataset", "dataset_spec", "user_files", "load_dataset", "is_shipped"]

USER_CHECKSUMS = "user-data.sha256"
_SPEC_KEYS = {"arff": "file name, or a list of files merged in order (a train/test pair)",
              "xml": "MULAN label file (default <name>.xml if present)",
              "n_labels": "number of labels, for files without XML",
              "labels_at": "start or end, for files without XML",
              "nominal": "onehot (default) or ordinal"}
_ARFF_SUFFIXES = (".arff.gz", ".arff")
_HOW_TO = "see docs/data.md, section 'Add your own data set'"


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def is_shipped(name: str) -> bool:
    """Whether ``name`` is one of the 14 shipped data sets (exact or case-insensitive)."""
    return isinstance(name, str) and name.casefold() in BY_FOLDED_NAME


def dataset_spec(custom: Mapping | None, name: str) -> dict | None:
    """Validate the ``data.custom`` mapping of ``params.yaml`` and return the entry of ``name``.

    Every entry is checked (not only ``name``'s), so that a mistake anywhere in the mapping is
    reported by the first data set prepared.

    Raises
    ------
    DataError
        An entry named like a shipped data set, an entry that is not a mapping, or an unknown key.
    """
    if custom is None:
        return None
    if not isinstance(custom, Mapping):
        raise DataError(f"params.yaml data.custom must be a mapping of data set names to descriptions, "
                        f"got {type(custom).__name__}; {_HOW_TO}")
    for key, spec in custom.items():
        if is_shipped(str(key)):
            raise DataError(f"params.yaml data.custom.{key}: the name collides with the shipped data set "
                            f"{dataset_info(str(key)).name!r}; rename your files and the entry (e.g. {key}-mine)")
        if spec is None:
            continue
        if not isinstance(spec, Mapping):
            raise DataError(f"params.yaml data.custom.{key} must be a mapping with keys {sorted(_SPEC_KEYS)}, "
                            f"got {spec!r}; {_HOW_TO}")
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise DataError(f"params.yaml data.custom.{key}: unknown key(s) {unknown}; the keys are "
                            + "; ".join(f"{k}: {v}" for k, v in _SPEC_KEYS.items()))
    spec = custom.get(name)
    return dict(spec) if spec is not None else ({} if name in custom else None)


@dataclass(frozen=True)
class UserDataset:
    """Where a user data set's files are and how to read them (see :func:`user_files`)."""

    name: str
    arff: tuple[Path, ...]
    xml: Path | None
    n_labels: int | None = None
    labels_at: str | None = None
    nominal: str = "onehot"

    @property
    def files(self) -> tuple[Path, ...]:
        return self.arff + ((self.xml,) if self.xml is not None else ())


def _first_existing(folder: Path, stems: list[str]) -> Path | None:
    for stem in stems:
        for suffix in _ARFF_SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def user_files(name: str, spec: Mapping | None = None, data_dir: str | os.PathLike | None = None) -> UserDataset:
    """Resolve the files of a user data set.

    Without ``arff`` in ``spec``: ``<name>.arff.gz`` or ``<name>.arff``; else a train/test pair
    ``<name>-train`` + ``<name>-test`` (MULAN's naming; also ``<name>_train``/``<name>_test``),
    merged in that order. Without ``xml``: ``<name>.xml`` if it exists, else none (then ``n_labels``
    and ``labels_at``, or a MEKA ``-C`` in ``@relation``, say where the labels are).

    Raises
    ------
    DataError
        A shipped name, bad values in ``spec``, or files that do not exist.
    """
    if is_shipped(name):
        raise DataError(f"{name!r} is a shipped data set; give your own data set another name")
    spec = dict(spec or {})
    dataset_spec({name: spec}, name)  # key validation
    folder = resolve_data_dir(data_dir)
    where = f"data set {name!r}"
    if "arff" in spec:
        arff = spec["arff"]
        names = [arff] if isinstance(arff, str) else list(arff)
        paths = [folder / str(f) for f in names]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{where}: file {p} (data.custom.{name}.arff in params.yaml) not found; "
                                f"put it under {folder}/ or correct the name")
    else:
        single = _first_existing(folder, [name])
        if single is not None:
            paths = [single]
        else:
            pair = [(_first_existing(folder, [f"{name}-train", f"{name}_train"]),
                     _first_existing(folder, [f"{name}-test", f"{name}_test"]))]
            if None in pair[0]:
                raise DataError(f"{where}: not a shipped data set ({', '.join(dataset_names())}) and no file "
                                f"{folder}/{name}.arff[.gz] (or {name}-train.arff[.gz] + {name}-test.arff[.gz]); "
                                f"put your files there, {_HOW_TO}")
            paths = list(pair[0])
    xml = spec.get("xml")
    if xml is not None:
        xml_path = folder / str(xml)
        if not xml_path.is_file():
            raise DataError(f"{where}: XML label file {xml_path} (data.custom.{name}.xml in params.yaml) not found")
    else:
        xml_path = folder / f"{name}.xml" if (folder / f"{name}.xml").is_file() else None
    labels_at, n_labels = spec.get("labels_at"), spec.get("n_labels")
    if labels_at is not None and labels_at not in LABEL_POSITIONS:
        raise DataError(f"params.yaml data.custom.{name}.labels_at must be one of {LABEL_POSITIONS}, got {labels_at!r}")
    if n_labels is not None and (isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 1):
        raise DataError(f"params.yaml data.custom.{name}.n_labels must be a positive integer, got {n_labels!r}")
    nominal = spec.get("nominal", "onehot")
    if nominal not in NOMINAL_ENCODINGS:
        raise DataError(f"params.yaml data.custom.{name}.nominal must be one of {NOMINAL_ENCODINGS}, got {nominal!r}")
    return UserDataset(name=name, arff=tuple(paths), xml=xml_path, n_labels=n_labels, labels_at=labels_at,
                       nominal=nominal)


def _read_record(record: Path) -> dict[str, str]:
    sums = {}
    if record.is_file():
        for lineno, line in enumerate(record.read_text().splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            digest, _, file = line.strip().partition("  ")
            if len(digest) != 64 or not file:
                raise DataError(f"{record}, line {lineno}: expected '<sha256>  <file>' (sha256sum format), "
                                f"got {line.strip()[:80]!r}; fix or delete the line")
            sums[file] = digest
    return sums


def verify_user_checksums(user: UserDataset, record: str | os.PathLike, folder: Path) -> list[str]:
    """Compare the files of ``user`` with ``record``; record the ones not yet there.

    Returns the names of the newly recorded files.

    Raises
    ------
    DataError
        A file whose sha256 differs from the recorded one.
    """
    record = Path(record)
    sums = _read_record(record)
    added = []
    for path in user.files:
        key = os.path.relpath(path, folder)
        actual = _sha256(path)
        expected = sums.get(key)
        if expected is None:
            sums[key] = actual
            added.append(key)
        elif expected != actual:
            raise DataError(
                f"data set {user.name!r}: {path} changed since its sha256 was recorded in {record} when it was "
                f"first prepared (recorded {expected[:12]}…, now {actual[:12]}…); folds, warm-ups and runs made "
                f"from the old file are stale. If the change is intended, delete the line of {key} from {record} "
                f"and the folder artifacts/warmup/{user.name} (its cells in cells/ are keyed by the data and are "
                "never reused), then run `dvc repro` again; otherwise restore the recorded version of the file")
    if added:
        lines = [f"# sha256 of user data sets, recorded when first prepared (mlabs.data; {_HOW_TO})"]
        lines += [f"{digest}  {file}" for file, digest in sorted(sums.items())]
        write_text_atomic("\n".join(lines) + "\n", record)
    return added


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, verify: bool = True,
                 spec: Mapping | None = None, checksums: str | os.PathLike | None = None) -> MultiLabelData:
    """Load a data set by name: one of the 14 shipped ones, or your own.

    Parameters
    ----------
    name : str
        A name from :func:`dataset_names` (case-insensitive), or the name of a user data set whose
        files are in the data directory (:func:`user_files`).
    data_dir : path-like, optional
        Folder with the files; default :func:`data_dir`.
    verify : bool, default True
        Shipped: check the sha256 of both files against the registry before parsing. User data set
        with ``checksums``: check its files against the record (and record new ones).
    spec : mapping, optional
        Description of a user data set (``data.custom.<name>`` of ``params.yaml``): keys ``arff``,
        ``xml``, ``n_labels``, ``labels_at``, ``nominal``. Must be None for a shipped name.
    checksums : path-like, optional
        Checksum record of user data sets (sha256sum format); None: no check.

    Raises
    ------
    DataError
        Unknown name without files (lists the shipped ones), missing file, checksum mismatch, a shape
        that differs from the registry, a description given for a shipped name.
    """
    if not is_shipped(name):
        user = user_files(name, spec, data_dir)
        if verify and checksums is not None:
            added = verify_user_checksums(user, checksums, resolve_data_dir(data_dir))
            if added:
                print(f"data set {name!r}: sha256 of {', '.join(added)} recorded in {checksums} "
                      "(commit it; a later change of these files will be reported)")
        return load_mulan(list(user.arff), user.xml, name=name, n_labels=user.n_labels,
                          labels_at=user.labels_at, nominal=user.nominal)
    info = dataset_info(name)
    if spec:
        raise DataError(f"params.yaml data.custom.{name}: the name collides with the shipped data set "
                        f"{info.name!r}; rename your files and the entry")
    folder = resolve_data_dir(data_dir)
    arff, xml = folder / info.arff_file, folder / info.xml_file
    for path in (arff, xml):
        if not path.is_file():
            raise DataError(f"data set {info.name!r}: file {path} not found; {FIX_MISSING_FILES}")
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
                        f"{expected_shape}; {FIX_MISSING_FILES}")
    return data
