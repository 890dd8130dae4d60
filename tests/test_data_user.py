"""User data sets (docs/data.md, "Add your own data set"), on small files written here.

One synthetic data set is written in every layout MULAN data sets come in (dense / sparse rows,
plain / gzip, labels first / last, one file / a train-test pair, with or without an XML file);
every layout must give the same arrays after preparation.
"""

from __future__ import annotations

import gzip
import html
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mlabs.data import (
    DataError,
    MultiLabelData,
    dataset_spec,
    fold_split,
    load_dataset,
    load_mulan,
    load_prepared,
    prepare,
    save_prepared,
    statistics_row,
    user_files,
)

# label names with a quote, escaped quotes, a space and punctuation
LABELS = ["it's", 'a "b"', "c, d", "plain"]
LEVELS = ("low", "mid", "high")
N = 80


def _toy(seed=0):
    """Features, levels (nominal), yes/no, ids (string) and labels of the synthetic data set."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(N, 3)), 3)
    X[rng.random((N, 3)) < 0.5] = 0.0  # zeros, so that sparse rows are sparse
    level = rng.integers(0, 3, N)
    yes = rng.integers(0, 2, N)
    Y = (rng.random((N, len(LABELS))) < 0.4).astype(int)
    Y[:, 3] = 0
    Y[:3, 3] = 1  # a label with 3 positives: dropped by min_label_positives=5
    Y[-5:] = 0  # instances without any label
    return X, level, yes, Y


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _attributes(labels_at: str) -> list[tuple[str, str]]:
    feats = [("f0", "numeric"), ("'f 1'", "REAL"), ("level", "{" + ",".join(LEVELS) + "}"),
             ("yes", "{no,yes}"), ("id", "string"), ("f2", "numeric")]
    labs = [(_quote(n), "{0,1}") for n in LABELS]
    return labs + feats if labels_at == "start" else feats + labs


def _rows(labels_at: str, missing: bool = False) -> list[list[str]]:
    X, level, yes, Y = _toy()
    rows = []
    for i in range(N):
        f = [str(X[i, 0]), "?" if missing and i == 7 else str(X[i, 1]), LEVELS[level[i]],
             ("no", "yes")[yes[i]], f"'id {i}'", str(X[i, 2])]
        labs = [str(v) for v in Y[i]]
        rows.append(labs + f if labels_at == "start" else f + labs)
    return rows


def write_arff(path: Path, *, labels_at="end", sparse=False, rows=None, relation="toy", missing=False) -> Path:
    attrs = _attributes(labels_at)
    rows = _rows(labels_at, missing) if rows is None else rows
    out = [f"% synthetic\n@relation {relation}\n"]
    out += [f"@attribute {name} {kind}" for name, kind in attrs]
    out.append("@data")
    for row in rows:
        if sparse:
            # absent = 0 for numbers, the first declared value for nominal attributes
            kept = [f"{j} {v}" for j, (v, (_, kind)) in enumerate(zip(row, attrs))
                    if not (v in ("0", "0.0", "-0.0") or (kind.startswith("{") and v == kind[1:].split(",")[0]))]
            out.append("{" + ",".join(kept) + "}")
        else:
            out.append(",".join(row))
    text = "\n".join(out) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_xml(path: Path, labels=LABELS) -> Path:
    body = "".join(f'  <label name="{html.escape(n, quote=True)}"></label>\n' for n in labels)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n'
                    f'<labels xmlns="http://mulan.sourceforge.net/labels">\n{body}</labels>\n')
    return path


def _prepared(data, **kw):
    kw = {"min_label_positives": 5, "n_folds": 4, "seed": 0, **kw}
    return prepare(data, **kw)


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def assert_same_prepared(a, b):
    np.testing.assert_array_equal(_dense(a.X), _dense(b.X))
    np.testing.assert_array_equal(a.Y, b.Y)
    np.testing.assert_array_equal(a.fold, b.fold)
    np.testing.assert_array_equal(a.part, b.part)
    assert a.feature_names == b.feature_names and a.label_names == b.label_names


@pytest.fixture
def reference(tmp_path):
    """The synthetic data set from a plain dense file with labels at the end, prepared."""
    folder = tmp_path / "ref"
    folder.mkdir()
    arff = write_arff(folder / "toy.arff")
    with pytest.warns(UserWarning, match=r"\['id'\] dropped"):
        data = load_mulan(arff, write_xml(folder / "toy.xml"))
    return data, _prepared(data)


# ------------------------------------------------------------------------------ what is read


def test_reference_contents(reference):
    data, prep = reference
    X, level, yes, Y = _toy()
    assert data.label_names == LABELS  # quotes, escapes, spaces and commas survive ARFF and XML
    np.testing.assert_array_equal(data.Y, Y)
    # string id dropped; the 3-valued nominal one-hot; the 2-valued one a single 0/1 column
    assert data.feature_names == ["f0", "f 1", "level=low", "level=mid", "level=high", "yes", "f2"]
    assert data.dropped_attributes == ["id"]
    expected = np.column_stack([X[:, 0], X[:, 1], np.eye(3)[level], yes, X[:, 2]])
    np.testing.assert_array_equal(data.X, expected)
    # the rare label is dropped; instances without labels are kept
    assert prep.label_names == LABELS[:3] and prep.n_samples == N
    row = statistics_row(data, prep)
    assert row["labels dropped"] == 1 and row["label-less'"] >= 5


@pytest.mark.parametrize("labels_at", ["start", "end"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_every_layout_gives_the_same_prepared_arrays(tmp_path, reference, labels_at, sparse, gz):
    arff = write_arff(tmp_path / ("toy.arff.gz" if gz else "toy.arff"), labels_at=labels_at, sparse=sparse)
    with pytest.warns(UserWarning, match="dropped"):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml"))
    assert sp.issparse(data.X) == sparse
    assert_same_prepared(_prepared(data), reference[1])


def test_xml_order_defines_label_order(tmp_path, reference):
    arff = write_arff(tmp_path / "toy.arff")
    with pytest.warns(UserWarning):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml", labels=LABELS[::-1]))
    assert data.label_names == LABELS[::-1]
    np.testing.assert_array_equal(data.Y, reference[0].Y[:, ::-1])


@pytest.mark.parametrize("labels_at", ["start", "end"])
def test_labels_by_position_without_xml(tmp_path, reference, labels_at):
    arff = write_arff(tmp_path / "toy.arff", labels_at=labels_at)
    with pytest.warns(UserWarning):
        data = load_mulan(arff, None, n_labels=len(LABELS), labels_at=labels_at)
    assert_same_prepared(_prepared(data), reference[1])


@pytest.mark.parametrize("labels_at, c", [("start", 4), ("end", -4)])
def test_meka_relation_gives_the_labels(tmp_path, reference, labels_at, c):
    arff = write_arff(tmp_path / "toy.arff", labels_at=labels_at, relation=f"'toy: -C {c} -split 66'")
    with pytest.warns(UserWarning):
        data = load_mulan(arff)
    assert_same_prepared(_prepared(data), reference[1])


def test_train_test_pair_equals_the_single_file(tmp_path, reference):
    rows = _rows("end")
    write_arff(tmp_path / "toy-train.arff", rows=rows[:50])
    write_arff(tmp_path / "toy-test.arff.gz", rows=rows[50:], sparse=True)  # formats may differ
    write_xml(tmp_path / "toy.xml")
    user = user_files("toy", None, tmp_path)
    assert [p.name for p in user.arff] == ["toy-train.arff", "toy-test.arff.gz"]
    with pytest.warns(UserWarning):
        data = load_dataset("toy", data_dir=tmp_path)
    assert data.files == [str(p) for p in user.arff]
    assert_same_prepared(_prepared(data), reference[1])


def test_ordinal_nominal_encoding(tmp_path, reference):
    arff = write_arff(tmp_path / "toy.arff")
    with pytest.warns(UserWarning):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml"), nominal="ordinal")
    assert data.feature_names == ["f0", "f 1", "level", "yes", "f2"]
    np.testing.assert_array_equal(data.X[:, 2], _toy()[1])  # position in the declared domain


def test_identifier_like_nominal_is_dropped(tmp_path):
    ids = [f"P{i:03d}" for i in range(10)]
    text = ("@relation ids\n@attribute protein {" + ",".join(ids) + "}\n@attribute x numeric\n"
            "@attribute L {0,1}\n@data\n" + "\n".join(f"{p},{i},{i % 2}" for i, p in enumerate(ids)) + "\n")
    (tmp_path / "ids.arff").write_text(text)
    with pytest.warns(UserWarning, match=r"\['protein'\] dropped"):
        data = load_mulan(tmp_path / "ids.arff", write_xml(tmp_path / "ids.xml", ["L"]))
    assert data.feature_names == ["x"]


def test_missing_values_are_imputed_with_the_training_mean(tmp_path):
    arff = write_arff(tmp_path / "toy.arff", missing=True)
    with pytest.warns(UserWarning):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml"))
    assert np.isnan(data.X[7, 1]) and np.isnan(data.X).sum() == 1
    prep = _prepared(data)
    fold = int(prep.fold[7])
    other = (fold + 1) % prep.n_folds  # instance 7 is in the training part of this fold
    split = fold_split(prep, other)
    k = int(np.flatnonzero(split.train_idx == 7)[0])
    col = prep.X[split.train_idx, 1]
    mean = np.nanmean(col)
    lo, hi = np.nanmin(col), np.nanmax(col)
    assert split.X_train[k, 1] == pytest.approx((mean - lo) / (hi - lo), abs=1e-6)
    assert not np.isnan(split.X_train).any() and not np.isnan(split.X_val).any()
    # held out (validation or test), it gets the mean of the training part too
    held = fold_split(prep, fold)
    assert not np.isnan(held.X_val).any() and not np.isnan(held.X_test).any()
    col = prep.X[held.train_idx, 1]
    lo, hi = np.nanmin(col), np.nanmax(col)
    X_held, idx_held = np.vstack([held.X_val, held.X_test]), np.concatenate([held.val_idx, held.test_idx])
    k = int(np.flatnonzero(idx_held == 7)[0])
    assert X_held[k, 1] == pytest.approx((np.nanmean(col) - lo) / (hi - lo), abs=1e-6)


def test_prepared_file_is_byte_identical_on_rerun(tmp_path, reference):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    save_prepared(reference[1], a)
    save_prepared(reference[1], b)
    assert a.read_bytes() == b.read_bytes()
    assert_same_prepared(load_prepared(a), reference[1])


# ------------------------------------------------------------------------------ checksum record


def test_checksum_recorded_then_change_detected(tmp_path, capsys):
    write_arff(tmp_path / "toy.arff")
    write_xml(tmp_path / "toy.xml")
    record = tmp_path / "user-data.sha256"
    with pytest.warns(UserWarning):
        load_dataset("toy", data_dir=tmp_path, checksums=record)
    assert "recorded" in capsys.readouterr().out
    lines = [line for line in record.read_text().splitlines() if not line.startswith("#")]
    assert sorted(line.split("  ")[1] for line in lines) == ["toy.arff", "toy.xml"]
    with pytest.warns(UserWarning):
        load_dataset("toy", data_dir=tmp_path, checksums=record)  # unchanged: fine, nothing added
    assert "recorded" not in capsys.readouterr().out
    rows = _rows("end")
    rows[0][0] = "9.5"
    write_arff(tmp_path / "toy.arff", rows=rows)
    with pytest.raises(DataError, match=r"toy\.arff changed since its sha256 was recorded in .*user-data\.sha256.*"
                                        r"stale.*delete the line of toy\.arff.*artifacts/warmup/toy"):
        load_dataset("toy", data_dir=tmp_path, checksums=record)


# ------------------------------------------------------------------------------ bad input


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_error_xml_label_absent(tmp_path):
    arff = write_arff(tmp_path / "toy.arff")
    xml = write_xml(tmp_path / "toy.xml", LABELS + ["ghost"])
    with pytest.raises(DataError, match=r"toy\.xml, line 7: label\(s\) \['ghost'\] not found among the "
                                        r"attributes of .*toy\.arff; check the names") as exc:
        load_mulan(arff, xml)
    _one_line(exc)


@pytest.mark.parametrize("value, shown", [("2", "2"), ("?", r"'\?' \(missing\)")])
def test_error_label_not_binary(tmp_path, value, shown):
    rows = _rows("end")
    rows[10][-2] = value
    write_arff(tmp_path / "toy-train.arff", rows=rows[:5])
    write_arff(tmp_path / "toy-test.arff", rows=rows[5:])
    write_xml(tmp_path / "toy.xml")
    # the second file of the pair; its line: comment, @relation, blank, 10 attributes, @data, 6th row
    with pytest.raises(DataError, match=rf"toy-test\.arff, line 20: label 'c, d' has value {shown}; "
                                        r"label values must be 0 or 1.*write 0 where") as exc:
        load_dataset("toy", data_dir=tmp_path)
    _one_line(exc)


def test_error_too_few_samples_for_folds_and_batch(tmp_path):
    arff = write_arff(tmp_path / "toy.arff")
    with pytest.warns(UserWarning):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml"))
    _prepared(data, batch_size=60)  # 80 - 20 = 60 training instances: one batch fits
    with pytest.raises(DataError, match=r"data set 'toy' \(.*toy\.arff\): 80 instances leave 60 for training "
                                        r".*fewer than one batch of 64; lower train\.batch_size or data\.n_folds") as exc:
        _prepared(data, batch_size=64)
    _one_line(exc)


def test_error_no_label_left(tmp_path):
    arff = write_arff(tmp_path / "toy.arff")
    with pytest.warns(UserWarning):
        data = load_mulan(arff, write_xml(tmp_path / "toy.xml"))
    with pytest.raises(DataError, match=r"data set 'toy' \(.*toy\.arff\): no label has at least 80 positives "
                                        r".*lower data\.min_label_positives in params\.yaml") as exc:
        _prepared(data, min_label_positives=80)
    _one_line(exc)


@pytest.mark.parametrize("name", ["yeast", "Yeast", "EMOTIONS"])
def test_error_name_collides_with_shipped(tmp_path, name):
    with pytest.raises(DataError, match=rf"data\.custom\.{name}: the name collides with the shipped data set"):
        dataset_spec({"mine": {}, name: {"arff": "x.arff"}}, "mine")
    with pytest.raises(DataError, match="is a shipped data set; give your own data set another name"):
        user_files(name, None, tmp_path)


def test_error_unknown_name_without_files(tmp_path):
    with pytest.raises(DataError, match=r"data set 'nosuch': not a shipped data set \(emotions, .*\) and no file "
                                        r".*nosuch\.arff\[\.gz\].*docs/data\.md"):
        load_dataset("nosuch", data_dir=tmp_path)


def test_error_bad_description(tmp_path):
    with pytest.raises(DataError, match=r"data\.custom\.toy: unknown key\(s\) \['ratio'\]; the keys are arff"):
        dataset_spec({"toy": {"ratio": 0.5}}, "toy")
    write_arff(tmp_path / "toy.arff")
    write_xml(tmp_path / "toy.xml")
    with pytest.raises(DataError, match=r"data\.custom\.toy\.arff in params\.yaml\) not found"):
        user_files("toy", {"arff": "other.arff"}, tmp_path)
    with pytest.raises(DataError, match=r"labels_at must be one of \('start', 'end'\)"):
        user_files("toy", {"labels_at": "middle"}, tmp_path)
    with pytest.raises(DataError, match=r"toy\.xml: with an XML label file the labels are found by name; remove"):
        load_dataset("toy", data_dir=tmp_path, spec={"labels_at": "end", "n_labels": 4})
    (tmp_path / "toy.xml").unlink()
    with pytest.raises(DataError, match=r"toy\.arff: no XML label file and no label count"):
        load_dataset("toy", data_dir=tmp_path)


def test_error_train_test_headers_differ(tmp_path):
    write_arff(tmp_path / "toy-train.arff", labels_at="end")
    write_arff(tmp_path / "toy-test.arff", labels_at="start")
    write_xml(tmp_path / "toy.xml")
    with pytest.raises(DataError, match=r"toy-test\.arff: attribute 1 is \"it's\" where .*toy-train\.arff has 'f0'; "
                                        "the files of a train/test pair must share one header"):
        load_dataset("toy", data_dir=tmp_path)


def test_shipped_prepare_is_unchanged_by_the_new_rules():
    """A dense in-memory data set without NaN: prepare as before, the batch check passes."""
    rng = np.random.default_rng(1)
    Y = (rng.random((100, 3)) < 0.4).astype(np.uint8)
    data = MultiLabelData(rng.random((100, 5)), Y, list("abcde"), ["x", "y", "z"], "mem")
    prep = prepare(data, min_label_positives=5, n_folds=5, seed=0, batch_size=80)
    assert prep.n_labels == 3 and prep.X.shape == (100, 5)
