"""dvc.yaml declares exactly the files of ``src/mlabs`` a stage's notebook imports, and the params it reads.

A missing dependency lets ``dvc status`` call stale results up to date after a code change; a
superfluous one re-runs a stage for code it never executes. So the declared deps are checked in
both directions against the import closure of each stage notebook
(:func:`mlabs.code_digest.import_closure`: static imports, including those inside functions, with
Python's import semantics). The models a stage trains count as imported, since the registry
loads them by name: its own model for a per-model stage, every model for the other stages that
train. A folder dep covers its files. A per-model stage is one template for every model, so its
model-specific helpers (``layers.py``, ``flows.py``, ...) are declared when some model needs them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mlabs.code_digest import import_closure, module_file, static_imports
from mlabs.models import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
CODE = "src/mlabs/"
PACKAGE = ROOT / "src" / "mlabs"


def _closure(roots: set[str]) -> set[str]:
    return {str(module_file(m, PACKAGE).relative_to(ROOT)) for m in import_closure(roots, PACKAGE)}


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _instances():
    """(stage name, notebook, deps, params) for every stage and every model of a per-model stage."""
    for name, stage in STAGES.items():
        body = stage.get("do", stage)
        notebook = re.search(r"run-notebook\s+(\S+)", body["cmd"]).group(1)
        models = MODEL_NAMES if "item.model" in json.dumps(body) else [None]
        for model in models:
            deps = [str(d).replace("${item.model}", model or "") for d in body.get("deps", [])]
            yield f"{name}[{model}]" if model else name, notebook, deps, body.get("params", []), model


INSTANCES = list(_instances())


def _needed(notebook: str, model: str | None) -> set[str]:
    """The files of ``src/mlabs`` the stage executes."""
    roots = set()
    for module, names in static_imports(_notebook_code(ROOT / notebook), "__notebook__"):
        roots |= {module} | {f"{module}.{n}" for n in names if module_file(f"{module}.{n}", PACKAGE)}
    if "mlabs.training" in import_closure(roots, PACKAGE):   # the stage trains: it builds models by name
        roots |= {f"mlabs.models.{m}" for m in ([model] if model else MODEL_NAMES)}
    return _closure(roots)


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


@pytest.mark.parametrize("stage, notebook, deps, params, model", INSTANCES, ids=[i[0] for i in INSTANCES])
def test_stage_declares_its_import_closure(stage, notebook, deps, params, model):
    needed = _needed(notebook, model)
    assert needed, f"{notebook} imports nothing from mlabs?"
    missing = sorted(f for f in needed if not any(_covers(d, f) for d in deps))
    assert not missing, f"dvc.yaml stage {stage} lacks deps on {missing} (imported by {notebook})"


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_declares_no_code_it_does_not_import(stage):
    instances = [i for i in INSTANCES if i[0].split("[")[0] == stage]
    needed = set().union(*(_needed(notebook, model) for _, notebook, _, _, model in instances))
    superfluous = set()
    for _, _, deps, _, _ in instances:
        for dep in (d for d in deps if d.startswith(CODE)):
            files = {str(p.relative_to(ROOT)) for p in (ROOT / dep).rglob("*.py")} if (ROOT / dep).is_dir() else {dep}
            if not files <= needed:
                superfluous.add(f"{dep} ({sorted(files - needed)[:3]} not imported)" if len(files) > 1 else dep)
    assert not superfluous, f"dvc.yaml stage {stage} depends on code its notebook never imports: {sorted(superfluous)}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_lists_each_dep_once(stage):
    body = STAGES[stage].get("do", STAGES[stage])
    for key in ("deps", "params"):
        entries = [str(e) for e in body.get(key, [])]
        assert len(entries) == len(set(entries)), \
            f"dvc.yaml stage {stage} lists {key} twice: {sorted({e for e in entries if entries.count(e) > 1})}"


@pytest.mark.parametrize("stage, notebook, deps, params, model", INSTANCES, ids=[i[0] for i in INSTANCES])
def test_stage_declares_the_params_its_notebook_reads(stage, notebook, deps, params, model):
    # params["a"]["b"] or params["a"]["b"]["c"]: read at that depth; declaring it or any prefix covers it
    read = {tuple(k for k in m if k) for m in
            re.findall(r'params\["(\w+)"\]\["(\w+)"\](?:\["(\w+)"\])?', _notebook_code(ROOT / notebook))}
    declared = {str(p).replace("${item.model}", model or "").split("#")[0].strip() for p in params}
    missing = sorted(".".join(keys) for keys in read
                     if not any(".".join(keys[:n]) in declared for n in range(1, len(keys) + 1)))
    assert not missing, f"dvc.yaml stage {stage} reads params {missing} without declaring them"


def test_closure_follows_relative_and_lazy_imports():
    files = _closure({"mlabs.grid"})
    # grid imports training at the top and data inside a function; training imports selection
    assert {"src/mlabs/training.py", "src/mlabs/data/preprocess.py", "src/mlabs/selection/registry.py"} <= files


def test_the_data_preparation_imports_neither_training_nor_selection():
    files = _needed("notebooks/01_prepare.ipynb", None)
    assert "src/mlabs/data/stats.py" in files and "src/mlabs/settings.py" in files
    assert not [f for f in files if f.startswith(("src/mlabs/selection", "src/mlabs/models")) or f.endswith(
        ("training.py", "metrics.py"))]
