"""Shared fixtures. Data fixtures load the real shipped files (``data/``, tracked by DVC)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# the pin generators and the kernel probe (tests/data) import each other as top-level modules
sys.path.insert(0, str(Path(__file__).with_name("data")))


@pytest.fixture(scope="session")
def data_dir():
    """The shipped data directory (``MLABS_DATA_DIR`` or the project's ``data/``)."""
    from mlabs.data import data_dir as _data_dir

    return _data_dir()


@pytest.fixture(scope="session")
def emotions_xy(data_dir):
    """Real emotions data for model unit tests: ``(X, Y)``.

    X float32 (593, 72), min-max scaled over *all* rows (fine for unit tests; the study itself scales
    per fold on the training part). Y float32 (593, 6) 0/1, labels in XML order. Shared by the
    whole session: do not modify in place (copy first).
    """
    from mlabs.data import load_dataset

    data = load_dataset("emotions", data_dir=data_dir)
    X = np.asarray(data.X, dtype=np.float64)
    lo, span = X.min(axis=0), np.ptp(X, axis=0)
    X = ((X - lo) / np.where(span == 0, 1.0, span)).astype(np.float32)
    Y = data.Y.astype(np.float32)
    return X, Y


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a test module: tiny models run faster without thread contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def interrupt_training(monkeypatch):
    """``run(cell, split, config, warmup_root, out_root, epoch)``: :func:`mlabs.training.train_cell`
    stopped by a KeyboardInterrupt at the start of ``epoch`` (the resume checkpoint of the epochs
    before it stays), the trainer restored afterwards, so the next ``train_cell`` resumes."""
    from mlabs import training

    def run(cell, split, config, warmup_root, out_root, epoch: int) -> None:
        original = training._Run.train_epoch

        def stop_at(self, sampler, e):
            if e == epoch:
                raise KeyboardInterrupt
            return original(self, sampler, e)

        monkeypatch.setattr(training._Run, "train_epoch", stop_at)
        try:
            with pytest.raises(KeyboardInterrupt):
                training.train_cell(cell, split, config, warmup_root, out_root, progress=False)
        finally:
            monkeypatch.setattr(training._Run, "train_epoch", original)

    return run
