"""Progress bars and progress notes of the trainer and the grid.

Progress says how a run is going: how many cells are left, how fast, what is already cached. It
is not a result, and it must stay out of the executed notebooks that are committed, which are
otherwise byte-identical whenever the same numbers are computed. The pipeline's notebook runner
(``scripts/run_notebook.py``) therefore names a log file in :data:`PROGRESS_FILE_ENV`; bars and
notes go there, and the runner relays the file to the terminal of ``dvc repro`` while the
notebook runs. Without the variable (JupyterLab, a script) they go to stderr and stdout as usual.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TextIO

__all__ = ["PROGRESS_FILE_ENV", "progress_bar", "progress_note", "progress_stream"]

#: the environment variable naming the file that receives progress instead of stderr and stdout
PROGRESS_FILE_ENV = "MLABS_PROGRESS_FILE"


@functools.lru_cache(maxsize=None)
def _open_log(path: str) -> TextIO:
    # appended to, line-buffered, kept open for the process; tqdm flushes after every update
    return open(path, "a", encoding="utf-8", buffering=1)


def progress_stream() -> TextIO | None:
    """The file named by :data:`PROGRESS_FILE_ENV`, or None when progress goes to the usual streams."""
    path = os.environ.get(PROGRESS_FILE_ENV)
    return _open_log(os.path.abspath(path)) if path else None


def progress_note(text: str) -> None:
    """Print a line about the run's progress (e.g. what is left to train): to the progress file
    when one is named, else to stdout."""
    stream = progress_stream()
    print(text, file=stream if stream is not None else sys.stdout, flush=True)


def progress_bar(total: int, initial: int, desc: str, unit: str, enabled: bool, leave: bool = True):
    """A tqdm bar, off when ``enabled`` is false or the environment sets ``MLABS_QUIET``; written to
    :func:`progress_stream` when one is named, else to stderr.

    Plain text bars (not the notebook widget): they stay readable in notebooks and log files.
    """
    from tqdm import tqdm  # imported when a bar is made: the library does not need it otherwise

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                file=progress_stream(), disable=not enabled or bool(os.environ.get("MLABS_QUIET")))
