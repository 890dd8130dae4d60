"""The partial snapshot of a profile still training: the models finished on every data set (or,
while none is, the data sets finished on every model), read from the cell store, with the missing
cells named in the first line of every file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlabs import grid
from mlabs.config import load_params, train_cells, train_config
from mlabs.data import fold_split, load_dataset, load_prepared, prepare, save_prepared
from mlabs.profiles import main as profiles_main
from mlabs.partial_report import main, write_partial
from mlabs.store import CellStore
from test_report import write_cell  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = """data:
  datasets: [emotions, yeast]
train:
  models: [c2ae, dela]
  methods: [random, adaptive]
  folds: [0, 1]
sensitivity:
  datasets: []
  models: []
"""


def _metric(metric, dataset, model, method, fold):
    return 0.7 + 0.01 * fold + (0.02 if method == "adaptive" else 0.0) + (0.05 if dataset == "yeast" else 0.0)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Profile x (emotions, yeast; C2AE and DELA; random and adaptive; folds 0 and 1) whose store
    holds every C2AE cell and the DELA cells of emotions, under the fingerprints the grid
    computes; profile v is x with DELA alone, reading the same prepared data."""
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    for name, overlay in (("x", OVERLAY), ("v", OVERLAY.replace("[c2ae, dela]", "[dela]"))):
        (root / f"profiles/{name}").mkdir(parents=True)
        (root / f"profiles/{name}/overlay.yaml").write_text(overlay)
    assert profiles_main(["--root", str(root)]) == 0
    params = load_params(root / "profiles/x/params.yaml")
    prepared = root / "artifacts/x/prepared"
    for dataset in params["data"]["datasets"]:
        d = params["data"]
        save_prepared(prepare(load_dataset(dataset), n_folds=d["n_folds"], seed=d["seed"],
                              min_label_positives=d["min_label_positives"]), prepared / f"{dataset}.npz")
    spec = grid.GridSpec(str(prepared), str(root / "w"), str(root / "o"), train_config(params), store=str(root / "cells"))
    store, scratch = CellStore(spec.store), root / "scratch"
    for dataset in params["data"]["datasets"]:
        cells = train_cells(params, dataset, "c2ae") + (train_cells(params, dataset, "dela") if dataset == "emotions" else [])
        for cell in cells:
            folder = write_cell(scratch, cell.dataset, cell.model, cell.method, cell.fold, batch=cell.batch_size,
                                se=cell.selection_pressure, metric_value=_metric)
            fingerprint = spec.config.fingerprint(cell.model, cell.method, fold_split(
                load_prepared(prepared / f"{dataset}.npz"), cell.fold).digest())
            result = json.loads((folder / "result.json").read_text()) | {"fingerprint": fingerprint}
            result["cell"] = dict(cell.__dict__)
            store.put(CellStore.key(cell, fingerprint), result, (folder / "curves.tsv").read_text())
    (root / "artifacts/v").mkdir(parents=True)
    (root / "artifacts/v/prepared").symlink_to(prepared)
    return root


def test_reports_the_complete_model_and_says_what_is_missing(project):
    out = write_partial("x", project)
    assert out == project / "reports/x/partial"
    first = "**Partial snapshot of the x profile: 12 of 16 cells are finished. Reported: c2ae on all 2 data sets. " \
            "Not reported yet: dela (4 of 8 cells). dela alone where it is finished: " \
            "`python -m mlabs.partial_report x --model dela`.**"
    assert (out / "findings.md").read_text().splitlines()[0] == first
    assert (out / "README.md").read_text().splitlines()[0] == first
    page = (out / "report.html").read_text()
    assert first.strip("*") in page and "x (partial) profile" in page
    main_table = (out / "tables/main_macro_auc.md").read_text()
    assert "c2ae" in main_table and "dela" not in main_table
    assert "emotions" in main_table and "yeast" in main_table
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["emotions-c2ae.json", "yeast-c2ae.json"]


def test_without_a_finished_model_reports_the_finished_data_sets(project):
    stale = project / "reports/v/partial/cells/yeast-dela.json"   # of an earlier, larger snapshot
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("[]")
    out = write_partial("v", project)
    first = "**Partial snapshot of the v profile: 4 of 8 cells are finished. Reported: dela on 1 of 2 data sets " \
            "(emotions). Not reported yet: yeast (0 of 4 cells).**"
    assert (out / "findings.md").read_text().splitlines()[0] == first
    main_table = (out / "tables/main_macro_auc.md").read_text()
    assert "dela" in main_table and "emotions" in main_table and "yeast" not in main_table
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["emotions-dela.json"]


def test_nothing_to_report_and_unprepared_data_are_one_line_errors(project, tmp_path, capsys):
    assert main(["--root", str(project), "y"]) == 2
    assert "no profile 'y'" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "profiles/x").mkdir(parents=True)
    for name in ("params.yaml", "profiles/x/params.yaml", "profiles/x/overlay.yaml"):
        (empty / name).write_text((project / name).read_text())
    assert main(["--root", str(empty), "x"]) == 2
    assert "2 data sets of x are not prepared (emotions, yeast): run `dvc repro" in capsys.readouterr().err
    (empty / "artifacts/x").mkdir(parents=True)
    (empty / "artifacts/x/prepared").symlink_to(project / "artifacts/x/prepared")
    assert main(["--root", str(empty), "x"]) == 2
    assert "no model of x has finished cells on every data set, nor any data set on every model, yet " \
           "(0 of 16 cells finished)" in \
        capsys.readouterr().err


def test_one_model_alone_on_the_data_sets_where_it_is_finished(project, capsys):
    complete = write_partial("x", project) / "findings.md"
    before = complete.read_bytes()
    assert main(["--root", str(project), "x", "--model", "dela"]) == 0
    out = project / "reports/x/partial-dela"
    first = "**Partial snapshot of the x profile: 12 of 16 cells are finished. Reported: dela on 1 of 2 data sets " \
            "(emotions). Not reported yet: dela on yeast (0 of 4 cells).**"
    assert (out / "findings.md").read_text().splitlines()[0] == first
    assert "python -m mlabs.partial_report x --model dela" in (out / "README.md").read_text()
    assert "x (partial, dela) profile" in (out / "report.html").read_text()
    main_table = (out / "tables/main_macro_auc.md").read_text()
    assert "dela" in main_table and "c2ae" not in main_table and "yeast" not in main_table
    assert sorted(p.name for p in (out / "cells").iterdir()) == ["emotions-dela.json"]
    assert capsys.readouterr().out.splitlines()[0] == first.strip("*")
    # the snapshot of the complete model is another folder, left as it was
    assert complete.read_bytes() == before


def test_a_model_alone_that_is_not_in_the_profile_or_finished_nowhere_is_a_one_line_error(project, capsys):
    assert main(["--root", str(project), "x", "--model", "clif"]) == 2
    assert "model 'clif' is not trained by profile x (its models: c2ae, dela)" in capsys.readouterr().err
    (project / "profiles/w").mkdir(exist_ok=True)
    (project / "profiles/w/overlay.yaml").write_text(OVERLAY.replace("[c2ae, dela]", "[c2ae, mpvae]"))
    assert profiles_main(["--root", str(project)]) == 0
    (project / "artifacts/w").mkdir(parents=True, exist_ok=True)
    if not (project / "artifacts/w/prepared").exists():
        (project / "artifacts/w/prepared").symlink_to(project / "artifacts/x/prepared")
    assert main(["--root", str(project), "w", "--model", "mpvae"]) == 2
    assert capsys.readouterr().err.strip() == ("error: mpvae has no data set of w with every cell finished yet "
                                               "(0 of 8 cells finished): nothing to report")
    assert not (project / "reports/w/partial-mpvae").exists()
