"""Profiles: overlays of params.yaml whose generated params.yaml and dvc.yaml are up to date, and
whose pipelines are the default's stages with their own parameters and outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlabs.config import load_params, methods, train_cells
from mlabs.profiles import generated_files, load_overlay, merge, profile_names, profile_pipeline, rewrite_path

ROOT = Path(__file__).resolve().parents[1]
NAMES = profile_names(ROOT)
ROOT_STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_the_committed_profiles():
    assert NAMES == ["ablation", "breadth", "compare", "imbalanced", "paper", "seeds"]
    assert not list(ROOT.glob("params-*.yaml"))   # the old full copies are gone


def test_generated_files_are_up_to_date():
    stale = [str(p.relative_to(ROOT)) for p, text in generated_files(ROOT).items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"out of date: {stale}; run `make profiles` (python -m mlabs.profiles)"


def _git_files(pattern: str) -> set[str] | None:
    res = subprocess.run(["git", "-C", str(ROOT), "ls-files", pattern], capture_output=True, text=True)
    return set(res.stdout.split()) if res.returncode == 0 and res.stdout else None


def test_only_profiles_that_were_run_have_a_committed_pipeline():
    """A committed profiles/<name>/dvc.yaml comes with its dvc.lock (and the other way round), so
    that a bare `dvc status` in a fresh clone lists no stage that was never run."""
    pipelines, locks = _git_files("profiles/*/dvc.yaml"), _git_files("profiles/*/dvc.lock")
    if pipelines is None:
        pytest.skip("not a git checkout with committed profiles")
    assert {p.replace("dvc.yaml", "dvc.lock") for p in pipelines} == locks
    assert "profiles/seeds/dvc.yaml" in pipelines


def _project(tmp_path: Path) -> Path:
    """A project with the root params.yaml, dvc.yaml and notebooks and one profile, x."""
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "notebooks").mkdir()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        (tmp_path / "notebooks" / nb.name).write_text(nb.read_text())
    (tmp_path / "profiles/x").mkdir(parents=True)
    (tmp_path / "profiles/x/overlay.yaml").write_text("train:\n  epochs: 7\n")
    return tmp_path


def test_a_profiles_pipeline_is_written_when_it_is_run(tmp_path, capsys):
    from mlabs.profiles import main

    root = _project(tmp_path)
    assert main(["--root", str(root)]) == 0
    assert (root / "profiles/x/params.yaml").exists() and not (root / "profiles/x/dvc.yaml").exists()
    assert main(["--root", str(root), "--check"]) == 0
    assert main(["--root", str(root), "x"]) == 0          # what `make repro-x` runs first
    assert yaml.safe_load((root / "profiles/x/dvc.yaml").read_text()) == profile_pipeline("x", root)
    (root / "profiles/x/overlay.yaml").write_text("train:\n  epochs: 8\n")
    assert main(["--root", str(root), "--check"]) == 1      # once run, kept up to date
    assert "profiles/x/params.yaml: out of date" in capsys.readouterr().out
    assert main(["--root", str(root), "y"]) == 2
    assert "no profile 'y': the profiles are ['x']" in capsys.readouterr().err


def test_merge_merges_mappings_and_replaces_everything_else():
    base = {"train": {"models": ["a", "b"], "lr": 1.0, "model_lr": {"a": 2.0}}, "grid": {"n_jobs": 1}}
    merged = merge(base, {"train": {"models": ["c"], "model_lr": {"b": 3.0}}, "grid": {"n_jobs": None}})
    assert merged == {"train": {"models": ["c"], "lr": 1.0, "model_lr": {"a": 2.0, "b": 3.0}}, "grid": {"n_jobs": None}}
    assert base["train"]["models"] == ["a", "b"]   # the base is not changed


def test_an_unknown_key_in_an_overlay_names_the_closest_valid_key(tmp_path):
    path = tmp_path / "overlay.yaml"
    path.write_text("train:\n  epoch: 5\n")
    with pytest.raises(ValueError, match=r"unknown key train\.epoch; did you mean train\.epochs\?"):
        load_overlay(path)
    path.write_text("trian:\n  epochs: 5\n")
    with pytest.raises(ValueError, match=r"unknown section trian; did you mean train\?"):
        load_overlay(path)


@pytest.mark.parametrize("name", NAMES)
def test_profile_params_are_the_base_with_the_overlay(name):
    params = load_params(ROOT / "profiles" / name / "params.yaml")   # valid, and
    overlay = load_overlay(ROOT / "profiles" / name / "overlay.yaml")
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params == merge(base, overlay)
    assert train_cells(params)   # the grid is expressible (methods and variants exist)


def test_breadth_runs_chain_with_c2ae_only_and_is_a_slice_of_the_paper_profile():
    breadth = load_params(ROOT / "profiles/breadth/params.yaml")
    paper = load_params(ROOT / "profiles/paper/params.yaml")
    cells = train_cells(breadth)
    assert {c.method for c in cells if c.model == "dela"} == {"random", "adaptive"}
    assert {c.method for c in cells if c.model == "c2ae"} == {"random", "adaptive", "chain"}
    assert len({c.dataset for c in cells}) == 14 and methods(breadth) == ["random", "adaptive", "chain"]
    assert set(cells) <= set(train_cells(paper))
    for model in ("c2ae", "dela"):   # the same settings, so the same fingerprints: cells shared
        assert breadth["models"][model] == paper["models"][model]
    for section in ("train", "selection"):
        assert {k: v for k, v in breadth[section].items() if k not in ("models", "methods_by_model")} == \
            {k: v for k, v in paper[section].items() if k not in ("models", "methods_by_model")}


def test_ablation_shares_the_breadth_protocol():
    ablation = load_params(ROOT / "profiles/ablation/params.yaml")
    breadth = load_params(ROOT / "profiles/breadth/params.yaml")
    shared = [c for c in train_cells(ablation) if c.method in ("random", "adaptive")]
    assert shared and set(shared) <= set(train_cells(breadth))
    assert ablation["models"]["c2ae"] == breadth["models"]["c2ae"] and ablation["data"] == breadth["data"]


@pytest.mark.parametrize("name", NAMES)
def test_profile_stages_have_the_default_stages_deps_and_params(name):
    stages = profile_pipeline(name, ROOT)["stages"]
    assert list(stages) == list(ROOT_STAGES)
    for stage_name, stage in ROOT_STAGES.items():
        body, own = stage.get("do", stage), stages[stage_name].get("do", stages[stage_name])
        assert own["wdir"] == "../.."
        assert own["deps"] == [rewrite_path(d, name) for d in body["deps"]]
        assert own["params"] == [{f"profiles/{name}/params.yaml": body["params"]}]
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in own["outs"]]
        assert all(o.startswith((f"reports/{name}/", f"artifacts/{name}/")) for o in outs), outs
        assert f"-p params_file profiles/{name}/params.yaml" in own["cmd"]


def test_rewrite_path_keeps_code_data_and_the_store_shared():
    assert rewrite_path("reports", "x") == "reports/x"
    assert rewrite_path("reports/cells/a-b.json", "x") == "reports/x/cells/a-b.json"
    assert rewrite_path("artifacts/prepared/emotions.npz", "x") == "artifacts/x/prepared/emotions.npz"
    assert rewrite_path("artifacts/views/default/runs", "x") == "artifacts/views/x/runs"
    for shared in ("src/mlabs/store.py", "data", "cells", "artifacts/warmup", "reportsx", "notebooks/03_train.ipynb"):
        assert rewrite_path(shared, "x") == shared


def test_running_a_profile_does_not_touch_the_default_parameters():
    res = subprocess.run(["make", "-n", "-C", str(ROOT), "repro-imbalanced"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"make -n failed: {res.stderr[-300:]}")
    assert "dvc repro profiles/imbalanced/dvc.yaml" in res.stdout
    assert "params.yaml" not in res.stdout.replace("profiles/imbalanced/dvc.yaml", "")


def test_methods_by_model_must_name_models_of_the_profile():
    from mlabs.config import methods_for

    params = load_params(ROOT / "profiles/breadth/params.yaml")
    assert methods_for(params, "dela") == ["random", "adaptive"]
    assert methods_for(params, "c2ae") == ["random", "adaptive", "chain"]
    params["train"]["methods_by_model"] = {"clif": ["random"]}
    with pytest.raises(ValueError, match=r"names \['clif'\], not in train.models"):
        train_cells(params)
    params["train"]["methods_by_model"] = {"dela": "random"}
    with pytest.raises(ValueError, match="must map a model name to a list of methods"):
        train_cells(params)


def test_a_profiles_page_reads_the_profiles_own_lock_and_params(tmp_path):
    from mlabs.report import page

    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    for folder in (tmp_path, tmp_path / "profiles/x"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dvc.lock").write_text("schema: '2.0'\n")
        (folder / "params.yaml").write_text("train: {}\n")
    (tmp_path / "reports/x").mkdir(parents=True)
    assert page._find_lock(tmp_path / "reports/x") == tmp_path / "profiles/x/dvc.lock"
    assert page._find_lock(tmp_path / "reports") == tmp_path / "dvc.lock"
    assert page._profile_files(tmp_path / "reports/x", "params.yaml")[1] == tmp_path / "profiles/x/params.yaml"
