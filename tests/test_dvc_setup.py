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

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "dvc-store" / "files" / "md5"
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())


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
    assert any(path.startswith("artifacts/runs") for path, _ in outputs), "no cell results in dvc.lock"
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


def test_timing_sidecars_are_ignored_by_dvc_and_git():
    """A cell's timing sidecar changes with the machine and the load: it must not enter the hash
    of the run folders (dvc.lock) nor git."""
    import subprocess

    pytest.importorskip("dvc")
    from dvc.ignore import DvcIgnoreFilter
    from dvc.fs import LocalFileSystem

    from mlabs.results import TIMING_FILE

    ignore = DvcIgnoreFilter(LocalFileSystem(), str(ROOT))
    for folder in ("artifacts/runs/emotions/dela/random-b64/fold0-seed0",
                   "artifacts/sensitivity/runs/emotions/dela/adaptive-se2-b32/fold1-seed0"):
        assert ignore.is_ignored_file(str(ROOT / folder / TIMING_FILE)), folder
        assert not ignore.is_ignored_file(str(ROOT / folder / "result.json")), folder
    res = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q",
                          f"artifacts/runs/emotions/dela/random-b64/fold0-seed0/{TIMING_FILE}"])
    assert res.returncode in (0, 128)  # ignored, or not a git checkout


def test_an_ignored_file_in_an_output_folder_changes_no_hash(tmp_path):
    """What the project's .dvcignore relies on: DVC neither hashes nor caches an ignored file inside
    an output folder, and leaves it in place on checkout (a tmp git + DVC repository)."""
    import subprocess
    import sys

    pytest.importorskip("dvc")
    if subprocess.run(["git", "init", "-q", str(tmp_path)]).returncode != 0:
        pytest.skip("no git")
    dvc = [sys.executable, "-m", "dvc"]
    assert subprocess.run(dvc + ["init", "-q"], cwd=tmp_path).returncode == 0
    (tmp_path / ".dvcignore").write_text((ROOT / ".dvcignore").read_text())
    write = ("import pathlib, sys; p = pathlib.Path('artifacts/runs/d/m/random-b8/fold0-seed0'); "
             "p.mkdir(parents=True, exist_ok=True); (p / 'result.json').write_text('{}'); "
             "(p / 'timing.json').write_text(sys.argv[1])")
    stage = {"stages": {"train": {"cmd": f'"{sys.executable}" -c "{write}" ${{seconds}}',
                                  "params": ["seconds"], "outs": [{"artifacts/runs/d": {"persist": True}}]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(stage))

    def repro(seconds: str) -> str:
        (tmp_path / "params.yaml").write_text(f"seconds: '{seconds}'\n")
        res = subprocess.run(dvc + ["repro", "-q"], cwd=tmp_path, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        [out] = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]["train"]["outs"]
        return out["md5"]

    first, second = repro("1.5"), repro("2.5")  # the same result, another time
    assert first == second
    listing = json.loads((tmp_path / ".dvc/cache/files/md5" / first[:2] / first[2:]).read_text())
    assert [e["relpath"] for e in listing] == ["m/random-b8/fold0-seed0/result.json"]
    assert subprocess.run(dvc + ["checkout", "-q", "-f"], cwd=tmp_path).returncode == 0
    assert (tmp_path / "artifacts/runs/d/m/random-b8/fold0-seed0/timing.json").read_text() == "2.5"


def test_remote_is_the_shipped_store():
    config = (ROOT / ".dvc" / "config").read_text()
    assert re.search(r"remote\s*=\s*shipped", config)
    assert re.search(r"url\s*=\s*\.\./dvc-store", config)


def test_warmup_checkpoints_are_not_outputs():
    """Warm-up checkpoints are a local cache (too large for the shipped remote)."""
    for name, stage in DVC_YAML["stages"].items():
        body = stage.get("do", stage)
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in body.get("outs", [])]
        deps = body.get("deps", [])
        assert not [o for o in outs + deps if "warmup" in o and not o.endswith(".ipynb")], name


def test_every_stage_runs_through_the_wrapper():
    for name, stage in DVC_YAML["stages"].items():
        cmd = stage.get("do", stage)["cmd"]
        assert cmd.startswith("sh scripts/run-notebook notebooks/"), name
        assert "papermill" not in cmd, name


def test_plots_name_the_profile_methods_and_the_report_files():
    from mlabs.report import PLOT_CURVES

    files = set()
    for plot in DVC_YAML["plots"]:
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
    """What a DVC user types first: clone, `dvc pull`, `dvc status` (nothing to reproduce)."""
    import subprocess
    import sys

    pytest.importorskip("dvc")
    clone = tmp_path / "clone"
    res = subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"not a git checkout: {res.stderr.strip()}")
    dvc = [sys.executable, "-m", "dvc"]
    pull = subprocess.run(dvc + ["pull", "-q"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert pull.returncode == 0, pull.stderr[-2000:]
    status = subprocess.run(dvc + ["status", "--json"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert status.returncode == 0 and json.loads(status.stdout or "{}") == {}, status.stdout[-2000:]


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

    results, _ = compare_runs.cell_results("HEAD", "dvc.lock")
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
