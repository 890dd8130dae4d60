"""scripts/retrain_impact.py: which cells a code change retrains, by module and by real digests."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from mlabs.config import load_params, train_config
from mlabs.selection.registry import sampler_class

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("retrain_impact", ROOT / "scripts" / "retrain_impact.py")
ri = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ri)

PARAMS = load_params(ROOT / "params.yaml")
CONFIG = train_config(PARAMS)


def _sampler(key):
    """The sampler class name of a cell key of :func:`profile_impact`."""
    model, method = key[0][1], key[0][2]
    return model, sampler_class(CONFIG.resolve_method(method)[0]).__name__


def test_a_change_of_the_chain_engine_retrains_the_chain_cells_only():
    part = ri.profile_impact(PARAMS, ri.Impact(modules=["mlabs.selection.chain.engine"]))
    assert part["retrain"] and not part["rewarm"]
    assert {_sampler(k)[1] for k in part["retrain"]} == {"ChainBatchSampler"}
    chain = [k for k in part["cells"] if _sampler(k)[1] == "ChainBatchSampler"]
    assert sorted(part["retrain"]) == sorted(chain)
    assert all(seconds > 0 for seconds in part["retrain"].values())


def test_a_model_change_retrains_its_cells_and_warmups_and_report_code_nothing():
    part = ri.profile_impact(PARAMS, ri.Impact(modules=["mlabs.models.dela"]))
    assert {_sampler(k)[0] for k in part["retrain"]} == {"dela"}
    assert len(part["retrain"]) == sum(_sampler(k)[0] == "dela" for k in part["cells"])
    assert part["rewarm"] and {k[1] for k in part["rewarm"]} == {"dela"}
    none = ri.profile_impact(PARAMS, ri.Impact(modules=["mlabs.report.page"]))
    assert not none["retrain"] and not none["rewarm"] and len(none["cells"]) == len(part["cells"])


def test_real_digests_ignore_a_comment_and_see_an_arithmetic_change(tmp_path):
    old = tmp_path / "mlabs"
    shutil.copytree(ROOT / "src" / "mlabs", old, ignore=shutil.ignore_patterns("__pycache__"))
    training = old / "training.py"
    training.write_text("# a comment that changes nothing\n" + training.read_text())
    part = ri.profile_impact(PARAMS, ri.Impact(old=old))
    assert not part["retrain"] and not part["rewarm"]

    # a second copy: code_digest caches what it read per file path
    old = tmp_path / "v2" / "mlabs"
    shutil.copytree(ROOT / "src" / "mlabs", old, ignore=shutil.ignore_patterns("__pycache__"))
    c2ae = old / "models" / "c2ae.py"
    text = c2ae.read_text()
    assert text.count("self.alpha = float(alpha)") == 1
    c2ae.write_text(text.replace("self.alpha = float(alpha)", "self.alpha = float(alpha) * 1.0"))
    part = ri.profile_impact(PARAMS, ri.Impact(old=old))
    assert part["retrain"] and {_sampler(k)[0] for k in part["retrain"]} == {"c2ae"}
    assert len(part["retrain"]) == sum(_sampler(k)[0] == "c2ae" for k in part["cells"])


def test_bad_arguments_get_one_line_errors(capsys):
    with pytest.raises(SystemExit, match="no module mlabs.nope under src/"):
        ri.main(["--module", "mlabs.nope"])
    with pytest.raises(SystemExit, match="cannot read src/mlabs at 'no-such-revision'"):
        ri.main(["--since", "no-such-revision"])
    with pytest.raises(SystemExit, match="unknown profile"):
        ri.main(["--profiles", "nope"])


def test_the_command_prints_a_line_per_profile_and_the_distinct_total(capsys):
    assert ri.main(["--module", "mlabs.selection.chain.engine", "--profiles", "default", "seeds"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("what a change of mlabs.selection.chain.engine retrains")
    assert [line.split()[0] for line in out[1:]] == ["default", "seeds", "distinct"]
