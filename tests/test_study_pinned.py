"""Short real cells, the report of a fixed result tree and the cell fingerprints of every params
profile are exactly those pinned in tests/data/study_pins.json (see tests/data/make_study_pins.py).

A difference means a result, a report or the settings part of a fingerprint (which decides
whether finished cells are re-run) changed. The fingerprints are pinned by their settings part
only (:meth:`TrainConfig.cell_settings`): the whole fingerprint also covers the code that computes
a cell, so it changes with every intended code change (``tests/test_code_digest.py`` tests that).
The short cells are pinned per kind of machine (the probe of its floating-point kernels,
tests/data/kernel_probe.py), each entry with the commit whose code recorded it; on a machine with
no entry that test skips, saying so.
"""

import importlib.util
import json
from pathlib import Path

import pytest
from kernel_probe import skip_unless_recorded_here

_DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_study_pins", _DATA / "make_study_pins.py")
pins_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pins_mod)

PINNED = json.loads((_DATA / "study_pins.json").read_text())


def test_settings_part_of_the_fingerprints_of_every_profile_is_pinned():
    assert pins_mod.fingerprints() == PINNED["fingerprints"]


def test_report_of_a_fixed_result_tree_is_pinned():
    assert pins_mod.report() == PINNED["report"]


def test_short_real_cells_are_pinned():
    import torch
    probe = skip_unless_recorded_here(PINNED["cells"], "the short cells", "tests/data/make_study_pins.py --add-cells")
    threads = torch.get_num_threads()
    try:
        assert pins_mod.cells() == PINNED["cells"][probe]["results"]
    finally:
        torch.set_num_threads(threads)
