"""Progress bars of the trainer and the grid."""

from __future__ import annotations

import os

__all__ = ["progress_bar"]


def progress_bar(total: int, initial: int, desc: str, unit: str, enabled: bool, leave: bool = True):
    """A tqdm bar, off when ``enabled`` is false or the environment sets ``MLABS_QUIET``.

    Plain text bars (not the notebook widget): they stay readable in executed notebooks.
    """
    from tqdm import tqdm  # imported when a bar is made: the library does not need it otherwise

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                disable=not enabled or bool(os.environ.get("MLABS_QUIET")))
