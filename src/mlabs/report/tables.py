"""Tables of the study: mean ± std per block and method, their markdown, data sets and failed cells.

A (data set, model) pair is a *block*; its value for a method is the mean over the method's runs
(folds x seeds) in the block (:func:`summary`, :func:`block_means`). :func:`to_markdown` renders
every markdown table of the report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..convergence import CONVERGENCE_METRICS
from .collect import finished_cells
from .conventions import higher_is_better, method_order

__all__ = ["summary", "block_means", "main_table", "main_table_markdown", "to_markdown", "dataset_table",
           "failed_markdown"]

_DECIMALS = 4


def summary(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, population std (ddof=0) and count of ``metric`` over the runs of each block.

    Returns
    -------
    mean, std, n : pandas.DataFrame
        Index (dataset, model), one column per method (order of :func:`method_order`).
        Only finished cells with a finite value count.
    """
    higher_is_better(metric)
    ok = finished_cells(results).dropna(subset=[metric])
    order = method_order(ok["method"], methods)
    ok = ok[ok["method"].isin(order)]
    grouped = ok.groupby(["dataset", "model", "method"], sort=True)[metric]
    agg = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0), "n": grouped.count()})
    out = []
    for stat in ("mean", "std", "n"):
        wide = agg[stat].unstack("method") if len(agg) else pd.DataFrame(
            index=pd.MultiIndex.from_tuples([], names=["dataset", "model"]))
        out.append(wide.reindex(columns=order))
    return tuple(out)


def block_means(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean of ``metric`` over runs per (dataset, model) block and method (NaN where missing)."""
    return summary(results, metric, methods)[0]


def _best_mask(means: pd.DataFrame, metric: str) -> pd.DataFrame:
    """True where a method is best in its row (on values rounded to 4 decimals; ties all True)."""
    rounded = means.round(_DECIMALS)
    best = rounded.max(axis=1) if higher_is_better(metric) else rounded.min(axis=1)
    return rounded.eq(best, axis=0) & rounded.notna()


def main_table(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Data set x model table of ``"mean ± std"`` strings (4 decimals; 1 for epochs_to_95), one column per method.

    Parameters
    ----------
    results : pandas.DataFrame
        From :func:`collect_results`.
    metric : str
        A test metric name (e.g. ``"macro_auc"``).
    methods : sequence of str, optional
        Methods and their column order; default: all present (random, adaptive, chain first).

    Returns
    -------
    pandas.DataFrame
        Index (dataset, model); ``"—"`` where a method has no finished run in the block.
        See :func:`main_table_markdown` for the rendering with the best method in bold.
    """
    mean, std, _ = summary(results, metric, methods)
    table = pd.DataFrame(index=mean.index, columns=mean.columns, dtype=object)
    digits = 1 if metric == "epochs_to_95" else _DECIMALS     # epochs: a tenth is what folds resolve
    for col in mean.columns:
        table[col] = [f"{m:.{digits}f} ± {s:.{digits}f}" if np.isfinite(m) else "—"
                      for m, s in zip(mean[col], std[col])]
    return table


def main_table_markdown(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None) -> str:
    """Markdown rendering of :func:`main_table`; the best method of each row in **bold**."""
    mean, _, n = summary(results, metric, methods)
    table = main_table(results, metric, methods)
    if table.empty:
        return f"No finished cells with a value for `{metric}`.\n"
    best = _best_mask(mean, metric)
    shown = table.copy()
    for col in shown.columns:
        shown[col] = [f"**{v}**" if b else v for v, b in zip(shown[col], best[col])]
    runs = sorted({int(x) for x in n.stack().dropna().unique()})
    direction = "higher" if higher_is_better(metric) else "lower"
    kind = "Test" if metric not in CONVERGENCE_METRICS else "Validation-curve measure"
    header = (f"{kind} `{metric}` ({direction} is better), mean ± std (ddof=0) over "
              f"{'/'.join(map(str, runs))} runs per cell; best per row in bold (ties at 4 decimals all bold).\n\n")
    return header + to_markdown(shown.reset_index())


def to_markdown(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub pipe table (no dependency on ``tabulate``)."""
    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "—" if not np.isfinite(v) else format(float(v), floatfmt)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        return str(v).replace("|", "\\|").replace("\n", " ")
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def dataset_table(datasets_dir: str | Path) -> pd.DataFrame:
    """Data-set statistics: one row per ``<name>.json`` in ``datasets_dir``, columns = its keys.

    Keys appear in first-seen order over the files sorted by name; nested values are kept as
    compact JSON strings.
    """
    rows = []
    for path in sorted(Path(datasets_dir).glob("*.json")):
        payload = json.loads(path.read_text())
        row = {"dataset": payload.get("name", path.stem) if isinstance(payload, dict) else path.stem}
        for k, v in (payload.items() if isinstance(payload, dict) else []):
            if k == "name":
                continue
            row[k] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
        rows.append(row)
    return pd.DataFrame(rows)


def failed_markdown(results: pd.DataFrame, excluded: pd.DataFrame | None = None) -> str:
    """Markdown list of failed cells with their errors (or "none"), plus excluded cells if any."""
    failed = results[results["status"] != "ok"]
    cols = ["dataset", "model", "method", "selection_pressure", "batch_size", "fold", "seed", "error"]
    parts = ["# Failed cells", ""]
    if failed.empty:
        parts.append("none")
    else:
        parts.append(to_markdown(failed[cols].rename(columns={"selection_pressure": "s_e"}), floatfmt="g"))
    if excluded is not None and len(excluded):
        parts += ["", "# Excluded cells (other batch size / s_e than the main setting)", "",
                  to_markdown(excluded[cols[:-1] + ["status"]].rename(columns={"selection_pressure": "s_e"}),
                              floatfmt="g")]
    return "\n".join(parts) + "\n"
