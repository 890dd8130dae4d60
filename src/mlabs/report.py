"""Tables, statistical tests, figures and findings of the study.

Reads the result tree written by :mod:`mlabs.training` (one folder per cell,
``<dataset>/<model>/<method>[-se<s_e>]-b<batch>/fold<k>-seed<s>/`` with
``result.json`` and ``curves.tsv``) and writes the report of the study:

- main tables (data set x model, one column per method, mean +- std over folds);
- paired Wilcoxon signed-rank tests of each method against random, per model;
- the Friedman test over all (data set, model) blocks with the Nemenyi post-hoc
  test and a critical-difference diagram;
- convergence, "hard minority samples", minority-selection and sensitivity figures;
- ``metrics.json`` (DVC metrics), ``plots/val_macro_auc.csv`` and ``plots/train_bce.csv`` (DVC plots, one column per method) and
  ``findings.md``, a generated plain-language summary of what the numbers show.

The statistics come from scipy (``wilcoxon``, ``friedmanchisquare``) and
scikit-posthocs (``posthoc_nemenyi_friedman``, ``critical_difference_diagram``).
Figures use matplotlib's object-oriented API (``Figure`` + Agg canvas), so
nothing depends on, or changes, the interactive backend of the caller.

Conventions
-----------
- "Result" of a cell = its test metrics at the epoch of best validation macro-AUC.
- A (data set, model) pair is a *block*; its value for a method is the mean over
  the method's runs (folds x seeds) in the block.
- Win / tie / loss compare such means in the metric's direction
  (:data:`mlabs.metrics.HIGHER_IS_BETTER`): a difference within the metric's tie
  margin (:func:`tie_margin`: 0.005 for the metrics, 1 epoch for epochs to 95 %)
  is a tie, and the paired tests count such differences as zero, so that no
  verdict hinges on noise in the fourth decimal (a rerun on another machine moved
  mean macro-AUCs by up to 0.0024).
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator
from scipy import stats

from ._io import atomic_path, write_json_atomic, write_text_atomic
from .convergence import CONVERGENCE_METRICS, convergence_results
from .metrics import ALL_METRICS, HIGHER_IS_BETTER, REPORTED_METRICS
from .results import parse_cell_dir
from .selection.registry import SAMPLERS

__all__ = [
    "CELL_COLUMNS", "FriedmanResult",
    "collect_results", "collect_curves", "select_main_setting",
    "block_means", "summary", "main_table", "main_table_markdown",
    "wilcoxon_table", "friedman_nemenyi", "friedman_markdown",
    "plot_critical_difference", "plot_convergence", "plot_motivation", "plot_minority_share",
    "plot_sensitivity_se", "plot_sensitivity_batch", "placeholder_figure",
    "headline_metrics", "plot_data", "findings", "verdict", "verdict_table", "dataset_table", "failed_markdown",
    "to_markdown", "write_report", "tie_margin", "TIE_MARGIN", "pooled_row", "verdicts_by_seed",
    "POOLED_BLOCKS", "POOLED_RUNS", "MIN_BLOCKS",
]

#: Columns that identify a cell (one training run).
CELL_COLUMNS = ["dataset", "model", "method", "selection_pressure", "batch_size", "fold", "seed"]
#: Known methods first, in this order; any other method follows alphabetically.
#: the order of the methods in tables and the colours of figures: the registry's
_METHOD_ORDER = tuple(SAMPLERS)
_DECIMALS = 4
#: Pooled rows of :func:`wilcoxon_table`: over (dataset, model) block means, and over paired runs.
POOLED_BLOCKS = "all (block means)"
POOLED_RUNS = "all (paired runs)"
#: Fewest pooled units with which a two-sided exact Wilcoxon test can reach p < 0.05 (p >= 0.0625
#: below). A profile with fewer (dataset, model) blocks (one data set, five models) is tested over its
#: paired runs instead, so that its verdicts are not "no significant difference" by construction.
MIN_BLOCKS = 6
_DIFF_DECIMALS = 12  # paired differences are rounded to this before the Wilcoxon test
_DPI = 110
_INT_COLUMNS = ("batch_size", "fold", "seed", "best_epoch", "epochs", "warmup_epochs")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

#: every value the report compares -> whether higher is better
_DIRECTION = {**HIGHER_IS_BETTER, **CONVERGENCE_METRICS}
#: a difference up to this is a tie (metrics in [0, 1]); epochs to 95 % use 1 epoch
TIE_MARGIN = 0.005


def tie_margin(metric: str) -> float:
    """The largest difference of ``metric`` that still counts as a tie."""
    return 1.0 if metric == "epochs_to_95" else TIE_MARGIN


def _higher(metric: str) -> bool:
    if metric not in _DIRECTION:
        raise KeyError(f"unknown metric {metric!r}; known: {sorted(_DIRECTION)}")
    return _DIRECTION[metric]


def _method_order(present: Iterable[str], methods: Sequence[str] | None = None) -> list[str]:
    """Methods to show: ``methods`` (in its order) restricted to those present, else all present."""
    present = set(present)
    if methods is not None:
        return [m for m in dict.fromkeys(methods) if m in present]
    known = [m for m in _METHOD_ORDER if m in present]
    return known + sorted(present - set(known))


def _result_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return sorted(root.rglob("result.json")) if root.is_dir() else []


def _empty_results() -> pd.DataFrame:
    cols = CELL_COLUMNS + ["status", "error", "best_epoch", "epochs", "warmup_epochs", "train_seconds",
                           "minority_share", "minority_share_train", "path"]
    cols += list(ALL_METRICS) + [f"val_{m}" for m in ALL_METRICS]
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("dataset", "model", "method", "status",
                                                             "error", "path") else float)
                         for c in cols})


def _sort_cells(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    return frame.sort_values(CELL_COLUMNS + list(extra), kind="mergesort",
                             na_position="last").reset_index(drop=True)


def collect_results(root: str | Path) -> pd.DataFrame:
    """One row per cell found under ``root`` (finished and failed).

    Parameters
    ----------
    root : str or Path
        A results root such as ``artifacts/runs``. A missing folder gives an empty frame.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CELL_COLUMNS`, ``status`` (``"ok"`` / ``"failed"``), ``error``,
        ``best_epoch``, ``epochs``, ``warmup_epochs``, ``train_seconds``, ``minority_share``,
        ``minority_share_train``, ``path`` (cell folder relative to ``root``), one column per
        *test* metric (bare name, e.g. ``macro_auc``) and ``val_<metric>`` for validation.
        A ``result.json`` that cannot be parsed becomes a failed row (identity taken from the
        folder names) rather than an exception. Rows are sorted by the cell columns.
    """
    root = Path(root)
    rows = []
    for path in _result_files(root):
        rel = path.parent.relative_to(root).as_posix()
        try:
            payload = json.loads(path.read_text())
            cell = dict(payload["cell"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rows.append({**parse_cell_dir(path, root), "status": "failed",
                         "error": f"unreadable result.json: {type(exc).__name__}: {exc}", "path": rel})
            continue
        row = {c: cell.get(c) for c in CELL_COLUMNS}
        row["status"] = payload.get("status", "failed")
        row["error"] = payload.get("error")
        row["path"] = rel
        for key in ("best_epoch", "epochs", "warmup_epochs", "train_seconds",
                    "minority_share", "minority_share_train"):
            row[key] = payload.get(key)
        for name, value in (payload.get("test") or {}).items():
            row[name] = value
        for name, value in (payload.get("val") or {}).items():
            row[f"val_{name}"] = value
        rows.append(row)
    if not rows:
        return _empty_results()
    frame = pd.DataFrame(rows)
    base = _empty_results()
    for col in base.columns:  # every expected column exists even if no cell reported it
        if col not in frame:
            frame[col] = pd.Series(np.nan, index=frame.index, dtype=base[col].dtype)
    numeric = [c for c in frame.columns if c not in ("dataset", "model", "method", "status", "error", "path")]
    for col in numeric:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in _INT_COLUMNS:  # counts stay integers (nullable: an unreadable cell may lack them)
        frame[col] = frame[col].round().astype("Int64")
    ordered = list(base.columns) + sorted(c for c in frame.columns if c not in base.columns)
    return _sort_cells(frame[ordered])


def collect_curves(root: str | Path) -> pd.DataFrame:
    """Per-epoch curves of every finished cell under ``root``, in long format.

    Returns
    -------
    pandas.DataFrame
        :data:`CELL_COLUMNS`, ``warmup_epochs`` (from ``result.json``) and every column of
        ``curves.tsv`` (``epoch``, ``train_loss``, ``minority_share``, ``loss_minority``,
        ``loss_rest``, ``val_<metric>``, ``test_<metric>``, ...); one row per cell and epoch.
        Cells without ``curves.tsv`` (failed ones) are skipped.
    """
    root = Path(root)
    frames = []
    for path in _result_files(root):
        tsv = path.parent / "curves.tsv"
        if not tsv.is_file():
            continue
        try:
            payload = json.loads(path.read_text())
            cell = payload["cell"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if payload.get("status") != "ok":
            continue
        curve = pd.read_csv(tsv, sep="\t")
        for col in CELL_COLUMNS:
            curve[col] = cell.get(col)
        curve["warmup_epochs"] = payload.get("warmup_epochs", np.nan)
        frames.append(curve)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("dataset", "model", "method") else float)
                             for c in CELL_COLUMNS + ["warmup_epochs", "epoch", "train_loss"]})
    frame = pd.concat(frames, ignore_index=True)
    for col in ("selection_pressure", "batch_size", "fold", "seed", "warmup_epochs", "epoch"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("batch_size", "fold", "seed", "warmup_epochs", "epoch"):
        frame[col] = frame[col].round().astype("Int64")
    front = CELL_COLUMNS + ["warmup_epochs", "epoch"]
    frame = frame[front + [c for c in frame.columns if c not in front]]
    return _sort_cells(frame, extra=["epoch"])


def _mode(values: pd.Series) -> float:
    """Most frequent value; ties go to the smallest, so the choice is deterministic."""
    counts = values.value_counts()
    best = counts.max()
    return float(min(counts[counts == best].index))


def select_main_setting(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep one (batch size, s_e) setting per method, so each block compares like with like.

    The main grid runs every method at one batch size and one s_e; cells of other settings
    (left in a persistent results folder after a parameter change) would otherwise be averaged
    in as extra folds. The kept batch size is the one with most cells (finished ones if any);
    per selecting method the kept s_e is its most frequent one. ``random`` ignores s_e.

    Returns
    -------
    kept, excluded : pandas.DataFrame
    """
    if results.empty:
        return results, results.iloc[0:0]
    ok = results[results["status"] == "ok"]
    source = ok if len(ok) else results
    known = source.dropna(subset=["batch_size"])
    keep = pd.Series(True, index=results.index)
    if len(known):
        batch = _mode(known["batch_size"])
        keep &= results["batch_size"] == batch
        for method in sorted(set(results["method"].dropna()) - {"random"}):
            rows = known[(known["method"] == method) & (known["batch_size"] == batch)]
            rows = rows.dropna(subset=["selection_pressure"])
            if len(rows):
                se = _mode(rows["selection_pressure"])
                keep &= ~((results["method"] == method) & (results["selection_pressure"] != se))
    return results[keep].reset_index(drop=True), results[~keep].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def _ok(results: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    ok = results[results["status"] == "ok"]
    if methods is not None:
        ok = ok[ok["method"].isin(list(methods))]
    return ok


def summary(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, population std (ddof=0) and count of ``metric`` over the runs of each block.

    Returns
    -------
    mean, std, n : pandas.DataFrame
        Index (dataset, model), one column per method (order of :func:`_method_order`).
        Only finished cells with a finite value count.
    """
    _higher(metric)
    ok = _ok(results).dropna(subset=[metric])
    order = _method_order(ok["method"], methods)
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
    best = rounded.max(axis=1) if _higher(metric) else rounded.min(axis=1)
    return rounded.eq(best, axis=0) & rounded.notna()


def _fmt(value: float, digits: int = _DECIMALS) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def main_table(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Data set x model table of ``"mean ± std"`` strings (4 decimals), one column per method.

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
    for col in mean.columns:
        table[col] = [f"{m:.{_DECIMALS}f} ± {s:.{_DECIMALS}f}" if np.isfinite(m) else "—"
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
    direction = "higher" if _higher(metric) else "lower"
    header = (f"Test `{metric}` ({direction} is better), mean ± std (ddof=0) over "
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


def _wtl(a: pd.Series, b: pd.Series, metric: str) -> tuple[int, int, int]:
    """Win / tie / loss of ``a`` against ``b``; differences within the tie margin are ties."""
    diff = (a - b) if _higher(metric) else (b - a)
    margin = tie_margin(metric) + 1e-12  # a difference of exactly the margin is a tie
    return int((diff > margin).sum()), int((diff.abs() <= margin).sum()), int((diff < -margin).sum())


def _pairs(results: pd.DataFrame, metric: str, method: str, baseline: str) -> pd.DataFrame:
    """Runs of ``method`` and ``baseline`` matched on (dataset, model, fold, seed): columns x, y."""
    ok = _ok(results)
    key = ["dataset", "model", "fold", "seed"]
    x = ok[ok["method"] == method][key + [metric]].rename(columns={metric: "x"})
    y = ok[ok["method"] == baseline][key + [metric]].rename(columns={metric: "y"})
    merged = x.merge(y, on=key, how="inner").dropna(subset=["x", "y"])
    return merged.sort_values(key, kind="mergesort").reset_index(drop=True)


def _wilcoxon(x: np.ndarray, y: np.ndarray, min_pairs: int = 2, margin: float = 0.0) -> tuple[float, float, str]:
    """scipy's two-sided Wilcoxon signed-rank test; NaN with a note where it cannot run.

    Differences within ``margin`` count as zero (and are dropped, scipy's default
    ``zero_method="wilcox"``).
    """
    n = len(x)
    if n < min_pairs:
        return np.nan, np.nan, f"fewer than {min_pairs} pairs"
    # Differences that are equal in exact arithmetic (metrics on a finite test set are often
    # multiples of 1/n) can differ in the last bits, which splits ties, changes the ranks and
    # switches scipy between its exact and approximate p-values; rounding far below any real
    # difference removes that noise. scipy then gets the differences (its one-sample form).
    d = np.round(np.asarray(x, float) - np.asarray(y, float), _DIFF_DECIMALS)
    d[np.abs(d) <= margin + 1e-12] = 0.0
    if np.all(d == 0):
        return np.nan, np.nan, "all differences are within the tie margin" if margin else "all differences are zero"
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = stats.wilcoxon(d)
        except ValueError as exc:  # scipy refuses some degenerate inputs
            return np.nan, np.nan, f"not computed: {exc}"
    notes += sorted({str(w.message).split(";")[0].split(".")[0] for w in caught})
    if n < 6:
        # with fewer than 6 pairs the two-sided exact p-value cannot go below 0.05
        notes.append(f"only {n} pairs")
    return float(res.statistic), float(res.pvalue), "; ".join(notes)


def wilcoxon_table(results: pd.DataFrame, metric: str, baseline: str = "random",
                   methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank tests of each method against ``baseline``, per model.

    For every model and non-baseline method, the runs are paired with the baseline's on
    (dataset, fold, seed) and tested with :func:`scipy.stats.wilcoxon` (two-sided, scipy's
    defaults) on the differences rounded to 12 decimals (removes floating-point noise that
    would split ties), differences within :func:`tie_margin` counting as zero. Win / tie / loss
    count data sets, comparing means over the paired runs (a difference within the tie margin is
    a tie). Two final rows per method pool all models: model :data:`POOLED_BLOCKS` tests the
    (dataset, model) block means (Demšar's recommended unit) and counts win / tie / loss over
    blocks; model :data:`POOLED_RUNS` tests and counts the paired runs themselves.
    :func:`pooled_row` says which of the two a verdict uses.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, method, baseline, n_pairs, mean_diff`` (method − baseline),
        ``statistic, p_value, wins, ties, losses, note``. ``p_value`` is NaN (with the reason in
        ``note``) for fewer than 2 pairs or all-zero differences; never raises for lack of data.
    """
    _higher(metric)
    cols = ["model", "method", "baseline", "n_pairs", "mean_diff", "statistic", "p_value",
            "wins", "ties", "losses", "note"]
    ok = _ok(results)
    order = [m for m in _method_order(ok["method"], methods) if m != baseline]
    rows = []
    if baseline not in set(ok["method"]):
        return pd.DataFrame([{**{c: np.nan for c in cols}, "model": pooled, "method": m,
                              "baseline": baseline, "n_pairs": 0, "wins": 0, "ties": 0, "losses": 0,
                              "note": f"baseline {baseline!r} has no finished cells"}
                             for m in order for pooled in (POOLED_BLOCKS, POOLED_RUNS)], columns=cols)
    for method in order:
        pairs = _pairs(results, metric, method, baseline)
        for model in sorted(ok["model"].unique()):
            p = pairs[pairs["model"] == model]
            stat, pval, note = _wilcoxon(p["x"].to_numpy(), p["y"].to_numpy(), margin=tie_margin(metric))
            by_ds = p.groupby("dataset")[["x", "y"]].mean()
            w, t, l = _wtl(by_ds["x"], by_ds["y"], metric)
            rows.append({"model": model, "method": method, "baseline": baseline, "n_pairs": len(p),
                         "mean_diff": float((p["x"] - p["y"]).mean()) if len(p) else np.nan,
                         "statistic": stat, "p_value": pval, "wins": w, "ties": t, "losses": l,
                         "note": note})
        blocks = pairs.groupby(["dataset", "model"])[["x", "y"]].mean()
        for name, units in ((POOLED_BLOCKS, blocks), (POOLED_RUNS, pairs)):
            stat, pval, note = _wilcoxon(units["x"].to_numpy(), units["y"].to_numpy(), margin=tie_margin(metric))
            w, t, l = _wtl(units["x"], units["y"], metric)
            rows.append({"model": name, "method": method, "baseline": baseline, "n_pairs": len(units),
                         "mean_diff": float((units["x"] - units["y"]).mean()) if len(units) else np.nan,
                         "statistic": stat, "p_value": pval, "wins": w, "ties": t, "losses": l, "note": note})
    return pd.DataFrame(rows, columns=cols)


def pooled_row(table: pd.DataFrame, method: str) -> pd.Series:
    """The pooled row of ``method`` in a :func:`wilcoxon_table` that its verdict rests on.

    The (dataset, model) block means (Demšar's unit) when there are at least :data:`MIN_BLOCKS`
    blocks, else the paired runs (dataset, model, fold, seed): with fewer blocks the exact test
    cannot reach p < 0.05. The rule depends on the design only, never on the outcome.
    """
    rows = table[table["method"] == method]
    blocks = rows[rows["model"] == POOLED_BLOCKS].iloc[0]
    return blocks if blocks["n_pairs"] >= MIN_BLOCKS else rows[rows["model"] == POOLED_RUNS].iloc[0]


def _unit_name(row: pd.Series) -> str:
    return "(dataset, model) blocks" if row["model"] == POOLED_BLOCKS else "paired runs (dataset, model, fold, seed)"


@dataclass
class FriedmanResult:
    """Outcome of :func:`friedman_nemenyi` for one metric.

    Attributes
    ----------
    metric : str
    methods : list of str
        Treatments, in column order.
    blocks : pandas.DataFrame
        The complete (dataset, model) blocks used: block means, one column per method.
    statistic, p_value : float
        Friedman chi-square and its p-value (NaN when the test cannot run; see ``note``).
    ranks : pandas.Series
        Average rank per method over the blocks, 1 = best (ties get average ranks).
    nemenyi : pandas.DataFrame or None
        Nemenyi post-hoc p-values (methods x methods).
    cd : float
        Nemenyi critical difference of average ranks at ``alpha``.
    note : str
    """

    metric: str
    methods: list[str]
    blocks: pd.DataFrame
    statistic: float = np.nan
    p_value: float = np.nan
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    nemenyi: pd.DataFrame | None = None
    cd: float = np.nan
    alpha: float = 0.05
    note: str = ""
    dropped_blocks: int = 0


def friedman_nemenyi(results: pd.DataFrame, metric: str, methods: Sequence[str] | None = None,
                     alpha: float = 0.05) -> FriedmanResult:
    """Friedman test over (dataset, model) blocks, average ranks and the Nemenyi post-hoc test.

    Blocks missing a method (e.g. a failed cell in every fold) are dropped, since the
    Friedman test needs complete blocks. Needs at least 3 methods and 2 blocks; otherwise
    the result carries NaNs and the reason in ``note`` (no exception).
    """
    means = block_means(results, metric, methods)
    order = list(means.columns)
    complete = means.dropna()
    res = FriedmanResult(metric=metric, methods=order, blocks=complete, alpha=alpha,
                         dropped_blocks=len(means) - len(complete))
    if len(complete):
        res.ranks = complete.rank(axis=1, ascending=not _higher(metric)).mean().reindex(order)
    k, n = len(order), len(complete)
    if k < 3:
        res.note = f"the Friedman test needs at least 3 methods; {k} present ({', '.join(order) or 'none'})"
        return res
    if n < 2:
        res.note = f"the Friedman test needs at least 2 complete (dataset, model) blocks; {n} available"
        return res
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-tied blocks divide by zero inside scipy
        fr = stats.friedmanchisquare(*[complete[m].to_numpy() for m in order])
    res.statistic, res.p_value = float(fr.statistic), float(fr.pvalue)
    if not np.isfinite(res.p_value):
        res.note = "all methods tie in every block; the Friedman statistic is undefined"
        return res
    import scikit_posthocs as sp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nem = sp.posthoc_nemenyi_friedman(complete.to_numpy())
    nem.index, nem.columns = order, order
    res.nemenyi = nem
    res.cd = float(_nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n)))
    return res


@functools.lru_cache(maxsize=None)
def _nemenyi_q(k: int, alpha: float) -> float:
    # critical difference of Demšar (2006): CD = q_alpha * sqrt(k (k + 1) / (6 N)), where q_alpha is
    # the studentized range quantile (infinite df) over sqrt(2); the quantile is slow, so cache it
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def friedman_markdown(results_by_metric: dict[str, FriedmanResult]) -> str:
    """Markdown: one summary row per metric, then the Nemenyi p-value matrix of each metric."""
    parts = ["Friedman test over complete (dataset, model) blocks; treatments = methods, value = mean "
             "over folds. Average ranks: 1 = best. Nemenyi post-hoc p-values below.\n"]
    rows = []
    for metric, fr in results_by_metric.items():
        row = {"metric": metric, "blocks": len(fr.blocks), "dropped blocks": fr.dropped_blocks,
               "chi2": fr.statistic, "p": fr.p_value, "CD": fr.cd}
        for m in fr.methods:
            row[f"rank {m}"] = fr.ranks.get(m, np.nan)
        row["note"] = fr.note
        rows.append(row)
    parts.append(to_markdown(pd.DataFrame(rows)))
    for metric, fr in results_by_metric.items():
        if fr.nemenyi is not None:
            parts.append(f"\nNemenyi p-values, `{metric}`:\n\n"
                         + to_markdown(fr.nemenyi.reset_index(names="method"), floatfmt=".3g"))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def placeholder_figure(title: str, message: str) -> Figure:
    """A small figure that states why the real one could not be drawn."""
    fig = _figure(6.0, 2.5)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10, transform=ax.transAxes)
    return fig


def _palette(methods: Sequence[str]) -> dict[str, tuple]:
    import seaborn as sns

    # colours follow the canonical order, so a method keeps its colour across figures
    names = list(_METHOD_ORDER) + sorted(set(methods) - set(_METHOD_ORDER))
    colours = sns.color_palette("colorblind", n_colors=max(len(names), 3))
    return {m: colours[i % len(colours)] for i, m in enumerate(names)}


def _warmup(frame: pd.DataFrame) -> float:
    w = frame["warmup_epochs"].dropna() if "warmup_epochs" in frame else pd.Series(dtype=float)
    return float(w.max()) if len(w) else np.nan


def _mean_std_by_epoch(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    g = frame.dropna(subset=[column]).groupby("epoch")[column]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=0)})


def _line_band(ax, stats_: pd.DataFrame, colour, label: str, linestyle: str = "-") -> None:
    ax.plot(stats_.index, stats_["mean"], color=colour, label=label, linestyle=linestyle, linewidth=1.5)
    ax.fill_between(stats_.index, stats_["mean"] - stats_["std"], stats_["mean"] + stats_["std"],
                    color=colour, alpha=0.15, linewidth=0)


def _log2_axis(ax, values: Iterable[float]) -> None:
    """Log2 x axis with a plainly labelled tick at each value used (8, 16, 32 rather than 2^3...)."""
    ticks = sorted({float(v) for v in values if np.isfinite(v)})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, labels=[f"{v:g}" for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def _mark_warmup(ax, warmup: float, label: bool) -> None:
    if np.isfinite(warmup) and warmup > 0:
        ax.axvline(warmup, color="0.4", linestyle=":", linewidth=1,
                   label=f"end of warm-up (epoch {warmup:g})" if label else None)


def plot_convergence(curves: pd.DataFrame, dataset: str, methods: Sequence[str] | None = None) -> Figure:
    """Validation macro-AUC (top) and training loss (bottom) per epoch, one column per model.

    One line per method: mean over folds (and seeds), shaded ± std (ddof=0); dotted line at
    the end of the shared warm-up.
    """
    data = curves[curves["dataset"] == dataset]
    if data.empty:
        return placeholder_figure(f"Convergence — {dataset}", "no curves for this data set")
    models = sorted(data["model"].unique())
    order = _method_order(data["method"], methods)
    colours = _palette(order)
    fig = _figure(max(4.0 * len(models), 6.0), 6.5)
    axes = fig.subplots(2, len(models), squeeze=False, sharex="col")
    for j, model in enumerate(models):
        sub = data[data["model"] == model]
        for method in order:
            runs = sub[sub["method"] == method]
            if runs.empty:
                continue
            if "val_macro_auc" in runs:
                _line_band(axes[0, j], _mean_std_by_epoch(runs, "val_macro_auc"), colours[method], method)
            _line_band(axes[1, j], _mean_std_by_epoch(runs, "train_loss"), colours[method], method)
        for i in range(2):
            _mark_warmup(axes[i, j], _warmup(sub), label=(i == 0 and j == 0))
            axes[i, j].grid(alpha=0.3)
        axes[0, j].set_title(model)
        axes[0, j].set_ylabel("validation macro-AUC")
        axes[1, j].set_ylabel("training loss")
        axes[1, j].set_xlabel("epoch")
        axes[1, j].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{dataset}: convergence (mean ± std over folds)")
    return fig


def plot_motivation(curves: pd.DataFrame, dataset: str, methods: Sequence[str] | None = None) -> Figure:
    """Training loss of samples with minority labels vs the rest, per method, over epochs.

    Left: mean latest per-sample loss of samples with (solid) and without (dashed) minority
    labels, averaged over models and folds. Right: their ratio per run, averaged the same way,
    which does not mix the loss scales of different models.
    """
    data = curves[curves["dataset"] == dataset]
    if data.empty or "loss_minority" not in data or data["loss_minority"].isna().all():
        return placeholder_figure(f"Hard minority samples — {dataset}", "no per-group losses recorded")
    data = data.assign(ratio=data["loss_minority"] / data["loss_rest"].where(data["loss_rest"] > 0))
    order = _method_order(data["method"], methods)
    colours = _palette(order)
    fig = _figure(11.0, 4.0)
    left, right = fig.subplots(1, 2)
    for method in order:
        runs = data[data["method"] == method]
        if runs.empty:
            continue
        _line_band(left, _mean_std_by_epoch(runs, "loss_minority"), colours[method], f"{method}: minority")
        _line_band(left, _mean_std_by_epoch(runs, "loss_rest"), colours[method], f"{method}: rest", "--")
        _line_band(right, _mean_std_by_epoch(runs, "ratio"), colours[method], method)
    for ax in (left, right):
        _mark_warmup(ax, _warmup(data), label=ax is left)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    right.axhline(1.0, color="0.5", linewidth=0.8)
    left.set_ylabel("mean per-sample training loss")
    left.set_title("samples with minority labels (solid) vs rest (dashed)")
    right.set_ylabel("loss ratio minority / rest")
    right.set_title("ratio (per run, then averaged)")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    fig.suptitle(f"{dataset}: hard minority samples (mean ± std over models and folds)")
    return fig


def plot_minority_share(results: pd.DataFrame, methods: Sequence[str] | None = None) -> Figure:
    """Bar chart of ``minority_share / minority_share_train`` per data set and method.

    ``minority_share`` is the per-cell mean over the epochs after warm-up; 1.0 means samples
    with minority labels are drawn as often as under uniform sampling. Error bars: std
    (ddof=0) over models and folds.
    """
    import seaborn as sns

    ok = _ok(results).dropna(subset=["minority_share", "minority_share_train"])
    ok = ok[ok["minority_share_train"] > 0]
    if ok.empty:
        return placeholder_figure("Minority selection", "no minority shares recorded")
    ok = ok.assign(ratio=ok["minority_share"] / ok["minority_share_train"])
    order = _method_order(ok["method"], methods)
    ok = ok[ok["method"].isin(order)]
    datasets = sorted(ok["dataset"].unique())
    fig = _figure(max(6.0, 1.2 * len(datasets) * max(len(order), 1) / 2 + 3), 4.0)
    ax = fig.add_subplot()
    sns.barplot(data=ok, x="dataset", y="ratio", hue="method", order=datasets, hue_order=order,
                palette=_palette(order), errorbar=("sd"), capsize=0.1, err_kws={"linewidth": 1}, ax=ax)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, label="uniform sampling")
    ax.set_ylabel("minority share drawn / share in training set")
    ax.set_xlabel("data set")
    ax.set_title("How often samples with minority labels are drawn after warm-up\n"
                 "(mean ± std over models and folds; 1 = as often as uniform sampling)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _sensitivity_split(sens: pd.DataFrame) -> tuple[float, float]:
    """(batch size of the s_e sweep, s_e of the batch sweep), read off the grid's shape."""
    ad = sens[sens["method"] == "adaptive"]
    if ad.empty:
        batch = _mode(sens["batch_size"]) if len(sens) else np.nan
        return batch, np.nan
    n_se = ad.groupby("batch_size")["selection_pressure"].nunique()
    batch = float(min(n_se[n_se == n_se.max()].index))
    n_b = ad.groupby("selection_pressure")["batch_size"].nunique()
    se = float(min(n_b[n_b == n_b.max()].index))
    return batch, se


def _errorline(ax, frame: pd.DataFrame, x: str, y: str, colour, label: str) -> None:
    g = frame.groupby(x)[y]
    m, s = g.mean(), g.std(ddof=0)
    ax.errorbar(m.index, m.to_numpy(), yerr=s.to_numpy(), color=colour, marker="o", capsize=3,
                linewidth=1.5, label=label)


def plot_sensitivity_se(sens: pd.DataFrame, metrics: Sequence[str] = ("macro_auc", "macro_f1")) -> Figure:
    """Test metrics vs selection pressure s_e (log2 axis) for adaptive, random as reference.

    One column per data set; mean ± std over models and folds. Random (which has no s_e) is
    the horizontal line with a ± std band, at the batch size of the s_e sweep.
    """
    ok = _ok(sens)
    ad = ok[ok["method"] == "adaptive"]
    if ad.empty:
        return placeholder_figure("Sensitivity to s_e", "no finished adaptive cells in the sensitivity results")
    batch, _ = _sensitivity_split(ok)
    ad = ad[ad["batch_size"] == batch]
    rnd = ok[(ok["method"] == "random") & (ok["batch_size"] == batch)]
    datasets = sorted(ad["dataset"].unique())
    colours = _palette(["random", "adaptive"])
    fig = _figure(max(4.2 * len(datasets), 6.0), 3.2 * len(metrics))
    axes = fig.subplots(len(metrics), len(datasets), squeeze=False)
    for j, ds in enumerate(datasets):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            _errorline(ax, ad[ad["dataset"] == ds], "selection_pressure", metric, colours["adaptive"], "adaptive")
            r = rnd[rnd["dataset"] == ds][metric].dropna()
            if len(r):
                ax.axhline(r.mean(), color=colours["random"], linestyle="--", label="random")
                ax.axhspan(r.mean() - r.std(ddof=0), r.mean() + r.std(ddof=0), color=colours["random"],
                           alpha=0.12, linewidth=0)
            _log2_axis(ax, ad["selection_pressure"])
            ax.set_xlabel("selection pressure s_e (log2 scale)")
            ax.set_ylabel(f"test {metric}")
            ax.set_title(ds)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Sensitivity to s_e at batch size {batch:g}\n(mean ± std over models and folds; "
                 "random has no s_e: dashed line ± std band)", fontsize=10)
    return fig


def plot_sensitivity_batch(sens: pd.DataFrame, metrics: Sequence[str] = ("macro_auc", "macro_f1")) -> Figure:
    """Test metrics vs batch size (log2 axis) for random and adaptive, one column per data set."""
    ok = _ok(sens)
    if ok.empty:
        return placeholder_figure("Sensitivity to the batch size", "no finished cells in the sensitivity results")
    _, se = _sensitivity_split(ok)
    ad = ok[(ok["method"] == "adaptive") & ((ok["selection_pressure"] == se) if np.isfinite(se) else True)]
    rnd = ok[ok["method"] == "random"]
    datasets = sorted(set(ad["dataset"]) | set(rnd["dataset"]))
    colours = _palette(["random", "adaptive"])
    fig = _figure(max(4.2 * len(datasets), 6.0), 3.2 * len(metrics))
    axes = fig.subplots(len(metrics), len(datasets), squeeze=False)
    for j, ds in enumerate(datasets):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            for name, frame in (("random", rnd), ("adaptive", ad)):
                sub = frame[frame["dataset"] == ds].dropna(subset=[metric])
                if len(sub):
                    _errorline(ax, sub, "batch_size", metric, colours[name], name)
            _log2_axis(ax, pd.concat([ad["batch_size"], rnd["batch_size"]]))
            ax.set_xlabel("batch size (log2 scale)")
            ax.set_ylabel(f"test {metric}")
            ax.set_title(ds)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    se_txt = f", adaptive at s_e = {se:g}" if np.isfinite(se) else ""
    fig.suptitle(f"Sensitivity to the batch size{se_txt}\n(mean ± std over models and folds)", fontsize=10)
    return fig


def plot_critical_difference(fr: FriedmanResult) -> Figure:
    """Critical-difference diagram (scikit-posthocs) of a :class:`FriedmanResult`.

    Methods joined by a bar are not significantly different by the Nemenyi test at
    ``fr.alpha``. When the test could not run, a placeholder states why.
    """
    title = f"Critical difference — {fr.metric}"
    if fr.nemenyi is None:
        return placeholder_figure(title, f"Not computed: {fr.note}.")
    import scikit_posthocs as sp

    # the diagram writes its labels outside the axes, which constrained layout ignores: use fixed
    # margins wide enough for the method names instead
    fig = Figure(figsize=(8.0, 2.6 + 0.4 * len(fr.methods)), dpi=_DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.22, right=0.78, top=0.70, bottom=0.04)
    ax = fig.add_subplot()
    sig = fr.nemenyi.fillna(1.0)  # an undefined pairwise p-value is "not shown different"
    # the CD goes in the title: drawn by scikit-posthocs it overlaps the rank tick labels
    sp.critical_difference_diagram(fr.ranks, sig, ax=ax, alpha=fr.alpha,
                                   color_palette=_palette(fr.methods),
                                   label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}")
    verdict = "rejects" if fr.p_value < fr.alpha else "does not reject"
    fig.suptitle(f"{fr.metric}: average rank over {len(fr.blocks)} (dataset, model) blocks, 1 = best\n"
                 f"Friedman χ² = {fr.statistic:.3g}, p = {fr.p_value:.3g}: {verdict} equal performance "
                 f"at α = {fr.alpha:g}\nbars join methods the Nemenyi test does not separate; "
                 f"Nemenyi critical difference CD = {fr.cd:.3g}", fontsize=9, y=0.98)
    return fig


def _save_figure(fig: Figure, path: Path) -> Path:
    # PNG metadata carries no timestamp; fixing "Software" keeps bytes independent of the version
    with atomic_path(path, fsync=False) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": "mlabs.report"})
    return path


# ---------------------------------------------------------------------------------------------
# Headline numbers, DVC plots, findings
# ---------------------------------------------------------------------------------------------

def _num(value) -> float | None:
    """JSON-safe number: NaN / inf become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def headline_metrics(results: pd.DataFrame, methods: Sequence[str] | None = None,
                     baseline: str = "random", friedman: FriedmanResult | None = None,
                     convergence: pd.DataFrame | None = None) -> dict:
    """Headline numbers for ``reports/metrics.json`` (DVC metrics).

    Returns
    -------
    dict
        ``cells``: ok / failed counts; ``test_mean``: per method, the mean of each reported
        metric over all its finished (dataset, model, fold, seed) runs;
        ``friedman_macro_auc``: p-value, number of blocks and average rank per method;
        ``vs_random_macro_auc``: win / tie / loss over (dataset, model) blocks. NaN → null.
        ``friedman`` may pass the already computed macro-AUC :class:`FriedmanResult`.
        ``convergence_mean`` (with ``convergence``): per method, the mean epochs to 95 % and
        curve area over its runs.
    """
    ok = _ok(results)
    order = _method_order(ok["method"], methods)
    out: dict = {"cells": {"ok": int((results["status"] == "ok").sum()),
                           "failed": int((results["status"] != "ok").sum())}}
    out["test_mean"] = {m: {metric: _num(ok.loc[ok["method"] == m, metric].mean())
                            for metric in REPORTED_METRICS} for m in order}
    fr = friedman if friedman is not None else friedman_nemenyi(results, "macro_auc", order)
    out["friedman_macro_auc"] = {"p_value": _num(fr.p_value), "n_blocks": len(fr.blocks),
                                 "avg_rank": {m: _num(fr.ranks.get(m)) for m in order}}
    vs = {}
    if baseline in order:
        for m in order:
            if m == baseline:
                continue
            means = block_means(results, "macro_auc", [m, baseline]).dropna()
            w, t, l = _wtl(means[m], means[baseline], "macro_auc") if len(means) else (0, 0, 0)
            vs[m] = {"win": w, "tie": t, "loss": l}
    out[f"vs_{baseline}_macro_auc"] = vs
    if convergence is not None and len(convergence):
        out["convergence_mean"] = {m: {c: _num(convergence.loc[convergence["method"] == m, c].mean())
                                       for c in CONVERGENCE_METRICS}
                                   for m in order if m in set(convergence["method"])}
    return out


#: the DVC plots of ``dvc.yaml``: file stem in ``plots/`` -> its curve (one column per method)
PLOT_CURVES = ("val_macro_auc", "train_bce")


def _train_bce(curves: pd.DataFrame) -> pd.Series:
    """Mean per-sample training BCE of each row: the mean of the loss table the selection uses.

    ``loss_minority`` and ``loss_rest`` are that table's means over the samples with and without a
    minority label, and ``minority_share_train`` is the share of the former, so their weighted
    mean is the table's mean. Unlike ``train_loss`` (each model's own objective, whose scale
    differs by 100x between models) it is the same quantity for every model.
    """
    if not {"loss_minority", "loss_rest", "minority_share_train"} <= set(curves):
        return pd.Series(np.nan, index=curves.index)
    share = curves["minority_share_train"].astype(float)
    lm, lr = curves["loss_minority"].astype(float), curves["loss_rest"].astype(float)
    mixed = share * lm + (1 - share) * lr
    return pd.Series(np.where(share >= 1, lm, np.where(share <= 0, lr, mixed)), index=curves.index)


def plot_data(curves: pd.DataFrame, methods: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The DVC plot files: per curve of :data:`PLOT_CURVES`, ``epoch`` and one column per method.

    Each value averages the method's runs (data sets x models x folds) that reach the epoch (data
    sets may train for different numbers of epochs). ``val_macro_auc`` is the validation
    macro-AUC; ``train_bce`` is the mean per-sample training BCE the selection uses (see
    :func:`_train_bce`), comparable across models. Every method of ``methods`` gets a column,
    empty when it has no finished run, so that ``dvc.yaml`` can name the profile's methods;
    without ``methods`` the columns are the methods present. Returns ``{name: frame}`` for
    ``plots/<name>.csv``.
    """
    order = list(dict.fromkeys(methods)) if methods is not None else _method_order(curves["method"])
    if curves.empty or not order:
        return {}
    frame = curves.assign(train_bce=_train_bce(curves))
    epochs = pd.Index(sorted(frame["epoch"].dropna().astype(int).unique()), name="epoch")
    out = {}
    for name in PLOT_CURVES:
        if name not in frame:
            continue
        wide = frame.groupby(["epoch", "method"])[name].mean().unstack("method")
        wide.index = wide.index.astype(int)
        out[name] = wide.reindex(index=epochs, columns=order).reset_index()
        out[name].columns.name = None
    return out


def _p(value: float) -> str:
    return "n/a" if not np.isfinite(value) else (f"{value:.2g}" if value < 0.001 else f"{value:.3f}")


def verdict(pooled: pd.Series, metric: str, alpha: float = 0.05) -> str:
    """``"better"``, ``"worse"`` or ``"no significant difference"`` from a pooled Wilcoxon row.

    Better (worse) needs all three: more wins than losses (losses than wins) over the blocks,
    where a difference within the tie margin is a tie; a mean difference beyond the tie margin
    in that direction; and a Wilcoxon p-value over block means below ``alpha``.
    """
    higher = _higher(metric)
    diff = pooled["mean_diff"]
    if not (np.isfinite(pooled["p_value"]) and pooled["p_value"] < alpha and np.isfinite(diff)):
        return "no significant difference"
    gain = diff if higher else -diff
    if pooled["wins"] > pooled["losses"] and gain > tie_margin(metric):
        return "better"
    if pooled["losses"] > pooled["wins"] and gain < -tie_margin(metric):
        return "worse"
    return "no significant difference"


def verdict_table(wilcoxon: dict[str, pd.DataFrame], alpha: float = 0.05) -> pd.DataFrame:
    """One row per (metric, method): blocks, W/T/L, mean difference, p and :func:`verdict`."""
    rows = []
    for metric, table in wilcoxon.items():
        for method in dict.fromkeys(table["method"]):
            r = pooled_row(table, method)
            rows.append({"metric": metric, "method": method, "baseline": r["baseline"], "unit": r["model"],
                         "n": r["n_pairs"], "wins": r["wins"], "ties": r["ties"], "losses": r["losses"],
                         "mean_diff": r["mean_diff"], "p_value": r["p_value"], "verdict": verdict(r, metric, alpha)})
    return pd.DataFrame(rows, columns=["metric", "method", "baseline", "unit", "n", "wins", "ties", "losses",
                                       "mean_diff", "p_value", "verdict"])


def verdicts_by_seed(results: pd.DataFrame, order: Sequence[str], baseline: str = "random",
                     alpha: float = 0.05) -> pd.DataFrame:
    """:func:`verdict_table` computed on each seed's runs alone, side by side.

    One row per (metric, method) with a column ``seed <s>`` per seed (the verdict and, in
    brackets, its W/T/L and p) and ``holds``: whether every seed gives the same verdict. Metrics
    are the reported test metrics and the convergence metrics of the validation curves
    (``results`` must then carry the curves' convergence rows: pass the concatenation, see
    :func:`write_report`). Empty when the results hold fewer than two seeds.
    """
    ok = _ok(results)
    seeds = sorted(ok["seed"].dropna().unique())
    if len(seeds) < 2:
        return pd.DataFrame(columns=["metric", "method", "holds"])
    metrics = [m for m in (*REPORTED_METRICS, *CONVERGENCE_METRICS) if m in ok and ok[m].notna().any()]
    per_seed = {}
    for seed in seeds:
        part = results[results["seed"] == seed]
        per_seed[seed] = verdict_table({m: wilcoxon_table(part, m, baseline, order) for m in metrics}, alpha)
    frame = None
    for seed, table in per_seed.items():
        col = table.assign(**{f"seed {int(seed)}": [
            f"{r.verdict} ({r.wins}/{r.ties}/{r.losses}, p = {_p(r.p_value)}, n = {r.n})" for r in table.itertuples()]})
        col = col[["metric", "method", f"seed {int(seed)}", "verdict"]].rename(columns={"verdict": f"_v{seed}"})
        frame = col if frame is None else frame.merge(col, on=["metric", "method"], how="outer")
    verdict_cols = [f"_v{seed}" for seed in seeds]
    frame["holds"] = frame[verdict_cols].nunique(axis=1, dropna=False).eq(1).map({True: "yes", False: "no"})
    return frame.drop(columns=verdict_cols)


def _metric_findings(results: pd.DataFrame, metric: str, order: list[str], baseline: str, alpha: float,
                     table: pd.DataFrame | None, fr: FriedmanResult | None) -> list[str]:
    """The findings section of one metric: each method against ``baseline``, then Friedman."""
    higher = _higher(metric)
    lines = [f"## {metric} ({'higher' if higher else 'lower'} is better; tie margin {tie_margin(metric):g})", ""]
    if table is None:
        table = wilcoxon_table(results, metric, baseline, order)
    if baseline not in order:
        lines.append(f"- No finished `{baseline}` cells, so no method can be compared with it.")
    for method in [m for m in order if m != baseline]:
        rows = table[table["method"] == method]
        pooled = pooled_row(table, method)
        per_model = rows[~rows["model"].isin([POOLED_BLOCKS, POOLED_RUNS])]
        w, t, l = int(pooled["wins"]), int(pooled["ties"]), int(pooled["losses"])
        n = w + t + l
        unit = _unit_name(pooled)
        if n == 0:
            lines.append(f"- **{method}** has no paired run in common with {baseline}.")
            continue
        diff = pooled["mean_diff"]
        text = (f"- **{method} vs {baseline}** ({n} {unit}; per model "
                f"{', '.join(f'{r.model} {r.n_pairs} runs' for r in per_model.itertuples())}): "
                f"{method} wins {w}, ties {t}, loses {l}; mean difference ({method} − {baseline}) {diff:+.4f}. "
                f"Wilcoxon over the {unit}: p = {_p(pooled['p_value'])}"
                + (f" ({pooled['note']})" if pooled["note"] else "") + ". Per model: "
                + ", ".join(f"{r.model} p = {_p(r.p_value)} ({r.wins}/{r.ties}/{r.losses} W/T/L)"
                            for r in per_model.itertuples()) + ".")
        outcome = verdict(pooled, metric, alpha)
        if outcome == "better":
            why = f"{method} is **better** than {baseline} on {metric} at α = {alpha:g}."
        elif outcome == "worse":
            why = f"{method} is **worse** than {baseline} on {metric} (significant at α = {alpha:g})."
        else:
            why = f"**no significant difference** between {method} and {baseline} on {metric} at α = {alpha:g}"
            why += (f" ({method} wins more than it loses, which alone is not evidence)." if w > l else
                    f" ({method} loses more than it wins, which alone is not evidence)." if l > w else ".")
        sig_models = [f"{r.model} ({'better' if ((r.mean_diff > 0) == higher) else 'worse'})"
                      for r in per_model.itertuples() if np.isfinite(r.p_value) and r.p_value < alpha]
        why += (f" Significant per-model differences at α = {alpha:g}: {', '.join(sig_models)}."
                if sig_models else f" No single model shows a significant difference at α = {alpha:g}.")
        lines.append(text + " Verdict: " + why)
    if fr is not None:
        if np.isfinite(fr.p_value):
            outcome = "rejects" if fr.p_value < alpha else "does not reject"
            ranks = ", ".join(f"{m} {r:.2f}" for m, r in fr.ranks.sort_values(kind="mergesort").items())
            lines.append(f"- Friedman test over {len(fr.blocks)} complete blocks and {len(fr.methods)} methods: "
                         f"χ² = {fr.statistic:.3g}, p = {_p(fr.p_value)}; it {outcome} equal performance at "
                         f"α = {alpha:g}. Average ranks (1 = best): {ranks}.")
        else:
            lines.append(f"- Friedman test not computed: {fr.note}.")
    lines.append("")
    return lines


def findings(results: pd.DataFrame, methods: Sequence[str] | None = None, baseline: str = "random",
             alpha: float = 0.05, metrics: Sequence[str] = REPORTED_METRICS, excluded: int = 0,
             wilcoxon: dict[str, pd.DataFrame] | None = None,
             friedman: dict[str, FriedmanResult] | None = None,
             convergence: pd.DataFrame | None = None,
             convergence_wilcoxon: dict[str, pd.DataFrame] | None = None,
             by_seed: pd.DataFrame | None = None) -> str:
    """Generated markdown saying, per reported metric, what the numbers show.

    For each method against ``baseline``: the number of paired blocks, win / tie / loss over
    (dataset, model) blocks (differences within the tie margin are ties), the mean difference,
    the per-model Wilcoxon p-values and the Wilcoxon test over block means, and a
    :func:`verdict` (better / no significant difference / worse); then the Friedman test and
    average ranks. With ``convergence`` (:func:`mlabs.convergence.convergence_results`) a second
    part does the same for epochs to 95 % of random's best validation macro-AUC and the area
    under the validation curve.

    ``wilcoxon`` / ``friedman`` / ``convergence_wilcoxon`` may pass tables already computed
    (keyed by metric, same ``methods``, ``baseline`` and ``alpha``); ``excluded`` is the number
    of cells :func:`select_main_setting` left out, for the record. ``by_seed``
    (:func:`verdicts_by_seed`) adds a last part: which verdicts hold for every seed.
    """
    ok = _ok(results)
    order = _method_order(ok["method"], methods)
    n_ok, n_failed = int((results["status"] == "ok").sum()), int((results["status"] != "ok").sum())
    lines = ["# Findings", "",
             f"Generated from {n_ok} finished and {n_failed} failed cells"
             + (f" ({excluded} cells of other batch-size / s_e settings excluded)" if excluded else "")
             + f"; methods: {', '.join(order) or 'none'}. Values are test metrics at the epoch of best "
             "validation macro-AUC. A (dataset, model) block counts as a win, tie or loss by comparing "
             "means over folds; a difference within the tie margin is a tie, and the Wilcoxon tests "
             "count it as zero. A method is better (worse) than the baseline only when it wins more "
             "(fewer) blocks than it loses, its mean difference exceeds the tie margin and the Wilcoxon "
             "test over block means is significant. Per-model p-values are two-sided Wilcoxon "
             "signed-rank tests over paired folds and are not corrected for multiple comparisons.", ""]
    if ok.empty:
        lines.append("No finished cells: nothing to report.")
        return "\n".join(lines) + "\n"
    for metric in metrics:
        fr = (friedman or {}).get(metric) or friedman_nemenyi(results, metric, order, alpha)
        lines += _metric_findings(results, metric, order, baseline, alpha, (wilcoxon or {}).get(metric), fr)
    if convergence is not None and len(convergence):
        conv_order = [m for m in order if m in set(convergence["method"])]
        never = convergence[~convergence["reached_95"].astype(bool)]
        lines += ["# Convergence speed", "",
                  f"Per (dataset, model, fold, seed) the target is 95 % of the random run's best validation "
                  f"macro-AUC. `epochs_to_95` is the first epoch whose validation macro-AUC reaches it (runs that "
                  f"never do count as epochs + 1: {len(never)} of {len(convergence)} runs"
                  + (f", by method {never.groupby('method').size().to_dict()}" if len(never) else "")
                  + "); `curve_area` is the mean validation macro-AUC over the selection epochs.", ""]
        for metric in CONVERGENCE_METRICS:
            lines += _metric_findings(convergence, metric, conv_order, baseline, alpha,
                                      (convergence_wilcoxon or {}).get(metric), None)
    if by_seed is not None and len(by_seed):
        seed_cols = [c for c in by_seed.columns if c.startswith("seed ")]
        held = by_seed[by_seed["holds"] == "yes"]
        lines += ["# Robustness across seeds", "",
                  f"Each verdict recomputed on the runs of one seed at a time ({', '.join(seed_cols)}; same folds, "
                  f"other model initialisation and batch draws): {len(held)} of {len(by_seed)} (metric, method) "
                  "verdicts are the same for every seed.", ""]
        for row in by_seed.to_dict("records"):
            status = "holds" if row["holds"] == "yes" else "**does not hold**"
            lines.append(f"- {row['method']} on {row['metric']}: {status}: "
                         + "; ".join(f"{c}: {row[c]}" for c in seed_cols if c in row) + ".")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Other tables
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Everything
# ---------------------------------------------------------------------------------------------

#: Report files whose names depend on the data (data sets, methods, metrics); those left over
#: from an earlier run are removed. Fixed-name files are simply overwritten.
_OWNED_PATTERNS = ("tables/main_*.md", "tables/main_*.csv", "figures/convergence_*.png",
                   "figures/motivation_*.png", "figures/cd_*.png", "plots/*.csv")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))


def write_report(results_root: str | Path, out_dir: str | Path, *, sensitivity_root: str | Path | None = None,
                 datasets_dir: str | Path | None = None, methods: Sequence[str] | None = None,
                 datasets: Sequence[str] | None = None, models: Sequence[str] | None = None,
                 folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
                 alpha: float = 0.05) -> dict[str, list[Path]]:
    """Write all tables, figures, DVC metrics / plots and findings of the study.

    Parameters
    ----------
    results_root : str or Path
        Root of the main grid (e.g. ``artifacts/runs``).
    out_dir : str or Path
        Report folder (e.g. ``reports``); ``tables/``, ``figures/``, ``plots/`` are created in it.
    sensitivity_root : str or Path, optional
        Root of the sensitivity grid; when given, ``figures/sensitivity_se.png`` and
        ``figures/sensitivity_batch.png`` are written (placeholders if it holds no results).
    datasets_dir : str or Path, optional
        Folder of per-data-set statistics JSON files, for ``tables/datasets.md`` / ``.csv``.
    methods : sequence of str, optional
        Methods to report, in column order (default: all present).
    datasets, models : sequence of str, optional
        Data sets and models to report (default: all present). The results root keeps the cells
        of every profile run before (outputs persist), so a profile that drops a data set passes
        its own lists; the data-set statistics table is restricted to ``datasets`` as well.
    folds, seeds : sequence of int, optional
        Folds and seeds to report (default: all present), for the same reason: the default
        profile's report must not take in the second seed of the seeds profile.
    alpha : float
        Significance level of the tests and the critical-difference diagram.

    Returns
    -------
    dict of str to list of Path
        Written files by kind: ``tables``, ``figures``, ``plots``, ``metrics``, ``findings``.
        Data-dependent files left over from earlier runs (e.g. the figure of a data set no
        longer in the results, or the curves of a dropped method) are removed, so the notebook
        that globs ``figures/convergence_*.png`` shows only current ones.
    """
    out = Path(out_dir)
    for sub in ("tables", "figures", "plots"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {k: [] for k in ("tables", "figures", "plots", "metrics", "findings")}

    def text(kind: str, rel: str, content: str) -> None:
        written[kind].append(write_text_atomic(content, out / rel))

    def figure(rel: str, fig: Figure) -> None:
        written["figures"].append(_save_figure(fig, out / rel))

    raw = collect_results(results_root)
    for column, keep in (("method", methods), ("dataset", datasets), ("model", models), ("fold", folds),
                         ("seed", seeds)):
        if keep is not None:
            raw = raw[raw[column].isin(list(keep))].reset_index(drop=True)
    results, excluded = select_main_setting(raw)
    order = _method_order(_ok(results)["method"], methods)
    curves = collect_curves(results_root)
    if len(curves):  # only the curves of the kept cells
        keys = _ok(results)[CELL_COLUMNS].drop_duplicates()
        curves = curves.merge(keys, on=CELL_COLUMNS, how="inner")

    # main tables
    for metric in REPORTED_METRICS:
        text("tables", f"tables/main_{metric}.md", main_table_markdown(results, metric, order))
        mean, std, n = summary(results, metric, order)
        wide = pd.concat({"mean": mean, "std": std, "n": n}, axis=1)
        wide.columns = [f"{m}_{stat}" for stat, m in wide.columns]
        wide = wide[[f"{m}_{s}" for m in order for s in ("mean", "std", "n")]].reset_index()
        text("tables", f"tables/main_{metric}.csv", wide.to_csv(index=False, float_format="%.6g"))

    # Wilcoxon
    wilcoxon = {metric: wilcoxon_table(results, metric, "random", order) for metric in REPORTED_METRICS}
    wil = pd.concat([t.assign(metric=m) for m, t in wilcoxon.items()], ignore_index=True)
    wil = wil[["metric"] + [c for c in wil.columns if c != "metric"]]
    text("tables", "tables/wilcoxon.csv", wil.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/wilcoxon.md",
         "Two-sided Wilcoxon signed-rank test (scipy) of each method against random: per model over "
         "(dataset, fold) pairs matched on dataset, fold and seed; `all (block means)` over the "
         "(dataset, model) means; `all (paired runs)` over every paired run of all models. mean_diff = "
         "method − random. W/T/L: per model over data sets, for the pooled rows over their units "
         f"(differences within the tie margin are ties). Verdicts use the block means with at least "
         f"{MIN_BLOCKS} blocks, else the paired runs.\n\n"
         + to_markdown(wil, floatfmt=".4g"))

    # convergence speed on the validation curves, against random
    convergence = convergence_results(curves, "random")
    conv_wilcoxon = {metric: wilcoxon_table(convergence, metric, "random", order) for metric in CONVERGENCE_METRICS}
    conv_text = ("Convergence speed per (dataset, model), mean ± std over folds: `epochs_to_95` = first epoch "
                 "whose validation macro-AUC reaches 95 % of the random run's best in the same fold (never: "
                 "epochs + 1); `curve_area` = mean validation macro-AUC over the selection epochs. Best in bold. "
                 "Paired tests against random follow.\n\n")
    for metric in CONVERGENCE_METRICS:
        conv_text += f"### {metric}\n\n" + main_table_markdown(convergence, metric, order) + "\n"
    conv_wil = pd.concat([t.assign(metric=m) for m, t in conv_wilcoxon.items()], ignore_index=True)
    conv_text += "### Wilcoxon against random\n\n" + to_markdown(conv_wil[["metric"] + [c for c in conv_wil.columns if c != "metric"]], floatfmt=".4g")
    text("tables", "tables/convergence.md", conv_text)
    text("tables", "tables/convergence.csv", convergence.to_csv(index=False, float_format="%.6g"))
    verdicts = verdict_table({**wilcoxon, **conv_wilcoxon}, alpha)
    text("tables", "tables/verdicts.csv", verdicts.to_csv(index=False, float_format="%.6g"))
    text("tables", "tables/verdicts.md",
         "Verdict of each method against random per metric. `unit`: what the Wilcoxon test pairs, "
         f"(dataset, model) block means when there are at least {MIN_BLOCKS} blocks, else the paired "
         "runs (dataset, model, fold, seed); `n`: how many. A difference within the tie margin is a tie "
         f"and counts as zero in the test; better / worse need p < {alpha:g}, more wins than losses (or "
         "the reverse) and a mean difference beyond the margin.\n\n" + to_markdown(verdicts, floatfmt=".4g"))
    by_seed = verdicts_by_seed(pd.concat([results, convergence], ignore_index=True), order, "random", alpha)
    seed_text = ("The verdicts of `verdicts.md` computed on each seed's runs alone (model initialisation and "
                 "batch draws differ between seeds; folds are the same). `holds`: every seed gives the same "
                 "verdict.\n\n")
    text("tables", "tables/verdicts_by_seed.md",
         seed_text + (to_markdown(by_seed) if len(by_seed) else "Only one seed in the results.\n"))

    # Friedman / Nemenyi
    friedman = {metric: friedman_nemenyi(results, metric, order, alpha) for metric in REPORTED_METRICS}
    text("tables", "tables/friedman.md", friedman_markdown(friedman))
    for metric, fr in friedman.items():
        figure(f"figures/cd_{metric}.png", plot_critical_difference(fr))

    # data sets and failures
    if datasets_dir is not None:
        ds = dataset_table(datasets_dir)
        if datasets is not None and len(ds):
            ds = ds[ds["dataset"].isin(list(datasets))].reset_index(drop=True)
        text("tables", "tables/datasets.md", to_markdown(ds) if len(ds) else f"No statistics in {datasets_dir}.\n")
        text("tables", "tables/datasets.csv", ds.to_csv(index=False))
    text("tables", "tables/failed.md", failed_markdown(results, excluded))

    # figures
    for dataset in sorted(_ok(results)["dataset"].unique()):
        figure(f"figures/convergence_{_safe_name(dataset)}.png", plot_convergence(curves, dataset, order))
        figure(f"figures/motivation_{_safe_name(dataset)}.png", plot_motivation(curves, dataset, order))
    figure("figures/minority_share.png", plot_minority_share(results, order))
    if sensitivity_root is not None:
        sens = collect_results(sensitivity_root)
        figure("figures/sensitivity_se.png", plot_sensitivity_se(sens))
        figure("figures/sensitivity_batch.png", plot_sensitivity_batch(sens))

    # DVC metrics and plots, findings
    headline = headline_metrics(results, order, friedman=friedman["macro_auc"], convergence=convergence)
    written["metrics"].append(write_json_atomic(headline, out / "metrics.json"))
    for name, frame in plot_data(curves, methods if methods is not None else order).items():
        path = out / f"plots/{name}.csv"
        written["plots"].append(write_text_atomic(frame.to_csv(index=False, float_format="%.6g"), path))
    text("findings", "findings.md", findings(results, order, "random", alpha, excluded=len(excluded),
                                             wilcoxon=wilcoxon, friedman=friedman, convergence=convergence,
                                             convergence_wilcoxon=conv_wilcoxon, by_seed=by_seed))

    # remove files of our own patterns that this run did not write (e.g. a dropped data set)
    keep = {p.resolve() for paths in written.values() for p in paths}
    for pattern in _OWNED_PATTERNS:
        for path in out.glob(pattern):
            if path.resolve() not in keep:
                path.unlink()
    return written
