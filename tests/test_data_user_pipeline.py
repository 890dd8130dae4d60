"""A user data set through the notebooks: prepare -> warm-up -> train -> report, tiny profile."""

from __future__ import annotations

import json

import nbformat
import pytest
import yaml
from test_data_user import _rows, write_arff, write_xml
from test_pipeline import TINY, _papermill


@pytest.mark.slow
def test_user_dataset_runs_end_to_end(tmp_path):
    pytest.importorskip("papermill")
    data = tmp_path / "data"
    data.mkdir()
    rows = _rows("end")  # 80 instances; a train/test pair, labels described by the XML
    write_arff(data / "toy-train.arff", rows=rows[:60])
    write_arff(data / "toy-test.arff.gz", rows=rows[60:], sparse=True)
    write_xml(data / "toy.xml")

    params = json.loads(json.dumps(TINY))  # a deep copy
    params["data"].update(datasets=["toy"], n_folds=4, min_label_positives=5, custom={"toy": {"nominal": "ordinal"}})
    params["train"].update(models=["c2ae"], methods=["random", "adaptive"], epochs=3, warmup_epochs=1,
                           batch_size=16)
    params["models"] = {"c2ae": {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    nbdir = tmp_path / "executed"
    nbdir.mkdir()
    _papermill("01_prepare", nbdir / "prepare.ipynb", tmp_path, data_dir=data, dataset="toy")
    _papermill("02_warmup", nbdir / "warmup.ipynb", tmp_path, data_dir=data, dataset="toy", model="c2ae")
    _papermill("03_train", nbdir / "train.ipynb", tmp_path, data_dir=data, dataset="toy", model="c2ae")
    _papermill("05_report", nbdir / "report.ipynb", tmp_path, data_dir=data)

    stats = json.loads((tmp_path / "reports/datasets/toy.json").read_text())
    assert (stats["instances"], stats["labels"], stats["q'"], stats["labels dropped"]) == (80, 4, 3, 1)
    assert stats["features"] == 5  # string id dropped, nominal ordinal
    record = (tmp_path / "user-data.sha256").read_text()
    assert "toy-train.arff" in record and "toy-test.arff.gz" in record and "toy.xml" in record
    results = sorted((tmp_path / "cells").rglob("result.json"))  # the cell store: the toy cells only
    assert len(results) == 2 and all(json.loads(p.read_text())["status"] == "ok" for p in results)
    table = (tmp_path / "reports/tables/main_macro_auc.md").read_text()
    assert "toy" in table
    assert "toy" in (tmp_path / "reports/tables/datasets.md").read_text()
    for f in nbdir.glob("*.ipynb"):
        nb = nbformat.read(f, as_version=4)
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
