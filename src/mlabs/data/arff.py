"""Reading MULAN data sets: ARFF (dense or sparse, plain or gzip) and the XML label file."""

from __future__ import annotations

import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .registry import _FIX_FILES, MULAN_NS, DataError



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
