"""dvc.yaml declares every file of ``src/mlabs`` a stage's notebook imports, and the params it reads.

A missing dependency lets ``dvc status`` call stale results up to date after a code change, so
the declared deps are checked against the import closure of each stage notebook (static
imports, including those inside functions; the model a per-model stage builds counts as
imported, since the registry loads it by name).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from mlabs.models import MODEL_NAMES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of the ``mlabs`` modules a module's code imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    # imports under `if TYPE_CHECKING:` never run
    skipped = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mlabs"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.split(".")[0] != "mlabs":
                continue
            found.add(name)
            found |= {f"{name}.{a.name}" for a in node.names if _module_file(f"{name}.{a.name}")}
    return found


def _closure(roots: set[str]) -> set[Path]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        path = _module_file(name)
        if path is None:
            continue
        todo += sorted(_imports(ast.parse(path.read_text()), name, path.name == "__init__.py"))
    return {p.relative_to(ROOT) for p in map(_module_file, seen) if p is not None}


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


@pytest.mark.parametrize("stage, notebook, deps, params, model", INSTANCES, ids=[i[0] for i in INSTANCES])
def test_stage_declares_its_import_closure(stage, notebook, deps, params, model):
    code = _notebook_code(ROOT / notebook)
    roots = _imports(ast.parse(code), "__notebook__", False)
    if model:
        roots.add(f"mlabs.models.{model}")
    needed = _closure(roots)
    assert needed, f"{notebook} imports nothing from mlabs?"
    missing = sorted(str(f) for f in needed
                     if not any(str(f) == d or str(f).startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml stage {stage} lacks deps on {missing} (imported by {notebook})"


@pytest.mark.parametrize("stage, notebook, deps, params, model", INSTANCES, ids=[i[0] for i in INSTANCES])
def test_stage_declares_the_params_its_notebook_reads(stage, notebook, deps, params, model):
    read = set(re.findall(r'params\["(\w+)"\]\["(\w+)"\]', _notebook_code(ROOT / notebook)))
    declared = {str(p).replace("${item.model}", model or "") for p in params}
    missing = sorted(f"{a}.{b}" for a, b in read if a not in declared and f"{a}.{b}" not in declared)
    assert not missing, f"dvc.yaml stage {stage} reads params {missing} without declaring them"


def test_closure_follows_relative_and_lazy_imports():
    files = {str(p) for p in _closure({"mlabs.grid"})}
    # grid imports training at the top and data inside a function; training imports selection
    assert {"src/mlabs/training.py", "src/mlabs/data/preprocess.py", "src/mlabs/selection/registry.py"} <= files
