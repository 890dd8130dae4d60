"""Loading, preprocessing and splitting of MULAN multi-label data sets.

Public API
----------
dataset_names, dataset_info, data_dir
    The registry of the 14 shipped benchmarks and where their files live.
load_mulan, load_dataset
    Read any MULAN data set (ARFF + XML label file) / a registered one, with checksum verification.
select_features, filter_labels, make_folds, prepare
    The study's preprocessing (``reference/method.md`` section 6) and its fold assignment.
fold_split
    Train / validation / test matrices of one fold, min-max scaled on the training part.
save_prepared, load_prepared
    One ``.npz`` per prepared data set, written atomically.
dataset_statistics, statistics_table
    Cardinality, density, MeanIR, ... of raw and preprocessed data.

Label order
-----------
Labels are always in the order of the MULAN XML file, never in ARFF column order. For yeast and enron
the two orders differ; the XML is the file that *defines* which attributes are labels, so its order is
the one every metric, report and saved file of the project uses.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import scipy.sparse as sp

from mlabs._io import atomic_path

__all__ = [
    "DataError",
    "DatasetInfo",
    "MultiLabelData",
    "PreparedData",
    "Split",
    "dataset_names",
    "dataset_info",
    "statistics_row",
    "data_dir",
    "load_mulan",
    "load_dataset",
    "select_features",
    "filter_labels",
    "make_folds",
    "prepare",
    "fold_split",
    "save_prepared",
    "load_prepared",
    "dataset_statistics",
    "statistics_table",
]

MULAN_NS = "http://mulan.sourceforge.net/labels"
_FIX_FILES = "run `dvc pull` (or `dvc checkout data.dvc`) in the project root, or set MLABS_DATA_DIR"


class DataError(ValueError):
    """A data file is missing, corrupt or inconsistent, or the data cannot be split as requested."""


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about one shipped data set (values from ``data/README.md``).

    The ``*_prepared`` fields describe the data after feature selection with ``feature_ratio`` and
    removal of labels with <= 20 positives (README section 5). Statistics are rounded as in the README.
    """

    name: str
    sha256_arff: str
    sha256_xml: str
    n_instances: int
    n_features: int
    n_labels: int
    sparse: bool
    feature_ratio: float
    n_features_prepared: int
    n_labels_prepared: int
    cardinality: float
    density: float
    mean_ir: float
    max_ir: float
    distinct_labelsets: int
    cardinality_prepared: float
    mean_ir_prepared: float
    labelless_prepared: int

    @property
    def arff_file(self) -> str:
        return f"{self.name}.arff.gz"

    @property
    def xml_file(self) -> str:
        return f"{self.name}.xml"


def _info(name, sha_arff, sha_xml, n, d, q, sparse, ratio, d2, q2, card, dens, mir, maxir, dist, card2, mir2, ll2):
    return DatasetInfo(name, sha_arff, sha_xml, n, d, q, sparse, ratio, d2, q2, card, dens, mir, maxir, dist,
                       card2, mir2, ll2)


_RCV1_XML = "e1028f4f10b8974d8881c30eb6e7f231ba248154999c85b8d7d95e18e10b2480"
# Order = the authors' order (README section 5).
_REGISTRY: tuple[DatasetInfo, ...] = (
    _info("emotions", "f4216883c0b51fda9c84640e776f83d7a56e9c0ddde6bb026276f4836511bdf9",
          "dbce8e6ccbbb2fcbfd9e9edbb230d7ed12692c6e13f59fdbc0161fa9b6cf2dc0",
          593, 72, 6, False, 1.0, 72, 6, 1.868, 0.311, 1.5, 1.8, 27, 1.868, 1.5, 0),
    _info("scene", "0ac52c0bfbc186508b8fe33af8644d02980ed697f11c2af4f6f82dc0b9ba09a2",
          "55d8b247b949ad5c52e5a73d8c6775ec6e5469ce9682465b45b333b68ee4bcc5",
          2407, 294, 6, False, 1.0, 294, 6, 1.074, 0.179, 1.3, 1.5, 15, 1.074, 1.3, 0),
    _info("yeast", "ba075a1a003a5a77c37663b9efd40f5f2d5997d4ba22ae78a71b85616e087e4a",
          "c3056cc26444b5158b1588d1b73bec9c45429e10f0957ad085903423cb81f247",
          2417, 103, 14, False, 1.0, 103, 14, 4.237, 0.303, 7.2, 53.4, 198, 4.237, 7.2, 0),
    _info("Corel5k", "69fd007fbdb34f51e4220a26c56713004538f2d8588d8d888143527d7163e9c8",
          "54ef6a6ccb7ca9b77524052b34b306d5d501661a5609b9d1cc7085b2b597679d",
          5000, 499, 374, False, 1.0, 499, 149, 3.522, 0.009, 189.6, 1120.0, 3175, 3.158, 23.4, 17),
    _info("rcv1subset1", "6506ab15778ac2d879a3e72aef1d3777d3f96fad77ca175875f71a1322b61f52", _RCV1_XML,
          6000, 47236, 101, True, 0.02, 944, 80, 2.880, 0.029, 54.5, 691.0, 1028, 2.840, 16.8, 0),
    _info("rcv1subset2", "d9c5f0d93adc619104b0bdc14ad1a4f38d51a3b18ec8c5f33bb78e54f27e0b0c", _RCV1_XML,
          6000, 47236, 101, True, 0.02, 944, 81, 2.634, 0.026, 45.5, 474.3, 954, 2.591, 18.2, 0),
    _info("rcv1subset3", "4afdc59fbcdc410d549066b9c0f977e68a8966137e7d466e14eb1f6c9d826a5f", _RCV1_XML,
          6000, 47236, 101, True, 0.02, 944, 82, 2.614, 0.026, 68.3, 1427.0, 939, 2.579, 18.9, 0),
    _info("yahoo-Business1", "a5b78af98bf3d5836a0db7d64ddc8a0739702ec04909f967f08b85777d4b417f",
          "fb857beb00dc77278adbd35d7dd65ac615696706a364b66e48f9f7eeae494c26",
          11214, 21924, 30, True, 0.05, 1096, 25, 1.599, 0.053, 880.2, 9723.0, 233, 1.595, 105.5, 10),
    _info("yahoo-Arts1", "9c52d01ec13001148350986b7652e2988b319888b61346ead10c4bf042f323a4",
          "2b8d4a31b2240852e1422deabe90a1d7298c8f6bb94aca4b89dd0c6f8fd9493a",
          7484, 23146, 26, True, 0.05, 1157, 24, 1.654, 0.064, 94.7, 1838.0, 599, 1.653, 13.3, 0),
    _info("bibtex", "0e9478ac0f235cea868480feac092f6f618b2518faf90975212e29ef6b72c7ec",
          "08fe20013c1e75dcf1888c185f5187c95e76495b8518ce289b4d3afce38d1232",
          7395, 1836, 159, True, 1.0, 1836, 159, 2.402, 0.015, 12.5, 20.4, 2856, 2.402, 12.5, 0),
    # tmc2007-500 replaces the authors' full tmc2007 (ratio 0.01 of 49,060); all 500 features are kept.
    _info("tmc2007-500", "32b08902100cefef05fa536c143ead22580819685edcf8d98ca1078e66ac7c34",
          "cb6a67c8ae72fd9b47d89f77aa5b7f6cafb4ba9c20b1124c65a95a3f2caec38d",
          28596, 500, 22, True, 1.0, 500, 22, 2.158, 0.098, 15.2, 36.7, 1341, 2.158, 15.2, 0),
    _info("enron", "4800f89adbac63d891c128a137ab81ff178f00208777a46306b00e3d15cc924f",
          "ed40c92d7f613eed51714912cab10dddc4ce456262137d8fef230d44c7f4457b",
          1702, 1001, 53, True, 1.0, 1001, 33, 3.378, 0.064, 74.0, 913.0, 753, 3.258, 16.7, 0),
    _info("cal500", "40628cf6f1ad912c67791481a184e2746e1310bca4eded7d4d81ba4fa107ff68",
          "877e128531268d7661faa3e44f7bb43cbcda829c0895e49879168775b192728c",
          502, 68, 174, False, 1.0, 68, 119, 26.044, 0.150, 20.6, 88.8, 502, 24.859, 7.7, 0),
    _info("LLOG-F", "98e7f6db8e903210c1a2f51b0c9c8d7c1cec5793cfc049976be946c7288577e2",
          "2c327480417930b697743278a8dc294eecec9dace8fb2dfa114531768aec6055",
          1460, 1004, 75, True, 1.0, 1004, 22, 1.180, 0.016, 39.3, 171.0, 304, 0.911, 3.9, 393),
)
_BY_NAME = {info.name: info for info in _REGISTRY}
_BY_FOLDED = {info.name.casefold(): info for info in _REGISTRY}


def dataset_names() -> list[str]:
    """Names of the 14 shipped data sets, in the order of the authors' code."""
    return [info.name for info in _REGISTRY]


def dataset_info(name: str) -> DatasetInfo:
    """Registry entry of a shipped data set; exact name or case-insensitive match.

    Raises
    ------
    ValueError (DataError)
        For an unknown name; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a str, got {type(name).__name__}")
    info = _BY_NAME.get(name) or _BY_FOLDED.get(name.casefold())
    if info is None:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(dataset_names())}")
    return info


def _find_project_data(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "data.dvc").is_file() or ((folder / "pyproject.toml").is_file() and (folder / "data").is_dir()):
            return folder / "data"
    return None


def data_dir() -> Path:
    """Directory holding the shipped data files.

    Resolution order: the environment variable ``MLABS_DATA_DIR``; the ``data/`` folder of the project
    root found by walking up from the current working directory (a folder with ``data.dvc``, or with
    ``pyproject.toml`` and a ``data/`` folder); the same search starting at this source file (useful
    for an editable install used from elsewhere).
    """
    env = os.environ.get("MLABS_DATA_DIR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"MLABS_DATA_DIR={env!r} is not a directory")
        return path
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        found = _find_project_data(start)
        if found is not None:
            return found
    raise DataError("cannot locate the data directory: no project root (a folder with data.dvc) above "
                    f"{Path.cwd()}; {_FIX_FILES}")


def _resolve_dir(directory) -> Path:
    return data_dir() if directory is None else Path(directory)


# --------------------------------------------------------------------------------------------------
# ARFF / XML parsing
# --------------------------------------------------------------------------------------------------


@dataclass
class MultiLabelData:
    """A multi-label data set as read from disk.

    Attributes
    ----------
    X : numpy.ndarray (float64) or scipy.sparse.csr_matrix
        Features, ``(n_samples, n_features)``; CSR when the ARFF file is sparse. Missing values
        (``?``) are NaN.
    Y : numpy.ndarray of uint8, ``(n_samples, n_labels)``
        0/1 label matrix, columns in the order of the XML label file.
    feature_names, label_names : list of str
        Feature names in ARFF order; label names in XML order.
    name : str or None
    """

    X: np.ndarray | sp.csr_matrix
    Y: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    name: str | None = None

    @property
    def n_samples(self) -> int:
        return self.Y.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_labels(self) -> int:
        return self.Y.shape[1]

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.X)

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        return (f"MultiLabelData(name={self.name!r}, n_samples={self.n_samples}, n_features={self.n_features}, "
                f"n_labels={self.n_labels}, X={kind})")


@dataclass
class _Attribute:
    name: str
    kind: str  # "numeric" or "nominal"
    values: tuple[str, ...] = ()  # nominal domain


# @attribute <name> <type>; names may be quoted with ' or " (and then contain spaces).
_ATTR_RE = re.compile(
    r"""^\s*@attribute\s+(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s{]+))\s*(.*?)\s*$""",
    re.IGNORECASE,
)
_DATA_RE = re.compile(r"^[ \t]*@data[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_UNESCAPE_RE = re.compile(r"\\(.)")


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return _UNESCAPE_RE.sub(r"\1", token[1:-1])
    return token


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {path}; {_FIX_FILES}") from None
    is_gzip = raw[:2] == b"\x1f\x8b"
    if is_gzip:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); {_FIX_FILES}") from exc
    elif path.suffix == ".gz":
        raise DataError(f"{path}: named .gz but is not a gzip file; {_FIX_FILES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Weka writes ARFF in the platform encoding; latin-1 decodes any byte string.
        return raw.decode("latin-1")


def _parse_header(header: str, path: Path) -> list[_Attribute]:
    attrs: list[_Attribute] = []
    for lineno, line in enumerate(header.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "%" or stripped[:9].lower() == "@relation":
            continue
        if stripped[:10].lower() != "@attribute":
            raise DataError(f"{path}, line {lineno}: unexpected header line {stripped[:80]!r}")
        m = _ATTR_RE.match(stripped)
        if m is None:
            raise DataError(f"{path}, line {lineno}: malformed @attribute line {stripped[:80]!r}")
        quoted = m.group(1) if m.group(1) is not None else m.group(2)
        name = _UNESCAPE_RE.sub(r"\1", quoted) if quoted is not None else m.group(3)
        spec = m.group(4)
        if spec.startswith("{"):
            if not spec.endswith("}"):
                raise DataError(f"{path}, line {lineno}: unterminated nominal domain for attribute {name!r}")
            values = tuple(_unquote(v) for v in spec[1:-1].split(",") if v.strip())
            attrs.append(_Attribute(name, "nominal", values))
        elif spec.lower() in ("numeric", "real", "integer"):
            attrs.append(_Attribute(name, "numeric"))
        else:
            raise DataError(f"{path}, line {lineno}: attribute {name!r} has unsupported type {spec!r} "
                            "(only numeric/real/integer and nominal attributes are supported)")
    if not attrs:
        raise DataError(f"{path}: no @attribute lines in the header (not an ARFF file, or truncated)")
    return attrs


def _nominal_codes(attr: _Attribute) -> dict[str, float]:
    """Value -> number for a nominal attribute: the number itself if the whole domain is numeric
    (the usual ``{0,1}``), else the position in the declared domain."""
    try:
        return {v: float(v) for v in attr.values}
    except ValueError:
        return {v: float(i) for i, v in enumerate(attr.values)}


def _convert_values(tokens: Sequence[str], attr: _Attribute, where) -> np.ndarray:
    """Slow, general conversion of one attribute's raw tokens (quotes, '?', nominal strings).

    ``where(k)`` describes the position of token k for error messages.
    """
    codes = _nominal_codes(attr) if attr.kind == "nominal" else None
    out = np.empty(len(tokens), dtype=np.float64)
    for k, tok in enumerate(tokens):
        tok = _unquote(tok)
        if tok == "?":
            out[k] = np.nan
            continue
        if codes is not None and tok in codes:
            out[k] = codes[tok]
            continue
        try:
            out[k] = float(tok)
        except ValueError:
            raise DataError(f"{where(k)}: value {tok!r} of attribute {attr.name!r} is not "
                            + ("in its domain" if codes is not None else "a number")) from None
    return out


def _split_dense_row(row: str) -> list[str]:
    if "'" not in row and '"' not in row:
        return row.split(",")
    # Quoted values may contain commas: split on commas outside quotes.
    return [m.group(0) for m in re.finditer(r"""\s*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,]*)\s*(?=,|$)""", row)
            if m.start() == 0 or row[m.start() - 1] == ","]


def _data_rows(body: str, first_line: int) -> tuple[list[str], list[int]]:
    rows, lines = [], []
    for lineno, line in enumerate(body.splitlines(), start=first_line):
        s = line.strip()
        if s and s[0] != "%":
            rows.append(s)
            lines.append(lineno)
    return rows, lines


def _parse_dense(rows, lines, attrs, path) -> np.ndarray:
    n, a = len(rows), len(attrs)
    if n == 0:
        return np.empty((0, a))
    import pandas as pd  # the C CSV tokenizer is ~5x faster than any pure numpy route

    try:
        frame = pd.read_csv(io.StringIO("\n".join(rows)), header=None, dtype=np.float64, engine="c",
                            na_values=["?"], keep_default_na=False, skip_blank_lines=False)
        if frame.shape == (n, a):
            return frame.to_numpy()
    except (ValueError, pd.errors.ParserError):
        pass
    # Slow path: quoted or nominal string values, or a malformed row we must point at.
    cells = []
    for row, lineno in zip(rows, lines):
        if row.startswith("{"):
            raise DataError(f"{path}, line {lineno}: sparse row in a dense ARFF file (mixed formats are not supported)")
        parts = _split_dense_row(row)
        if len(parts) != a:
            raise DataError(f"{path}, line {lineno}: {len(parts)} values, expected {a} (truncated or corrupt row)")
        cells.append(parts)
    out = np.empty((n, a))
    for j, attr in enumerate(attrs):
        col = [c[j] for c in cells]
        out[:, j] = _convert_values(col, attr, lambda k: f"{path}, line {lines[k]} (data row {k + 1})")
    return out


def _parse_sparse(rows, lines, attrs, path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (row, column, value) triplets of a sparse ARFF body."""
    n, a = len(rows), len(attrs)
    for row, lineno in zip(rows, lines):
        if row[0] != "{" or row[-1] != "}":
            raise DataError(f"{path}, line {lineno}: expected a sparse row '{{index value, ...}}' "
                            "(truncated file, or mixed dense/sparse rows, which are not supported)")
    bodies = [r[1:-1] for r in rows]
    counts = np.fromiter((b.count(",") + 1 if b.strip() else 0 for b in bodies), dtype=np.int64, count=n)
    row_ids = np.repeat(np.arange(n, dtype=np.int64), counts)
    cols = vals = None
    import pandas as pd

    try:
        pairs = pd.read_csv(io.StringIO("\n".join(bodies).replace(",", "\n")), sep=r"\s+", header=None,
                            engine="c", dtype={0: np.int64, 1: np.float64}, na_values=["?"],
                            keep_default_na=False)
        if pairs.shape == (int(counts.sum()), 2):
            cols, vals = pairs[0].to_numpy(), pairs[1].to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        pass
    if cols is None:
        cols, raw = _sparse_slow(bodies, lines, path)
        vals = np.empty(len(raw))
        for j in np.unique(cols):
            sel = np.flatnonzero(cols == j)
            vals[sel] = _convert_values([raw[k] for k in sel], attrs[j],
                                        lambda k, sel=sel: f"{path}, line {lines[row_ids[sel[k]]]}")
    bad = (cols < 0) | (cols >= a)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}, line {lines[row_ids[k]]}: attribute index {int(cols[k])} out of range "
                        f"0..{a - 1}")
    return row_ids, cols, vals


def _sparse_slow(bodies, lines, path):
    cols, raw = [], []
    for body, lineno in zip(bodies, lines):
        if not body.strip():
            continue
        for pair in body.split(","):
            parts = pair.strip().split(None, 1)
            if len(parts) != 2:
                raise DataError(f"{path}, line {lineno}: malformed sparse entry {pair.strip()!r} "
                                "(expected 'index value'; truncated or corrupt file?)")
            try:
                cols.append(int(parts[0]))
            except ValueError:
                raise DataError(f"{path}, line {lineno}: sparse index {parts[0]!r} is not an integer") from None
            raw.append(parts[1])
    return np.asarray(cols, dtype=np.int64), raw


def _read_label_names(xml_path: Path) -> list[str]:
    try:
        root = ET.parse(xml_path).getroot()
    except FileNotFoundError:
        raise DataError(f"file not found: {xml_path}; {_FIX_FILES}") from None
    except ET.ParseError as exc:
        raise DataError(f"{xml_path}: not a valid XML label file ({exc})") from exc
    # Hierarchical MULAN files nest <label> elements; every one of them is a label.
    names = [el.get("name") for el in root.iter() if el.tag in (f"{{{MULAN_NS}}}label", "label")]
    if not names:
        raise DataError(f"{xml_path}: no <label> elements in namespace {MULAN_NS}")
    if any(n is None for n in names):
        raise DataError(f"{xml_path}: a <label> element has no 'name' attribute")
    dup = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if dup:
        raise DataError(f"{xml_path}: duplicate label names {dup[:5]}")
    return names


def load_mulan(arff_path: str | os.PathLike, xml_path: str | os.PathLike, name: str | None = None) -> MultiLabelData:
    """Read a MULAN data set: an ARFF file (dense or sparse, plain or gzip) and its XML label file.

    Parameters
    ----------
    arff_path : path-like
        ARFF file; gzip is detected from the magic bytes.
    xml_path : path-like
        MULAN label file (``<labels xmlns="http://mulan.sourceforge.net/labels">``).
    name : str, optional
        Stored as ``MultiLabelData.name``; defaults to the ARFF file name without suffixes.

    Returns
    -------
    MultiLabelData
        ``X`` is CSR for a sparse ARFF file and a float64 array otherwise; ``Y`` is uint8 with the
        label columns **in XML order**, wherever the labels sit in the ARFF file.

    Raises
    ------
    DataError
        Missing, corrupt or truncated files; an XML label absent from the ARFF header; label values
        other than 0/1 (the message names file, line and label).
    """
    arff_path, xml_path = Path(arff_path), Path(xml_path)
    label_names = _read_label_names(xml_path)
    text = _read_text(arff_path)
    m = _DATA_RE.search(text)
    if m is None:
        raise DataError(f"{arff_path}: no @data line (not an ARFF file, or truncated header)")
    attrs = _parse_header(text[: m.start()], arff_path)
    first_line = text.count("\n", 0, m.end()) + 1
    rows, lines = _data_rows(text[m.end():], first_line)

    position = {}
    for j, attr in enumerate(attrs):
        if attr.name in position:
            raise DataError(f"{arff_path}: duplicate attribute name {attr.name!r}")
        position[attr.name] = j
    missing = [lab for lab in label_names if lab not in position]
    if missing:
        raise DataError(f"{xml_path}: label(s) {missing[:5]} not found among the attributes of {arff_path}"
                        f"{' (and %d more)' % (len(missing) - 5) if len(missing) > 5 else ''}; "
                        "the XML and ARFF files do not belong together")
    label_cols = np.array([position[lab] for lab in label_names], dtype=np.int64)
    for lab, j in zip(label_names, label_cols):
        attr = attrs[j]
        if attr.kind == "nominal" and not set(attr.values) <= {"0", "1"}:
            raise DataError(f"{arff_path}: label attribute {lab!r} has domain {{{','.join(attr.values)}}}; "
                            "labels must be numeric or nominal {0,1}")
    n, a = len(rows), len(attrs)
    is_label = np.zeros(a, dtype=bool)
    is_label[label_cols] = True
    feat_cols = np.flatnonzero(~is_label)
    feature_names = [attrs[j].name for j in feat_cols]
    sparse = bool(rows) and rows[0][0] == "{"

    if sparse:
        r, c, v = _parse_sparse(rows, lines, attrs, arff_path)
        lab_mask = is_label[c]
        lr, lc, lv = r[lab_mask], c[lab_mask], v[lab_mask]
        col_to_label = np.full(a, -1, dtype=np.int64)
        col_to_label[label_cols] = np.arange(len(label_cols))
        _check_binary(lv, lambda k: (lines[lr[k]], attrs[lc[k]].name), arff_path)
        Y = np.zeros((n, len(label_cols)), dtype=np.uint8)
        Y[lr, col_to_label[lc]] = lv.astype(np.uint8)
        col_to_feat = np.full(a, -1, dtype=np.int64)
        col_to_feat[feat_cols] = np.arange(len(feat_cols))
        fm = ~lab_mask
        X = sp.csr_matrix((v[fm], (r[fm], col_to_feat[c[fm]])), shape=(n, len(feat_cols)), dtype=np.float64)
        X.sum_duplicates()
        X.eliminate_zeros()
    else:
        M = _parse_dense(rows, lines, attrs, arff_path)
        L = M[:, label_cols]
        bad_r, bad_c = np.nonzero((L != 0) & (L != 1))
        _check_binary(L[bad_r, bad_c], lambda k: (lines[bad_r[k]], label_names[bad_c[k]]), arff_path)
        Y = L.astype(np.uint8)
        X = np.ascontiguousarray(M[:, feat_cols])
    if name is None:
        name = arff_path.name.split(".")[0]
    return MultiLabelData(X=X, Y=Y, feature_names=feature_names, label_names=list(label_names), name=name)


def _check_binary(values: np.ndarray, where, path: Path) -> None:
    bad = np.flatnonzero((values != 0) & (values != 1))  # NaN ('?') compares unequal, so it is caught too
    if bad.size:
        lineno, label = where(int(bad[0]))
        value = float(values[bad[0]])
        shown = "'?' (missing)" if np.isnan(value) else f"{value:g}"
        raise DataError(f"{path}, line {lineno}: label {label!r} has value {shown}; label values "
                        f"must be 0 or 1 ({bad.size} bad value(s) in total)")


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


# --------------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------------


def _check_2d(name, A):
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")


def select_features(X, ratio: float) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
    """Keep the ``int(d * ratio)`` columns of ``X`` with the largest column sums.

    Ties are broken by column position (stable sort), and the kept columns stay in their original
    order. Sparse input stays sparse (CSR) and is never densified.

    Parameters
    ----------
    X : array-like or sparse matrix, ``(n_samples, d)``
    ratio : float in (0, 1]
        1.0 keeps every column.

    Returns
    -------
    X_selected : same kind as ``X``
    kept : numpy.ndarray of int64
        Sorted indices of the kept columns of ``X``.
    """
    if not sp.issparse(X):
        X = np.asarray(X)
    _check_2d("X", X)
    ratio = float(ratio)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    d = X.shape[1]
    k = int(d * ratio)
    if k < 1:
        raise ValueError(f"ratio {ratio} keeps no column of {d}")
    if k == d:
        kept = np.arange(d, dtype=np.int64)
    else:
        sums = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
        # Stable descending order: ties keep the lower column index first.
        order = np.argsort(-sums, kind="stable")
        kept = np.sort(order[:k]).astype(np.int64)
    if sp.issparse(X):
        return sp.csr_matrix(X)[:, kept], kept
    return X[:, kept], kept


def filter_labels(Y, min_positives: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Drop labels with fewer than ``min_positives`` positive instances.

    The default 21 reproduces the authors' rule "drop every label with <= 20 positives in the whole data
    set" (before any split). Instances left without labels are kept.

    Returns
    -------
    Y_kept : numpy.ndarray
    kept : numpy.ndarray of int64
        Indices of the kept label columns.

    Raises
    ------
    DataError
        If no label has ``min_positives`` positives.
    """
    Y = np.asarray(Y)
    _check_2d("Y", Y)
    if int(min_positives) != min_positives or min_positives < 0:
        raise ValueError(f"min_positives must be a non-negative integer, got {min_positives!r}")
    counts = (Y != 0).sum(axis=0)
    kept = np.flatnonzero(counts >= min_positives).astype(np.int64)
    if kept.size == 0:
        raise DataError(f"no label has at least {min_positives} positives (largest count {int(counts.max(initial=0))}); "
                        "lower min_label_positives")
    return Y[:, kept], kept


@contextlib.contextmanager
def _global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed NumPy's global RNG for the block and restore the caller's state afterwards.

    scikit-multilearn's IterativeStratification ignores (and, with current scikit-learn, rejects)
    ``random_state`` and draws from ``np.random``; this makes its folds reproducible without leaking
    the seeding into the rest of the program.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def make_folds(Y, n_folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Iterative stratification (order 1) into ``n_folds`` folds, each halved into validation/test.

    Returns
    -------
    fold : numpy.ndarray of int64, ``(n_samples,)``
        Fold id in ``0..n_folds-1``.
    part : numpy.ndarray of int64, ``(n_samples,)``
        0 = validation, 1 = test, for the run in which the sample's fold is held out. Each held-out
        fold is split by a seeded random permutation (not stratified): ``floor(m/2)`` validation,
        ``ceil(m/2)`` test samples.
    """
    from skmultilearn.model_selection import IterativeStratification

    Y = np.asarray(Y)
    _check_2d("Y", Y)
    n = Y.shape[0]
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    if int(seed) != seed or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if n < 2 * n_folds:
        raise DataError(f"{n} samples are too few for {n_folds} folds with validation and test halves")
    fold = np.full(n, -1, dtype=np.int64)
    splitter = IterativeStratification(n_splits=int(n_folds), order=1)
    with _global_numpy_seed(int(seed)):
        for f, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), (Y != 0).astype(np.int8))):
            fold[test] = f
    if (fold < 0).any():
        raise DataError("iterative stratification left samples unassigned")
    rng = np.random.default_rng(int(seed))
    part = np.ones(n, dtype=np.int64)
    for f in range(int(n_folds)):
        members = rng.permutation(np.flatnonzero(fold == f))
        part[members[: members.size // 2]] = 0
    return fold, part


@dataclass
class PreparedData:
    """A preprocessed data set with its fold assignment (see :func:`prepare`).

    ``feature_indices`` / ``label_indices`` index the kept columns of the raw data;
    ``original_shape`` is (instances, features, labels) of the raw data.
    """

    X: np.ndarray | sp.csr_matrix
    Y: np.ndarray
    fold: np.ndarray
    part: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    name: str | None
    seed: int
    feature_ratio: float
    min_label_positives: int
    n_folds: int
    feature_indices: np.ndarray
    label_indices: np.ndarray
    original_shape: tuple[int, int, int]

    @property
    def n_samples(self) -> int:
        return self.Y.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_labels(self) -> int:
        return self.Y.shape[1]

    def __repr__(self) -> str:
        return (f"PreparedData(name={self.name!r}, n_samples={self.n_samples}, n_features={self.n_features}, "
                f"n_labels={self.n_labels}, n_folds={self.n_folds}, seed={self.seed})")


def _registry_ratio(name) -> float:
    if name is None:
        return 1.0
    try:
        return dataset_info(name).feature_ratio
    except DataError:
        return 1.0


def prepare(data: MultiLabelData, feature_ratio: float | None = None, min_label_positives: int = 21,
            n_folds: int = 5, seed: int = 0) -> PreparedData:
    """Feature selection, label filtering and fold assignment (``method.md`` section 6).

    Parameters
    ----------
    data : MultiLabelData
    feature_ratio : float, optional
        Fraction of features kept by column sum; default: the registry ratio for ``data.name``
        (1.0 for unregistered data).
    min_label_positives : int, default 21
        Labels with fewer positives in the whole data set are dropped (21 = "drop <= 20").
    n_folds, seed : int
        Passed to :func:`make_folds`; the same seed gives the same folds.

    Notes
    -----
    Scaling is *not* done here: it is fitted per fold on the training part by :func:`fold_split`.
    A sparse ``X`` stays sparse.
    """
    if not isinstance(data, MultiLabelData):
        raise TypeError(f"data must be a MultiLabelData, got {type(data).__name__}")
    ratio = _registry_ratio(data.name) if feature_ratio is None else float(feature_ratio)
    X, fkept = select_features(data.X, ratio)
    if sp.issparse(X):
        has_nan = np.isnan(X.data).any()
    else:
        has_nan = np.isnan(X).any()
    if has_nan:
        raise DataError(f"data set {data.name!r} has missing feature values; impute them before prepare()")
    Y, lkept = filter_labels(data.Y, min_label_positives)
    fold, part = make_folds(Y, n_folds=n_folds, seed=seed)
    return PreparedData(
        X=X, Y=np.ascontiguousarray(Y, dtype=np.uint8), fold=fold, part=part,
        feature_names=[data.feature_names[j] for j in fkept], label_names=[data.label_names[j] for j in lkept],
        name=data.name, seed=int(seed), feature_ratio=ratio, min_label_positives=int(min_label_positives),
        n_folds=int(n_folds), feature_indices=fkept, label_indices=lkept,
        original_shape=(data.n_samples, data.n_features, data.n_labels),
    )


@dataclass
class Split:
    """Dense float32 matrices of one fold; features min-max scaled with training statistics.

    ``scale_min`` and ``scale_range`` are the fitted per-feature minimum and range (0 for constant
    training columns, which are set to 0 in every part).
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    fold: int
    label_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    scale_min: np.ndarray | None = None
    scale_range: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"Split(fold={self.fold}, train={self.train_idx.size}, val={self.val_idx.size}, "
                f"test={self.test_idx.size}, features={self.X_train.shape[1]}, labels={self.Y_train.shape[1]})")


def _dense_rows(X, idx) -> np.ndarray:
    rows = X[idx]
    return rows.toarray().astype(np.float64) if sp.issparse(rows) else np.asarray(rows, dtype=np.float64)


def fold_split(prepared: PreparedData, fold: int) -> Split:
    """Training (the other folds), validation and test (the two halves of ``fold``) matrices.

    Min-max scaling is fitted on the training part only: ``(x - min_train) / (max_train - min_train)``.
    Validation and test values are not clipped and may fall outside [0, 1]. Columns constant on the
    training part carry no learnable information and become 0 in every part.

    Raises
    ------
    DataError
        If some label has no positive instance in the training part.
    """
    if not isinstance(prepared, PreparedData):
        raise TypeError(f"prepared must be a PreparedData, got {type(prepared).__name__}")
    if int(fold) != fold or not 0 <= fold < prepared.n_folds:
        raise ValueError(f"fold must be an integer in 0..{prepared.n_folds - 1}, got {fold!r}")
    fold = int(fold)
    held = prepared.fold == fold
    train_idx = np.flatnonzero(~held)
    val_idx = np.flatnonzero(held & (prepared.part == 0))
    test_idx = np.flatnonzero(held & (prepared.part == 1))
    Y = prepared.Y
    missing = np.flatnonzero(Y[train_idx].sum(axis=0) == 0)
    if missing.size:
        names = [prepared.label_names[j] for j in missing[:5]]
        raise DataError(f"data set {prepared.name!r}, fold {fold}: label(s) {names} have no positive instance in "
                        "the training part; raise min_label_positives or use fewer folds")
    X_train = _dense_rows(prepared.X, train_idx)
    lo = X_train.min(axis=0)
    rng = X_train.max(axis=0) - lo
    constant = rng == 0
    # Dividing by 1 for constant columns avoids 0/0; multiplying by 0 then sets them to 0 everywhere.
    denom = np.where(constant, 1.0, rng)
    keep = (~constant).astype(np.float64)

    def scale(A):
        return ((A - lo) / denom * keep).astype(np.float32)

    def labels(idx):
        return Y[idx].astype(np.float32)

    return Split(
        X_train=scale(X_train), Y_train=labels(train_idx),
        X_val=scale(_dense_rows(prepared.X, val_idx)), Y_val=labels(val_idx),
        X_test=scale(_dense_rows(prepared.X, test_idx)), Y_test=labels(test_idx),
        train_idx=train_idx, val_idx=val_idx, test_idx=test_idx, fold=fold,
        label_names=list(prepared.label_names), feature_names=list(prepared.feature_names),
        scale_min=lo, scale_range=np.where(constant, 0.0, rng),
    )


# --------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------

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
        # A file object, so that numpy does not append ".npz" to the temporary name.
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


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


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


def dataset_statistics(data) -> dict:
    """Size and label statistics of a :class:`MultiLabelData` or :class:`PreparedData`.

    Returns
    -------
    dict
        ``instances, features, labels, cardinality`` (mean labels per instance), ``density``
        (cardinality / labels), ``mean_ir`` (MeanIR), ``max_ir`` (largest IRLbl), ``distinct_labelsets``
        and ``labelless`` (instances without any label).
    """
    from mlabs.selection.imbalance import label_imbalance_ratios, mean_imbalance_ratio

    if not hasattr(data, "X") or not hasattr(data, "Y"):
        raise TypeError(f"expected MultiLabelData or PreparedData, got {type(data).__name__}")
    Y = (np.asarray(data.Y) != 0).astype(np.uint8)
    n, q = Y.shape
    card = float(Y.sum()) / n if n else 0.0
    return {
        "instances": n,
        "features": int(data.X.shape[1]),
        "labels": q,
        "cardinality": card,
        "density": card / q if q else 0.0,
        "mean_ir": mean_imbalance_ratio(Y),
        "max_ir": float(label_imbalance_ratios(Y).max()),
        "distinct_labelsets": int(np.unique(Y, axis=0).shape[0]),
        "labelless": int((Y.sum(axis=1) == 0).sum()),
    }


def statistics_row(raw: MultiLabelData, prepared) -> dict:
    """One row of the data-set statistics table: the raw data and what preprocessing kept.

    Primed keys (``d'``, ``q'``, ``cardinality'``, ``MeanIR'``, ``label-less'``) describe
    ``prepared`` (a :class:`PreparedData`, or anything with ``X`` and ``Y``).
    """
    r, a = dataset_statistics(raw), dataset_statistics(prepared)
    return {
        "name": raw.name, "instances": r["instances"], "features": r["features"], "labels": r["labels"],
        "cardinality": r["cardinality"], "density": r["density"], "MeanIR": r["mean_ir"],
        "max IRLbl": r["max_ir"], "distinct label sets": r["distinct_labelsets"],
        "label-less": r["labelless"], "d'": a["features"], "q'": a["labels"],
        "cardinality'": a["cardinality"], "MeanIR'": a["mean_ir"], "label-less'": a["labelless"],
    }


def statistics_table(names: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None):
    """Raw and after-preprocessing statistics for registered data sets, as a ``pandas.DataFrame``.

    Columns as :func:`statistics_row`, after feature selection (registry ratio) and removal of
    labels with <= 20 positives. Index: data set name. Defaults to all 14.
    """
    import pandas as pd

    names = dataset_names() if names is None else [dataset_info(n).name for n in names]
    records = []
    for name in names:
        data = load_dataset(name, data_dir=data_dir)
        X, _ = select_features(data.X, dataset_info(name).feature_ratio)
        Y, _ = filter_labels(data.Y)
        kept = MultiLabelData(X=X, Y=Y, feature_names=[], label_names=[], name=name)
        records.append(statistics_row(data, kept))
    return pd.DataFrame.from_records(records).set_index("name")
