"""The Makefile's user-facing behaviour: `make help` and `make lab` as root."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args):
    return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_help_lists_every_target_with_one_line():
    targets = re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M)
    lines = _make("help").splitlines()
    listed = [line.split()[0] for line in lines]
    assert listed == targets  # every target, in the Makefile's order, none twice
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # each with its description


def test_lab_passes_allow_root_only_as_root():
    command = _make("-n", "lab").splitlines()[-1]  # -n: print the commands, run nothing
    assert "jupyter lab" in command
    assert ("--allow-root" in command) == (os.getuid() == 0)
