"""The cell store: finished cells kept once, written the moment they finish, read by every profile."""

from __future__ import annotations

import json

import pytest

from mlabs import grid as grid_mod
from mlabs.data import load_dataset, prepare, save_prepared
from mlabs.grid import GridSpec, manifest_entries, run_grid
from mlabs.results import TIMING_FILE
from mlabs.settings import Cell, TrainConfig
from mlabs.store import CellStore, materialize, read_manifest, write_manifest

OK = {"status": "ok", "cell": {"dataset": "d"}, "fingerprint": "f", "test": {"macro_auc": 0.5}}


def test_key_depends_on_the_cell_and_the_fingerprint_only():
    cell = Cell("emotions", "c2ae", "random", fold=0)
    key = CellStore.key(cell, "abc")
    assert key == CellStore.key(Cell("emotions", "c2ae", "random", fold=0), "abc") == CellStore.key(
        {"dataset": "emotions", "model": "c2ae", "method": "random", "fold": 0, "seed": 0,
         "selection_pressure": 2.0, "batch_size": 128}, "abc")
    assert key != CellStore.key(cell, "abd")
    assert key != CellStore.key(Cell("emotions", "c2ae", "random", fold=1), "abc")
    assert len(key) == 24 and int(key, 16) >= 0
    # every part of the cell's identity separates keys: the fingerprint leaves the seed, s_e and
    # batch size out (they are the cell's own), so only the key keeps those cells apart
    base = {"dataset": "emotions", "model": "c2ae", "method": "random", "fold": 0, "seed": 0,
            "selection_pressure": 2.0, "batch_size": 128}
    other = {"dataset": "yeast", "model": "dela", "method": "adaptive", "fold": 1, "seed": 1,
             "selection_pressure": 4.0, "batch_size": 64}
    keys = {name: CellStore.key({**base, name: value}, "abc") for name, value in other.items()}
    assert key not in keys.values() and len(set(keys.values())) == len(other)


def test_put_get_round_trip_and_a_stored_cell_is_kept(tmp_path):
    store = CellStore(tmp_path / "cells")
    assert not store.has("ab12") and store.get("ab12") is None
    folder = store.put("ab12", OK, "epoch\n1\n", timing={"train_seconds": 1.0})
    assert folder == tmp_path / "cells" / "ab" / "ab12"
    assert store.has("ab12") and store.get("ab12") == OK
    assert (folder / "curves.tsv").read_text() == "epoch\n1\n"
    assert json.loads((folder / TIMING_FILE).read_text()) == {"train_seconds": 1.0}
    store.put("ab12", dict(OK, test={"macro_auc": 0.9}), "other\n")   # the same key: kept as it was
    assert store.get("ab12") == OK and (folder / "curves.tsv").read_text() == "epoch\n1\n"
    assert sorted(p.name for p in (tmp_path / "cells" / "ab").iterdir()) == ["ab12"]  # no temporary left


def test_only_finished_cells_are_stored(tmp_path):
    with pytest.raises(ValueError, match="only finished cells"):
        CellStore(tmp_path).put("ab12", {"status": "failed"}, "")


def test_materialize_lays_out_the_manifest_cells_as_a_result_tree(tmp_path):
    store = CellStore(tmp_path / "cells")
    store.put("ab12", OK, "epoch\n1\n")
    failed = {"status": "failed", "cell": {"dataset": "d"}, "error": "boom"}
    manifest = write_manifest(tmp_path / "m.json", [
        {"path": "d/m/random-b8/fold1-seed0", "failed": failed},
        {"path": "d/m/random-b8/fold0-seed0", "key": "ab12", "digest": store.digest("ab12")}])
    assert [e["path"] for e in read_manifest(manifest)] == ["d/m/random-b8/fold0-seed0", "d/m/random-b8/fold1-seed0"]
    view = materialize([manifest, tmp_path / "absent.json"], store, tmp_path / "view")
    assert json.loads((view / "d/m/random-b8/fold0-seed0/result.json").read_text()) == OK
    assert json.loads((view / "d/m/random-b8/fold1-seed0/result.json").read_text()) == failed
    write_manifest(tmp_path / "lost.json", [{"path": "x", "key": "cd34", "digest": "0"}])
    with pytest.raises(FileNotFoundError, match="not in"):
        materialize([tmp_path / "lost.json"], store, tmp_path / "view")


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    save_prepared(prepare(load_dataset("emotions"), seed=0), root / "emotions.npz")
    return root


def test_a_grid_stopped_midway_keeps_its_finished_cells_and_a_rerun_trains_only_the_rest(
        tmp_path, prepared_dir, monkeypatch):
    spec = GridSpec(str(prepared_dir), str(tmp_path / "warmup"), str(tmp_path / "work"),
                    TrainConfig(epochs=2, warmup_epochs=1, lr=1e-3), store=str(tmp_path / "cells"))
    cells = [Cell("emotions", "c2ae", method, fold=0) for method in ("random", "adaptive", "chain")]
    original = grid_mod._execute
    trained = []

    def stop_at_third(cell, s, warmup_only):
        if not warmup_only and len(trained) == 2:
            raise KeyboardInterrupt  # the stage is killed while its third cell trains
        result = original(cell, s, warmup_only)
        if not warmup_only:
            trained.append(cell)
        return result

    monkeypatch.setattr(grid_mod, "_execute", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        run_grid(cells, spec, n_jobs=1, progress=False)
    assert trained == cells[:2]
    assert len(list((tmp_path / "cells").glob("*/*/result.json"))) == 2   # kept, though the stage failed

    executed = []
    monkeypatch.setattr(grid_mod, "_execute", lambda c, s, wu: executed.append((c, wu)) or original(c, s, wu))
    results = run_grid(cells, spec, n_jobs=1, progress=False)
    assert [c for c, wu in executed if not wu] == cells[2:]       # only the missing cell trains
    assert [r["status"] for r in results] == ["ok"] * 3
    entries = manifest_entries(cells, results, spec)
    assert [e["path"] for e in entries] == ["emotions/c2ae/random-b128/fold0-seed0",
                                            "emotions/c2ae/adaptive-se2-b128/fold0-seed0",
                                            "emotions/c2ae/chain-se2-b128/fold0-seed0"]
    assert all(CellStore(spec.store).has(e["key"]) for e in entries)

    # another profile asking for some of the same cells (another work folder) trains only its new one
    executed.clear()
    other = GridSpec(spec.prepared_dir, spec.warmup_root, str(tmp_path / "work2"), spec.config, store=spec.store)
    more = cells[1:] + [Cell("emotions", "c2ae", "random", fold=1)]
    results = run_grid(more, other, n_jobs=1, progress=False)
    assert [c for c, wu in executed if not wu] == more[-1:]
    assert [r["status"] for r in results] == ["ok"] * 3


def test_ray_write_back_puts_a_remote_workers_cells_into_the_store(tmp_path, prepared_dir):
    """The Ray executor's path without Ray: a cell trained in a private folder comes back as bytes
    and lands in the driver's store, whole."""
    spec = GridSpec(str(prepared_dir), str(tmp_path / "warmup"), str(tmp_path / "work"),
                    TrainConfig(epochs=2, warmup_epochs=1, lr=1e-3), store=str(tmp_path / "cells"))
    cell = Cell("emotions", "c2ae", "random", fold=0)
    prepared = (prepared_dir / "emotions.npz").read_bytes()
    _, warm_files, _ = grid_mod._execute_portable(cell, spec, True, prepared, None)
    [warmup] = warm_files.values()
    result, _, run_files = grid_mod._execute_portable(cell, spec, False, prepared, warmup)
    assert result["status"] == "ok" and not (tmp_path / "cells").exists()
    grid_mod._store_back(run_files, spec.cell_store)
    key = CellStore.key(cell, result["fingerprint"])
    assert spec.cell_store.get(key) == result and (spec.cell_store.path(key) / TIMING_FILE).is_file()


@pytest.mark.slow
def test_a_train_stage_killed_midway_keeps_its_cells_and_its_rerun_trains_only_the_rest(tmp_path, prepared_dir):
    """The train stage's notebook, as DVC runs it, killed while it trains (SIGKILL to its process
    group, kernel included) after its first cell is stored; run again, its grid trains only the
    cells the store lacks (what it prints before training), and its manifest names all of them."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import yaml

    pytest.importorskip("papermill")
    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["datasets"] = ["emotions"]
    params["train"].update(models=["dela"], methods=["random", "adaptive", "chain"], folds=[0], epochs=40,
                           warmup_epochs=1)
    params["grid"]["n_jobs"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    store = tmp_path / "cells"

    def train(log: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "papermill", str(root / "notebooks/03_train.ipynb"), str(tmp_path / "out.ipynb"),
               "-k", "mlabs", "--log-level", "WARNING", "--cwd", str(tmp_path),
               "-p", "dataset", "emotions", "-p", "model", "dela", "-p", "prepared_dir", str(prepared_dir)]
        env = dict(os.environ, MLABS_QUIET="1", MLABS_PROGRESS_FILE=str(log))
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)

    def stored() -> int:
        return len(list(store.glob("*/*/result.json")))

    proc = train(tmp_path / "first.log")
    deadline = time.monotonic() + 150
    while stored() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = stored()
    assert 1 <= kept < 3, f"{kept} cells stored when the stage was stopped (expected some, not all)"
    assert not (tmp_path / "reports/cells/emotions-dela.json").exists()   # the stage did not finish

    proc = train(tmp_path / "second.log")
    _, err = proc.communicate(timeout=170)
    assert proc.returncode == 0, err.decode()[-2000:]
    note = re.search(r"grid: (\d+) cells(?: \(\d+ resuming from a checkpoint\))? and \d+ warm-ups to train "
                     r"\((\d+) cells? already finished\)", (tmp_path / "second.log").read_text())
    assert note and (int(note[1]), int(note[2])) == (3 - kept, kept)
    entries = read_manifest(tmp_path / "reports/cells/emotions-dela.json")
    assert len(entries) == 3 and all(CellStore(store).has(e["key"]) for e in entries) and stored() == 3
