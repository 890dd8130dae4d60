"""Parameter files are checked for unknown sections and keys before any work."""

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
