"""The digest of the code that computes a cell, and the static import graph of the package.

A cell's fingerprint (:meth:`mlabs.settings.TrainConfig.fingerprint`) covers its settings, its
fold's data, the torch and numpy versions and :func:`code_digest` of the modules that compute it
(:func:`cell_code_roots`), so that a change of that code retrains the cell and nothing else does.

What counts as a change
    Each module is hashed as a stream of its significant tokens (:func:`token_stream`): comments,
    docstrings and other string-only statements, blank lines, line breaks inside brackets,
    indentation width and the quote style of plain strings do not count. Tokens, not ``ast.dump``:
    the AST's dump differs between Python 3.11, 3.12 and 3.13, a token stream does not once 3.12's
    f-string tokens are joined back into one string token.
Which modules count
    The static import graph (``import`` and ``from ... import`` statements anywhere in a module,
    including inside functions, except under ``if TYPE_CHECKING:``) from the roots, with one rule:
    a *name map* (:data:`NAME_MAPS`, modules that map names to every model or sampler) is not
    followed as a whole. A name imported through it leads to the module that defines the name, and
    the map itself contributes only its functions (the glue a cell calls, e.g. ``make_sampler``),
    not its tables or imports. So a cell depends on its own model and sampler, not on the others,
    and adding a method to the registry retrains nothing.

:func:`import_closure` is the same graph with Python's import semantics (parent packages and name
maps included): what importing a module executes. ``tests/test_stage_deps.py`` checks the
dependencies of every DVC stage against it.

This module imports neither torch nor the rest of the package, so reading settings stays cheap.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import io
import tokenize
from importlib import metadata
from pathlib import Path
from typing import Iterable

__all__ = ["NAME_MAPS", "PACKAGE_DIR", "token_stream", "module_file", "static_imports", "import_closure",
           "digest_modules", "code_digest", "cell_code_roots", "warmup_code_roots", "library_versions"]

#: the folder of the ``mlabs`` package whose code is hashed
PACKAGE_DIR = Path(__file__).resolve().parent
#: modules that map names to every model or sampler (re-exports and registries)
NAME_MAPS = frozenset({"mlabs.models", "mlabs.selection", "mlabs.selection.registry"})

_DROPPED = {"COMMENT", "NL", "ENCODING", "ENDMARKER"}
#: structure tokens: kept, their text (whitespace, line ends) is not
_STRUCTURE = {"NEWLINE", "INDENT", "DEDENT"}
# Python 3.12 splits f-strings into start/middle/end tokens (3.14 t-strings likewise); 3.11 gives one
# STRING token with the literal's source text, which the joined parts reproduce exactly
_STRING_START = {getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)}
_STRING_END = {getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)}


# ----------------------------------------------------------------------------------------------
# token streams


def _source_span(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (r0, c0), (r1, c1) = start, end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    return lines[r0 - 1][c0:] + "".join(lines[r0:r1 - 1]) + lines[r1 - 1][:c1]


def _raw_tokens(source: str) -> list[tuple[str, str, int]]:
    """(type name, text, line) of every token, an f-string as one STRING token."""
    lines = source.splitlines(keepends=True)
    out, depth, start = [], 0, None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _STRING_START:
            if depth == 0:
                start = tok.start
            depth += 1
        elif depth:
            if tok.type in _STRING_END:
                depth -= 1
                if depth == 0:
                    out.append(("STRING", _source_span(lines, start, tok.end), start[0]))
        else:
            # type names, not numbers: token numbers differ between Python versions
            out.append((tokenize.tok_name[tok.type], tok.string, tok.start[0]))
    return out


def _is_plain_string(text: str) -> bool:
    prefix = text[: len(text) - len(text.lstrip("rRbBuUfFtT"))]
    return not set(prefix.lower()) & {"f", "t"}


def _normalise(tokens: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Drop comments, blank lines and string-only statements (docstrings); fix what remains."""
    out: list[tuple[str, str, int]] = []
    line: list[tuple[str, str, int]] = []   # the logical line being read
    for kind, text, row in tokens:
        if kind in _DROPPED:
            continue
        if kind in _STRUCTURE:
            text = ""
        elif kind == "STRING" and _is_plain_string(text):
            text = repr(ast.literal_eval(text))   # the value, not its quotes or escapes
        if kind != "NEWLINE":
            line.append((kind, text, row))
            continue
        body = [t for t in line if t[0] not in ("INDENT", "DEDENT")]
        if body and all(k == "STRING" and _is_plain_string(s) for k, s, _ in body):
            line = [t for t in line if t[0] in ("INDENT", "DEDENT")]   # a docstring: a no-op
        else:
            line.append((kind, text, row))
        _emit(out, line)
        line = []
    _emit(out, line)   # the DEDENTs at the end
    return out


def _emit(out: list, tokens: list) -> None:
    for tok in tokens:
        if tok[0] == "DEDENT" and out and out[-1][0] == "INDENT":
            out.pop()   # a block that held only a docstring
        else:
            out.append(tok)


def token_stream(source: str) -> list[tuple[str, str]]:
    """The significant tokens of Python ``source``, as (token type name, text).

    Comments, blank lines, line continuations, docstrings (any statement that is only a plain
    string), the indentation width and the quoting of plain strings are left out or normalised;
    ``NEWLINE``, ``INDENT`` and ``DEDENT`` stay (without their text), since they carry the block
    structure. The same source gives the same stream on Python 3.11 to 3.13.
    """
    return [(k, s) for k, s, _ in _normalise(_raw_tokens(source))]


def _function_rows(source: str) -> set[int]:
    """The lines of the top-level functions and classes of ``source`` (decorators included)."""
    rows = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            rows.update(range(first, node.end_lineno + 1))
    return rows


# ----------------------------------------------------------------------------------------------
# the static import graph


def module_file(module: str, package_dir: str | Path | None = None) -> Path | None:
    """The file of ``module`` (``mlabs.x.y``) under ``package_dir`` (the ``mlabs`` folder), or None."""
    package_dir = Path(package_dir or PACKAGE_DIR)
    parts = module.split(".")
    if parts[0] != "mlabs":
        return None
    base = package_dir.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    return {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
            and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for n in ast.walk(stmt)}


def static_imports(source: str, module: str, is_package: bool = False,
                   rows: set[int] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """The ``mlabs`` imports of ``source`` as (absolute module, imported names).

    ``import a.b`` gives ``("a.b", ())``; ``from .x import y, z`` in ``mlabs.p.q`` gives
    ``("mlabs.p.x", ("y", "z"))``. Imports inside functions count, those under
    ``if TYPE_CHECKING:`` do not. ``rows``: only the imports on those lines.
    """
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped or (rows is not None and getattr(node, "lineno", None) not in rows):
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, ()) for a in node.names if a.name.split(".")[0] == "mlabs"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.split(".")[0] == "mlabs":
                found.append((name, tuple(a.name for a in node.names)))
    return found


@functools.lru_cache(maxsize=None)
def _parsed(path: Path, module: str) -> tuple[str, tuple]:
    source = path.read_text(encoding="utf-8")
    return source, tuple(static_imports(source, module, path.name == "__init__.py"))


def _imports_of(module: str, package_dir: Path) -> tuple:
    path = module_file(module, package_dir)
    return () if path is None else _parsed(path, module)[1]


def import_closure(roots: Iterable[str], package_dir: str | Path | None = None) -> frozenset[str]:
    """Every ``mlabs`` module that importing ``roots`` executes (Python's import semantics).

    Importing ``a.b.c`` runs ``a`` and ``a.b`` too, and ``from a import b`` runs ``a.b`` when it
    is a module; name maps are followed like any module. Only modules with a file are returned.
    """
    package_dir = Path(package_dir or PACKAGE_DIR)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for target, names in _imports_of(name, package_dir):
            todo.append(target)
            todo += [f"{target}.{n}" for n in names if module_file(f"{target}.{n}", package_dir)]
    return frozenset(n for n in seen if module_file(n, package_dir))


def _map_binding(name_map: str, name: str, package_dir: Path) -> tuple[str, str] | None:
    """Where ``name`` of a name map comes from: (module, its name there), or None (defined in the
    map itself)."""
    path = module_file(name_map, package_dir)
    tree = ast.parse(_parsed(path, name_map)[0])
    package = name_map if path.name == "__init__.py" else name_map.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
                    source = ".".join(p for p in (base, node.module) if p)
                    return source, alias.name
    return None


def digest_modules(roots: Iterable[str], package_dir: str | Path | None = None) -> dict[str, str]:
    """The modules :func:`code_digest` hashes for ``roots``: module -> ``"module"`` (all of it) or
    ``"functions"`` (a name map: its top-level functions and classes only)."""
    package_dir = Path(package_dir or PACKAGE_DIR)
    found: dict[str, str] = {}
    todo: list[tuple[str, str | None]] = [(r, None) for r in roots]   # (module, name imported from it)
    while todo:
        module, name = todo.pop()
        if module_file(module, package_dir) is None:
            continue
        if name not in (None, "*") and module_file(f"{module}.{name}", package_dir):
            todo.append((f"{module}.{name}", None))   # `from package import submodule`
            continue
        if module in NAME_MAPS:
            binding = _map_binding(module, name, package_dir) if name not in (None, "*") else None
            if binding is not None and binding[0].split(".")[0] == "mlabs":
                todo.append(binding)
            elif found.get(module) is None:
                found[module] = "functions"
                path = module_file(module, package_dir)
                rows = _function_rows(_parsed(path, module)[0])
                for target, names in static_imports(_parsed(path, module)[0], module,
                                                    path.name == "__init__.py", rows):
                    todo += [(target, n) for n in names] or [(target, None)]
            continue
        if found.get(module) == "module":
            continue
        found[module] = "module"
        for target, names in _imports_of(module, package_dir):
            todo += [(target, n) for n in names] or [(target, None)]
    return dict(sorted(found.items()))


@functools.lru_cache(maxsize=None)
def _module_digest(path: Path, module: str, part: str) -> str:
    source = _parsed(path, module)[0]
    tokens = _normalise(_raw_tokens(source))
    if part == "functions":
        rows = _function_rows(source)
        tokens = [t for t in tokens if t[2] in rows]
    text = "\n".join(f"{k} {s}" for k, s, _ in tokens)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def _code_digest(roots: tuple[str, ...], package_dir: Path) -> str:
    h = hashlib.sha256()
    for module, part in digest_modules(roots, package_dir).items():
        h.update(f"{module} {part} {_module_digest(module_file(module, package_dir), module, part)}\n".encode())
    return h.hexdigest()[:16]


def code_digest(roots: Iterable[str], package_dir: str | Path | None = None) -> str:
    """A 16-hex-digit digest of the code of ``roots`` and of the modules they import.

    Parameters
    ----------
    roots : iterable of str
        Module names (``mlabs.training``, ``mlabs.models.dela``, ...).
    package_dir : path, optional
        The ``mlabs`` folder whose files are read (default: this package's). Files are read once
        per process: an edit made while a process runs counts from the next process on.
    """
    roots = tuple(sorted(set(roots)))
    package_dir = Path(package_dir or PACKAGE_DIR).resolve()
    missing = [r for r in roots if module_file(r, package_dir) is None]
    if missing:
        raise ValueError(f"no module {missing} under {package_dir}; roots are mlabs module names")
    return _code_digest(roots, package_dir)


# ----------------------------------------------------------------------------------------------
# what computes a cell


def warmup_code_roots(model: str) -> tuple[str, ...]:
    """The modules that compute a warm-up of ``model``: the training loop and the model's module
    (the warm-up's random batches come through the training loop's imports)."""
    # imported by name when a fingerprint is computed, which only happens where cells train (and
    # torch is loaded anyway): reading settings, as the prepare stage does, stays torch-free
    models = importlib.import_module("mlabs.models")
    return ("mlabs.training", models._model_class(model).__module__)


def cell_code_roots(model: str, method: str) -> tuple[str, ...]:
    """The modules that compute a cell of ``model`` and ``method``: the warm-up's, and the module
    of the sampler class the method resolves to, with its package when that is a package of its
    own (``mlabs.selection.chain``)."""
    registry = importlib.import_module("mlabs.selection.registry")
    sampler = registry.sampler_class(method).__module__
    package = sampler.rpartition(".")[0]
    extra = (package,) if package not in NAME_MAPS and package != "mlabs" else ()
    return (*warmup_code_roots(model), sampler, *extra)


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """The torch and numpy versions (without a local build tag such as ``+cpu``), read from the
    installed distributions so that no import of torch is needed."""
    out = {}
    for dist in ("torch", "numpy"):
        try:
            out[dist] = metadata.version(dist).split("+")[0]
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
