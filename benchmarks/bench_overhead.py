"""Where an epoch's time goes: the model's own step against everything around it.

For each model and method on one data set (default emotions, fold 0, the settings of
``params.yaml``), starting from a trained warm-up, this times per epoch on one thread:

- ``model``: forward, backward and optimiser step on the epoch's batches (``training_step``),
- ``sampler``: drawing the epoch's batches and ``update`` with the batch losses,
- ``val``: evaluating the validation half (``predict_proba`` and the six metrics), which picks
  the best epoch,
- ``ckpt``: writing one resume checkpoint (the trainer writes one every ``checkpoint_seconds``,
  so its share per epoch is ``ckpt * epoch time / checkpoint_seconds`` at most),
- ``epoch``: one whole ``train_epoch`` of the trainer as it runs in a cell,

and prints the share of ``epoch`` outside the model's step. Medians over ``--epochs`` epochs.

Usage::

    python benchmarks/bench_overhead.py
    python benchmarks/bench_overhead.py --dataset yeast --models dela clif --epochs 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mlabs import training
from mlabs.config import load_params, train_config
from mlabs.data import fold_split, load_dataset, prepare


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default="emotions")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--methods", nargs="+", default=["random", "adaptive", "chain"])
    ap.add_argument("--epochs", type=int, default=7, help="timed epochs per measurement")
    args = ap.parse_args()
    torch.set_num_threads(1)

    params = load_params(args.params)
    config = train_config(params, epochs=100)
    d = params["data"]
    split = fold_split(prepare(load_dataset(args.dataset), n_folds=d["n_folds"], seed=d["seed"],
                               min_label_positives=d["min_label_positives"]), 0)
    models = args.models or params["train"]["models"]
    batch = int(params["train"]["batch_size"])
    print(f"{args.dataset} fold 0, batch {batch}, one thread; seconds per epoch, medians of {args.epochs}")
    print(f"{'model':6s} {'method':9s} {'model':>7s} {'sampler':>8s} {'val':>7s} {'ckpt':>7s} {'epoch':>7s} "
          f"{'outside model':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for method in args.methods:
                cell = training.Cell(args.dataset, model, method, 0, batch_size=batch)
                training.run_warmup(cell, split, config, Path(tmp) / "warmup", progress=False)
                run = training._Run(cell, split, config)
                warm = training._load_checkpoint(training.warmup_path(Path(tmp) / "warmup", cell),
                                                 run.meta(config.warmup_fingerprint(model, split.digest())))
                run.restore(warm["state"])
                sampler = training._make_sampler(cell, run, config)
                epoch = [config.warmup_epochs]

                def whole_epoch():
                    epoch[0] += 1
                    run.train_epoch(sampler, epoch[0])

                t_epoch = _median_seconds(whole_epoch, args.epochs)
                batches = [torch.as_tensor(b, dtype=torch.long) for b in sampler]

                def model_steps():
                    run.model.train()
                    for idx in batches:
                        out = run.model.training_step(run.X[idx], run.Y[idx])
                        run.optimizer.zero_grad(set_to_none=True)
                        out.loss.backward()
                        run.optimizer.step()

                def sampler_epoch():
                    epoch[0] += 1
                    sampler.set_epoch(epoch[0] - 1)
                    for b in sampler:
                        idx = torch.as_tensor(b, dtype=torch.long)
                        sampler.update(idx, run.loss_table[idx], probabilities=run.prob_table[idx])

                t_model = _median_seconds(model_steps, args.epochs)
                t_sampler = _median_seconds(sampler_epoch, args.epochs)
                t_val = _median_seconds(lambda: training._evaluate(run.model, run.X_val, run.Y_val, 0.5), args.epochs)
                path = Path(tmp) / "resume.pt"
                t_ckpt = _median_seconds(lambda: training._save_checkpoint(
                    path, {}, run.state(), sampler=sampler.state_dict(), epoch=epoch[0]), 3)
                outside = max(t_epoch - t_model, 0.0) / t_epoch
                print(f"{model:6s} {method:9s} {t_model:7.3f} {t_sampler:8.3f} {t_val:7.3f} {t_ckpt:7.3f} "
                      f"{t_epoch:7.3f} {100 * outside:13.0f}%")


if __name__ == "__main__":
    main()
