"""The layout of a parameter file, checked before any work (torch-free).

A key that no stage reads (``train.epoch`` for ``train.epochs``, a section ``trian``) would
otherwise be ignored and the run would go on with the default: :func:`check_params` stops it
with one line that names the key and the closest valid name.

:func:`check_values` then checks the type and range of every scalar and list setting of the
``data``, ``train``, ``sensitivity`` and ``grid`` sections (``train.epochs: "100"``, ``train.seeds:
0``, ``data.n_folds: 1``), naming the key. Mappings whose keys are names rather than settings are left to
the code that reads them: ``selection`` (methods and named variants; their options are checked by
:mod:`mlabs.selection`), ``models`` (model options are checked by the models), ``train.model_lr`` and
``train.methods_by_model`` (model names), ``data.feature_ratio`` and ``data.custom`` (data-set names; a custom data set's
entries are checked by :mod:`mlabs.data.sources`).
"""

from __future__ import annotations

import difflib
from typing import Mapping

__all__ = ["SCHEMA", "check_params", "check_values"]

#: Every section of a parameter file and its keys; ``None``: the section's keys are names checked
#: elsewhere (see the module docstring). Keys whose values are mappings of names (``data.custom``,
#: ``train.model_lr``, ...) are listed like any other key: their contents are not checked here.
SCHEMA: dict[str, tuple[str, ...] | None] = {
    "data": ("datasets", "seed", "n_folds", "min_label_positives", "feature_ratio", "custom"),
    "train": ("models", "methods", "methods_by_model", "folds", "seeds", "epochs", "warmup_epochs", "lr", "model_lr",
              "weight_decay", "batch_size", "selection_pressure", "threshold", "device", "deterministic"),
    "selection": None,
    "models": None,
    "sensitivity": ("datasets", "models", "folds", "epochs", "selection_pressures", "batch_sizes"),
    "grid": ("executor", "n_jobs", "address", "cpus_per_cell", "gpus_per_cell"),
}


def _unknown(kind: str, name: str, valid: list[str], source: str, prefix: str = "") -> ValueError:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean {prefix}{close[0]}?" if close else "valid: " + ", ".join(prefix + v for v in valid)
    return ValueError(f"{source}: unknown {kind} {prefix}{name}; {hint}")


def check_params(params: Mapping, source: str = "params.yaml") -> None:
    """Raise ``ValueError`` naming the first unknown section or key of ``params``.

    Parameters
    ----------
    params : mapping
        The parsed parameter file.
    source : str
        The file's name, the start of the message.

    Raises
    ------
    ValueError
        One line, e.g. ``params.yaml: unknown key train.epoch; did you mean train.epochs?``.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"{source}: expected a mapping of sections ({', '.join(SCHEMA)}), "
                         f"got {type(params).__name__}")
    for section, values in params.items():
        section = str(section)
        if section not in SCHEMA:
            raise _unknown("section", section, list(SCHEMA), source)
        keys = SCHEMA[section]
        if keys is None or values is None:  # names checked elsewhere, or an empty section
            continue
        if not isinstance(values, Mapping):
            raise ValueError(f"{source}: section {section} must be a mapping of its keys "
                             f"({', '.join(keys)}), got {type(values).__name__}")
        for key in values:
            if str(key) not in keys:
                raise _unknown("key", str(key), list(keys), source, prefix=f"{section}.")


def _fail(source: str, key: str, what: str, value) -> ValueError:
    return ValueError(f"{source}: {key} must be {what}, got {value!r}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(section: Mapping, key: str, source: str, name: str, minimum: int | None = None, maximum=None) -> None:
    if key not in section:
        return
    v = section[key]
    lo = "" if minimum is None else f" >= {minimum}"
    hi = "" if maximum is None else f" and <= {maximum}"
    if not _is_int(v) or (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise _fail(source, name, f"an integer{lo}{hi}", v)


def _number(section: Mapping, key: str, source: str, name: str, check, what: str) -> None:
    if key in section and not (_is_number(section[key]) and check(section[key])):
        hint = " (in YAML write 1.0e-3, not 1e-3, which YAML reads as a string)" if isinstance(section[key], str) else ""
        raise _fail(source, name, what + hint, section[key])


def _list(section: Mapping, key: str, source: str, name: str, item, what: str, empty: bool = False) -> None:
    if key not in section:
        return
    v = section[key]
    if not isinstance(v, list) or not (v or empty) or not all(item(x) for x in v):
        raise _fail(source, name, f"a {'' if empty else 'non-empty '}list of {what}", v)


def _names(v) -> bool:
    return isinstance(v, str) and bool(v)


def check_values(params: Mapping, source: str = "params.yaml") -> None:
    """Raise ``ValueError`` naming the first setting of ``params`` with a value of the wrong type or
    range, e.g. ``params.yaml: train.seeds must be a non-empty list of integers >= 0, got 0``.

    Run after :func:`check_params` (the layout); the option values of ``selection`` and ``models``
    are checked by building each sampler and model once (:func:`mlabs.grid.check_settings`).
    """
    data = params.get("data") or {}
    _list(data, "datasets", source, "data.datasets", _names, "data-set names")
    _int(data, "seed", source, "data.seed")
    _int(data, "n_folds", source, "data.n_folds", 2)
    _int(data, "min_label_positives", source, "data.min_label_positives", 1)
    ratios = data.get("feature_ratio")
    if ratios is not None and not (isinstance(ratios, Mapping) and all(
            _is_number(r) and 0 < r <= 1 for r in ratios.values())):
        raise _fail(source, "data.feature_ratio", "a mapping of data-set names to fractions in (0, 1]", ratios)
    t = params.get("train") or {}
    n_folds = data.get("n_folds")
    _list(t, "models", source, "train.models", _names, "model names")
    _list(t, "methods", source, "train.methods", _names, "method names")
    _list(t, "folds", source, "train.folds",
          lambda f: _is_int(f) and f >= 0 and (not _is_int(n_folds) or f < n_folds),
          f"fold indices in [0, data.n_folds = {n_folds})" if _is_int(n_folds) else "integers >= 0")
    _list(t, "seeds", source, "train.seeds", lambda s: _is_int(s) and s >= 0, "integers >= 0")
    _int(t, "epochs", source, "train.epochs", 1)
    if _is_int(t.get("epochs")):
        _int(t, "warmup_epochs", source, "train.warmup_epochs", 0, t["epochs"])
    _int(t, "batch_size", source, "train.batch_size", 1)
    _number(t, "lr", source, "train.lr", lambda v: v > 0, "a number > 0")
    _number(t, "weight_decay", source, "train.weight_decay", lambda v: v >= 0, "a number >= 0")
    _number(t, "selection_pressure", source, "train.selection_pressure", lambda v: v > 1,
            "a number > 1 (s_e: the largest over the smallest selection probability)")
    _number(t, "threshold", source, "train.threshold", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    if "device" in t and not _names(t["device"]):
        raise _fail(source, "train.device", "a torch device name (cpu, cuda, cuda:1, mps)", t["device"])
    if "deterministic" in t and not isinstance(t["deterministic"], bool):
        raise _fail(source, "train.deterministic", "true or false", t["deterministic"])
    model_lr = t.get("model_lr")
    if model_lr is not None and not isinstance(model_lr, Mapping):
        raise _fail(source, "train.model_lr", "a mapping of model names to learning rates", model_lr)
    s = params.get("sensitivity") or {}
    _list(s, "datasets", source, "sensitivity.datasets", _names, "data-set names", empty=True)
    _list(s, "models", source, "sensitivity.models", _names, "model names", empty=True)
    _list(s, "folds", source, "sensitivity.folds", lambda f: _is_int(f) and f >= 0, "integers >= 0", empty=True)
    _int(s, "epochs", source, "sensitivity.epochs", 1)
    _list(s, "selection_pressures", source, "sensitivity.selection_pressures",
          lambda v: _is_number(v) and v > 1, "numbers > 1", empty=True)
    _list(s, "batch_sizes", source, "sensitivity.batch_sizes", lambda v: _is_int(v) and v >= 1, "integers >= 1", empty=True)
    g = params.get("grid") or {}
    if g.get("n_jobs") is not None:
        _int(g, "n_jobs", source, "grid.n_jobs (or null: every core)", 1)
    _number(g, "cpus_per_cell", source, "grid.cpus_per_cell", lambda v: v > 0, "a number > 0")
    _number(g, "gpus_per_cell", source, "grid.gpus_per_cell", lambda v: v >= 0, "a number >= 0")
