"""The package on a CUDA device: sampler draws, a few epochs of every model, exact resume.

Skipped without a CUDA GPU; ``benchmarks/gpu_check.py`` runs these on a GPU machine. The same
tests run on another device with ``MLABS_CUDA_TEST_DEVICE=cpu`` (how the script's ``--dry-run``
checks them on a machine without a GPU).
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from mlabs import training
from mlabs.data import fold_split, load_dataset, prepare
from mlabs.models import MODEL_NAMES
from mlabs.selection import make_sampler
from mlabs.training import Cell, TrainConfig, cell_dir, train_cell
from test_streams import _curves, small_config  # one small config and curves reader for both

DEVICE = os.environ.get("MLABS_CUDA_TEST_DEVICE", "cuda")

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(
    torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available(),
    reason="needs a CUDA GPU (python benchmarks/gpu_check.py runs these tests on one)")]


@pytest.fixture(scope="module")
def split():
    return fold_split(prepare(load_dataset("emotions"), n_folds=5, seed=0), 0)


def config(**kw):
    return small_config(**{"device": DEVICE, **kw})


@pytest.mark.parametrize("method", ["random", "adaptive", "chain", "balanced"])
def test_sampler_draws_on_the_device(split, method):
    labels = torch.as_tensor(split.Y_train, dtype=torch.float32, device=DEVICE)
    n, b = labels.shape[0], 32
    plans = []
    for _ in range(2):
        sampler = make_sampler(method, labels, b, features=split.X_train, warmup_epochs=1, epochs=3,
                               seed=11, device=DEVICE)
        losses = torch.linspace(0.1, 2.0, n, device=DEVICE)
        sampler.update(torch.arange(n, device=DEVICE), losses, probabilities=labels.clamp(0.2, 0.8))
        sampler.set_epoch(1)   # a selection epoch
        batches = [torch.as_tensor(x) for x in sampler]
        assert len(batches) == math.ceil(n / b)
        assert all(0 < x.numel() <= b for x in batches)
        flat = torch.cat(batches).cpu()
        assert 0 <= int(flat.min()) and int(flat.max()) < n
        plans.append(flat)
    assert torch.equal(plans[0], plans[1])   # seeded: the same draws twice


def test_initial_weights_are_those_of_the_cpu(split):
    cell = Cell("emotions", "clif", "random", fold=0, seed=3)
    here = training._Run(cell, split, config()).model.state_dict()
    cpu = training._Run(cell, split, config(device="cpu")).model.state_dict()
    assert all(torch.equal(here[k].cpu(), cpu[k]) for k in cpu)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_model_trains_reproducibly_on_the_device(tmp_path, split, model):
    cell = Cell("emotions", model, "adaptive", fold=0, seed=1)
    results = [train_cell(cell, split, config(), tmp_path / f"w{i}", tmp_path / f"r{i}", progress=False)
               for i in range(2)]
    assert results[0]["status"] == "ok"
    assert all(math.isfinite(v) for v in results[0]["test"].values())
    assert _curves(tmp_path / "r0", cell) == _curves(tmp_path / "r1", cell)
    assert results[0]["test"] == results[1]["test"]


def test_resume_on_the_device_is_bit_identical(tmp_path, split, interrupt_training):
    cfg = config(epochs=5, warmup_epochs=2)
    cell = Cell("emotions", "mpvae", "adaptive", fold=0, seed=2)
    full = train_cell(cell, split, cfg, tmp_path / "w", tmp_path / "full", progress=False)
    interrupt_training(cell, split, cfg, tmp_path / "w", tmp_path / "cut", epoch=4)
    resume = cell_dir(tmp_path / "cut", cell) / "resume.pt"
    streams = torch.load(resume, map_location="cpu", weights_only=True)["state"]["streams"]
    assert streams["device_type"] == torch.device(DEVICE).type   # the device's generator states
    resumed = train_cell(cell, split, cfg, tmp_path / "w", tmp_path / "cut", progress=False)
    assert _curves(tmp_path / "cut", cell) == _curves(tmp_path / "full", cell)
    assert resumed["test"] == full["test"]


def test_deterministic_cuda_settings():
    if torch.device(DEVICE).type != "cuda":
        pytest.skip("CUDA settings only")
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (":4096:8", ":16:8")
    training._configure_determinism(True, DEVICE)
    assert torch.are_deterministic_algorithms_enabled()
