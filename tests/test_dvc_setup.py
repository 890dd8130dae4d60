"""DVC as a user meets it: a fresh clone's `dvc pull` restores the committed study, and the
project's files agree with each other (plots, stage commands, Python version, conda file).

``test_every_cached_output_is_in_the_shipped_remote`` fails when results were regenerated and
committed (``dvc.lock`` changed) without ``make push`` and committing ``dvc-store/``. It reads the
committed lock, not the working one: ``make repro`` followed by ``make test`` in a fresh clone
tests what the clone shipped, whatever the rerun wrote.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from mlabs.profiles import profile_names, profile_pipeline

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "dvc-store" / "files" / "md5"
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
#: the default pipeline and every profile's, as `make repro-<name>` writes it (tests/test_profiles.py)
PIPELINES = {"dvc.yaml": DVC_YAML} | {f"profiles/{name}/dvc.yaml": profile_pipeline(name, ROOT)
                                      for name in profile_names(ROOT)}


def _committed_rev() -> str | None:
    """HEAD when the project is a git checkout with a commit, else None."""
    import subprocess

    res = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", "HEAD"],
                         capture_output=True, text=True)
    return res.stdout.strip() or None if res.returncode == 0 else None


def _cached_outputs():
    """(path, md5) of every output that the committed dvc.lock (the working one outside a git
    checkout) records and DVC caches and pushes."""
    dvc_repo = pytest.importorskip("dvc.repo")
    with dvc_repo.Repo(str(ROOT), rev=_committed_rev()) as repo:
        return [(str(out), out.hash_info.value) for out in repo.index.outs
                if out.use_cache and out.can_push and out.hash_info and out.hash_info.value]


def _in_store(md5: str) -> bool:
    return (STORE / md5[:2] / md5[2:]).is_file()


def test_every_cached_output_is_in_the_shipped_remote():
    missing = []
    outputs = _cached_outputs()
    assert any(path.startswith("artifacts/prepared") for path, _ in outputs), "no prepared folds in dvc.lock"
    for path, md5 in outputs:
        if not _in_store(md5):
            missing.append(f"{path} ({md5})")
            continue
        if md5.endswith(".dir"):
            entries = json.loads((STORE / md5[:2] / md5[2:]).read_text())
            lost = [e["relpath"] for e in entries if not _in_store(e["md5"])]
            if lost:
                missing.append(f"{path}: {len(lost)} of {len(entries)} files, e.g. {lost[0]}")
    assert not missing, ("outputs of dvc.lock missing from dvc-store/ (run `make push` after `make repro` "
                         "and commit dvc-store/):\n" + "\n".join(missing[:20]))


def test_the_cell_store_and_its_timing_sidecars_are_in_git():
    """A stored cell's result and curves are committed (a fresh clone has them without training),
    and so is its timing sidecar: the store adds it once and never replaces it, so a clone
    rebuilds the same timing tables; kept only on the machine, it was lost with the machine."""
    import subprocess

    from mlabs.results import TIMING_FILE

    def ignored(path: str) -> int:
        return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path]).returncode

    if ignored("cells/ab/abcd/result.json") == 128:
        pytest.skip("not a git checkout")
    for name in ("result.json", "curves.tsv", TIMING_FILE):
        assert ignored(f"cells/ab/abcd/{name}") == 1, name
    assert ignored("cells/ab/.abcd.x1y2/result.json") == 0   # a cell folder being written


def test_no_output_path_is_shared_by_two_stages_of_any_profile():
    """DVC refuses one output in two stages, even in two dvc.yaml files: every profile writes its own."""
    dvc_repo = pytest.importorskip("dvc.repo")
    with dvc_repo.Repo(str(ROOT)) as repo:
        paths = [str(out) for stage in repo.index.stages for out in stage.outs]
    assert paths and len(paths) == len(set(paths)), sorted({p for p in paths if paths.count(p) > 1})[:10]
    assert any(p.startswith("reports/seeds/") for p in paths)
    # and the pipelines of the profiles not run here, as `make repro-<name>` will write them
    own = [o if isinstance(o, str) else next(iter(o)) for pipeline in PIPELINES.values()
           for stage in pipeline["stages"].values() for o in stage.get("do", stage).get("outs", [])]
    assert len(own) == len(set(own)) and any(o.startswith("reports/breadth/") for o in own)


def test_remote_is_the_shipped_store():
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(r"remote\s*=\s*shipped", config)
    assert re.search(r"url\s*=\s*\.\./dvc-store", config)


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_warmup_checkpoints_are_not_outputs(pipeline):
    """Warm-up checkpoints are a local cache (too large for the shipped remote)."""
    for name, stage in PIPELINES[pipeline]["stages"].items():
        body = stage.get("do", stage)
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in body.get("outs", [])]
        deps = body.get("deps", [])
        assert not [o for o in outs + deps if "warmup" in o and not o.endswith(".ipynb")], name


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_every_stage_runs_through_the_wrapper(pipeline):
    for name, stage in PIPELINES[pipeline]["stages"].items():
        cmd = stage.get("do", stage)["cmd"]
        assert cmd.startswith("sh scripts/run-notebook notebooks/"), name
        assert "papermill" not in cmd, name


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_plots_name_the_profile_methods_and_the_report_files(pipeline):
    from mlabs.report import PLOT_CURVES

    files = set()
    for plot in PIPELINES[pipeline]["plots"]:
        [(title, spec)] = plot.items()
        for path, fields in spec["y"].items():
            assert fields == "${train.methods}", title
            files.add(Path(path).stem)
    assert files == set(PLOT_CURVES)


def test_python_version_agrees_with_the_locked_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.11" in readme and "3.10+" not in readme


def test_environment_yml_uses_the_lock_and_documents_the_kernel():
    text = (ROOT / "environment.yml").read_text()
    env = yaml.safe_load(text)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements.lock" in pip and "-e ." in pip
    makefile = (ROOT / "Makefile").read_text()
    [torch_pin] = set(re.findall(r"torch==[\w.]+", makefile))
    assert torch_pin in pip  # the same torch as `make setup`
    assert "ipykernel install --sys-prefix --name mlabs" in text  # the post-create command


@pytest.mark.slow
def test_fresh_clone_pull_restores_the_study(tmp_path):
    """What a DVC user types first: clone, `dvc pull`, `dvc status` of the default pipeline
    (nothing to reproduce; the cells come with git, the prepared folds from the shipped remote)."""
    import subprocess
    import sys

    pytest.importorskip("dvc")
    clone = tmp_path / "clone"
    res = subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"not a git checkout: {res.stderr.strip()}")
    dvc = [sys.executable, "-m", "dvc"]
    # what `make pull` runs: the data and every pipeline that has a committed lock
    committed = ["dvc.yaml"] + [str(p.parent / "dvc.yaml") for p in sorted(clone.glob("profiles/*/dvc.lock"))]
    pull = subprocess.run(dvc + ["pull", "-q", "data.dvc", *committed], cwd=clone, capture_output=True,
                          text=True, timeout=600)
    assert pull.returncode == 0, pull.stderr[-2000:]
    # each pipeline, then a bare `dvc status` (every dvc.yaml in the clone: no profile that never ran)
    for pipeline in [[p] for p in committed] + [[]]:
        status = subprocess.run(dvc + ["status", "--json", *pipeline], cwd=clone, capture_output=True, text=True,
                                timeout=600)
        assert status.returncode == 0 and json.loads(status.stdout or "{}") == {}, (pipeline, status.stdout[-2000:])


def test_compare_runs_finds_a_run_identical_to_itself_and_a_changed_cell(capsys):
    """scripts/compare_runs.py: the committed run against itself is identical cell for cell and
    verdict for verdict; a cell whose test metrics differ is counted as differing in its group."""
    import importlib.util
    import subprocess

    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "scripts" / "compare_runs.py")
    compare_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_runs)

    assert compare_runs.main(["HEAD", "HEAD"]) == 0
    out = capsys.readouterr().out
    counts = re.findall(r"identical\s+(\d+)\s+differ\s+(\d+)", out)
    assert counts and all(int(d) == 0 for _, d in counts) and sum(int(i) for i, _ in counts) >= 75
    assert re.search(r"verdicts the same: (\d+) of \1\b", out)

    results, _ = compare_runs.cell_results("HEAD", "reports", "dvc.lock")
    path = next(p for p in sorted(results) if results[p]["cell"]["method"] == "random")
    changed = {**results, path: {**results[path], "test": {**results[path]["test"], "macro_auc": -1.0}}}
    same, differ = compare_runs.compare_cells(results, changed)
    assert differ == {"random (seed 0)": 1} and same["random (seed 0)"] == same["adaptive (seed 0)"] - 1


def test_compare_runs_says_whether_the_machines_of_two_runs_differed():
    """Per group, cells computed on the same kind of machine, on another, or unknown (a run whose
    report has no machines.json, or a cell without a record)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "scripts" / "compare_runs.py")
    compare_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_runs)

    avx2 = {"cpu": "CPU A", "cpu_capability": "AVX2", "torch_threads": 1, "python": "3.12.3",
            "torch": "2.13.0", "numpy": "2.3.0", "device": "cpu"}
    avx512 = dict(avx2, cpu_capability="AVX512")
    results = {f"artifacts/runs/emotions/dela/random-b64/fold{f}-seed0/result.json": {"cell": {"method": "random", "seed": 0}}
               for f in range(3)}
    results["artifacts/sensitivity/runs/emotions/dela/adaptive-se2-b32/fold0-seed0/result.json"] = {"cell": {}}
    folders = [p.rsplit("/", 1)[0] for p in results]
    old = {folders[0]: avx2, folders[1]: avx2, folders[2]: None, folders[3]: avx2}
    new = {folders[0]: avx2, folders[1]: avx512, folders[2]: avx2, folders[3]: avx2}
    counts = compare_runs.compare_machines(old, new, results)
    assert counts["random (seed 0)"] == {"same": 1, "other": 1, "unknown": 1}
    assert counts["sensitivity"] == {"same": 1}
    assert compare_runs.compare_machines(None, new, results)["random (seed 0)"] == {"unknown": 3}
    assert "AVX512" in compare_runs.describe_machine(avx512)


def test_compare_runs_reads_the_cells_of_a_manifest_from_the_store_at_a_revision(tmp_path, monkeypatch):
    """A run after the cell store: the report's manifests name the cells, read from cells/ with git;
    the old layouts' folders and the report views' folders name the same cell."""
    import importlib.util
    import subprocess

    if subprocess.run(["git", "init", "-q", str(tmp_path)]).returncode != 0:
        pytest.skip("no git")
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "scripts" / "compare_runs.py")
    compare_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_runs)
    monkeypatch.setattr(compare_runs, "ROOT", tmp_path)

    result = {"status": "ok", "cell": {"method": "random", "seed": 0}, "test": {"macro_auc": 0.7}}
    (tmp_path / "cells/ab/ab12").mkdir(parents=True)
    (tmp_path / "cells/ab/ab12/result.json").write_text(json.dumps(result))
    (tmp_path / "reports/cells").mkdir(parents=True)
    (tmp_path / "reports/cells/emotions-dela.json").write_text(json.dumps({"cells": [
        {"path": "emotions/dela/random-b128/fold0-seed0", "key": "ab12", "digest": "0"},
        {"path": "emotions/dela/random-b128/fold1-seed0", "failed": {"status": "failed"}},
        {"path": "emotions/dela/random-b128/fold2-seed0", "key": "cd34", "digest": "0"}]}))
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "run"], check=True)
    results, missing = compare_runs.cell_results("HEAD", "reports", "dvc.lock")
    assert results == {"runs/emotions/dela/random-b128/fold0-seed0/result.json": result}
    assert missing == {"runs/emotions/dela/random-b128/fold2-seed0"}
    for old in ("artifacts/runs/emotions/dela/random-b128/fold0-seed0",
                "artifacts/views/seeds/runs/emotions/dela/random-b128/fold0-seed0"):
        assert compare_runs.normalize(old) == "runs/emotions/dela/random-b128/fold0-seed0"
    assert compare_runs.normalize("artifacts/sensitivity/runs/e/d/x") == "sensitivity/e/d/x"
    assert compare_runs.normalize("artifacts/views/default/sensitivity/e/d/x") == "sensitivity/e/d/x"
