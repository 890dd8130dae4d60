"""The layout of a parameter file, checked before any work (torch-free).

A key that no stage reads (``train.epoch`` for ``train.epochs``, a section ``trian``) would
otherwise be ignored and the run would go on with the default: :func:`check_params` stops it
with one line that names the key and the closest valid name.

Only the layout is checked here. Mappings whose keys are names rather than settings are left to
the code that reads them: ``selection`` (methods and named variants; their options are checked by
:mod:`mlabs.selection`), ``models`` (model options are checked by the models), ``train.model_lr`` and
``train.methods_by_model`` (model names), ``data.feature_ratio`` and ``data.custom`` (data-set names; a custom data set's
entries are checked by :mod:`mlabs.data.sources`).
"""

from __future__ import annotations

import difflib
from typing import Mapping

__all__ = ["SCHEMA", "check_params"]

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
