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
