"""Train and evaluate one cell of the experiment grid.

A *cell* is (data set, model, method, fold, seed, selection pressure, batch
size). The protocol follows ``docs/method.md`` sections 4 and 6:

1. **Warm-up** is trained once per (data set, model, fold, seed, batch size)
   with shuffled random batches and a linear learning-rate warm-up, and saved
   as a checkpoint (model, optimiser, random-stream states, the per-sample loss and
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

``result.json`` and ``curves.tsv`` hold only what the cell computed; its timings and the machine
it ran on go to the sidecar ``timing.json`` (:func:`mlabs.results.write_timing`), outside DVC's
cache, so that a rerun computing the same numbers rewrites no cached output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
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
from .streams import Streams
from .progress import progress_bar
from .results import (cell_dir, is_done, load_result, machine_record, timing_record, warmup_path, write_failed,
                      write_timing)
from .store import CellStore
from .selection.registry import make_sampler, method_options, sampler_class
from .settings import METHODS, Cell, TrainConfig, closest

# Cell, TrainConfig and METHODS live in mlabs.settings (torch-free) and are re-exported here
__all__ = ["Cell", "TrainConfig", "CheckpointMismatch", "NonFiniteLoss", "METHODS", "check_selection_options",
           "check_method_supports_model", "selection_strength",
           "warmup_path", "warmup_curves", "cell_dir", "run_warmup", "train_cell", "run_cell", "load_result"]

# deterministic cuBLAS needs a fixed workspace; torch reads the setting when it first creates a
# cuBLAS workspace, so it is made before any CUDA call of a training process, and only if the
# user has not chosen one (it has no effect on the CPU)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

#: 2: warm-up checkpoints also hold the last warm-up epoch's predicted probabilities;
#: 3: checkpoints hold the state of every random stream (mlabs.streams) instead of torch's global RNG
CHECKPOINT_VERSION = 3


class CheckpointMismatch(ValueError):
    """A checkpoint belongs to another data set, model, fold or configuration."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


def check_selection_options(config: TrainConfig) -> None:
    """Raise ``ValueError`` naming every option of ``config.selection`` its method does not take.

    The settings themselves (:mod:`mlabs.settings`) do not import the samplers, so the option
    names are checked here, where the samplers are built: by :func:`train_cell` and once per grid
    (:func:`mlabs.grid.run_grid`). A variant's own options are checked against its base method's
    (plus ``selection_pressure`` where the base takes the cell's s_e: the variant fixes it).
    """
    for method, opts in config.selection.items():
        base, _ = config.resolve_method(method)
        allowed = set(method_options(base))
        if base != method:
            opts = {k: v for k, v in opts.items() if k != "method"}
            if sampler_class(base).uses_selection_pressure:
                allowed.add("selection_pressure")
        unknown = sorted(set(opts or {}) - allowed)
        if unknown:
            raise ValueError(f"selection.{method}: unknown option(s) {unknown}{closest(unknown[0], allowed)}; "
                             f"{base} takes {sorted(allowed)}")


# ----------------------------------------------------------------------------------------------
# paths


# warmup_path, cell_dir and load_result live in mlabs.results (the layout of the results) and are
# re-exported here for the notebooks and the CLI


# ----------------------------------------------------------------------------------------------
# helpers


def _configure_determinism(deterministic: bool, device: str) -> None:
    """Select deterministic kernels for a CUDA run (``train.deterministic``).

    On the CPU the kernels used here are deterministic on one thread already. On CUDA torch then
    picks deterministic kernels wherever it has one and warns (instead of failing the cell) for
    an op that has none (``torch.kthvalue``, which the slot-table samplers call for a value
    only); the cuBLAS workspace setting this needs is made at import of this module.
    """
    if deterministic and torch.device(device).type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


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
        # one stream per purpose (mlabs.streams): the global RNG is never consumed by a run
        self.streams = Streams(cell.seed, device)
        with torch.random.fork_rng(devices=[]):
            # the model is built on the CPU, so its initial weights depend on the init stream only
            # (the same on every device); fork_rng leaves the global CPU generator as it was
            torch.default_generator.manual_seed(self.streams.seed("init"))
            model = build_model(cell.model, self.X.shape[1], self.n_labels,
                                train_labels=split.Y_train, **config.params_for(cell.model))
        self.model = model.to(device).set_generators(train=self.streams.generator("model"),
                                                     eval=self.streams.generator("eval"))
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
                "streams": self.streams.state_dict(), "step": self.step,
                "loss_table": self.loss_table.clone(), "prob_table": self.prob_table.clone(),
                "curves_json": json.dumps(self.curves),
                "best_auc": self.best_auc, "best_epoch": self.best_epoch,
                "best_state": self.best_state}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.streams.load_state_dict(state["streams"])
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
    _configure_determinism(config.deterministic, config.device)
    run = _Run(cell, split, config)
    meta = run.meta(config.warmup_fingerprint(cell.model, split.digest()))
    if path.exists() and _load_checkpoint(path, meta) is not None:
        return path
    sampler = RandomBatchSampler(run.n_train, cell.batch_size, seed=run.streams.seed("warmup_batches"))
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
                           warmup_epochs=config.warmup_epochs, epochs=config.epochs,
                           # the same stream for every method (they differ only by their rule), and
                           # not the warm-up's, so the random method never replays its permutations
                           seed=run.streams.seed("batches"),
                           device=run.device, **opts)
    # the last warm-up epoch's losses and predictions seed every selecting method (the others
    # validate and ignore them)
    sampler.update(torch.arange(run.n_train, device=run.device), run.loss_table.to(run.device),
                   probabilities=run.prob_table.to(run.device))
    return sampler


def train_cell(cell: Cell, split, config: TrainConfig, warmup_root: str | os.PathLike,
               out_root: str | os.PathLike, progress: bool = True, store: CellStore | None = None) -> dict:
    """Train one cell from its warm-up checkpoint and return its result.

    Without ``store``, writes ``curves.tsv``, ``result.json`` and the timing sidecar into
    :func:`cell_dir` under ``out_root``, and a cell whose finished ``result.json`` is there (with
    the same fingerprint) is not retrained. With a :class:`~mlabs.store.CellStore`, the finished
    cell goes to the store instead (and is read back from it when stored already); ``out_root``
    then holds only the resume checkpoints. An unfinished cell resumes from its last completed
    epoch (``resume.pt``), giving the same metrics as an uninterrupted run.
    """
    check_selection_options(config)
    check_method_supports_model(cell, config)
    out = cell_dir(out_root, cell, config.selection)
    data = split.digest()
    fingerprint = config.fingerprint(cell.model, cell.method, data)
    if store is not None:
        stored = store.get(store.key(cell, fingerprint))
        if stored is not None:
            return stored
    else:
        done = load_result(out)
        if is_done(done, fingerprint):
            return done
    wpath = run_warmup(cell, split, config, warmup_root, progress)

    _configure_determinism(config.deterministic, config.device)
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

    result = _finish(cell, run, config, out, time.perf_counter() - t_start, cell_meta["config"], first_epoch,
                     store)
    resume.unlink(missing_ok=True)
    return result


def _finish(cell: Cell, run: _Run, config: TrainConfig, out: Path, seconds: float, fingerprint: str,
            first_epoch: int, store: CellStore | None = None) -> dict:
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
              "val": val, "test": test,
              "epochs": config.epochs, "warmup_epochs": config.warmup_epochs,
              "minority_share": float(np.mean([r["minority_share"] for r in selecting])) if selecting else None,
              "minority_share_train": run.curves[-1]["minority_share_train"]}
    timing = dict(fingerprint=fingerprint, epoch_seconds=[r["epoch_seconds"] for r in run.curves],
                  train_seconds=seconds, first_epoch=first_epoch, machine=machine_record(config.device))
    if store is not None:
        # the whole cell folder at once (mlabs.store): a stop after this line keeps the cell
        store.put(store.key(cell, fingerprint), result, _curves_tsv(run.curves), timing_record(**timing))
        return result
    out.mkdir(parents=True, exist_ok=True)
    # the sidecar first: a finished result.json always has its timings next to it
    write_timing(out, **timing)
    write_text_atomic(_curves_tsv(run.curves), out / "curves.tsv")
    write_json_atomic(result, out / "result.json")
    return result


#: curve columns that measure time: they go to the timing sidecar, not to the cached curves.tsv
_TIMING_COLUMNS = ("epoch_seconds",)


def _curves_tsv(rows: list[dict]) -> str:
    # every column of any row, in order of appearance (a row restored from an older checkpoint may
    # lack a newer column: written as nan), less the timings (they go to the timing sidecar)
    cols = [c for c in dict.fromkeys(c for r in rows for c in r) if c not in _TIMING_COLUMNS]
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
             out_root: str | os.PathLike, progress: bool = True, store: CellStore | None = None) -> dict:
    """:func:`train_cell`, but a failure is recorded instead of raised.

    A non-finite loss (or any other error) writes ``result.json`` with
    ``status: "failed"`` and the message naming the cell and epoch, so the
    other cells of a grid continue; running the cell again retries it. A
    finished (``ok``) ``result.json`` is never replaced by a failure: the
    failure is only returned. With ``store``, the failure record goes to ``out_root`` (the store
    keeps finished cells only).
    """
    try:
        return train_cell(cell, split, config, warmup_root, out_root, progress, store)
    except Exception as exc:  # any failure is recorded, so the report lists it
        try:
            out = cell_dir(out_root, cell, config.selection)
        except ValueError:  # an unknown variant: no folder of its own
            raise exc from None
        return write_failed(out, dataclasses.asdict(cell), exc)
