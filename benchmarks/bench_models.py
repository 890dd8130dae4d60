"""Cost table of the five models: parameter count and CPU seconds per training epoch.

For each (data set, model): build the model with its class defaults (published hyper-parameters),
or with a profile's model settings and learning rate (``--params params.yaml``: what the study's
cells train), for the real dimensions of the prepared data set, then train
``--epochs`` epochs of shuffled batches of 128 with Adam (lr 1e-4, weight
decay 1e-4, the study's protocol) on the training part of fold 0 and report
the mean CPU (process) seconds and wall seconds per epoch. ``--predict`` also
times ``predict_proba`` on the validation half (MPVAE averages 10,000 probit
draws there by default).

Data: ``mlabs.data.load_dataset`` + ``prepare`` + ``fold_split`` when the data
are available; otherwise random data of the prepared shapes from the data-set
registry (the ``data`` column says which). A model that fails to build is
skipped with a note.

Usage::

    python benchmarks/bench_models.py                       # emotions yeast enron Corel5k, 5 models
    python benchmarks/bench_models.py --datasets emotions --models c2ae dela --epochs 1
    python benchmarks/bench_models.py --params params.yaml --models c2ae dela --epochs 1 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from mlabs.models import MODEL_NAMES, build

DEFAULT_DATASETS = ("emotions", "yeast", "enron", "Corel5k")
BATCH = 128


def load_training_part(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """``(X_train, Y_train, X_val, source)``; real fold-0 data if possible, else random of the right shape."""
    try:
        from mlabs.data import fold_split, load_dataset, prepare
        split = fold_split(prepare(load_dataset(name), seed=seed), 0)
        return (split.X_train.astype(np.float32), split.Y_train.astype(np.float32),
                split.X_val.astype(np.float32), "real")
    except Exception as exc:  # noqa: BLE001 - any failure falls back to shapes only
        print(f"# {name}: real data unavailable ({type(exc).__name__}: {exc}); using random data "
              "of the prepared shapes", file=sys.stderr)
    from mlabs.data import dataset_info
    info = dataset_info(name)
    d, q = info.n_features_prepared, info.n_labels_prepared
    n_train = int(round(0.8 * info.n_instances))
    rng = np.random.default_rng(seed)
    density = min(0.5, info.cardinality_prepared / q)
    Y = (rng.random((n_train, q)) < density).astype(np.float32)
    return (rng.random((n_train, d), dtype=np.float32), Y,
            rng.random((info.n_instances - n_train) // 2 or 1, d).astype(np.float32), "random")


def time_model(name: str, X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, epochs: int,
               predict: bool, seed: int = 0, model_params: dict | None = None, lr: float = 1e-4,
               weight_decay: float = 1e-4) -> dict:
    torch.manual_seed(seed)
    model = build(name, X.shape[1], Y.shape[1], train_labels=Y, **(model_params or {}))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.Adam(model.parameter_groups(lr), lr=lr, weight_decay=weight_decay)
    xt, yt = torch.from_numpy(X), torch.from_numpy(Y)
    cpu, wall = [], []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(xt.shape[0])
        c0, w0 = time.process_time(), time.perf_counter()
        for start in range(0, xt.shape[0], BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad(set_to_none=True)
            out = model.training_step(xt[idx], yt[idx])
            out.loss.backward()
            opt.step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    row = {"params": n_params, "cpu_s_epoch": float(np.mean(cpu)), "wall_s_epoch": float(np.mean(wall))}
    if predict:
        c0, w0 = time.process_time(), time.perf_counter()
        model.predict_proba(X_val)
        row["cpu_s_predict_val"] = time.process_time() - c0
        row["wall_s_predict_val"] = time.perf_counter() - w0
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=list(MODEL_NAMES))
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per model (mean reported)")
    ap.add_argument("--predict", action="store_true", help="also time predict_proba on the validation half")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--params", default=None,
                    help="a profile's parameter file: its model settings, learning rates and weight decay "
                         "(default: the models' class defaults, lr 1e-4, weight decay 1e-4)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = None
    if args.params:
        from mlabs.config import load_params, train_config
        config = train_config(load_params(args.params))

    settings = (f"the model settings of {args.params}" if config else
                "default hyper-parameters, Adam lr 1e-4 wd 1e-4")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"{args.epochs} epoch(s), {settings}")
    cols = ["dataset", "data", "N_train", "d", "q", "model", "params", "cpu_s/epoch", "wall_s/epoch"]
    if args.predict:
        cols += ["cpu_s/predict_val", "wall_s/predict_val"]
    print("\t".join(cols))
    for ds in args.datasets:
        X, Y, X_val, source = load_training_part(ds)
        for name in args.models:
            try:
                kw = ({} if config is None else
                      {"model_params": config.params_for(name), "lr": config.lr_for(name),
                       "weight_decay": config.weight_decay})
                row = time_model(name, X, Y, X_val, args.epochs, args.predict, **kw)
            except Exception as exc:  # noqa: BLE001 - report and continue with the next model
                print(f"# {ds}/{name}: skipped ({type(exc).__name__}: {exc})")
                continue
            vals = [ds, source, X.shape[0], X.shape[1], Y.shape[1], name, row["params"],
                    f"{row['cpu_s_epoch']:.2f}", f"{row['wall_s_epoch']:.2f}"]
            if args.predict:
                vals += [f"{row['cpu_s_predict_val']:.2f}", f"{row['wall_s_predict_val']:.2f}"]
            print("\t".join(map(str, vals)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
