"""Where an epoch's time goes: the model's own step against everything around it.

For each model and method on one data set (default emotions, fold 0, the settings of
``params.yaml``), starting from a trained warm-up, this runs the trainer's own epochs
(``train_epoch``, as in a cell) on one thread and splits each epoch's time, measured inside it:

- ``model``: forward, backward and optimiser step (from ``training_step`` to the end of
  ``optimizer.step``, batch by batch),
- ``sampler``: drawing the epoch's batches, ``update`` with the batch losses, and any loss
  recomputation the sampler asks for,
- ``val``: evaluating the validation half (``predict_proba`` and the six metrics), which picks
  the best epoch,
- ``rest``: everything else (indexing the batch, the finiteness checks, the loss tables, the
  epoch's statistics, keeping the best weights),
- ``epoch``: the whole ``train_epoch``,

and prints the share of the epoch outside the model's step, ``(epoch - model) / epoch``. Sums over
``--epochs`` epochs after two untimed ones, shown per epoch. ``ckpt`` is the time of writing one
resume checkpoint, which the trainer does once every ``checkpoint_seconds`` (30 s), not every
epoch, so it is shown apart.

Usage::

    python benchmarks/bench_overhead.py
    python benchmarks/bench_overhead.py --dataset yeast --models dela clif --epochs 10
    python benchmarks/bench_overhead.py --params profiles/breadth/params.yaml --dataset all \
        --models c2ae --methods chain --epochs 3     # the chain sampler's share on the 14 data sets

``sampler share`` is the sampler's part of the whole epoch (the chain sampler's target: at most 5 %
of a C2AE epoch on every data set).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import torch

from mlabs import training
from mlabs.config import load_params, train_config
from mlabs.data import fold_split, load_dataset, prepare


class _Clock:
    """Seconds spent in wrapped calls, per part."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._step_start = 0.0

    def add(self, part: str, seconds: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds

    def timed(self, part: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(part, time.perf_counter() - t0)
        return wrapper

    def step_begins(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            self._step_start = time.perf_counter()
            return fn(*args, **kwargs)
        return wrapper

    def step_ends(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            finally:
                self.add("model", time.perf_counter() - self._step_start)
        return wrapper


class _TimedSampler:
    """A sampler whose iteration, ``update`` and loss recomputation count as sampler time."""

    def __init__(self, sampler, clock: _Clock):
        self._sampler, self._clock = sampler, clock

    def __getattr__(self, name):
        return getattr(self._sampler, name)

    def __iter__(self):
        it = iter(self._sampler)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                self._clock.add("sampler", time.perf_counter() - t0)
                return
            self._clock.add("sampler", time.perf_counter() - t0)
            yield batch

    def update(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._sampler.update(*args, **kwargs)
        finally:
            self._clock.add("sampler", time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", nargs="+", default=["emotions"],
                    help="data sets (\"all\": those of the params file)")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=["random", "adaptive", "chain"])
    ap.add_argument("--epochs", type=int, default=20, help="timed epochs per (model, method)")
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error(f"--epochs must be at least 1, got {args.epochs}")
    torch.set_num_threads(1)

    params = load_params(args.params)
    config = train_config(params, epochs=100)
    datasets = params["data"]["datasets"] if args.dataset == ["all"] else args.dataset
    models = args.models or params["train"]["models"]
    batch = int(params["train"]["batch_size"])
    print(f"fold 0, batch {batch}, one thread; ms per epoch, sums over {args.epochs} epochs")
    print(f"{'dataset':16s} {'model':6s} {'method':9s} {'model':>7s} {'sampler':>8s} {'val':>6s} {'rest':>6s} "
          f"{'epoch':>7s} {'outside model':>14s} {'sampler share':>14s} {'ckpt':>6s}")
    for dataset in datasets:
        _measure(dataset, models, args.methods, args.epochs, params, config, batch)


def _measure(dataset, models, methods, epochs, params, config, batch) -> None:
    """Print one line per (model, method) of ``dataset`` (fold 0): where its epochs' time goes."""
    d = params["data"]
    split = fold_split(prepare(load_dataset(dataset), n_folds=d["n_folds"], seed=d["seed"],
                               min_label_positives=d["min_label_positives"]), 0)
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for method in methods:
                cell = training.Cell(dataset, model, method, 0, batch_size=batch)
                training.run_warmup(cell, split, config, Path(tmp) / "warmup", progress=False)
                run = training._Run(cell, split, config)
                warm = training._load_checkpoint(training.warmup_path(Path(tmp) / "warmup", cell),
                                                 run.meta(config.warmup_fingerprint(model, split.digest())))
                run.restore(warm["state"])
                sampler = training._make_sampler(cell, run, config)
                clock = _Clock()
                run.model.training_step = clock.step_begins(run.model.training_step)
                run.optimizer.step = clock.step_ends(run.optimizer.step)
                run.recompute_losses = clock.timed("sampler", run.recompute_losses)
                timed_sampler = _TimedSampler(sampler, clock)
                evaluate = training._evaluate
                training._evaluate = clock.timed("val", evaluate)
                try:
                    for epoch in range(config.warmup_epochs + 1, config.warmup_epochs + 3 + epochs):
                        if epoch == config.warmup_epochs + 3:
                            clock.seconds.clear()
                        t0 = time.perf_counter()
                        run.train_epoch(timed_sampler, epoch)
                        clock.add("epoch", time.perf_counter() - t0)
                finally:
                    training._evaluate = evaluate
                path = Path(tmp) / "resume.pt"
                t0 = time.perf_counter()
                training._save_checkpoint(path, {}, run.state(), sampler=sampler.state_dict(), epoch=epoch)
                t_ckpt = time.perf_counter() - t0
                ms = {part: 1000 * s / epochs for part, s in clock.seconds.items()}
                m, smp, val, ep = (ms.get(p, 0.0) for p in ("model", "sampler", "val", "epoch"))
                rest = ep - m - smp - val
                print(f"{dataset:16s} {model:6s} {method:9s} {m:7.1f} {smp:8.1f} {val:6.1f} {rest:6.1f} {ep:7.1f} "
                      f"{100 * (ep - m) / ep:13.0f}% {100 * smp / ep:13.1f}% {1000 * t_ckpt:6.1f}", flush=True)


if __name__ == "__main__":
    main()
