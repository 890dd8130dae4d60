"""Tests of mlabs.data and mlabs._io.

Tests on shipped data use the real files in ``data/`` (expected values from ``data/README.md``);
parser edge cases and error paths use small synthetic files in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import scipy.sparse as sp

from mlabs import _io
from mlabs.data import (
    DataError,
    MultiLabelData,
    PreparedData,
    data_dir,
    dataset_info,
    dataset_names,
    dataset_statistics,
    filter_labels,
    fold_split,
    load_dataset,
    load_mulan,
    load_prepared,
    make_folds,
    prepare,
    save_prepared,
    select_features,
    statistics_table,
)

ALL = dataset_names()


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def loaded(data_dir):
    """Lazy per-module cache: each real data set is parsed at most once."""
    cache: dict[str, MultiLabelData] = {}

    def get(name):
        if name not in cache:
            cache[name] = load_dataset(name, data_dir=data_dir)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def prepared_emotions(loaded):
    return prepare(loaded("emotions"), seed=0)


@pytest.fixture(scope="module")
def prepared_llog(loaded):
    return prepare(loaded("LLOG-F"), seed=0)


def _write_pair(tmp_path, arff_text, labels, *, gz=False, stem="toy"):
    arff = tmp_path / (f"{stem}.arff.gz" if gz else f"{stem}.arff")
    data = arff_text.encode()
    arff.write_bytes(gzip.compress(data) if gz else data)
    xml = tmp_path / f"{stem}.xml"
    body = "".join(f'<label name="{n}"></label>\n' for n in labels)
    xml.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">\n'
                   f"{body}</labels>\n")
    return arff, xml


def _copy_shipped(name, src_dir, dst_dir):
    for suffix in (".arff.gz", ".xml"):
        shutil.copy(src_dir / f"{name}{suffix}", dst_dir / f"{name}{suffix}")


# ---------------------------------------------------------------------------------------- registry


def test_registry_names_and_lookup():
    assert ALL == ["emotions", "scene", "yeast", "Corel5k", "rcv1subset1", "rcv1subset2", "rcv1subset3",
                   "yahoo-Business1", "yahoo-Arts1", "bibtex", "tmc2007-500", "enron", "cal500", "LLOG-F"]
    assert dataset_info("corel5k").name == "Corel5k"
    assert dataset_info("LLOG-F").feature_ratio == 1.0
    assert dataset_info("rcv1subset2").feature_ratio == 0.02
    assert dataset_info("yahoo-arts1").feature_ratio == 0.05
    assert dataset_info("tmc2007-500").n_features_prepared == 500


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown data set 'tmc2007'.*emotions.*LLOG-F") as info:
        dataset_info("tmc2007")
    assert isinstance(info.value, DataError)


def test_registry_checksums_match_sha256sums(data_dir):
    listed = dict(reversed(line.split()) for line in (data_dir / "SHA256SUMS").read_text().splitlines() if line)
    for name in ALL:
        info = dataset_info(name)
        assert listed[info.arff_file] == info.sha256_arff
        assert listed[info.xml_file] == info.sha256_xml


def test_data_dir_env_and_project_walk(tmp_path, monkeypatch):
    monkeypatch.setenv("MLABS_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("MLABS_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="MLABS_DATA_DIR"):
        data_dir()
    monkeypatch.delenv("MLABS_DATA_DIR")
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data.dvc").write_text("outs: []\n")
    (root / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(root / "a" / "b")
    assert data_dir() == root / "data"


# ------------------------------------------------------------------------------- real data: loading


@pytest.mark.parametrize("name", ALL)
def test_shipped_dataset_matches_readme(loaded, name):
    info = dataset_info(name)
    data = loaded(name)
    assert (data.n_samples, data.n_features, data.n_labels) == (info.n_instances, info.n_features, info.n_labels)
    assert sp.issparse(data.X) == info.sparse
    if info.sparse:
        assert isinstance(data.X, sp.csr_matrix)
    assert data.Y.dtype == np.uint8 and set(np.unique(data.Y)) == {0, 1}
    assert len(data.feature_names) == info.n_features and len(data.label_names) == info.n_labels
    assert not set(data.feature_names) & set(data.label_names)
    s = dataset_statistics(data)
    assert s["cardinality"] == pytest.approx(info.cardinality, abs=5e-4)
    assert s["density"] == pytest.approx(info.density, abs=5e-4)
    assert s["mean_ir"] == pytest.approx(info.mean_ir, abs=0.05)
    assert s["max_ir"] == pytest.approx(info.max_ir, abs=0.05)
    assert s["distinct_labelsets"] == info.distinct_labelsets
    assert (data.Y.sum(axis=0) > 0).all()  # README: no label without positives


@pytest.mark.parametrize("name", ALL)
def test_shipped_dataset_after_preprocessing_matches_readme(loaded, name):
    info = dataset_info(name)
    data = loaded(name)
    X, fkept = select_features(data.X, info.feature_ratio)
    Y, lkept = filter_labels(data.Y)
    assert sp.issparse(X) == info.sparse
    assert X.shape == (info.n_instances, info.n_features_prepared)
    assert Y.shape[1] == info.n_labels_prepared
    s = dataset_statistics(MultiLabelData(X, Y, [], [], name))
    assert s["cardinality"] == pytest.approx(info.cardinality_prepared, abs=5e-4)
    assert s["mean_ir"] == pytest.approx(info.mean_ir_prepared, abs=0.05)
    assert s["labelless"] == info.labelless_prepared


def _xml_labels(path):
    return [el.get("name") for el in ET.parse(path).getroot().iter("{http://mulan.sourceforge.net/labels}label")]


def test_yeast_labels_in_xml_order(loaded, data_dir):
    data = loaded("yeast")
    expected = ["Class1", "Class2", "Class3", "Class6", "Class4", "Class10", "Class11", "Class5", "Class7",
                "Class8", "Class9", "Class12", "Class13", "Class14"]
    assert data.label_names == expected == _xml_labels(data_dir / "yeast.xml")
    # Independent read of the raw rows: ARFF order is Class1..Class14 at attributes 104..117.
    text = gzip.decompress((data_dir / "yeast.arff.gz").read_bytes()).decode()
    raw = np.loadtxt(text[text.index("@data") + 5:].strip().splitlines(), delimiter=",")
    for j, lab in enumerate(expected):
        arff_col = 103 + int(lab[5:]) - 1
        np.testing.assert_array_equal(data.Y[:, j], raw[:, arff_col])
    np.testing.assert_allclose(data.X, raw[:, :103])


def test_enron_labels_in_xml_order(loaded, data_dir):
    data = loaded("enron")
    assert data.label_names == _xml_labels(data_dir / "enron.xml")
    assert data.label_names[:3] == ["A.A1", "A.A2", "A.A3"]
    # In the ARFF the first label attribute (sparse index 1001) is A.A8.
    text = gzip.decompress((data_dir / "enron.arff.gz").read_bytes()).decode()
    rows = [r for r in text[text.index("@data") + 5:].splitlines() if r.strip()]
    a8 = np.array([1 if re.search(r"[{,]1001 1\b", r) else 0 for r in rows])
    np.testing.assert_array_equal(data.Y[:, data.label_names.index("A.A8")], a8)
    assert a8.sum() > 0


def test_llog_labels_first(loaded):
    data = loaded("LLOG-F")
    assert data.label_names[:3] == ["Errors", "Humor", "Speech_acts"]
    assert data.feature_names[0] == "tok0" and data.feature_names[-1] == "tok1003"
    assert dataset_statistics(data)["cardinality"] == pytest.approx(1.180, abs=5e-4)
    assert dataset_statistics(data)["labelless"] == 207
    assert set(np.unique(data.X.data)) == {1.0}  # features are binary presence, labels not mixed in


def test_load_dataset_case_insensitive_and_no_verify(data_dir):
    data = load_dataset("EMOTIONS", data_dir=data_dir, verify=False)
    assert data.name == "emotions" and data.X.shape == (593, 72)


def test_emotions_xy_fixture(emotions_xy):
    X, Y = emotions_xy
    assert X.shape == (593, 72) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert Y.shape == (593, 6) and Y.dtype == np.float32 and set(np.unique(Y)) == {0.0, 1.0}


# ----------------------------------------------------------------------------- parser (synthetic)


DENSE = """% a comment
@relation 'toy data'

@attribute 'first feature' numeric
@attribute lab_b {0,1}
@attribute "f 2" REAL
@attribute lab_a {0,1}
@attribute f3 {red,green}

@data
% comment in data
1.5,1,2,0,green
-3,0,?,1,red

0,1,4e2,1,'green'"""  # no trailing newline, like several MULAN files


@pytest.mark.parametrize("gz", [False, True])
def test_dense_parser_quoted_names_labels_in_middle(tmp_path, gz):
    arff, xml = _write_pair(tmp_path, DENSE, ["lab_a", "lab_b"], gz=gz)
    data = load_mulan(arff, xml)
    assert data.name == "toy"
    assert data.feature_names == ["first feature", "f 2", "f3"]
    assert data.label_names == ["lab_a", "lab_b"]  # XML order, not ARFF order
    np.testing.assert_array_equal(data.Y, [[0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(data.X, [[1.5, 2, 1], [-3, np.nan, 0], [0, 400, 1]])


SPARSE = """@relation sp
@attribute L1 {0,1}
@attribute L2 {0,1}
@attribute x0 numeric
@attribute x1 numeric
@attribute x2 numeric
@data
{0 1,3 2.5}
{}
{1 1, 2 -1,4 7}
{0 1,1 1}"""


def test_sparse_parser_labels_first(tmp_path):
    arff, xml = _write_pair(tmp_path, SPARSE, ["L2", "L1"])
    data = load_mulan(arff, xml, name="sp")
    assert isinstance(data.X, sp.csr_matrix)
    np.testing.assert_array_equal(data.X.toarray(), [[0, 2.5, 0], [0, 0, 0], [-1, 0, 7], [0, 0, 0]])
    np.testing.assert_array_equal(data.Y, [[0, 1], [0, 0], [1, 0], [1, 1]])
    assert data.feature_names == ["x0", "x1", "x2"]


# ------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"emotions\.arff\.gz not found.*dvc pull"):
        load_dataset("emotions", data_dir=tmp_path)


def test_checksum_mismatch(tmp_path, data_dir):
    _copy_shipped("emotions", data_dir, tmp_path)
    xml = tmp_path / "emotions.xml"
    xml.write_bytes(xml.read_bytes() + b"\n")  # still valid XML, different bytes
    actual = hashlib.sha256(xml.read_bytes()).hexdigest()
    with pytest.raises(DataError) as info:
        load_dataset("emotions", data_dir=tmp_path)
    msg = str(info.value)
    assert "emotions.xml" in msg and dataset_info("emotions").sha256_xml in msg and actual in msg
    assert "dvc pull" in msg and "dvc checkout" in msg
    assert load_dataset("emotions", data_dir=tmp_path, verify=False).Y.shape == (593, 6)


def test_truncated_gzip(tmp_path, data_dir):
    _copy_shipped("emotions", data_dir, tmp_path)
    arff = tmp_path / "emotions.arff.gz"
    arff.write_bytes(arff.read_bytes()[:50_000])
    with pytest.raises(DataError, match=r"emotions\.arff\.gz: corrupt or truncated gzip"):
        load_dataset("emotions", data_dir=tmp_path, verify=False)


def test_corrupt_gzip(tmp_path):
    arff, xml = _write_pair(tmp_path, DENSE, ["lab_a"])
    bad = tmp_path / "bad.arff.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match=r"bad\.arff\.gz: corrupt or truncated gzip"):
        load_mulan(bad, xml)
    plain = tmp_path / "plain.arff.gz"
    plain.write_bytes(DENSE.encode())
    with pytest.raises(DataError, match="not a gzip file"):
        load_mulan(plain, xml)


def test_errors_about_a_users_own_file_do_not_advise_dvc(tmp_path, data_dir):
    # DVC restores the shipped files only: a file of the user's own gets "check the path" instead
    arff, xml = _write_pair(tmp_path, DENSE, ["lab_a"])
    for call in (lambda: load_mulan(tmp_path / "nope.arff", xml), lambda: load_mulan(arff, tmp_path / "nope.xml")):
        with pytest.raises(DataError, match="nope") as info:
            call()
        assert "dvc pull" not in str(info.value) and "check the path" in str(info.value)
    _copy_shipped("emotions", data_dir, tmp_path)
    shipped = tmp_path / "emotions.arff.gz"
    shipped.write_bytes(shipped.read_bytes()[:50_000])
    with pytest.raises(DataError, match="dvc pull"):
        load_mulan(shipped, tmp_path / "emotions.xml")


def test_prepare_says_a_file_without_rows_has_too_few_instances(tmp_path):
    header = DENSE.split("% comment in data")[0]
    data = load_mulan(*_write_pair(tmp_path, header, ["lab_a", "lab_b"]))
    assert data.n_samples == 0
    with pytest.raises(DataError, match=r"0 samples are too few for 5 folds.*data rows"):
        prepare(data, min_label_positives=21)
    with pytest.raises(DataError, match=r"0 samples are too few"):
        prepare(data, batch_size=128)


def test_truncated_arff_dense(tmp_path):
    arff, xml = _write_pair(tmp_path, DENSE[:-8], ["lab_a", "lab_b"])  # last row cut mid-way
    with pytest.raises(DataError, match=r"toy\.arff, line 15: 4 values, expected 5"):
        load_mulan(arff, xml)


def test_truncated_arff_sparse_and_header(tmp_path):
    arff, xml = _write_pair(tmp_path, SPARSE[:-4], ["L1", "L2"])
    with pytest.raises(DataError, match=r"toy\.arff, line 11: expected a sparse row"):
        load_mulan(arff, xml)
    arff, xml = _write_pair(tmp_path, SPARSE[:40], ["L1", "L2"])
    with pytest.raises(DataError, match="no @data line"):
        load_mulan(arff, xml)


def test_xml_label_missing_from_arff(tmp_path):
    arff, xml = _write_pair(tmp_path, DENSE, ["lab_a", "lab_zzz"])
    with pytest.raises(DataError, match=r"toy\.xml, line 4: label\(s\) \['lab_zzz'\] not found"):
        load_mulan(arff, xml)


@pytest.mark.parametrize("text, line", [(DENSE.replace("-3,0,?,1", "-3,0,?,2"), 13),
                                        (SPARSE.replace("{1 1, 2", "{1 3, 2"), 10)])
def test_label_not_binary(tmp_path, text, line):
    labels = ["lab_a", "lab_b"] if "lab_a" in text else ["L1", "L2"]
    arff, xml = _write_pair(tmp_path, text, labels)
    bad_label = "lab_a" if "lab_a" in text else "L2"
    with pytest.raises(DataError, match=rf"toy\.arff, line {line}: label '{bad_label}' has value .*must be 0 or 1"):
        load_mulan(arff, xml)


def test_label_missing_value_is_error(tmp_path):
    arff, xml = _write_pair(tmp_path, DENSE.replace("1.5,1,2", "1.5,?,2"), ["lab_a", "lab_b"])
    with pytest.raises(DataError, match=r"line 12: label 'lab_b' has value '\?' \(missing\)"):
        load_mulan(arff, xml)


def test_all_labels_filtered():
    Y = np.zeros((50, 3), dtype=np.uint8)
    Y[:20, 0] = 1
    with pytest.raises(DataError, match="no label has at least 21 positives"):
        filter_labels(Y)
    data = MultiLabelData(np.ones((50, 2)), Y, ["a", "b"], ["x", "y", "z"], "toy")
    with pytest.raises(DataError, match=r"data set .toy.: no label .* lower data\.min_label_positives in params\.yaml"):
        prepare(data)


def test_fold_without_training_positives():
    n = 60
    Y = np.zeros((n, 2), dtype=np.uint8)
    Y[::2, 0] = 1
    Y[:5, 1] = 1
    fold = np.arange(n) % 5
    fold[:5] = 3  # every positive of label "rare" sits in fold 3
    prep = PreparedData(X=np.random.default_rng(0).random((n, 4)), Y=Y, fold=fold, part=np.arange(n) % 2,
                        feature_names=list("abcd"), label_names=["common", "rare"], name="toy", seed=0,
                        feature_ratio=1.0, min_label_positives=1, n_folds=5, feature_indices=np.arange(4),
                        label_indices=np.arange(2), original_shape=(n, 4, 2))
    fold_split(prep, 0)  # fine: the rare positives are in training
    with pytest.raises(DataError, match=r"'toy', fold 3: label\(s\) \['rare'\] have no positive"):
        fold_split(prep, 3)


# ------------------------------------------------------------------------------------- preprocessing


def test_select_features_top_sums_stable_ties():
    X = np.array([[3, 5, 0, 1, 5, 2],
                  [0, 0, 5, 0, 0, 0]], dtype=float)  # column sums 3, 5, 5, 1, 5, 2
    Xs, kept = select_features(X, 0.5)  # k = 3 of the three tied 5s... plus nothing else
    np.testing.assert_array_equal(kept, [1, 2, 4])
    Xs, kept = select_features(X, 0.34)  # k = int(2.04) = 2: the first two of the tied columns
    np.testing.assert_array_equal(kept, [1, 2])
    np.testing.assert_array_equal(Xs, X[:, [1, 2]])
    Xs, kept = select_features(X, 0.7)  # k = 4: 5, 5, 5 and then the 3 of column 0, kept in order
    np.testing.assert_array_equal(kept, [0, 1, 2, 4])
    Xs, kept = select_features(X, 1.0)
    np.testing.assert_array_equal(kept, np.arange(6))
    with pytest.raises(ValueError, match="ratio"):
        select_features(X, 0.0)
    with pytest.raises(ValueError, match="keeps no column"):
        select_features(X, 0.1)


def test_select_features_sparse_matches_dense_and_is_topk():
    rng = np.random.default_rng(3)
    dense = rng.integers(0, 3, size=(40, 57)).astype(float) * (rng.random((40, 57)) < 0.3)
    Xs, kept = select_features(sp.csr_matrix(dense), 0.2)
    Xd, kept_d = select_features(dense, 0.2)
    assert sp.issparse(Xs) and Xs.shape == (40, 11)
    np.testing.assert_array_equal(kept, kept_d)
    np.testing.assert_array_equal(Xs.toarray(), Xd)
    sums = dense.sum(axis=0)
    dropped = np.setdiff1d(np.arange(57), kept)
    assert sums[kept].min() >= sums[dropped].max()
    assert np.all(np.diff(kept) > 0)


def test_select_features_rcv1_keeps_top_column_sums(loaded):
    data = loaded("rcv1subset1")
    Xs, kept = select_features(data.X, 0.02)
    assert kept.size == 944 and sp.issparse(Xs)
    sums = np.asarray(data.X.sum(axis=0)).ravel()
    dropped = np.setdiff1d(np.arange(sums.size), kept)
    assert sums[kept].min() >= sums[dropped].max()


def test_filter_labels_threshold_meaning():
    Y = np.zeros((100, 3), dtype=np.uint8)
    Y[:20, 0] = 1  # 20 positives: dropped (<= 20)
    Y[:21, 1] = 1  # 21 positives: kept
    Y[:90, 2] = 1
    Yk, kept = filter_labels(Y)
    np.testing.assert_array_equal(kept, [1, 2])
    np.testing.assert_array_equal(Yk, Y[:, 1:])
    np.testing.assert_array_equal(filter_labels(Y, min_positives=20)[1], [0, 1, 2])


def test_prepare_emotions(prepared_emotions, loaded):
    p = prepared_emotions
    assert (p.n_samples, p.n_features, p.n_labels) == (593, 72, 6)
    assert p.label_names == loaded("emotions").label_names
    assert p.original_shape == (593, 72, 6) and p.feature_ratio == 1.0


def test_prepare_sparse_stays_sparse_and_drops_labels(prepared_llog, loaded):
    p = prepared_llog
    assert sp.issparse(p.X) and p.X.shape == (1460, 1004)
    assert p.n_labels == 22
    counts = loaded("LLOG-F").Y.sum(axis=0)
    np.testing.assert_array_equal(p.label_indices, np.flatnonzero(counts > 20))
    assert p.label_names == [loaded("LLOG-F").label_names[j] for j in p.label_indices]


# --------------------------------------------------------------------------------------------- folds


@pytest.mark.parametrize("which", ["prepared_emotions", "prepared_llog"])
def test_folds_partition_and_halves(request, which):
    p = request.getfixturevalue(which)
    n = p.n_samples
    assert p.fold.shape == p.part.shape == (n,)
    assert set(np.unique(p.fold)) == set(range(5)) and set(np.unique(p.part)) == {0, 1}
    sizes = np.bincount(p.fold, minlength=5)
    assert sizes.sum() == n
    assert np.all(np.abs(sizes - n / 5) <= 0.03 * n), sizes
    for f in range(5):
        val = np.sum((p.fold == f) & (p.part == 0))
        test = np.sum((p.fold == f) & (p.part == 1))
        assert (val, test) == (sizes[f] // 2, sizes[f] - sizes[f] // 2)
        s = fold_split(p, f)
        parts = np.concatenate([s.train_idx, s.val_idx, s.test_idx])
        assert np.array_equal(np.sort(parts), np.arange(n))  # disjoint and covering
    # Stratification: every label's positives are spread evenly over the folds (each fold near 1/5);
    # a plain random split breaks this bound for some label of these data sets.
    for j in range(p.n_labels):
        per_fold = np.bincount(p.fold[p.Y[:, j] == 1], minlength=5)
        expected = per_fold.sum() / 5
        assert np.abs(per_fold - expected).max() <= 2 + 0.15 * expected, (p.label_names[j], per_fold)


def test_folds_reproducible_and_seed_dependent(loaded):
    Y = filter_labels(loaded("yeast").Y)[0]
    state = np.random.get_state()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    f1, p1 = make_folds(Y, seed=7)
    after = np.random.get_state()[1]
    np.testing.assert_array_equal(before, after)  # the caller's global RNG state is restored
    f2, p2 = make_folds(Y, seed=7)
    f3, p3 = make_folds(Y, seed=8)
    np.random.set_state(state)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(f1, f3)
    assert not np.array_equal(p1, p3)


# ------------------------------------------------------------------------------------------- scaling


def test_fold_split_scaling_fitted_on_train(prepared_emotions):
    p = prepared_emotions
    s = fold_split(p, 1)
    for A in (s.X_train, s.Y_train, s.X_val, s.Y_val, s.X_test, s.Y_test):
        assert A.dtype == np.float32
    assert s.X_train.min() == 0.0 and s.X_train.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(s.X_train.min(axis=0), 0.0)
    np.testing.assert_allclose(s.X_train.max(axis=0), 1.0, rtol=1e-6)
    raw = p.X
    lo, hi = raw[s.train_idx].min(axis=0), raw[s.train_idx].max(axis=0)
    np.testing.assert_allclose(s.X_test, (raw[s.test_idx] - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    # Would fail if the scaler were fitted on all rows: then every value would lie in [0, 1].
    held = np.concatenate([s.X_val, s.X_test])
    assert (held < 0).any() or (held > 1).any()
    np.testing.assert_array_equal(s.Y_test, p.Y[s.test_idx])


def test_fold_split_constant_columns_and_sparse(prepared_llog):
    s = fold_split(prepared_llog, 0)
    assert isinstance(s.X_train, np.ndarray) and s.X_train.shape[1] == 1004
    const = s.scale_range == 0
    assert const.any()  # some words never occur in the training part
    assert (s.X_train[:, const] == 0).all() and (s.X_val[:, const] == 0).all() and (s.X_test[:, const] == 0).all()
    assert s.X_train.min() == 0 and s.X_train.max() == 1


# --------------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("which", ["prepared_emotions", "prepared_llog"])
def test_save_load_roundtrip(request, tmp_path, which):
    p = request.getfixturevalue(which)
    path = tmp_path / "prep.npz"
    assert save_prepared(p, path) == path
    assert sorted(os.listdir(tmp_path)) == ["prep.npz"]  # no temporary left over
    q = load_prepared(path)
    assert sp.issparse(q.X) == sp.issparse(p.X)
    Xp = p.X.toarray() if sp.issparse(p.X) else p.X
    Xq = q.X.toarray() if sp.issparse(q.X) else q.X
    np.testing.assert_array_equal(Xp, Xq)
    for attr in ("Y", "fold", "part", "feature_indices", "label_indices"):
        np.testing.assert_array_equal(getattr(p, attr), getattr(q, attr))
    for attr in ("feature_names", "label_names", "name", "seed", "feature_ratio", "min_label_positives",
                 "n_folds", "original_shape"):
        assert getattr(p, attr) == getattr(q, attr), attr
    np.testing.assert_array_equal(fold_split(p, 2).X_val, fold_split(q, 2).X_val)


def test_load_prepared_rejects_other_files(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.arange(3))
    with pytest.raises(DataError, match="not a prepared data file"):
        load_prepared(bad)
    with pytest.raises(DataError, match="not found"):
        load_prepared(tmp_path / "missing.npz")


def test_atomic_path_keeps_target_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _io.atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.parent == tmp_path and tmp != target
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_write_json_and_text_atomic(tmp_path):
    path = _io.write_json_atomic({"b": 1, "a": [1, 2]}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # sorted keys
    assert (path.stat().st_mode & 0o777) != 0o600  # not mkstemp's private mode
    _io.write_text_atomic("hello\n", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text() == "hello\n"
    with pytest.raises(TypeError):
        _io.write_json_atomic({"x": object()}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["r.json", "t.txt"]


# ----------------------------------------------------------------------------------------- statistics


def test_statistics_table(data_dir):
    df = statistics_table(["emotions", "llog-f"], data_dir=data_dir)
    assert list(df.index) == ["emotions", "LLOG-F"]
    row = df.loc["LLOG-F"]
    assert (row["instances"], row["features"], row["labels"]) == (1460, 1004, 75)
    assert (row["d'"], row["q'"], row["label-less"], row["label-less'"]) == (1004, 22, 207, 393)
    assert row["cardinality'"] == pytest.approx(0.911, abs=5e-4)
    assert row["MeanIR'"] == pytest.approx(3.9, abs=0.05)
    assert df.loc["emotions", "distinct label sets"] == 27


def test_dataset_statistics_on_prepared(prepared_llog):
    s = dataset_statistics(prepared_llog)
    assert (s["instances"], s["features"], s["labels"], s["labelless"]) == (1460, 1004, 22, 393)
