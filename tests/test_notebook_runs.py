"""Pipeline notebooks run as a JupyterLab user and as DVC run them.

* JupyterLab starts the kernel in ``notebooks/``: each notebook moves to the project root first,
  and gives the same results as under DVC (started at the root).
* ``scripts/run-notebook`` (every stage's command) finds its Python without the venv on PATH,
  and leaves executed notebooks free of per-run metadata, so the same results give the same
  hash in ``dvc.lock``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlabs.project import project_root, use_project_root

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
import run_notebook  # noqa: E402


def test_project_root_found_from_notebooks_folder(tmp_path, monkeypatch):
    assert project_root(ROOT / "notebooks") == ROOT
    (tmp_path / "params.yaml").write_text("train: {}\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert use_project_root() == tmp_path and Path.cwd() == tmp_path
    with pytest.raises(FileNotFoundError, match="no project root"):
        project_root("/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_moves_to_the_root_before_its_parameters(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    params = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    assert params >= 1 and "use_project_root()" in "".join(cells[params - 1]["source"])
    assert "use_project_root" not in "".join(s for c in cells[:params - 1] for s in c["source"])


def _execute(cwd: Path, out_nb: Path, out_dir: Path) -> dict:
    """01_prepare on emotions with its kernel started in ``cwd``; returns the statistics row."""
    import papermill

    nb = papermill.execute_notebook(
        str(ROOT / "notebooks/01_prepare.ipynb"), str(out_nb), kernel_name="mlabs", progress_bar=False,
        cwd=str(cwd), config=run_notebook.kernel_config(), record_timing=False,
        parameters={"prepared_dir": str(out_dir / "prepared"), "stats_dir": str(out_dir / "stats")})
    run_notebook.strip_run_metadata(nb)
    return nb, json.loads((out_dir / "stats/emotions.json").read_text())


@pytest.mark.slow
def test_prepare_notebook_same_from_notebooks_folder_and_root(tmp_path):
    pytest.importorskip("papermill")
    import numpy as np

    nb_lab, lab = _execute(ROOT / "notebooks", tmp_path / "lab.ipynb", tmp_path / "lab")
    nb_dvc, dvc = _execute(ROOT, tmp_path / "dvc.ipynb", tmp_path / "dvc")
    assert lab == dvc and lab["instances"] == 593
    with np.load(tmp_path / "lab/prepared/emotions.npz") as a, np.load(tmp_path / "dvc/prepared/emotions.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    # no per-run metadata: the two executions differ only in the paths they were given
    for nb in (nb_lab, nb_dvc):
        assert not {"start_time", "end_time", "duration"} & set(nb.metadata["papermill"])
        for cell in nb.cells:
            assert "execution" not in cell.metadata
            assert not {"start_time", "end_time", "duration"} & set(cell.metadata.get("papermill", {}))
    assert [c.get("id") for c in nb_lab.cells] == [c.get("id") for c in nb_dvc.cells]
    # outputs agree (the last one shows the path it wrote to, which differs here)
    assert [c.get("outputs") for c in nb_lab.cells[5:-1]] == [c.get("outputs") for c in nb_dvc.cells[5:-1]]
    assert "injected-parameters" in [c.get("id") for c in nb_lab.cells]


def _copy_scripts(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("run-notebook", "run_notebook.py"):
        shutil.copy(ROOT / "scripts" / name, dest / name)
    return dest / "run-notebook"


def _fake_python(path: Path, label: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{label}" "$@"\n')
    path.chmod(0o755)


def test_wrapper_finds_the_project_venv_from_a_temporary_experiment_copy(tmp_path):
    """`dvc exp run --temp` runs the stage in .dvc/tmp/exps/...; the venv is found upwards."""
    (tmp_path / "repo/.venv/bin").mkdir(parents=True)
    (tmp_path / "repo/.venv/bin/python").write_text('#!/bin/sh\necho venv-python "$PYTHONPATH" "$@"\n')
    (tmp_path / "repo/.venv/bin/python").chmod(0o755)
    script = _copy_scripts(tmp_path / "repo/.dvc/tmp/exps/standalone/tmp123/scripts")
    env = {"PATH": "/usr/bin:/bin"}  # no venv on PATH, as when DVC is started as .venv/bin/dvc
    out = subprocess.run(["sh", str(script), "in.ipynb", "out.ipynb"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "venv-python" and words[-2:] == ["in.ipynb", "out.ipynb"]
    # the copy's own source comes first on the path
    assert words[1] == str(script.parent.parent / "src")


def test_wrapper_prefers_mlabs_python_then_path(tmp_path):
    _fake_python(tmp_path / "bin/python3", "path-python")
    _fake_python(tmp_path / "chosen/python", "chosen-python")
    script = _copy_scripts(tmp_path / "repo/scripts")
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    run = lambda e: subprocess.run(["sh", str(script)], env=e, capture_output=True, text=True).stdout.split()[0]
    assert run(env) == "path-python"
    assert run(dict(env, MLABS_PYTHON=str(tmp_path / "chosen/python"))) == "chosen-python"


@pytest.mark.slow
def test_wrapper_runs_a_stage_without_the_venv_on_path(tmp_path):
    """The real wrapper with a PATH that has no papermill: no warning about unencrypted TCP."""
    pytest.importorskip("papermill")
    env = dict(os.environ, PATH="/usr/bin:/bin", MLABS_PYTHON=sys.executable, MLABS_QUIET="1")
    out = tmp_path / "prepare.ipynb"
    res = subprocess.run(["sh", "scripts/run-notebook", "notebooks/01_prepare.ipynb", str(out),
                          "-p", "prepared_dir", str(tmp_path / "p"), "-p", "stats_dir", str(tmp_path / "s")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "without encryption" not in res.stderr + res.stdout
    assert (tmp_path / "s/emotions.json").is_file()
    meta = json.loads(out.read_text())["metadata"]["papermill"]
    assert "start_time" not in meta and meta["parameters"]["stats_dir"] == str(tmp_path / "s")


def test_sensitivity_stage_with_nothing_to_sweep_still_writes_its_output(tmp_path):
    # profiles without a sweep (imbalanced, seeds) leave sensitivity.datasets empty; DVC then still
    # needs the stage's declared output, its manifest (with no cell)
    pytest.importorskip("papermill")
    import papermill
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sensitivity"].update(datasets=[], models=[])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    papermill.execute_notebook(str(ROOT / "notebooks" / "04_sensitivity.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"params_file": str(tmp_path / "params.yaml"),
                                           "prepared_dir": str(tmp_path / "prepared"),
                                           "warmup_root": str(tmp_path / "sensitivity" / "warmup"),
                                           "work_root": str(tmp_path / "sensitivity" / "work"),
                                           "store_root": str(tmp_path / "cells"),
                                           "cells_dir": str(tmp_path / "manifests")},
                               kernel_name="mlabs", progress_bar=False, cwd=str(tmp_path))
    assert json.loads((tmp_path / "manifests" / "sensitivity.json").read_text()) == {"cells": []}


def test_kernel_is_shut_down_without_an_interrupt_but_interrupted_otherwise():
    """jupyter_client's SIGINT before a shutdown makes a kernel busy in a handler log
    "KeyboardInterrupt caught in kernel"; the runner's manager skips it only while shutting down."""
    import asyncio
    from unittest import mock

    from jupyter_client.manager import AsyncKernelManager

    config = run_notebook.kernel_config()
    manager_class = config.NotebookClient.kernel_manager_class
    assert issubclass(manager_class, AsyncKernelManager)
    km = manager_class()
    with mock.patch.object(AsyncKernelManager, "_async_interrupt_kernel") as parent:
        km.shutting_down = False
        asyncio.run(km._async_interrupt_kernel())
        assert parent.call_count == 1
        km.shutting_down = True
        asyncio.run(km._async_interrupt_kernel())
        assert parent.call_count == 1


@pytest.mark.slow
def test_runner_executes_a_notebook_with_its_kernel_manager(tmp_path):
    """A real kernel started and shut down by the runner's manager: the notebook runs, with a fixed
    hash seed. (That the shutdown sends no interrupt is checked above: the message it caused
    appeared only when a shutdown met a kernel still in a handler, so its absence in one run
    proves little; the assertion guards against the manager breaking shutdown outright.)"""
    pytest.importorskip("papermill")
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7\nprint(x)"),
                nbformat.v4.new_code_cell("import os\nprint(os.environ.get('PYTHONHASHSEED'))"),
                nbformat.v4.new_code_cell("from mlabs.progress import progress_bar, progress_note\n"
                                          "progress_note('2 cells to train')\n"
                                          "bar = progress_bar(3, 0, 'demo-cells', 'cell', True)\n"
                                          "bar.update(3)\nbar.close()\nprint('3 cells finished, 0 failed')")]
    nb.metadata["kernelspec"] = {"name": "mlabs", "display_name": "Python (mlabs)", "language": "python"}
    src, out, log = tmp_path / "in.ipynb", tmp_path / "out.ipynb", tmp_path / "progress.log"
    nbformat.write(nb, src)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("MLABS_QUIET", None)   # CI sets it (.ci/run); this test is about the bar reaching the terminal
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebook.py"), str(src), str(out),
                          "--log", str(log)], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr
    assert "KeyboardInterrupt" not in res.stderr + res.stdout
    cells = nbformat.read(out, as_version=4).cells
    assert cells[0].outputs[0]["text"] == "42\n"
    # a fixed hash seed in the kernel: set iteration order, and the figures drawn from it, repeat
    assert cells[1].outputs[0]["text"] == "0\n"
    # progress reaches the person running the stage, not the notebook
    assert [o.get("text") for o in cells[2].outputs] == ["3 cells finished, 0 failed\n"]
    assert "2 cells to train" in res.stderr and "demo-cells: 100%" in res.stderr
    assert "demo-cells" in log.read_text()


def test_runner_relays_everything_written_to_the_progress_log(tmp_path):
    import io
    import time

    log, target = tmp_path / "progress.log", io.BytesIO()
    log.write_text("")
    with run_notebook.relay(log, target, interval=0.01):
        with open(log, "a") as f:
            f.write("\rcells:  50%")
            f.flush()
            time.sleep(0.05)
            f.write("\rcells: 100%\n")  # written just before the block ends: still relayed
    assert target.getvalue() == b"\rcells:  50%\rcells: 100%\n"


def test_progress_goes_to_the_named_file_and_nowhere_else(tmp_path, monkeypatch, capsys):
    from mlabs import progress

    monkeypatch.delenv("MLABS_QUIET", raising=False)
    bar = progress.progress_bar(2, 0, "plain", "cell", True)
    bar.update(2)
    bar.close()
    progress.progress_note("a note")
    captured = capsys.readouterr()
    assert "plain: 100%" in captured.err and captured.out == "a note\n"  # no runner: the usual streams

    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(tmp_path / "p.log"))
    bar = progress.progress_bar(2, 0, "logged", "cell", True)
    bar.update(2)
    bar.close()
    progress.progress_note("another note")
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""
    text = (tmp_path / "p.log").read_text()
    assert "logged: 100%" in text and "another note\n" in text


def test_strip_leaves_nothing_that_changes_between_runs_of_the_same_results():
    """Two executions of a notebook that differ only in papermill's and nbclient's run records
    serialise to the same bytes once stripped."""
    import nbformat

    def executed(stamp: str, cell_id: str):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("dataset = 'emotions'")
        params.metadata["tags"] = ["injected-parameters"]
        params["id"] = cell_id
        work = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])
        work["id"] = "work"  # the ids of the notebook's own cells come from its source, the same every run
        for cell in (params, work):
            cell.metadata["papermill"] = {"start_time": stamp, "end_time": stamp, "duration": 1.0 + len(stamp),
                                          "status": "completed", "exception": False}
            cell.metadata["execution"] = {"iopub.execute_input": stamp, "shell.execute_reply": stamp}
        nb.cells = [params, work]
        nb.metadata["papermill"] = {"start_time": stamp, "end_time": stamp, "duration": 2.0 + len(stamp),
                                    "parameters": {"dataset": "emotions"}, "exception": None}
        return nb

    a, b = executed("2026-01-01T00:00:00", "a1b2c3"), executed("2026-02-02T11:11:11.5", "d4e5f6")
    assert nbformat.writes(a) != nbformat.writes(b)
    for nb in (a, b):
        run_notebook.strip_run_metadata(nb)
    assert nbformat.writes(a) == nbformat.writes(b)
    assert a.metadata["papermill"]["parameters"] == {"dataset": "emotions"}  # what the run was given stays
    assert a.cells[1].outputs[0]["text"] == "1\n"
