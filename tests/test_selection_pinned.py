"""The seeded draw plans of every sampler are exactly those pinned in tests/data/selection_pins.json.

The pins were generated from the code of the commit ``recorded_from`` of the pin file; a
difference means the draws changed (see tests/data/make_selection_pins.py). They hold on machines
whose floating-point kernels match those of the machine that recorded them
(tests/data/kernel_probe.py); elsewhere the plan tests skip, saying so.
"""

import importlib.util
import json
from pathlib import Path

import pytest
from kernel_probe import skip_unless_recorded_here

_DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_selection_pins", _DATA / "make_selection_pins.py")
pins_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pins_mod)

_RECORDED = json.loads((_DATA / "selection_pins.json").read_text())
PINNED = _RECORDED["plans"]
CONFIGS = pins_mod.configs()


def test_every_configuration_is_pinned():
    assert sorted(PINNED) == sorted(CONFIGS)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_draw_plan_is_pinned(name):
    import torch
    skip_unless_recorded_here(_RECORDED["kernels"], f"the draw plans (code of {_RECORDED['recorded_from']})",
                              "tests/data/make_selection_pins.py")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert pins_mod.run(CONFIGS[name]) == PINNED[name]
    finally:
        torch.set_num_threads(threads)
