"""One random stream per purpose (mlabs.streams): independence, checkpoints, and what the
training loop draws from which stream (docs/protocol.md, "Random streams")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlabs import training
from mlabs.data import fold_split, load_dataset, prepare
from mlabs.models import build
from mlabs.models.layers import Dropout
from mlabs.streams import PURPOSES, Streams, stream_seed
from mlabs.training import Cell, TrainConfig, cell_dir, train_cell, warmup_path


@pytest.fixture(scope="module")
def split():
    return fold_split(prepare(load_dataset("emotions"), n_folds=5, seed=0), 0)


def small_config(**kw):
    params = {"mpvae": {"n_train_sample": 10, "n_test_sample": 20}}
    base = dict(epochs=3, warmup_epochs=1, lr=1e-3, model_params=params, checkpoint_seconds=0)
    base.update(kw)
    return TrainConfig(**base)


def _curves(root, cell) -> list[dict]:
    header, *rows = (cell_dir(root, cell) / "curves.tsv").read_text().splitlines()
    cols = header.split("\t")
    # wall-clock columns are the only ones allowed to differ between two runs
    return [{c: v for c, v in zip(cols, r.split("\t")) if "seconds" not in c} for r in rows]


# -- the streams ----------------------------------------------------------------------------------


def test_each_purpose_has_its_own_seed_and_draws():
    seeds = {p: stream_seed(7, p) for p in PURPOSES}
    assert len(set(seeds.values())) == len(PURPOSES)
    assert all(0 <= s < 2**63 for s in seeds.values())
    streams = Streams(7)
    draws = {p: torch.rand(8, generator=streams.generator(p)) for p in PURPOSES}
    for a in PURPOSES:
        for b in PURPOSES:
            if a < b:
                assert not torch.equal(draws[a], draws[b]), (a, b)
    # the same seed gives the same streams, another seed other streams
    again = Streams(7)
    assert all(torch.equal(torch.rand(8, generator=again.generator(p)), draws[p]) for p in PURPOSES)
    assert stream_seed(8, "model") != seeds["model"]
    # a stream's seed does not depend on which other streams were asked for first
    assert Streams(7).seed("eval") == seeds["eval"]


def test_stream_seeds_are_validated():
    with pytest.raises(ValueError, match="unknown random stream"):
        stream_seed(0, "dropout")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        Streams(-1)


def test_stream_state_round_trips_into_the_same_generators():
    streams = Streams(3)
    g = streams.generator("model")
    torch.rand(5, generator=g)
    state = streams.state_dict()
    expected = torch.rand(5, generator=g)
    torch.rand(17, generator=g)
    streams.load_state_dict(state)
    assert streams.generator("model") is g            # restored in place: holders stay valid
    assert torch.equal(torch.rand(5, generator=g), expected)
    with pytest.raises(ValueError, match="saved on 'cuda'"):
        streams.load_state_dict(dict(state, device_type="cuda"))


# -- the models -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dela", "mpvae", "paca"])
def test_a_models_training_draws_come_from_its_generator(name):
    torch.manual_seed(0)
    x = torch.rand(16, 12)
    y = (torch.rand(16, 5) < 0.4).float()
    params = {"mpvae": dict(n_train_sample=4, n_test_sample=4), "dela": dict(dropout=0.3)}.get(name, {})
    model = build(name, 12, 5, **params)
    losses = []
    for global_seed in (1, 2):
        model.set_generators(train=torch.Generator().manual_seed(5), eval=torch.Generator().manual_seed(6))
        torch.manual_seed(global_seed)   # the global RNG must not matter
        before = torch.get_rng_state()
        losses.append(model.training_step(x, y).loss.item())
        assert torch.equal(torch.get_rng_state(), before)
    assert losses[0] == losses[1]
    model.set_generators(train=torch.Generator().manual_seed(9))
    assert model.training_step(x, y).loss.item() != losses[0]


def test_dropout_masks_come_from_the_models_train_generator():
    model = build("mpvae", 6, 3, n_train_sample=2, n_test_sample=2)   # dropout 0.5 in both encoders
    g = torch.Generator().manual_seed(1)
    model.set_generators(train=g)
    drops = [m for m in model.modules() if isinstance(m, Dropout)]
    assert drops and all(m.generator is g for m in drops)
    d = Dropout(0.5)
    d.generator = torch.Generator().manual_seed(4)
    a = d(torch.ones(1000))
    d.generator = torch.Generator().manual_seed(4)
    assert torch.equal(a, d(torch.ones(1000)))
    assert set(a.unique().tolist()) == {0.0, 2.0}     # inverted dropout: survivors scaled by 1/(1-p)
    assert torch.equal(d.eval()(torch.ones(10)), torch.ones(10))


def test_mpvae_prediction_draws_only_from_the_eval_generator():
    model = build("mpvae", 6, 3, n_train_sample=2, n_test_sample=50)
    train_g, eval_g = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    model.set_generators(train=train_g, eval=eval_g)
    train_state, eval_state = train_g.get_state(), eval_g.get_state()
    model.predict_proba(torch.rand(4, 6))
    assert torch.equal(train_g.get_state(), train_state)
    assert not torch.equal(eval_g.get_state(), eval_state)


def test_set_generators_refuses_what_is_not_a_generator():
    model = build("c2ae", 4, 3)
    with pytest.raises(TypeError, match="train must be a torch.Generator"):
        model.set_generators(train=0)


# -- the training loop ----------------------------------------------------------------------------


def test_training_never_touches_the_global_generators(tmp_path, split):
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    # MPVAE: dropout, reparameterisation, probit draws in training and at prediction
    train_cell(Cell("emotions", "mpvae", "adaptive", fold=0, seed=1), split, small_config(),
               tmp_path / "w", tmp_path / "r", progress=False)
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]


def test_initial_weights_depend_on_the_init_stream_only(split):
    cell = Cell("emotions", "clif", "random", fold=0, seed=4)   # CLIF also draws its node features
    states = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        states.append(training._Run(cell, split, small_config()).model.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_mpvae_n_test_sample_leaves_its_training_curve_unchanged(tmp_path, split):
    curves = {}
    for n_test in (5, 40):
        config = small_config(epochs=4, warmup_epochs=2,
                              model_params={"mpvae": {"n_train_sample": 10, "n_test_sample": n_test}})
        cell = Cell("emotions", "mpvae", "random", fold=0, seed=0)
        train_cell(cell, split, config, tmp_path / f"w{n_test}", tmp_path / f"r{n_test}", progress=False)
        curves[n_test] = _curves(tmp_path / f"r{n_test}", cell)
    assert [r["train_loss"] for r in curves[5]] == [r["train_loss"] for r in curves[40]]
    # the setting did change the predictions, so the equality above is not vacuous
    assert [r["val_macro_auc"] for r in curves[5]] != [r["val_macro_auc"] for r in curves[40]]


class _Recorder:
    """A sampler that records the batches it hands out, per epoch."""

    def __init__(self, sampler, log):
        self._sampler, self._log = sampler, log

    def __getattr__(self, name):
        return getattr(self._sampler, name)

    def __iter__(self):
        batches = [torch.as_tensor(b).tolist() for b in self._sampler]
        self._log.append(batches)
        return iter(batches)


def test_random_method_never_replays_the_warmups_permutations(tmp_path, split, monkeypatch):
    log: list[list[list[int]]] = []
    original = training._Run.train_epoch
    monkeypatch.setattr(training._Run, "train_epoch",
                        lambda self, sampler, epoch: original(self, _Recorder(sampler, log), epoch))
    config = small_config(epochs=6, warmup_epochs=3)
    train_cell(Cell("emotions", "c2ae", "random", fold=0, seed=0), split, config,
               tmp_path / "w", tmp_path / "r", progress=False)
    assert len(log) == 6
    orders = [tuple(i for b in epoch for i in b) for epoch in log]
    n = len(orders[0])
    assert all(sorted(o) == list(range(n)) for o in orders)   # every epoch is a permutation
    assert not set(orders[:3]) & set(orders[3:])              # none of the warm-up's comes back
    assert len(set(orders)) == 6


def test_every_method_gets_the_same_selection_seed(tmp_path, split, monkeypatch):
    seeds = {}
    original = training.make_sampler

    def spy(method, *args, **kw):
        seeds[method] = kw["seed"]
        return original(method, *args, **kw)

    monkeypatch.setattr(training, "make_sampler", spy)
    config = small_config(epochs=2)
    for method in ("random", "adaptive"):
        train_cell(Cell("emotions", "c2ae", method, fold=0, seed=5), split, config,
                   tmp_path / "w", tmp_path / "r", progress=False)
    assert seeds["random"] == seeds["adaptive"] == stream_seed(5, "batches") != stream_seed(5, "warmup_batches")


def test_checkpoints_carry_every_stream(tmp_path, split):
    cell = Cell("emotions", "mpvae", "random", fold=0, seed=0)
    train_cell(cell, split, small_config(epochs=2), tmp_path / "w", tmp_path / "r", progress=False)
    state = torch.load(warmup_path(tmp_path / "w", cell), map_location="cpu", weights_only=True)["state"]
    assert state["streams"]["device_type"] == "cpu"
    assert set(state["streams"]["generators"]) == {"model", "eval"}
    assert "torch_rng" not in state


@pytest.mark.parametrize("model, method", [("mpvae", "adaptive"), ("dela", "random")])
def test_resume_from_a_mid_run_checkpoint_is_bit_identical(tmp_path, split, interrupt_training, model, method):
    config = small_config(epochs=5, warmup_epochs=2)
    cell = Cell("emotions", model, method, fold=0, seed=2)
    full = train_cell(cell, split, config, tmp_path / "w", tmp_path / "full", progress=False)

    interrupt_training(cell, split, config, tmp_path / "w", tmp_path / "cut", epoch=4)
    assert (cell_dir(tmp_path / "cut", cell) / "resume.pt").exists()
    resumed = train_cell(cell, split, config, tmp_path / "w", tmp_path / "cut", progress=False)
    assert _curves(tmp_path / "cut", cell) == _curves(tmp_path / "full", cell)
    assert resumed["test"] == full["test"] and resumed["val"] == full["val"]
