"""scripts/overview_table.py: the README's breadth table is its output, and its rules on known input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("overview_table", ROOT / "scripts" / "overview_table.py")
ov = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ov)


def _report(folder: Path, rows: list[dict], datasets: list[str]) -> Path:
    (folder / "tables").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "tables" / "main_macro_auc.csv", index=False)
    pd.DataFrame({"dataset": datasets, "q'": [6, 14], "MeanIR'": [1.478, 7.197]}).to_csv(
        folder / "tables" / "datasets.csv", index=False)
    return folder


def test_combines_folders_bolds_the_best_per_model_and_marks_missing_blocks(tmp_path):
    first = _report(tmp_path / "a", [
        {"dataset": "yeast", "model": "c2ae", "random_mean": 0.70004, "adaptive_mean": 0.69996,
         "chain_mean": 0.69},  # random and adaptive tie at 4 decimals: both bold
        {"dataset": "emotions", "model": "c2ae", "random_mean": 0.84, "adaptive_mean": 0.85, "chain_mean": 0.83},
    ], ["emotions", "yeast"])
    second = _report(tmp_path / "b", [
        {"dataset": "emotions", "model": "dela", "random_mean": 0.86, "adaptive_mean": 0.80, "chain_mean": None},
        {"dataset": "emotions", "model": "c2ae", "random_mean": 0.1, "adaptive_mean": 0.1, "chain_mean": 0.1},
    ], ["emotions", "yeast"])
    table = ov.overview([first, second]).set_index("data set")
    assert list(table.columns) == ["labels", "MeanIR", "C2AE random", "C2AE adaptive", "C2AE chain",
                                   "DELA random", "DELA adaptive"]       # DELA has no chain: no column
    assert table.loc["yeast", "C2AE random"] == "**0.7000**" == table.loc["yeast", "C2AE adaptive"]
    assert table.loc["emotions", "C2AE adaptive"] == "**0.8500**"       # the first folder wins
    assert table.loc["emotions", "DELA random"] == "**0.8600**" and table.loc["emotions", "DELA adaptive"] == "0.8000"
    assert table.loc["yeast", "DELA random"] == "training"
    assert table.loc["yeast", "MeanIR"] == "7.2" and table.loc["yeast", "labels"] == 14


def test_a_folder_without_the_table_is_named():
    with pytest.raises(SystemExit, match="nowhere/tables/main_macro_auc.csv not found"):
        ov.overview([Path("nowhere")])


def test_the_readme_breadth_table_is_the_scripts_output_on_the_committed_snapshots():
    """Re-run the script after a new snapshot and paste its output: this fails until then."""
    snapshots = [ROOT / "reports/breadth/partial", ROOT / "reports/breadth/partial-dela"]
    if not (ROOT / "reports/breadth/partial").is_dir():          # the finished profile's report
        snapshots = [ROOT / "reports/breadth"]
    expected = ov.to_markdown(ov.overview(snapshots)).strip().splitlines()
    readme = (ROOT / "README.md").read_text().splitlines()
    start = readme.index(expected[0])
    assert readme[start:start + len(expected)] == expected
