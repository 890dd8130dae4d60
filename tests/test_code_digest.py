"""The code digest in a cell's fingerprint (``mlabs.code_digest``): what an edit retrains.

Every edit is made on a copy of the package in a temporary folder (never on the real files); the
fingerprints are computed by :meth:`TrainConfig.fingerprint` with the copy as the package read.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlabs import code_digest as cd
from mlabs.models import MODEL_NAMES
from mlabs.settings import METHODS, TrainConfig

CELL_METHODS = ("random", "adaptive", "chain")


def _copy(tmp_path: Path, name: str, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the package under ``tmp_path/name/mlabs`` with ``edits`` (file -> (old, new),
    ``old`` a regular expression that must match)."""
    dest = tmp_path / name / "mlabs"
    shutil.copytree(cd.PACKAGE_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, (old, new) in (edits or {}).items():
        path = dest / rel
        text, n = re.subn(old, new, path.read_text(), flags=re.MULTILINE)
        assert n, f"the test's edit found no {old!r} in {rel}: update the edit to the current code"
        path.write_text(text)
    return dest


def _fingerprints(package: Path, monkeypatch) -> dict[tuple[str, str], str]:
    """The cell and warm-up fingerprints of every model x (random, adaptive, chain)."""
    monkeypatch.setattr(cd, "PACKAGE_DIR", package)
    config = TrainConfig()
    out = {(m, method): config.fingerprint(m, method, "data") for m in MODEL_NAMES for method in CELL_METHODS}
    out.update({(m, "warm-up"): config.warmup_fingerprint(m, "data") for m in MODEL_NAMES})
    return out


def _changed(tmp_path, monkeypatch, edits) -> set[tuple[str, str]]:
    before = _fingerprints(_copy(tmp_path, "before"), monkeypatch)
    after = _fingerprints(_copy(tmp_path, "after", edits), monkeypatch)
    assert before.keys() == after.keys()
    return {k for k in before if before[k] != after[k]}


def test_an_arithmetic_change_in_a_models_forward_retrains_that_model_only(tmp_path, monkeypatch):
    changed = _changed(tmp_path, monkeypatch, {"models/c2ae.py": (r"\(self\.fx\(x\)\) - 0\.5", "(self.fx(x)) - 0.25")})
    assert changed == {("c2ae", m) for m in (*CELL_METHODS, "warm-up")}


def test_comments_docstrings_and_blank_lines_retrain_nothing(tmp_path, monkeypatch):
    edits = {
        # a comment line and a blank line before every def, a trailing comment, a new docstring
        "training.py": (r"^([ \t]*)def ", r"\n\1# an added comment\n\n\1def "),
        "models/c2ae.py": (r"\(self\.fx\(x\)\) - 0\.5$", "(self.fx(x)) - 0.5  # an added comment"),
        "metrics.py": (r'\A"""', '"""An added first line of the module docstring.\n\n'),
        "selection/chain/sampler.py": (r"^([ \t]*)(def .*:)$", r'\1\2\n\1    """An added docstring."""'),
    }
    assert _changed(tmp_path, monkeypatch, edits) == set()


def test_a_changed_metric_retrains_every_cell(tmp_path, monkeypatch):
    # a finished cell keeps no model to re-evaluate, so its metrics' code is part of it
    changed = _changed(tmp_path, monkeypatch, {"metrics.py": (r"np\.count_nonzero\(Y != P\) / Y\.size",
                                                             "np.count_nonzero(Y != P) / (Y.size + 1)")})
    assert changed == {(m, method) for m in MODEL_NAMES for method in (*CELL_METHODS, "warm-up")}


def test_a_chain_sampler_edit_retrains_chain_cells_only(tmp_path, monkeypatch):
    changed = _changed(tmp_path, monkeypatch, {"selection/chain/sampler.py": (r"\Z", "\n_EDITED = 1 + 1\n")})
    assert changed == {(m, "chain") for m in MODEL_NAMES}


def test_adding_a_method_to_the_registry_retrains_nothing(tmp_path, monkeypatch):
    # the registry maps names to every sampler: its table is no cell's code, its functions are
    edits = {"selection/registry.py": (r'^    "d2ace": D2ACEBatchSampler,$',
                                       '    "d2ace": D2ACEBatchSampler,\n    "d2ace_again": D2ACEBatchSampler,')}
    assert _changed(tmp_path, monkeypatch, edits) == set()
    edits = {"selection/registry.py": (r"^    cls = sampler_class\(method\)$",
                                       "    cls = sampler_class(method)\n    kw = {}")}
    # its glue (make_sampler) is imported by the training loop: every cell and warm-up
    assert len(_changed(tmp_path / "glue", monkeypatch, edits)) == len(MODEL_NAMES) * (len(CELL_METHODS) + 1)


def test_a_cell_depends_on_its_own_model_and_sampler_not_the_others():
    for model in MODEL_NAMES:
        for method in METHODS:
            modules = cd.digest_modules(cd.cell_code_roots(model, method))
            models = {m.rpartition(".")[2] for m in modules if m.rpartition(".")[0] == "mlabs.models"}
            assert models & set(MODEL_NAMES) == {model}
            assert {"mlabs.training", "mlabs.metrics"} <= modules.keys()
            assert ("mlabs.selection.chain.sampler" in modules) == (method == "chain")
    assert "mlabs.selection.d2ace" not in cd.digest_modules(cd.cell_code_roots("dela", "adaptive"))
    # CLIF's label graph imports label_correlation through the selection package: the module
    # that defines it counts, the package's other samplers do not
    clif = cd.digest_modules(cd.cell_code_roots("clif", "random"))
    assert "mlabs.selection.imbalance" in clif and "mlabs.selection.adaptive" not in clif


def test_the_fingerprint_covers_settings_data_and_library_versions(monkeypatch):
    config = TrainConfig()
    base = config.fingerprint("dela", "adaptive", "data")
    assert TrainConfig(epochs=99).fingerprint("dela", "adaptive", "data") != base
    assert config.fingerprint("dela", "adaptive", "other data") != base
    monkeypatch.setattr("mlabs.settings.library_versions", lambda: {"torch": "0.0", "numpy": "0.0"})
    assert config.fingerprint("dela", "adaptive", "data") != base


# ----------------------------------------------------------------------------------------------
# the token stream


SNIPPET = '''"""Module docstring."""
# a comment
import os


def f(a, b="x"):  # a trailing comment
    """A docstring."""
    return f"{a!r:>{b}} {f'{a}'}" + 'y' \\
        + (a
           * 2)


class A:
    """A class with a docstring only."""
'''


def test_the_token_stream_of_a_snippet_is_pinned():
    # the same stream on every supported Python: 3.12's f-string tokens are joined into one string
    # token, token types are named (their numbers differ between versions), text of structure is dropped
    assert cd.token_stream(SNIPPET) == [
        ("NAME", "import"), ("NAME", "os"), ("NEWLINE", ""),
        ("NAME", "def"), ("NAME", "f"), ("OP", "("), ("NAME", "a"), ("OP", ","), ("NAME", "b"), ("OP", "="),
        ("STRING", "'x'"), ("OP", ")"), ("OP", ":"), ("NEWLINE", ""), ("INDENT", ""),
        ("NAME", "return"), ("STRING", "f\"{a!r:>{b}} {f'{a}'}\""), ("OP", "+"), ("STRING", "'y'"),
        ("OP", "+"), ("OP", "("), ("NAME", "a"), ("OP", "*"), ("NUMBER", "2"), ("OP", ")"), ("NEWLINE", ""),
        ("DEDENT", ""), ("NAME", "class"), ("NAME", "A"), ("OP", ":"), ("NEWLINE", ""),
    ]


def test_formatting_does_not_count_but_block_structure_does():
    same = SNIPPET.replace('b="x"', "b='x'").replace("    ", "  ").replace("(a\n", "(\n  a\n")
    assert cd.token_stream(same) == cd.token_stream(SNIPPET)
    moved = "if a:\n    x()\ny()\n"
    assert cd.token_stream(moved) != cd.token_stream("if a:\n    x()\n    y()\n")


def _render(stream: list[tuple[str, str]]) -> str:
    """Source text of a token stream, formatted otherwise: one space between tokens, one space
    per indentation level, no comments or docstrings."""
    lines, level, words = [], 0, []
    for kind, text in stream:
        if kind == "NEWLINE":
            lines.append(" " * level + " ".join(words))
            words = []
        elif kind == "INDENT":
            level += 1
        elif kind == "DEDENT":
            level -= 1
        else:
            words.append(text)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", sorted(cd.PACKAGE_DIR.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(cd.PACKAGE_DIR)))
def test_retokenising_every_module_reformatted_gives_the_same_stream(path):
    stream = cd.token_stream(path.read_text())
    assert stream, path
    assert cd.token_stream(_render(stream)) == stream


_STREAMS = """
import hashlib, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("code_digest", sys.argv[1])
cd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cd)
out = {str(p): repr(cd.token_stream(p.read_text())) for p in sorted(cd.PACKAGE_DIR.rglob("*.py"))}
out["digest"] = cd.code_digest(["mlabs.training", "mlabs.models.clif", "mlabs.selection.chain.sampler"])
print(json.dumps(out))
"""


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_the_digest_is_the_same_under_every_supported_python(version):
    # code_digest.py needs only the standard library, so another interpreter can run it as is; an
    # interpreter not on PATH is skipped (with pyenv: PATH=$PATH:$(pyenv root)/versions/3.12.1/bin)
    exe = shutil.which(f"python{version}")
    probe = exe and subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True)
    if not probe or probe.returncode or probe.stdout.strip() != version:
        pytest.skip(f"no python{version} on PATH to compare the digest with")
    run = subprocess.run([exe, "-c", _STREAMS, cd.__file__], capture_output=True, text=True, check=True)
    theirs = json.loads(run.stdout)
    ours = {str(p): repr(cd.token_stream(p.read_text())) for p in sorted(cd.PACKAGE_DIR.rglob("*.py"))}
    ours["digest"] = cd.code_digest(["mlabs.training", "mlabs.models.clif", "mlabs.selection.chain.sampler"])
    assert [k for k in ours if theirs.get(k) != ours[k]] == []


# ----------------------------------------------------------------------------------------------
# the import graph and the torch-free settings


def test_name_maps_exist_and_cells_of_every_model_and_method_have_a_digest():
    assert all(cd.module_file(m) for m in cd.NAME_MAPS)
    digests = {cd.code_digest(cd.cell_code_roots(m, method)) for m in MODEL_NAMES for method in METHODS}
    assert len(digests) == len(MODEL_NAMES) * len(METHODS)
    with pytest.raises(ValueError, match="no module"):
        cd.code_digest(["mlabs.no_such_module"])


def test_the_torch_free_method_list_matches_the_registry():
    from mlabs.selection import SAMPLERS

    assert METHODS == tuple(SAMPLERS)


def test_reading_settings_and_preparing_data_imports_neither_torch_nor_the_samplers():
    code = ("import sys, mlabs.config, mlabs.data, mlabs.settings; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('mlabs.selection', 'mlabs.models'))]; "
            "assert not bad, bad")
    src = str(cd.PACKAGE_DIR.parent)
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": src}, cwd=src)


def test_the_data_statistics_imbalance_ratios_agree_with_the_samplers():
    from mlabs.data.stats import dataset_statistics, label_imbalance_ratios
    from mlabs.selection import label_imbalance_ratios as torch_ratios, mean_imbalance_ratio

    rng = np.random.default_rng(0)
    Y = (rng.random((200, 30)) < rng.random(30) * 0.5).astype(np.uint8)
    Y[:, 3] = 0   # a label without positives: inf
    assert np.array_equal(label_imbalance_ratios(Y), torch_ratios(Y).numpy())
    Y[:, 3] = Y[:, 4]
    stats = dataset_statistics(type("D", (), {"X": np.zeros((200, 2)), "Y": Y})())
    assert stats["mean_ir"] == pytest.approx(mean_imbalance_ratio(Y), rel=1e-14)
    assert stats["max_ir"] == float(torch_ratios(Y).max())
