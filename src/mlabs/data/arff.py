"""Reading MULAN data sets: ARFF (dense or sparse, plain or gzip) and the XML label file."""

from __future__ import annotations

import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
import zlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .registry import MULAN_NS, DataError, fix_for_file

__all__ = ["MultiLabelData", "load_mulan", "NOMINAL_ENCODINGS", "LABEL_POSITIONS"]

NOMINAL_ENCODINGS = ("onehot", "ordinal")
LABEL_POSITIONS = ("start", "end")


class MatrixShape:
    """``n_samples``, ``n_features``, ``n_labels`` of a data set holding ``X`` (n, d) and ``Y`` (n, q)."""

    @property
    def n_samples(self) -> int:
        return self.Y.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_labels(self) -> int:
        return self.Y.shape[1]


@dataclass
class MultiLabelData(MatrixShape):
    """A multi-label data set as read from disk.

    Attributes
    ----------
    X : numpy.ndarray (float64) or scipy.sparse.csr_matrix
        Features, ``(n_samples, n_features)``; CSR when the ARFF file is sparse. Missing values
        (``?``) are NaN.
    Y : numpy.ndarray of uint8, ``(n_samples, n_labels)``
        0/1 label matrix, columns in the order of the XML label file.
    feature_names, label_names : list of str
        Feature names in ARFF order (a one-hot encoded nominal attribute gives ``name=value``
        columns); label names in XML order.
    name : str or None
    files : list of str
        The files read (for messages); empty when built in memory.
    dropped_attributes : list of str
        Feature attributes not turned into features: string attributes and identifier-like
        nominal attributes (see :func:`load_mulan`).
    """

    X: np.ndarray | sp.csr_matrix
    Y: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    name: str | None = None
    files: list[str] = field(default_factory=list)
    dropped_attributes: list[str] = field(default_factory=list)

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
    kind: str  # "numeric", "nominal" or "string" (string and date attributes)
    values: tuple[str, ...] = ()  # nominal domain

    @property
    def numeric_domain(self) -> bool:
        """A nominal attribute whose values are all numbers (the usual ``{0,1}``)."""
        try:
            [float(v) for v in self.values]
        except ValueError:
            return False
        return True


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
        raise DataError(f"file not found: {path}; {fix_for_file(path)}") from None
    is_gzip = raw[:2] == b"\x1f\x8b"
    if is_gzip:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip file ({exc}); {fix_for_file(path)}") from exc
    elif path.suffix == ".gz":
        raise DataError(f"{path}: named .gz but is not a gzip file; {fix_for_file(path)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Weka writes ARFF in the platform encoding; latin-1 decodes any byte string.
        return raw.decode("latin-1")


def _parse_header(header: str, path: Path) -> tuple[list[_Attribute], str]:
    """The attributes and the ``@relation`` name of an ARFF header."""
    attrs: list[_Attribute] = []
    relation = ""
    for lineno, line in enumerate(header.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "%":
            continue
        if stripped[:9].lower() == "@relation":
            relation = _unquote(stripped[9:])
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
            values = tuple(_unquote(v) for v in _split_dense_row(spec[1:-1]) if v.strip())
            attrs.append(_Attribute(name, "nominal", values))
        elif spec.lower() in ("numeric", "real", "integer"):
            attrs.append(_Attribute(name, "numeric"))
        elif spec.lower() == "string" or spec[:4].lower() == "date":
            attrs.append(_Attribute(name, "string"))
        else:
            raise DataError(f"{path}, line {lineno}: attribute {name!r} has unsupported type {spec!r} "
                            "(numeric/real/integer, nominal, string and date attributes are supported); "
                            "convert it to one of these")
    if not attrs:
        raise DataError(f"{path}: no @attribute lines in the header (not an ARFF file, or truncated)")
    return attrs, relation


def _nominal_codes(attr: _Attribute) -> dict[str, float]:
    """Value -> number for a nominal attribute: the number itself if the whole domain is numeric
    (the usual ``{0,1}``), else the position in the declared domain."""
    try:
        return {v: float(v) for v in attr.values}
    except ValueError:
        return {v: float(i) for i, v in enumerate(attr.values)}


def _convert_values(tokens: Sequence[str], attr: _Attribute, where) -> np.ndarray:
    """Slow, general conversion of one attribute's raw tokens (quotes, '?', nominal strings).

    ``where(k)`` describes the position of token k for error messages. String attributes give NaN
    (they are dropped after parsing).
    """
    if attr.kind == "string":
        return np.full(len(tokens), np.nan)
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
        raise DataError(f"file not found: {xml_path}; {fix_for_file(xml_path)}") from None
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


@dataclass
class _ArffFile:
    """One ARFF file parsed into numbers: every attribute a column (labels included)."""

    path: Path
    relation: str
    attrs: list[_Attribute]
    values: np.ndarray | sp.csr_matrix  # (rows, attributes); nominal -> value or domain position
    lines: np.ndarray  # line number of each data row


def _read_arff(path: Path) -> _ArffFile:
    text = _read_text(path)
    m = _DATA_RE.search(text)
    if m is None:
        raise DataError(f"{path}: no @data line (not an ARFF file, or truncated header)")
    attrs, relation = _parse_header(text[: m.start()], path)
    seen = set()
    for attr in attrs:
        if attr.name in seen:
            raise DataError(f"{path}: duplicate attribute name {attr.name!r}; rename one of them")
        seen.add(attr.name)
    first_line = text.count("\n", 0, m.end()) + 1
    rows, lines = _data_rows(text[m.end():], first_line)
    n, a = len(rows), len(attrs)
    if rows and rows[0][0] == "{":
        r, c, v = _parse_sparse(rows, lines, attrs, path)
        values = sp.csr_matrix((v, (r, c)), shape=(n, a), dtype=np.float64)
        values.sum_duplicates()
    else:
        values = _parse_dense(rows, lines, attrs, path)
    return _ArffFile(path, relation, attrs, values, np.asarray(lines, dtype=np.int64))


def _same_header(first: _ArffFile, other: _ArffFile) -> None:
    """The files of a train/test pair must declare the same attributes in the same order."""
    a, b = first.attrs, other.attrs
    for j in range(max(len(a), len(b))):
        if j >= len(a) or j >= len(b) or a[j] != b[j]:
            this = f"{b[j].name!r}" if j < len(b) else "nothing"
            that = f"{a[j].name!r}" if j < len(a) else "nothing"
            raise DataError(f"{other.path}: attribute {j + 1} is {this} where {first.path} has {that}; "
                            "the files of a train/test pair must share one header (same attributes, same order)")


_MEKA_C = re.compile(r"-C\s+(-?\d+)")


def _label_columns(attrs, arff: Path, xml_path, n_labels, labels_at) -> tuple[np.ndarray, list[str]]:
    """Columns of the labels and their names: by XML name (XML order), or a block at one end."""
    if xml_path is not None:
        if n_labels is not None or labels_at is not None:
            raise DataError(f"{xml_path}: with an XML label file the labels are found by name; "
                            "remove n_labels / labels_at (they describe files without XML)")
        label_names = _read_label_names(xml_path)
        position = {attr.name: j for j, attr in enumerate(attrs)}
        missing = [lab for lab in label_names if lab not in position]
        if missing:
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            raise DataError(f"{xml_path}, line {_xml_line(xml_path, missing[0])}: label(s) {missing[:5]}{more} "
                            f"not found among the attributes of {arff}; check the names (quotes, spaces, "
                            "escapes) or that the XML and ARFF files belong together")
        return np.array([position[lab] for lab in label_names], dtype=np.int64), list(label_names)
    if n_labels is None:
        raise DataError(f"{arff}: no XML label file and no label count; add <name>.xml next to it, or give "
                        "n_labels and labels_at (start or end) in params.yaml data.custom.<name>")
    if labels_at not in LABEL_POSITIONS:
        raise DataError(f"{arff}: labels_at must be one of {LABEL_POSITIONS} when there is no XML file, "
                        f"got {labels_at!r}")
    q, a = int(n_labels), len(attrs)
    if not 0 < q < a:
        raise DataError(f"{arff}: n_labels={n_labels} must be between 1 and {a - 1} (the file has {a} attributes)")
    cols = np.arange(q) if labels_at == "start" else np.arange(a - q, a)
    return cols.astype(np.int64), [attrs[j].name for j in cols]


def _xml_line(xml_path: Path, label: str) -> int | str:
    """Line of the XML file that mentions ``label`` (``?`` if it cannot be found verbatim)."""
    try:
        for lineno, line in enumerate(Path(xml_path).read_text(errors="replace").splitlines(), start=1):
            if f'"{label}"' in line or f"'{label}'" in line:
                return lineno
    except OSError:
        pass
    return "?"


def _meka_labels(relation: str) -> tuple[int, str] | tuple[None, None]:
    """MEKA's ``-C q`` in ``@relation``: q > 0 labels at the start, q < 0 at the end."""
    m = _MEKA_C.search(relation)
    if m is None or int(m.group(1)) == 0:
        return None, None
    q = int(m.group(1))
    return abs(q), "start" if q > 0 else "end"


def _column(values, j: int) -> np.ndarray:
    col = values[:, j]
    return np.asarray(col.toarray()).ravel() if sp.issparse(col) else np.asarray(col, dtype=np.float64)


def _encode_features(values, attrs: list[_Attribute], nominal: str, where: str):
    """Numeric feature matrix from the parsed feature attributes.

    Numeric attributes and nominal attributes with a numeric domain keep their value. Other nominal
    attributes: dropped if identifier-like (more than two declared values, and more distinct values
    than half the instances); with more than
    two values one-hot (``nominal="onehot"``: one 0/1 column per declared value, ``name=value``) or
    the position in the declared domain (``"ordinal"``); with two values one 0/1 column (0 = the
    first declared value). String (and date) attributes are dropped. A missing value stays NaN
    (in every one-hot column of its attribute).
    """
    n = values.shape[0]
    pieces: list = []  # consecutive kept column indices (list) or an encoded block (array)
    names: list[str] = []
    dropped: list[str] = []
    for j, attr in enumerate(attrs):
        if attr.kind == "string":
            dropped.append(attr.name)
            continue
        if attr.kind == "nominal" and not attr.numeric_domain:
            col = _column(values, j)
            present = col[~np.isnan(col)]
            # identifier-like: most instances have a value of their own (one-hot would carry nothing)
            if len(attr.values) > 2 and np.unique(present).size > n / 2:
                dropped.append(attr.name)
                continue
            if nominal == "onehot" and len(attr.values) > 2:
                block = (col[:, None] == np.arange(len(attr.values))[None, :]).astype(np.float64)
                block[np.isnan(col)] = np.nan
                pieces.append(block)
                names += [f"{attr.name}={v}" for v in attr.values]
                continue
        if pieces and isinstance(pieces[-1], list):
            pieces[-1].append(j)
        else:
            pieces.append([j])
        names.append(attr.name)
    if dropped:
        warnings.warn(f"{where}: attribute(s) {dropped[:5]}{' ...' if len(dropped) > 5 else ''} dropped "
                      "(string/date attributes, and nominal ones with more distinct values than half the "
                      "instances, are identifiers or text, not features)", stacklevel=3)
    if len(pieces) == 1 and isinstance(pieces[0], list) and len(pieces[0]) == values.shape[1]:
        return values, names, dropped  # the common case: nothing to encode, no copy
    if sp.issparse(values):
        csc = values.tocsc()
        blocks = [csc[:, p] if isinstance(p, list) else sp.csc_matrix(p) for p in pieces]
        X = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
    else:
        blocks = [values[:, p] if isinstance(p, list) else p for p in pieces]
        X = np.hstack(blocks) if blocks else np.empty((n, 0))
    return X, names, dropped


def load_mulan(arff_path, xml_path: str | os.PathLike | None = None, name: str | None = None, *,
               n_labels: int | None = None, labels_at: str | None = None,
               nominal: str = "onehot") -> MultiLabelData:
    """Read a MULAN data set: ARFF file(s) (dense or sparse, plain or gzip) and the XML label file.

    Parameters
    ----------
    arff_path : path-like or sequence of path-like
        ARFF file; gzip is detected from the magic bytes. Several files (a train/test pair) must
        share one header; their rows are concatenated in the order given.
    xml_path : path-like, optional
        MULAN label file (``<labels xmlns="http://mulan.sourceforge.net/labels">``); the labels are
        the attributes of these names, wherever they are in the ARFF file. Without it, ``n_labels``
        and ``labels_at`` (``"start"`` or ``"end"``) say where the labels are, or a MEKA-style
        ``-C q`` in ``@relation`` does (q > 0: the first q attributes, q < 0: the last -q).
    name : str, optional
        Stored as ``MultiLabelData.name``; defaults to the first ARFF file name without suffixes.
    n_labels : int, optional
        Without ``xml_path``: the number of label attributes, found where ``labels_at`` says.
    labels_at : {"start", "end"}, optional
        Without ``xml_path``: whether the ``n_labels`` label attributes are the first or the last.
    nominal : {"onehot", "ordinal"}, default "onehot"
        Encoding of nominal features with more than two non-numeric values (see Notes).

    Returns
    -------
    MultiLabelData
        ``X`` is CSR for a sparse ARFF file and a float64 array otherwise; ``Y`` is uint8 with the
        label columns **in XML order**, wherever the labels sit in the ARFF file.

    Raises
    ------
    DataError
        Missing, corrupt or truncated files; an XML label absent from the ARFF header; label values
        other than 0/1 (the message names file, line and label); train/test headers that differ.

    Notes
    -----
    Features: numeric attributes and nominal ones with a numeric domain (``{0,1}``) keep their value;
    other nominal attributes become one 0/1 column if two-valued (0 = first declared value), else
    one-hot columns ``name=value`` (or their domain position with ``nominal="ordinal"``); string and
    date attributes, and nominal attributes with more than two values of which more than half the
    instances have one of their own (identifiers), are dropped with a warning. A missing value
    ``?`` is NaN in ``X`` (see :func:`fold_split` for its imputation) and an error in a label.
    """
    if nominal not in NOMINAL_ENCODINGS:
        raise ValueError(f"nominal must be one of {NOMINAL_ENCODINGS}, got {nominal!r}")
    paths = [Path(p) for p in ([arff_path] if isinstance(arff_path, (str, os.PathLike)) else arff_path)]
    if not paths:
        raise ValueError("no ARFF file given")
    xml_path = None if xml_path is None else Path(xml_path)
    files = [_read_arff(p) for p in paths]
    first = files[0]
    for other in files[1:]:
        _same_header(first, other)
    attrs = first.attrs
    if xml_path is None and n_labels is None and labels_at is None:
        n_labels, labels_at = _meka_labels(first.relation)
    label_cols, label_names = _label_columns(attrs, first.path, xml_path, n_labels, labels_at)
    for lab, j in zip(label_names, label_cols):
        attr = attrs[j]
        if attr.kind == "string" or (attr.kind == "nominal" and not set(attr.values) <= {"0", "1"}):
            domain = "string" if attr.kind == "string" else "{" + ",".join(attr.values) + "}"
            raise DataError(f"{first.path}: label attribute {lab!r} has type {domain}; labels must be numeric "
                            "or nominal {0,1}: recode the label to 0/1, or remove it from the XML file")

    if any(sp.issparse(f.values) for f in files):
        values = sp.vstack([sp.csr_matrix(f.values) for f in files], format="csr") if len(files) > 1 \
            else files[0].values
    else:
        values = np.vstack([f.values for f in files]) if len(files) > 1 else files[0].values
    origin = np.concatenate([np.full(len(f.lines), i) for i, f in enumerate(files)]).astype(np.int64)
    lines = np.concatenate([f.lines for f in files])

    L = values[:, label_cols]
    L = L.toarray() if sp.issparse(L) else L
    bad_r, bad_c = np.nonzero((L != 0) & (L != 1))  # NaN ('?') compares unequal, so it is caught too
    if bad_r.size:
        r, c = int(bad_r[0]), int(bad_c[0])
        value = float(L[r, c])
        shown = "'?' (missing)" if np.isnan(value) else f"{value:g}"
        raise DataError(f"{files[origin[r]].path}, line {lines[r]}: label {label_names[c]!r} has value {shown}; "
                        f"label values must be 0 or 1 ({bad_r.size} bad value(s) in total): write 0 where a "
                        "label is absent, or remove the attribute from the XML file if it is not a label")
    Y = L.astype(np.uint8)

    is_label = np.zeros(len(attrs), dtype=bool)
    is_label[label_cols] = True
    feat_cols = np.flatnonzero(~is_label)
    where = first.path if len(files) == 1 else f"{first.path} (+{len(files) - 1} more)"
    if sp.issparse(values):
        F = values.tocsc()[:, feat_cols].tocsr()
    else:
        F = values[:, feat_cols]
    X, feature_names, dropped = _encode_features(F, [attrs[j] for j in feat_cols], nominal, where)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        X.eliminate_zeros()
    else:
        X = np.ascontiguousarray(X, dtype=np.float64)
    if name is None:
        name = paths[0].name.split(".")[0]
    return MultiLabelData(X=X, Y=Y, feature_names=feature_names, label_names=list(label_names), name=name,
                          files=[str(p) for p in paths], dropped_attributes=dropped)
