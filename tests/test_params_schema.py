"""Parameter files are checked for unknown sections and keys before any work."""

import re
from pathlib import Path

import pytest
import yaml

from mlabs.config import load_params
from mlabs.params_schema import SCHEMA, check_params

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ["params.yaml"] + sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("profiles/*/params.yaml"))


@pytest.mark.parametrize("name", PROFILES)
def test_every_committed_profile_is_valid(name):
    load_params(ROOT / name)  # raises on an unknown key (the overlays: tests/test_profiles.py)


def _write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _default():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_misspelt_key_names_it_and_the_closest_valid_key(tmp_path):
    params = _default()
    params["train"]["epoch"] = 5
    path = _write(tmp_path, params)
    with pytest.raises(ValueError) as exc:
        load_params(path)
    assert str(exc.value) == f"{path}: unknown key train.epoch; did you mean train.epochs?"


def test_misspelt_section_names_it_and_the_closest_valid_section(tmp_path):
    params = _default()
    params["trian"] = {"epochs": 5}
    path = _write(tmp_path, params)
    with pytest.raises(ValueError, match=r"unknown section trian; did you mean train\?$"):
        load_params(path)


def test_unknown_key_without_close_match_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"^p.yaml: unknown key grid.zzz; valid: grid.executor, grid.n_jobs"):
        check_params({"train": {}, "grid": {"zzz": 1}}, source="p.yaml")


def test_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ValueError, match=r"section sensitivity must be a mapping"):
        check_params({"train": {}, "sensitivity": [1, 2]})


def test_names_under_selection_and_models_are_left_to_their_own_checks():
    # a named selection variant and a model name are not settings of this schema
    check_params({"train": {}, "selection": {"hard_only": {"method": "adaptive", "score": "loss"}},
                  "models": {"my_model": {"anything": 1}}, "data": {"custom": {"toy": {"arff": "t.arff"}}}})
    assert SCHEMA["selection"] is None and SCHEMA["models"] is None


def test_every_schema_key_is_used_by_a_committed_profile():
    # the schema is not a list of guesses: each key appears in at least one profile file
    seen = {}
    for name in PROFILES:
        for section, values in yaml.safe_load((ROOT / name).read_text()).items():
            seen.setdefault(section, set()).update(values or {})
    for section, keys in SCHEMA.items():
        assert section in seen
        if keys is not None:
            assert set(keys) == seen[section], section


def test_misspelt_train_section_is_named_before_the_missing_train_section(tmp_path):
    params = _default()
    params["trian"] = params.pop("train")
    path = _write(tmp_path, params)
    with pytest.raises(ValueError, match=r"unknown section trian; did you mean train\?$"):
        load_params(path)


@pytest.mark.parametrize("section, key, value, message", [
    ("train", "epochs", "100", "train.epochs must be an integer >= 1, got '100'"),
    ("train", "epochs", 4.5, "train.epochs must be an integer >= 1, got 4.5"),
    ("train", "warmup_epochs", 101, "train.warmup_epochs must be an integer >= 0 and <= 100, got 101"),
    ("train", "seeds", 0, "train.seeds must be a non-empty list of integers >= 0, got 0"),
    ("train", "models", [], "train.models must be a non-empty list of model names, got []"),
    ("train", "folds", [-1], "train.folds must be a non-empty list of fold indices in [0, data.n_folds = 5)"),
    ("train", "folds", [7], "train.folds must be a non-empty list of fold indices in [0, data.n_folds = 5)"),
    ("train", "batch_size", 12.5, "train.batch_size must be an integer >= 1, got 12.5"),
    ("train", "batch_size", 0, "train.batch_size must be an integer >= 1, got 0"),
    ("train", "selection_pressure", "abc", "train.selection_pressure must be a number > 1"),
    ("train", "selection_pressure", 1.0, "train.selection_pressure must be a number > 1"),
    ("train", "threshold", 1.5, "train.threshold must be a number in [0, 1], got 1.5"),
    ("train", "deterministic", "maybe", "train.deterministic must be true or false, got 'maybe'"),
    ("train", "lr", "1e-3", "YAML reads as a string"),
    ("data", "n_folds", 1, "data.n_folds must be an integer >= 2, got 1"),
    ("data", "seed", "abc", "data.seed must be an integer, got 'abc'"),
    ("data", "feature_ratio", 0.5, "data.feature_ratio must be a mapping of data-set names to fractions"),
    ("grid", "n_jobs", 0, "grid.n_jobs (or null: every core) must be an integer >= 1, got 0"),
])
def test_a_value_of_the_wrong_type_or_range_is_named_before_any_work(tmp_path, section, key, value, message):
    params = _default()
    params.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match="^" + re.escape(str(_write(tmp_path, params))) + ": ") as err:
        load_params(_write(tmp_path, params))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_option_values_of_samplers_and_models_stop_the_grid_before_any_warmup(tmp_path, monkeypatch):
    import copy

    from mlabs import grid
    from mlabs.config import train_cells, train_config

    trained = []
    monkeypatch.setattr(grid, "run_warmup", lambda *a, **k: trained.append(a))
    params = _default()
    for change, message in [
            (("selection", "adaptive", "score", "weighted"), "selection.adaptive (s_e = 2): score must be one of"),
            (("selection", "adaptive", "k_neighbors", 0), "selection.adaptive (s_e = 2): k_neighbors must be"),
            (("models", "dela", "taux", 0.1), "models.dela: model 'dela' has no parameter(s) ['taux']"),
            # a method's own s_e (not the cell's) is checked as training passes it
            (("selection", "online_batch", "selection_pressure", 0.5), "selection.online_batch (s_e = 2): "),
            (("train", "device", None, "gpu"), "device gpu: not a torch device")]:
        bad = copy.deepcopy(params)
        section, name, key, value = change
        if key is None:
            bad[section][name] = value
        else:
            bad.setdefault(section, {}).setdefault(name, {})[key] = value
            if section == "selection" and name not in bad["train"]["methods"]:
                bad["train"]["methods"].append(name)
        spec = grid.GridSpec(str(tmp_path / "prepared"), str(tmp_path / "w"), str(tmp_path / "r"), train_config(bad))
        with pytest.raises(ValueError, match=re.escape(message)):
            grid.run_grid(train_cells(bad), spec, n_jobs=1, progress=False)
    assert trained == []
