"""Print one wide table of a metric's test means: a row per data set, a column per (model, method).

The README's breadth table is this script's output. It reads the ``tables/main_<metric>.csv`` that
a report writes (long form: a row per data set and model) and the report's ``tables/datasets.csv``
for labels and MeanIR after preprocessing; several report folders are combined, so the two partial
snapshots of the breadth profile (C2AE in one, DELA in the other) give one table. A (data set,
model) block missing from every folder reads "training". Best method per model in bold, by the
report's own rule (:func:`mlabs.report.tables._best_mask`: 4 decimals, ties all bold).

Usage::

    python scripts/overview_table.py reports/breadth/partial reports/breadth/partial-dela
    python scripts/overview_table.py reports/breadth            # once the profile is finished
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mlabs.report.tables import _best_mask, to_markdown


def overview(reports: list[Path], metric: str = "macro_auc") -> pd.DataFrame:
    """Data set x (model, method) table of mean strings, bold where best within its model."""
    for folder in reports:
        if not (folder / "tables" / f"main_{metric}.csv").is_file():
            raise SystemExit(f"error: {folder}/tables/main_{metric}.csv not found; "
                             "pass a report folder (e.g. reports/breadth/partial)")
    long = pd.concat([pd.read_csv(f / "tables" / f"main_{metric}.csv") for f in reports])
    long = long.drop_duplicates(["dataset", "model"])  # the first folder that has a block wins
    characteristics = pd.read_csv(reports[0] / "tables" / "datasets.csv").set_index("dataset")
    methods = [c[:-5] for c in long.columns if c.endswith("_mean")]
    out = pd.DataFrame(index=sorted(characteristics.index, key=str.lower))
    out["labels"] = characteristics["q'"].astype(int)
    out["MeanIR"] = characteristics["MeanIR'"].map("{:.1f}".format)
    for model, block in long.groupby("model", sort=True):
        means = block.set_index("dataset")[[f"{m}_mean" for m in methods]].dropna(axis=1, how="all")
        means.columns = [c[:-5] for c in means.columns]
        best = _best_mask(means, metric)
        for method in means.columns:
            text = [f"**{v:.4f}**" if b else f"{v:.4f}" for v, b in zip(means[method], best[method])]
            # the registry names upper-cased are the paper's model names (c2ae -> C2AE)
            out[f"{model.upper()} {method}"] = pd.Series(text, index=means.index)
    return out.fillna("training").rename_axis("data set").reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report folders, e.g. reports/breadth/partial")
    parser.add_argument("--metric", default="macro_auc", help="a test metric with tables/main_<metric>.csv")
    args = parser.parse_args(argv)
    print(to_markdown(overview(args.reports, args.metric)), end="")


if __name__ == "__main__":
    main()
