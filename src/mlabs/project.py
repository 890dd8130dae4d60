"""The project root: where ``dvc.yaml`` or ``params.yaml`` lives.

The pipeline's notebooks name their inputs and outputs relative to the project root, where DVC
starts them. JupyterLab starts a notebook's kernel in the notebook's own folder
(``notebooks/``), so each notebook first moves to the root with :func:`use_project_root`; under
DVC and papermill, already at the root, that changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MARKERS", "project_root", "use_project_root"]

#: files of which any one marks the project root (a copy of the pipeline in a temporary folder may
#: hold only a params.yaml)
MARKERS = ("dvc.yaml", "params.yaml")


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding one of :data:`MARKERS`.

    Raises
    ------
    FileNotFoundError
        If no folder on the way up holds them.
    """
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if any((folder / name).is_file() for name in MARKERS):
            return folder
    raise FileNotFoundError(f"no project root (a folder with {' or '.join(MARKERS)}) at or above {here}; "
                            "open the notebook from the mlabs project, or start Jupyter with `make lab`")


def use_project_root(start: str | os.PathLike | None = None) -> Path:
    """Make :func:`project_root` the working directory and return it."""
    root = project_root(start)
    if Path.cwd().resolve() != root:
        os.chdir(root)
    return root
