"""The README's code blocks marked ``<!-- readme-test -->`` run as written, in order, in one namespace."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"<!-- readme-test -->\s*\n```python\n(.*?)\n```", re.DOTALL)


def test_marked_readme_blocks_run(monkeypatch):
    blocks = MARKED.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 3, "the library example, the DataLoader pattern and the s_e measurement"
    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": "readme"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README

    sampler = namespace["sampler"]
    assert sampler.epoch == 14 and not sampler.in_warmup
    p, scores = sampler.probabilities(), sampler.scores()
    ratio = float(p.max() / p.min())
    bound = 2.0 ** float(1 - scores.min() / scores.max())
    # at most s_e, and what the README's formula says (up to one quantisation level)
    assert 1.0 < ratio <= 2.0 + 1e-9
    assert abs(ratio - bound) <= bound * (2.0 ** (1 / len(p)) - 1) + 1e-9
    assert "p_max / p_min" in out.getvalue()
