"""The ablation's library parts: loss weights, reweighting, InfoBatch, variants, diagnostics."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from mlabs.config import load_params, train_cells, train_config
from mlabs.data import fold_split, load_dataset, prepare
from mlabs.data.preprocess import Split
from mlabs.grid import GridSpec, run_grid
from mlabs.models.c2ae import C2AE
from mlabs.selection import AdaptiveBatchSampler, InfoBatchSampler, RandomBatchSampler, ReweightSampler
from mlabs.selection.imbalance import imbalance_weights
from mlabs.training import Cell, TrainConfig, cell_dir, check_selection_options, selection_strength, train_cell


@pytest.fixture(scope="module")
def emotions():
    return fold_split(prepare(load_dataset("emotions"), n_folds=5, seed=0), 0)


# ---------------------------------------------------------------------------------------------
# InfoBatch
def _toy_regression(n=240, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * (torch.rand(n, generator=g,
                                                                                    dtype=torch.float64) - 0.5)
    theta = torch.tensor([0.2, 0.1, -0.4], dtype=torch.float64)   # away from the optimum
    resid = x @ theta - y
    return 0.5 * resid ** 2, resid[:, None] * x                    # per-sample loss, per-sample gradient


def test_infobatch_expected_gradient_is_the_full_data_gradient():
    loss, grads = _toy_regression()
    n, b = loss.numel(), 32
    full = grads.mean(dim=0)
    sampler = InfoBatchSampler(n, b, epochs=10_000, seed=3)
    sampler.update(torch.arange(n), loss)
    draws, unweighted = [], []
    for epoch in range(2000):
        sampler.set_epoch(epoch)
        assert sampler.pruning()
        g_w, g_1, batches = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
        for idx in sampler:
            w = sampler.loss_weights(idx)
            g_w += (w[:, None] * grads[idx]).sum(dim=0)   # the epoch's sum of mean(w * l) gradients, x B / N
            g_1 += grads[idx].sum(dim=0)
            batches += 1
        assert batches == len(sampler) < math.ceil(n / b)
        draws.append(g_w / n)
        unweighted.append(g_1 / n)
    draws, unweighted = torch.stack(draws), torch.stack(unweighted)
    se = draws.std(dim=0) / math.sqrt(len(draws))
    # unbiased: within 4 standard errors of the full-data gradient in every coordinate ...
    assert ((draws.mean(dim=0) - full).abs() < 4 * se).all(), (draws.mean(dim=0), full, se)
    # ... while dropping the 1 / (1 - r) rescaling is biased far beyond that (the check has power)
    assert ((unweighted.mean(dim=0) - full).abs() > 20 * se).any()


def test_infobatch_epochs_prune_until_delta_and_keep_unscored_samples():
    n, b = 100, 16
    sampler = InfoBatchSampler(n, b, epochs=8, delta=0.5, warmup_epochs=1, seed=0)
    loss = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    sampler.update(torch.arange(n - 10), loss[:n - 10])          # the last 10 have no loss yet
    low = (loss[:n - 10] < loss[:n - 10].mean()).sum().item()
    kept = n - low + int(0.5 * low)
    for epoch, expect in ((0, n), (1, kept), (3, kept), (4, n), (7, n)):   # warm-up, pruning, delta * 8 = 4
        sampler.set_epoch(epoch)
        assert len(sampler) == math.ceil(expect / b)
        seen = torch.cat([torch.as_tensor(i) for i in sampler])
        assert seen.numel() == expect == seen.unique().numel()
        assert set(range(n - 10, n)) <= set(seen.tolist())          # unscored: always kept
        sampler.set_epoch(epoch)
        weights = [sampler.loss_weights(i) for i in sampler]
        if expect == n:
            assert all(w is None for w in weights)
        else:
            assert sorted({float(v) for w in weights for v in w}) == [1.0, 2.0]


def _weighting_samplers(emotions, seed):
    return {"infobatch": InfoBatchSampler(len(emotions.Y_train), 32, epochs=10, warmup_epochs=1, seed=seed),
            "reweight": ReweightSampler(emotions.Y_train, 32, features=emotions.X_train, warmup_epochs=1,
                                        refresh_every=4, seed=seed)}


@pytest.mark.parametrize("name", ["infobatch", "reweight"])
def test_weighting_samplers_resume_mid_epoch_with_their_weights(emotions, name):
    """A state taken mid-epoch (through torch.save, as the trainer's checkpoints) gives the same
    remaining batches and weights, given the same updates."""
    n = len(emotions.Y_train)
    loss = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = _weighting_samplers(emotions, 5)[name]
    a.update(torch.arange(n), loss)
    a.set_epoch(2)
    it = iter(a)
    for _ in range(6):                        # past a refresh of reweight (every 4 batches)
        idx = next(it)
        a.loss_weights(idx)
        a.update(idx, loss[idx] * 0.5)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    def rest(sampler, batches):
        out = []
        for idx in batches:
            out.append((idx, sampler.loss_weights(idx).tolist()))
            sampler.update(idx, loss[idx] * 0.25)
        return out

    length = len(a)                           # the epoch in progress (InfoBatch: shorter than ceil(N / B))
    expected = rest(a, it)
    c = _weighting_samplers(emotions, 99)[name]
    c.load_state_dict(state)
    assert len(c) == length
    assert rest(c, c) == expected and len(expected) == length - 6


# ---------------------------------------------------------------------------------------------
# reweight
def test_reweight_weights_are_n_times_the_adaptive_distribution(emotions):
    Y, X = emotions.Y_train, emotions.X_train
    n = len(Y)
    loss = torch.rand(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rw = ReweightSampler(Y, 64, features=X, warmup_epochs=1, seed=4)
    ad = AdaptiveBatchSampler(Y, 64, features=X, warmup_epochs=1, seed=4)
    rnd = RandomBatchSampler(n, 64, seed=4)
    for s in (rw, ad):
        s.update(torch.arange(n), loss)
    rw.set_epoch(1)
    ad.set_epoch(1)
    p = ad.probabilities()
    assert p.max() > p.min()
    rnd_batches = list(rnd)     # random's first epoch: the reweight sampler's batches, same seed
    for idx, ref in zip(rw, rnd_batches):
        assert idx == ref
        torch.testing.assert_close(rw.loss_weights(idx), n * p[idx], rtol=0, atol=0)
    rw.set_epoch(0)
    assert all(rw.loss_weights(idx) is None for idx in rw)       # warm-up: no weights


def _balanced_split(n=160, d=6, seed=0) -> Split:
    """Every label exactly half positive: no minority label, so every imbalance weight is 1."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    Y = np.stack([i % 2, (i // 2) % 2], axis=1).astype(np.float32)
    X = (rng.random((n, d)) + Y @ rng.random((2, d))).astype(np.float32)
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    parts = np.split(rng.permutation(n), [96, 128])
    return Split(X[parts[0]], Y[parts[0]], X[parts[1]], Y[parts[1]], X[parts[2]], Y[parts[2]],
                 parts[0], parts[1], parts[2], fold=0)


def test_reweight_with_uniform_weights_trains_bit_identically_to_random(tmp_path):
    split = _balanced_split()
    assert (imbalance_weights(split.X_train, split.Y_train) == 1).all()
    config = TrainConfig(epochs=5, warmup_epochs=1, lr=1e-3, model_params={"c2ae": {"hidden_dim": 16}},
                         selection={"flat": {"method": "reweight", "score": "imbalance"}})
    runs = {}
    for method in ("random", "flat"):
        cell = Cell("toy", "c2ae", method, fold=0, seed=2, batch_size=32)
        result = train_cell(cell, split, config, tmp_path / "w", tmp_path / "r", progress=False)
        curves = (cell_dir(tmp_path / "r", cell, config.selection) / "curves.tsv").read_text().splitlines()
        runs[method] = (result["test"], result["best_epoch"],
                        [line.split("\t")[:2] + line.split("\t")[3:] for line in curves])  # all but seconds
    assert runs["random"] == runs["flat"]


def test_reweight_with_non_uniform_weights_trains_differently(tmp_path, emotions):
    config = TrainConfig(epochs=4, warmup_epochs=1, lr=1e-3, model_params={"c2ae": {"hidden_dim": 32}})
    losses = {}
    for method in ("random", "reweight"):
        cell = Cell("emotions", "c2ae", method, fold=0, seed=2, selection_pressure=64.0)
        train_cell(cell, emotions, config, tmp_path / "w", tmp_path / "r", progress=False)
        lines = (cell_dir(tmp_path / "r", cell) / "curves.tsv").read_text().splitlines()
        losses[method] = [line.split("\t")[1] for line in lines[1:]]   # train_loss per epoch
    # the same warm-up and the same batches; from the first weighted step on, other weights
    assert losses["random"][0] == losses["reweight"][0]
    assert losses["random"][2:] != losses["reweight"][2:]


# ---------------------------------------------------------------------------------------------
# imbalance-only and raw weights
def test_imbalance_only_probabilities_follow_the_weights(emotions):
    s = AdaptiveBatchSampler(emotions.Y_train, 64, features=emotions.X_train, score="imbalance", warmup_epochs=0)
    w = s.weights
    assert w.max() > 1.0
    s.update(torch.arange(len(w)), torch.rand(len(w), dtype=torch.float64))   # the loss plays no part
    p = s.probabilities()
    order = torch.argsort(w)
    assert (torch.diff(p[order]) >= 0).all()                      # higher weight, never lower p
    assert p[w.argmax()] > p[w.argmin()]
    assert float(p.max() / p.min()) <= 2.0 ** float(1 - w.min() / w.max()) * (1 + 1e-9) * 2.0 ** (1 / len(w))


def test_raw_imbalance_weights_drop_only_the_normalisation(emotions):
    norm = imbalance_weights(emotions.X_train, emotions.Y_train)
    raw = imbalance_weights(emotions.X_train, emotions.Y_train, normalise=False)
    assert torch.equal(raw > 1, norm > 1)                          # the same informative entries
    assert raw.max() > 10 * (norm.max() - 1) + 1                   # with bite
    s = AdaptiveBatchSampler(emotions.Y_train, 64, features=emotions.X_train, score="raw_weighted_loss")
    torch.testing.assert_close(s.weights, raw)
    with pytest.raises(ValueError, match="needs the imbalance weights"):
        AdaptiveBatchSampler(emotions.Y_train, 64, score="imbalance")


# ---------------------------------------------------------------------------------------------
# variants
def test_variants_get_their_own_folders_and_fingerprints():
    params = load_params("params.yaml")
    config = train_config(params)
    names = ["adaptive", "hard_only", "imbalance_only", "imbalance_raw", "exact_rank", "adaptive_se16"]
    folders = {cell_dir("r", Cell("emotions", "c2ae", m, 0, selection_pressure=16.0 if m == "adaptive_se16" else 2.0),
                        config.selection).parent.name for m in names}
    assert folders == {"adaptive-se2-b128", "hard_only-se2-b128", "imbalance_only-se2-b128",
                       "imbalance_raw-se2-b128", "exact_rank-se2-b128", "adaptive_se16-se16-b128"}
    prints = {config.fingerprint("c2ae", m, "data") for m in names}
    assert len(prints) == len(names)
    # adding variants leaves the base method's fingerprint as it was
    bare = TrainConfig(**{**config.__dict__, "selection": {"adaptive": config.selection["adaptive"]}})
    assert bare.fingerprint("c2ae", "adaptive", "data") == config.fingerprint("c2ae", "adaptive", "data")
    assert config.resolve_method("hard_only") == ("adaptive", {**config.selection["adaptive"], "score": "loss"})
    # a variant's s_e is its own; the profile's train.selection_pressure for the others
    params["train"]["methods"] = ["random", "adaptive_se16", "hard_only"]
    se = {c.method: c.selection_pressure for c in train_cells(params)}
    assert se == {"random": 2.0, "adaptive_se16": 16.0, "hard_only": 2.0}


def test_unknown_variants_and_options_name_the_closest_valid_name():
    config = TrainConfig(selection={"hard_only": {"method": "adaptive", "score": "loss"}})
    with pytest.raises(ValueError, match="did you mean 'hard_only'"):
        config.resolve_method("hard_onyl")
    with pytest.raises(ValueError, match="unknown base method 'adaptiv' \\(did you mean 'adaptive'"):
        TrainConfig(selection={"v": {"method": "adaptiv"}})
    # option names are checked against the sampler classes, where the samplers are built
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['scor'\\] \\(did you mean 'score'"):
        check_selection_options(TrainConfig(selection={"v": {"method": "adaptive", "scor": "loss"}}))
    with pytest.raises(ValueError, match="unknown option\\(s\\) \\['selection_pressure'\\]"):   # balanced takes no s_e
        check_selection_options(TrainConfig(selection={"v": {"method": "balanced", "selection_pressure": 4}}))
    with pytest.raises(ValueError, match="unknown method"):
        Cell("emotions", "c2ae", "not a name", 0)


def test_a_model_without_per_sample_objective_is_refused_before_training(tmp_path, emotions, monkeypatch):
    monkeypatch.setattr(C2AE, "per_sample_objective_supported", False)
    config = TrainConfig(epochs=2, warmup_epochs=1)
    for method in ("infobatch", "reweight"):
        with pytest.raises(ValueError, match="does not decompose per sample"):
            train_cell(Cell("emotions", "c2ae", method, 0), emotions, config, tmp_path / "w", tmp_path / "r")
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()
    # a grid refuses it before any cell of it trains (the settings alone do not know the models)
    params = load_params("params.yaml")
    params["train"]["methods"] = ["random", "infobatch"]
    spec = GridSpec(str(tmp_path / "prepared"), str(tmp_path / "w"), str(tmp_path / "r"), train_config(params))
    with pytest.raises(ValueError, match="method infobatch weights each sample's loss, but model c2ae"):
        run_grid(train_cells(params), spec, progress=False)
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# selection-strength diagnostics
def test_selection_strength_of_uniform_and_skewed_distributions():
    assert selection_strength(torch.full((10,), 0.1), 10, 10) == {
        "p_ratio": 1.0, "kl_uniform": 0.0, "distinct_drawn": 10, "drawn_fraction": 1.0}
    p = torch.tensor([0.5, 0.25, 0.25, 0.0], dtype=torch.float64)
    out = selection_strength(p, 3, 2)
    assert out["p_ratio"] == math.inf and out["drawn_fraction"] == 0.5
    assert out["kl_uniform"] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(1.0))   # sum p log(N p)


def test_curves_record_selection_strength_after_the_existing_columns(tmp_path, emotions):
    config = TrainConfig(epochs=4, warmup_epochs=1, lr=1e-3, model_params={"c2ae": {"hidden_dim": 32}})
    first = ["epoch", "train_loss", "minority_share", "minority_share_train", "loss_minority",
             "loss_rest"]
    rows = {}
    for method in ("random", "adaptive", "infobatch"):
        cell = Cell("emotions", "c2ae", method, fold=0, selection_pressure=4.0)
        train_cell(cell, emotions, config, tmp_path / "w", tmp_path / "r", progress=False)
        lines = (cell_dir(tmp_path / "r", cell) / "curves.tsv").read_text().splitlines()
        header = lines[0].split("\t")
        assert header[:len(first)] == first and header[-4:] == ["p_ratio", "kl_uniform", "distinct_drawn",
                                                                 "drawn_fraction"]
        rows[method] = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    n = len(emotions.Y_train)
    for method, table in rows.items():
        assert table[0]["p_ratio"] == "1" and int(table[0]["distinct_drawn"]) == n   # the shared warm-up
    assert all(r["p_ratio"] == "1" and r["kl_uniform"] == "0" and int(r["distinct_drawn"]) == n
               for r in rows["random"])
    assert all(1 < float(r["p_ratio"]) <= 4 and float(r["kl_uniform"]) > 0 and int(r["distinct_drawn"]) < n
               for r in rows["adaptive"][1:])
    assert all(float(r["drawn_fraction"]) < 1 and int(r["distinct_drawn"]) == round(float(r["drawn_fraction"]) * n)
               for r in rows["infobatch"][1:])
