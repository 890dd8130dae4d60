"""Train and evaluate one cell of the experiment grid.

A *cell* is (data set, model, method, fold, seed, selection pressure, batch
size). The protocol follows ``method.md`` sections 4 and 6:

1. **Warm-up** is trained once per (data set, model, fold, seed, batch size)
   with shuffled random batches and a linear learning-rate warm-up, and saved
   as a checkpoint (model, optimiser, RNG state, the per-sample loss and
   predicted-probability tables and the warm-up epochs' curves). Every method
   continues from that same checkpoint, so methods differ only in how batches
   are chosen; the tables seed the samplers.
2. **Selection epochs**: each epoch draws its batches from the cell's sampler,
   updates the sampler with the per-sample losses (and predicted
   probabilities) of the training forward pass, then evaluates the
   validation half with the six metrics. A sampler that asks for it (``recompute_due``)
   first gets fresh losses of the whole training set. A sampler that weights samples' losses
   (``loss_weights``) makes the step train on ``mean(w * per_sample_objective)`` plus the
   model's batch terms; otherwise the step trains on the model's ``loss`` itself. Each epoch's
   selection strength (``selection_strength``) is recorded with its curves.
3. **Model selection**: the epoch with the best validation macro-AUC is kept
   as a real copy of the weights (the authors' shallow ``state_dict().copy()``
   silently kept the last epoch); its test metrics, evaluated once on those
   weights, are the cell's result.

An atomically written resume checkpoint follows an epoch whenever
``checkpoint_seconds`` have passed since the last one, so an interrupted run
loses at most that much work; a finished cell writes
``result.json`` atomically and is skipped when run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import metrics as mlmetrics
from ._io import atomic_path, write_json_atomic, write_text_atomic
from .models import build as build_model
from .models.base import per_sample_bce
from .selection import RandomBatchSampler
from .selection.imbalance import minority_labels
from .progress import progress_bar
from .results import cell_dir, is_done, load_result, warmup_path, write_failed
from .selection.registry import (SAMPLERS, make_sampler, method_options, resolve_method, sampler_class,
                                 uses_selection_pressure)

__all__ = ["Cell", "TrainConfig", "CheckpointMismatch", "NonFiniteLoss", "METHODS", "check_method_supports_model",
           "selection_strength",
           "warmup_path", "warmup_curves", "cell_dir", "run_warmup", "train_cell", "run_cell", "load_result"]

#: every batch-selection method a cell can use (``mlabs.selection.SAMPLERS``); a cell may also name a
#: variant, which :meth:`TrainConfig.resolve_method` resolves
METHODS = tuple(SAMPLERS)
_VARIANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: 2: warm-up checkpoints also hold the last warm-up epoch's predicted probabilities
CHECKPOINT_VERSION = 2


class CheckpointMismatch(ValueError):
    """A checkpoint belongs to another data set, model, fold or configuration."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class Cell:
    """One training run of the grid.

    Parameters
    ----------
    dataset, model : str
        Data set and model registry names.
    method : str
        How batches are chosen after warm-up, one of :data:`METHODS` or the name of a variant
        (an entry of ``params.yaml``'s ``selection`` with a ``method`` key, resolved by the
        :class:`TrainConfig` the cell is trained under).
    fold : int
        Which of the prepared folds is held out.
    seed : int
        Seeds torch (model initialisation, dropout, noise) and the sampler.
    selection_pressure : float
        s_e of the methods that use the cell's selection pressure (adaptive and chain; the others
        take theirs from their options and ignore it).
    batch_size : int
    """

    dataset: str
    model: str
    method: str
    fold: int
    seed: int = 0
    selection_pressure: float = 2.0
    batch_size: int = 128

    def __post_init__(self):
        if self.method not in METHODS and not (isinstance(self.method, str) and _VARIANT_NAME.match(self.method)):
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS} or a variant name "
                             f"(letters, digits, underscores)")
        if self.fold < 0:
            raise ValueError(f"fold must be >= 0, got {self.fold}")

    @property
    def warmup_key(self) -> tuple:
        return (self.dataset, self.model, self.fold, self.seed, self.batch_size)

    def label(self) -> str:
        """A short human-readable name used in messages and progress bars."""
        # a variant's s_e is shown: its base is known only to the TrainConfig
        se = (f" s_e={self.selection_pressure:g}" if self.method not in METHODS
              or uses_selection_pressure(self.method) else "")
        return (f"{self.dataset}/{self.model}/{self.method}{se} B={self.batch_size} "
                f"fold={self.fold} seed={self.seed}")


@dataclass
class TrainConfig:
    """Optimisation and selection settings shared by every method.

    Defaults are those of ``method.md``: Adam (lr 1e-4, weight decay 1e-4),
    100 epochs of which 3 are warm-up epochs with shuffled random batches and
    a linear learning-rate warm-up.
    """

    epochs: int = 100
    warmup_epochs: int = 3
    lr: float = 1e-4
    weight_decay: float = 1e-4
    model_params: dict = field(default_factory=dict)
    #: learning rate of a model whose own published rate differs from ``lr`` (model name -> rate);
    #: it holds for every selection method of that model
    model_lr: dict = field(default_factory=dict)
    #: sampler options, one mapping per method (``params.yaml``'s ``selection``), e.g.
    #: ``{"adaptive": {"quantize": False}, "online_batch": {"recompute_every": 5}}``, and named
    #: variants, a base method plus options, e.g. ``{"hard_only": {"method": "adaptive", "score": "loss"}}``
    selection: dict = field(default_factory=dict)
    threshold: float = 0.5
    device: str = "cpu"
    deterministic: bool = True
    #: seconds between resume checkpoints of a cell (0: after every epoch); an interrupted cell
    #: loses at most this much work, and its result does not depend on it
    checkpoint_seconds: float = 30.0

    def __post_init__(self):
        for name, value in (("lr", self.lr), ("weight_decay", self.weight_decay), *(
                (f"model_lr.{k}", v) for k, v in self.model_lr.items())):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r} (in YAML write 1.0e-3, not 1e-3, "
                                 f"which YAML reads as a string)")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        for method, opts in self.selection.items():
            if isinstance(opts, dict) and "method" in opts:
                self.resolve_method(method)   # a variant: its base and options are checked there
                continue
            if method not in SAMPLERS:
                raise ValueError(f"selection.{method}: not a batch-selection method; the selection section "
                                 f"holds one mapping of options per method, of {list(SAMPLERS)}, or a variant "
                                 f"with a 'method' key")
            if opts is not None and not isinstance(opts, dict):
                raise ValueError(f"selection.{method} must be a mapping of options, got {opts!r}")
            unknown = sorted(set(opts or {}) - set(method_options(method)))
            if unknown:
                raise ValueError(f"selection.{method}: unknown option(s) {unknown}; {method} takes "
                                 f"{sorted(method_options(method))}")

    def warmup_fingerprint(self, model: str, data: str) -> str:
        """Hash of everything that determines the warm-up checkpoint; ``data`` is the fold's
        :meth:`~mlabs.data.Split.digest`."""
        payload = {"warmup_epochs": self.warmup_epochs, "lr": self.lr_for(model),
                   "weight_decay": self.weight_decay, "model_params": self.params_for(model), "data": data}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def fingerprint(self, model: str, method: str, data: str) -> str:
        """Hash of every setting that determines a cell's result (beyond the cell itself).

        Only the options of the cell's own method count, so tuning one method's options does
        not make the finished cells of the others stale.
        """
        base, options = self.resolve_method(method)
        payload = {"warmup": self.warmup_fingerprint(model, data), "epochs": self.epochs,
                   "selection": options, "threshold": self.threshold}
        if base != method:
            # a variant: its base method and resolved options (a base method's payload is unchanged,
            # so its finished cells keep their fingerprints)
            payload["method"] = base
        revision = sampler_class(base).draw_revision
        if revision:
            # only when nonzero, so the cells of samplers whose draws never changed keep their fingerprints
            payload["draw_revision"] = revision
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def lr_for(self, model: str) -> float:
        """The learning rate of ``model``: its entry of :attr:`model_lr`, else :attr:`lr`."""
        return float(self.model_lr.get(model, self.lr))

    def params_for(self, model: str) -> dict:
        """The hyper-parameters of ``model`` (``model_params`` is keyed by model name)."""
        return dict(self.model_params.get(model) or {})

    def selection_for(self, method: str) -> dict:
        """The sampler options of ``method`` from :attr:`selection` (a copy)."""
        return dict(self.selection.get(method) or {})

    # -- named variants (kept apart: the variant layer over one-mapping-per-method) ----------------
    def resolve_method(self, name: str) -> tuple[str, dict]:
        """``(base method, resolved options)`` of a method or variant name (see
        :func:`mlabs.selection.registry.resolve_method`); a one-line error naming the closest valid
        name for an unknown one."""
        return resolve_method(name, self.selection)

    def variant_selection_pressure(self, name: str) -> float | None:
        """The s_e a variant fixes for its cells (``selection_pressure`` of a variant of a method
        that takes the cell's s_e), else None: the profile's ``train.selection_pressure``."""
        base, options = self.resolve_method(name)
        if base == name or not sampler_class(base).uses_selection_pressure:
            return None
        value = options.get("selection_pressure")
        return None if value is None else float(value)


# ----------------------------------------------------------------------------------------------
# paths


# warmup_path, cell_dir and load_result live in mlabs.results (the layout of the results) and are
# re-exported here for the notebooks and the CLI


# ----------------------------------------------------------------------------------------------
# helpers


def _seed_everything(seed: int, deterministic: bool, device: str) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    # the flag selects deterministic CUDA kernels; the CPU kernels used here are deterministic
    # on one thread already (setting it imports torch._dynamo, which the first torch.optim
    # optimizer of the process imports anyway)
    if deterministic and torch.device(device).type != "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)


def _set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor


def _make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    lr = config.lr_for(model.name)
    optimizer = torch.optim.Adam(model.parameter_groups(lr), lr=lr, weight_decay=config.weight_decay)
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    return optimizer


def _state_to_cpu(state: dict) -> dict:
    """A deep copy of a state dict on the CPU: a real snapshot, not views of live tensors."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _evaluate(model, X, Y, threshold: float) -> dict[str, float]:
    probs = model.predict_proba(X).cpu().numpy()
    return mlmetrics.evaluate(Y.cpu().numpy(), probs, threshold=threshold)


def selection_strength(p: torch.Tensor, distinct: int, drawn: int) -> dict[str, float]:
    """How far an epoch's batches are from random ones (the ``curves.tsv`` diagnostics).

    ``p_ratio``: p_max / p_min of the selection distribution ``p`` (1 for uniform, inf when some
    sample cannot be drawn); ``kl_uniform``: KL(p || uniform) in nats (0 for uniform);
    ``distinct_drawn``: distinct samples drawn in the epoch (N for shuffled batches);
    ``drawn_fraction``: samples drawn in the epoch / N (below 1 when an epoch prunes samples).
    """
    p = p.detach().to("cpu", torch.float64)
    n = p.numel()
    pos = p[p > 0]
    p_min, p_max = float(p.min()), float(p.max())
    # an exactly flat p is uniform, whatever the rounding of 1/N
    kl = 0.0 if p_min == p_max else max(0.0, float((pos * torch.log(pos * n / p.sum())).sum() / p.sum()))
    return {"p_ratio": p_max / p_min if p_min > 0 else math.inf, "kl_uniform": kl,
            "distinct_drawn": int(distinct), "drawn_fraction": drawn / n}


#: the ``selection_strength`` of a warm-up epoch (shuffled batches), for warm-up curves written
#: before these columns existed
_SHUFFLED_STRENGTH = {"p_ratio": 1.0, "kl_uniform": 0.0}


def _auc_key(value: float) -> float:
    return -math.inf if value is None or not math.isfinite(value) else value


class _Run:
    """The state of one training run: model, optimiser and bookkeeping."""

    def __init__(self, cell: Cell, split, config: TrainConfig):
        self.cell, self.split, self.config = cell, split, config
        device = torch.device(config.device)
        self.device = device
        self.X = torch.as_tensor(np.asarray(split.X_train), dtype=torch.float32, device=device)
        self.Y = torch.as_tensor(np.asarray(split.Y_train), dtype=torch.float32, device=device)
        self.X_val = torch.as_tensor(np.asarray(split.X_val), dtype=torch.float32)
        self.Y_val = torch.as_tensor(np.asarray(split.Y_val), dtype=torch.float32)
        self.X_test = torch.as_tensor(np.asarray(split.X_test), dtype=torch.float32)
        self.Y_test = torch.as_tensor(np.asarray(split.Y_test), dtype=torch.float32)
        self.n_train, self.n_labels = self.Y.shape
        if cell.batch_size > self.n_train:
            raise ValueError(f"{cell.label()}: batch size {cell.batch_size} is larger than the "
                             f"{self.n_train} training samples; use a smaller batch_size")
        self.model = build_model(cell.model, self.X.shape[1], self.n_labels,
                                 train_labels=split.Y_train, **config.params_for(cell.model)).to(device)
        self.optimizer = _make_optimizer(self.model, config)
        self.steps_per_epoch = math.ceil(self.n_train / cell.batch_size)
        self.warmup_steps = config.warmup_epochs * self.steps_per_epoch
        self.step = 0
        self.loss_table = torch.zeros(self.n_train, dtype=torch.float32)
        # the latest predicted probabilities per sample, for samplers that score uncertainty
        self.prob_table = torch.zeros((self.n_train, self.n_labels), dtype=torch.float32)
        self.minority = minority_labels(split.Y_train)
        self.has_minority = (self.Y.cpu()[:, self.minority] > 0).any(dim=1)
        self.curves: list[dict] = []
        self.best_auc = -math.inf
        self.best_epoch = 0
        self.best_state: dict | None = None

    # one epoch ------------------------------------------------------------------------------
    def train_epoch(self, sampler, epoch: int) -> dict:
        model, optimizer = self.model, self.optimizer
        model.train()
        sampler.set_epoch(epoch - 1)  # samplers count epochs from 0
        t0 = time.perf_counter()
        if sampler.recompute_due(epoch - 1):
            self.recompute_losses(sampler)
        # the distribution the epoch starts from (between epochs, what its first refresh computes)
        p_epoch = sampler.probabilities()
        drawn = torch.zeros(self.n_train, dtype=torch.bool)
        total, count, picked_minority, picked = 0.0, 0, 0, 0
        for batch in sampler:
            idx = torch.as_tensor(batch, dtype=torch.long)
            idx_dev = idx.to(self.device)
            out = model.training_step(self.X[idx_dev], self.Y[idx_dev])
            # None (every sampler but the reweighting ones): the objective is out.loss itself
            loss = out.weighted_loss(sampler.loss_weights(idx_dev))
            if not torch.isfinite(loss):
                raise NonFiniteLoss(
                    f"{self.cell.label()}: the training loss became {loss.item()} at epoch "
                    f"{epoch}, batch {count + 1}; lower the learning rate or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.step += 1
            if self.warmup_steps and self.step <= self.warmup_steps:
                # linear LR warm-up; the first step runs at 1/warmup_steps of the rate
                _set_lr(optimizer, self.step / self.warmup_steps)
            else:
                _set_lr(optimizer, 1.0)
            optimizer.step()
            per_sample = out.per_sample_loss.detach()
            if not torch.isfinite(per_sample).all():
                raise NonFiniteLoss(f"{self.cell.label()}: non-finite per-sample loss at epoch {epoch}")
            probs = out.probabilities
            sampler.update(idx_dev, per_sample, probabilities=probs)
            self.loss_table[idx] = per_sample.float().cpu()
            if probs is not None:
                self.prob_table[idx] = probs.float().cpu()
            total += float(out.loss.detach()) * len(idx)
            count += 1
            picked += len(idx)
            picked_minority += int(self.has_minority[idx].sum())
            drawn[idx] = True
        seconds = time.perf_counter() - t0
        share_train = float(self.has_minority.float().mean())
        row = {"epoch": epoch, "train_loss": total / max(picked, 1), "epoch_seconds": seconds,
               "minority_share": picked_minority / max(picked, 1),
               "minority_share_train": share_train,
               "loss_minority": float(self.loss_table[self.has_minority].mean()) if self.has_minority.any() else float("nan"),
               "loss_rest": float(self.loss_table[~self.has_minority].mean()) if (~self.has_minority).any() else float("nan")}
        # validation only: it picks the best epoch; the test set is evaluated once, on the
        # weights of that epoch (_finish), so no test number can steer the selection
        try:
            val = _evaluate(model, self.X_val, self.Y_val, self.config.threshold)
        except ValueError as exc:  # e.g. NaN predictions from diverged weights
            raise NonFiniteLoss(f"{self.cell.label()}: evaluation failed after epoch {epoch}: {exc}") from exc
        row.update({f"val_{k}": v for k, v in val.items()})
        row.update(selection_strength(p_epoch, int(drawn.sum()), picked))
        self.curves.append(row)
        if _auc_key(val["macro_auc"]) > self.best_auc:
            self.best_auc = _auc_key(val["macro_auc"])
            self.best_epoch = epoch
            self.best_state = _state_to_cpu(model.state_dict())
        return row

    def recompute_losses(self, sampler) -> None:
        """Give ``sampler`` fresh losses and predictions of every training sample.

        One forward pass over the training set in evaluation mode with the model's published
        inference rule (online batch selection's periodic recomputation); no gradient.
        """
        self.model.eval()
        with torch.no_grad():
            probs = self.model.predict_proba(self.X).to(self.device)
        self.model.train()
        loss = per_sample_bce(self.Y, probs=probs)
        sampler.update(torch.arange(self.n_train, device=self.device), loss, probabilities=probs)

    # checkpoints -----------------------------------------------------------------------------
    def meta(self, config_fp: str) -> dict:
        c = self.cell
        return {"version": CHECKPOINT_VERSION, "dataset": c.dataset, "model": c.model,
                "fold": c.fold, "seed": c.seed, "batch_size": c.batch_size,
                "n_train": self.n_train, "n_labels": self.n_labels,
                "labels_sha": hashlib.sha256(np.ascontiguousarray(
                    np.asarray(self.split.Y_train, dtype=np.uint8)).tobytes()).hexdigest()[:16],
                "config": config_fp}

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(), "step": self.step,
                "loss_table": self.loss_table.clone(), "prob_table": self.prob_table.clone(),
                "curves_json": json.dumps(self.curves),
                "best_auc": self.best_auc, "best_epoch": self.best_epoch,
                "best_state": self.best_state}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.loss_table = state["loss_table"].clone()
        self.prob_table = state["prob_table"].clone()
        self.curves = json.loads(state["curves_json"])
        for row in self.curves:
            if "p_ratio" not in row and row["epoch"] <= self.config.warmup_epochs:
                # a warm-up epoch is a shuffle of every sample once
                row.update(_SHUFFLED_STRENGTH, distinct_drawn=self.n_train, drawn_fraction=1.0)
        self.best_auc = float(state["best_auc"])
        self.best_epoch = int(state["best_epoch"])
        self.best_state = state["best_state"]


#: metadata that identifies the run a checkpoint belongs to; any other difference (a changed
#: setting, or changed prepared data: its digest is part of the config fingerprint) means the
#: checkpoint is stale and is retrained instead
_IDENTITY = ("dataset", "model", "fold", "seed", "batch_size", "method", "selection_pressure")


def _is_stale(found: dict, expected: dict) -> bool:
    return any(found.get(k) != v for k, v in expected.items() if k not in _IDENTITY)


def _check_meta(found: dict, expected: dict, path: Path) -> None:
    diffs = [f"{k}: checkpoint has {found.get(k)!r}, this run needs {v!r}"
             for k, v in expected.items() if k in _IDENTITY and found.get(k) != v]
    if diffs:
        raise CheckpointMismatch(
            f"checkpoint {path} does not belong to this run ({'; '.join(diffs)}). "
            f"Delete it (or the folder) to retrain it.")


def _load_checkpoint(path: Path, expected_meta: dict) -> dict | None:
    """Load a checkpoint; None if it is stale (written under other settings).

    A checkpoint of another data set, model, fold, seed or batch size is refused with
    :class:`CheckpointMismatch` rather than silently reused.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file
        raise CheckpointMismatch(f"cannot read checkpoint {path} ({exc}); delete it to retrain") from exc
    _check_meta(payload.get("meta", {}), expected_meta, path)
    if _is_stale(payload["meta"], expected_meta):
        return None
    return payload


def _save_checkpoint(path: Path, meta: dict, state: dict, **extra: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"meta": meta, "state": state, **extra}, tmp)


# ----------------------------------------------------------------------------------------------
# public entry points


def run_warmup(cell: Cell, split, config: TrainConfig, warmup_root: str | os.PathLike,
               progress: bool = True) -> Path:
    """Train (or reuse) the shared warm-up checkpoint of ``cell``.

    The warm-up depends on (data set, model, fold, seed, batch size) and the
    optimisation settings, not on the method or the selection pressure. An
    existing checkpoint is reused after its metadata has been checked; one
    that belongs to another data set, model, fold or configuration is refused
    with :class:`CheckpointMismatch`.
    """
    path = warmup_path(warmup_root, cell)
    _seed_everything(cell.seed, config.deterministic, config.device)
    run = _Run(cell, split, config)
    meta = run.meta(config.warmup_fingerprint(cell.model, split.digest()))
    if path.exists() and _load_checkpoint(path, meta) is not None:
        return path
    sampler = RandomBatchSampler(run.n_train, cell.batch_size, seed=cell.seed)
    bar = progress_bar(config.warmup_epochs, 0, f"warm-up {cell.dataset}/{cell.model} fold {cell.fold}", "epoch",
                       progress, leave=False)
    for epoch in range(1, config.warmup_epochs + 1):
        row = run.train_epoch(sampler, epoch)
        bar.update(1)
        bar.set_postfix(val_auc=f"{row['val_macro_auc']:.4f}")
    bar.close()
    _save_checkpoint(path, meta, run.state())
    return path


def check_method_supports_model(cell: Cell, config: TrainConfig) -> None:
    """Refuse, before any training, a method that weights samples' losses with a model whose
    objective does not decompose per sample (one line naming both and the fix)."""
    from .models import model_class

    base, _ = config.resolve_method(cell.method)
    if sampler_class(base).gives_loss_weights and not model_class(cell.model).per_sample_objective_supported:
        raise ValueError(f"method {cell.method} weights each sample's loss, but model {cell.model}'s objective "
                         f"does not decompose per sample (per_sample_objective_supported = False); use a "
                         f"method without loss weights or give the model a per-sample objective")


def _make_sampler(cell: Cell, run: _Run, config: TrainConfig):
    # the sampler's class decides what it takes (features, schedule length); the cell's s_e goes to
    # the methods that use it, the others take theirs, and its schedule, from their options
    base, opts = config.resolve_method(cell.method)
    if sampler_class(base).uses_selection_pressure:
        fixed = opts.pop("selection_pressure", None)
        if fixed is not None and float(fixed) != cell.selection_pressure:
            raise ValueError(f"{cell.label()}: variant {cell.method} fixes s_e = {float(fixed):g}; build its "
                             f"cells with selection_pressure={float(fixed):g} (config.train_cells does)")
        opts["selection_pressure"] = cell.selection_pressure
    sampler = make_sampler(base, run.Y, cell.batch_size, features=run.split.X_train,
                           warmup_epochs=config.warmup_epochs, epochs=config.epochs, seed=cell.seed,
                           device=run.device, **opts)
    # the last warm-up epoch's losses and predictions seed every selecting method (the others
    # validate and ignore them)
    sampler.update(torch.arange(run.n_train, device=run.device), run.loss_table.to(run.device),
                   probabilities=run.prob_table.to(run.device))
    return sampler


def train_cell(cell: Cell, split, config: TrainConfig, warmup_root: str | os.PathLike,
               out_root: str | os.PathLike, progress: bool = True) -> dict:
    """Train one cell from its warm-up checkpoint and return its result.

    Writes ``curves.tsv`` and ``result.json`` into :func:`cell_dir`. A cell
    whose ``result.json`` exists is not retrained. An unfinished cell resumes
    from its last completed epoch (``resume.pt``), giving the same metrics as
    an uninterrupted run.
    """
    check_method_supports_model(cell, config)
    out = cell_dir(out_root, cell, config.selection)
    done = load_result(out)
    data = split.digest()
    if is_done(done, config.fingerprint(cell.model, cell.method, data)):
        return done
    wpath = run_warmup(cell, split, config, warmup_root, progress)

    _seed_everything(cell.seed, config.deterministic, config.device)
    run = _Run(cell, split, config)
    warm_meta = run.meta(config.warmup_fingerprint(cell.model, data))
    warm = _load_checkpoint(wpath, warm_meta)
    run.restore(warm["state"])
    sampler = _make_sampler(cell, run, config)
    first_epoch = config.warmup_epochs + 1

    resume = out / "resume.pt"
    cell_meta = dict(warm_meta, method=cell.method, selection_pressure=cell.selection_pressure,
                     config=config.fingerprint(cell.model, cell.method, data))
    payload = _load_checkpoint(resume, cell_meta) if resume.exists() else None
    if payload is not None:
        run.restore(payload["state"])
        sampler.load_state_dict(payload["sampler"])
        first_epoch = int(payload["epoch"]) + 1

    bar = progress_bar(config.epochs, first_epoch - 1, cell.label(), "epoch", progress, leave=False)
    t_start = last_save = time.perf_counter()
    for epoch in range(first_epoch, config.epochs + 1):
        row = run.train_epoch(sampler, epoch)
        if epoch < config.epochs and time.perf_counter() - last_save >= config.checkpoint_seconds:
            _save_checkpoint(resume, cell_meta, run.state(), sampler=sampler.state_dict(), epoch=epoch)
            last_save = time.perf_counter()
        bar.update(1)
        bar.set_postfix(val_auc=f"{row['val_macro_auc']:.4f}", best=run.best_epoch)
    bar.close()

    result = _finish(cell, run, config, out, time.perf_counter() - t_start, cell_meta["config"])
    resume.unlink(missing_ok=True)
    return result


def _finish(cell: Cell, run: _Run, config: TrainConfig, out: Path, seconds: float, fingerprint: str) -> dict:
    best = run.curves[run.best_epoch - 1] if run.best_epoch else run.curves[-1]
    if run.best_state is not None:
        # the reported test metrics come from the kept copy of the best weights,
        # re-evaluated (not read from the curve), which also checks the copy is real
        run.model.load_state_dict(run.best_state)
    test = _evaluate(run.model, run.X_test, run.Y_test, config.threshold)
    val = _evaluate(run.model, run.X_val, run.Y_val, config.threshold)
    selecting = [r for r in run.curves if r["epoch"] > config.warmup_epochs]
    result = {"status": "ok", "cell": dataclasses.asdict(cell),
              "fingerprint": fingerprint,
              "best_epoch": best["epoch"],
              "val": val, "test": test, "train_seconds": seconds,
              "epochs": config.epochs, "warmup_epochs": config.warmup_epochs,
              "minority_share": float(np.mean([r["minority_share"] for r in selecting])) if selecting else None,
              "minority_share_train": run.curves[-1]["minority_share_train"]}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(_curves_tsv(run.curves), out / "curves.tsv")
    write_json_atomic(result, out / "result.json")
    return result


def _curves_tsv(rows: list[dict]) -> str:
    # every column of any row, in order of appearance (a row restored from an older checkpoint may
    # lack a newer column: written as nan)
    cols = list(dict.fromkeys(c for r in rows for c in r))
    lines = ["\t".join(cols)]
    for r in rows:
        lines.append("\t".join(f"{r.get(c, math.nan):.6g}" if isinstance(r.get(c, math.nan), float)
                                else str(r[c]) for c in cols))
    return "\n".join(lines) + "\n"


def warmup_curves(path: str | os.PathLike) -> list[dict]:
    """The per-epoch curves stored in a warm-up checkpoint."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return json.loads(payload["state"]["curves_json"])


def run_cell(cell: Cell, split, config: TrainConfig, warmup_root: str | os.PathLike,
             out_root: str | os.PathLike, progress: bool = True) -> dict:
    """:func:`train_cell`, but a failure is recorded instead of raised.

    A non-finite loss (or any other error) writes ``result.json`` with
    ``status: "failed"`` and the message naming the cell and epoch, so the
    other cells of a grid continue; running the cell again retries it. A
    finished (``ok``) ``result.json`` is never replaced by a failure: the
    failure is only returned.
    """
    try:
        return train_cell(cell, split, config, warmup_root, out_root, progress)
    except Exception as exc:  # any failure is recorded, so the report lists it
        try:
            out = cell_dir(out_root, cell, config.selection)
        except ValueError:  # an unknown variant: no folder of its own
            raise exc from None
        return write_failed(out, dataclasses.asdict(cell), exc)
