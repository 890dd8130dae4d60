"""Figures of the study: convergence, hard minority samples, minority share, sensitivity, critical difference.

Figures use matplotlib's object-oriented API (``Figure`` + Agg canvas), so nothing depends on, or
changes, the interactive backend of the caller. Each function returns the figure (a placeholder
that states the reason when there is nothing to draw); saving it is the caller's.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from .collect import finished_cells, most_frequent
from .conventions import higher_is_better, method_order, tie_margin
from .statistics import POOLED, FriedmanResult, format_p

__all__ = ["placeholder_figure", "plot_convergence", "plot_motivation", "plot_minority_share",
           "plot_sensitivity_se", "plot_sensitivity_batch", "plot_critical_difference", "plot_characteristics", "plot_forest",
           "plot_selection_strength", "plot_ablation"]

_DPI = 110


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
    # saved into the PNG's metadata (mlabs.report._save_figure): the page shows one line instead
    fig.mlabs_placeholder = f"{title}: {message}"
    return fig


#: one colour per method, kept across every figure and profile: the study's three methods in the
#: colour-blind palette's blue, orange and green, the baselines in hues far from those and from each
#: other (the colour-blind palette's next ones, vermilion and sand, sat too close to orange)
METHOD_COLOURS = {
    "random": "#0173b2", "adaptive": "#de8f05", "chain": "#029e73", "online_batch": "#882255",
    "active_bias": "#88ccee", "recency_bias": "#332288", "balanced": "#aa4499", "uncertainty": "#999933",
    "d2ace": "#949494", "reweight": "#cc6677", "infobatch": "#44aa99",
}


def _palette(methods: Sequence[str]) -> dict[str, tuple]:
    import matplotlib.colors as mcolors
    import seaborn as sns

    # a method the table does not know (a user's own sampler) gets a colour no known method has
    unknown = sorted(set(methods) - set(METHOD_COLOURS))
    spare = [c for c in sns.color_palette("tab20", 20) if mcolors.to_hex(c) not in METHOD_COLOURS.values()]
    palette = {m: mcolors.to_rgb(c) for m, c in METHOD_COLOURS.items()}
    palette.update({m: spare[i % len(spare)] for i, m in enumerate(unknown)})
    return palette


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
    order = method_order(data["method"], methods)
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
    order = method_order(data["method"], methods)
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

    ok = finished_cells(results).dropna(subset=["minority_share", "minority_share_train"])
    ok = ok[ok["minority_share_train"] > 0]
    if ok.empty:
        return placeholder_figure("Minority selection", "no minority shares recorded")
    ok = ok.assign(ratio=ok["minority_share"] / ok["minority_share_train"])
    order = method_order(ok["method"], methods)
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
        batch = most_frequent(sens["batch_size"]) if len(sens) else np.nan
        return batch, np.nan
    n_se = ad.groupby("batch_size")["selection_pressure"].nunique()
    batch = float(min(n_se[n_se == n_se.max()].index))
    n_b = ad.groupby("selection_pressure")["batch_size"].nunique()
    se = float(min(n_b[n_b == n_b.max()].index))
    return batch, se


def _sensitivity_axes(datasets: Sequence[str], metrics: Sequence[str], xlabel: str):
    """The figure of a sensitivity plot: one row per metric, one column per data set, each axis
    titled, labelled and gridded. Returns (figure, axes, [(axis, data set, metric), ...])."""
    fig = _figure(max(4.2 * len(datasets), 6.0), 3.2 * len(metrics))
    axes = fig.subplots(len(metrics), len(datasets), squeeze=False)
    cells = []
    for j, ds in enumerate(datasets):
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"test {metric}")
            ax.set_title(ds)
            ax.grid(alpha=0.3)
            cells.append((ax, ds, metric))
    return fig, axes, cells


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
    ok = finished_cells(sens)
    ad = ok[ok["method"] == "adaptive"]
    if ad.empty:
        return placeholder_figure("Sensitivity to s_e", "no finished adaptive cells in the sensitivity results")
    batch, _ = _sensitivity_split(ok)
    ad = ad[ad["batch_size"] == batch]
    rnd = ok[(ok["method"] == "random") & (ok["batch_size"] == batch)]
    colours = _palette(["random", "adaptive"])
    fig, axes, cells = _sensitivity_axes(sorted(ad["dataset"].unique()), metrics,
                                         "selection pressure s_e (log2 scale)")
    for ax, ds, metric in cells:
        _errorline(ax, ad[ad["dataset"] == ds], "selection_pressure", metric, colours["adaptive"], "adaptive")
        r = rnd[rnd["dataset"] == ds][metric].dropna()
        if len(r):
            ax.axhline(r.mean(), color=colours["random"], linestyle="--", label="random")
            ax.axhspan(r.mean() - r.std(ddof=0), r.mean() + r.std(ddof=0), color=colours["random"],
                       alpha=0.12, linewidth=0)
        _log2_axis(ax, ad["selection_pressure"])
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Sensitivity to s_e at batch size {batch:g}\n(mean ± std over models and folds; "
                 "random has no s_e: dashed line ± std band)", fontsize=10)
    return fig


def plot_sensitivity_batch(sens: pd.DataFrame, metrics: Sequence[str] = ("macro_auc", "macro_f1")) -> Figure:
    """Test metrics vs batch size (log2 axis) for random and adaptive, one column per data set."""
    ok = finished_cells(sens)
    if ok.empty:
        return placeholder_figure("Sensitivity to the batch size", "no finished cells in the sensitivity results")
    _, se = _sensitivity_split(ok)
    ad = ok[(ok["method"] == "adaptive") & ((ok["selection_pressure"] == se) if np.isfinite(se) else True)]
    rnd = ok[ok["method"] == "random"]
    colours = _palette(["random", "adaptive"])
    fig, axes, cells = _sensitivity_axes(sorted(set(ad["dataset"]) | set(rnd["dataset"])), metrics,
                                         "batch size (log2 scale)")
    for ax, ds, metric in cells:
        for name, frame in (("random", rnd), ("adaptive", ad)):
            sub = frame[frame["dataset"] == ds].dropna(subset=[metric])
            if len(sub):
                _errorline(ax, sub, "batch_size", metric, colours[name], name)
        _log2_axis(ax, pd.concat([ad["batch_size"], rnd["batch_size"]]))
    axes[0, 0].legend(fontsize=8)
    se_txt = f", adaptive at s_e = {se:g}" if np.isfinite(se) else ""
    fig.suptitle(f"Sensitivity to the batch size{se_txt}\n(mean ± std over models and folds)", fontsize=10)
    return fig


def plot_forest(differences: pd.DataFrame, metrics: Sequence[str] | None = None,
                methods: Sequence[str] | None = None, note: str | None = None) -> Figure:
    """Forest plot: method − baseline per (dataset, model) with its interval, one panel per metric.

    Parameters
    ----------
    differences : pandas.DataFrame
        Rows of :func:`mlabs.report.statistics.paired_differences` (columns ``metric, dataset,
        model, method, baseline, mean_diff, ci_low, ci_high``), several metrics stacked.
    metrics, methods : sequence of str, optional
        Panels and methods to draw, in this order (default: all present).
    note : str, optional
        A line under the panels (e.g. how the intervals were computed).

    Returns
    -------
    matplotlib.figure.Figure
        The grey band of each panel is the metric's tie margin; the title says which side is
        better. A placeholder when ``differences`` is empty.
    """
    if differences is None or not len(differences):
        return placeholder_figure("Differences against the baseline", "No paired runs to compare.")
    metrics = [m for m in (metrics or dict.fromkeys(differences["metric"])) if m in set(differences["metric"])]
    order = method_order(differences["method"], methods)
    blocks = sorted(set(zip(differences["dataset"], differences["model"])))
    palette = _palette(order)
    ncols = min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    rows_height = 0.18 * len(blocks) * max(1.0, 0.45 * len(order)) + 0.9
    fig = _figure(3.3 * ncols + 1.2, rows_height * nrows + (0.9 if note else 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    y_of = {b: len(blocks) - 1 - i for i, b in enumerate(blocks)}  # first block on top
    offsets = np.linspace(-0.3, 0.3, len(order)) if len(order) > 1 else np.zeros(1)
    baseline = str(differences["baseline"].iloc[0])
    for ax, metric in zip(axes, metrics):
        part = differences[differences["metric"] == metric]
        margin = tie_margin(metric)
        ax.axvspan(-margin, margin, color="0.9", linewidth=0)
        ax.axvline(0.0, color="0.35", linewidth=0.8)
        for offset, method in zip(offsets, order):
            rows = part[part["method"] == method]
            if not len(rows):
                continue
            y = np.array([y_of[(d, m)] for d, m in zip(rows["dataset"], rows["model"])]) + offset
            mean = rows["mean_diff"].to_numpy(float)
            low = mean - rows["ci_low"].to_numpy(float)
            high = rows["ci_high"].to_numpy(float) - mean
            ax.errorbar(mean, y, xerr=np.vstack([np.nan_to_num(low), np.nan_to_num(high)]), fmt="o",
                        markersize=3.5, color=palette[method], elinewidth=1, capsize=2, label=method)
        better = "higher" if higher_is_better(metric) else "lower"
        ax.set_title(f"{metric} ({better} is better)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.grid(axis="x", color="0.85", linewidth=0.5)
    for ax in axes[len(metrics):]:
        ax.axis("off")
    axes[0].set_yticks(range(len(blocks)), labels=[f"{d} / {m}" for d, m in reversed(blocks)])
    axes[0].set_ylim(-0.6, len(blocks) - 0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, [f"{m} − {baseline}" for m in labels], loc="outside upper center",
               ncols=min(len(order), 5), fontsize=8, frameon=False)
    if note:
        fig.supxlabel(note, fontsize=8)
    return fig


def plot_characteristics(diffs: pd.DataFrame, chars: pd.DataFrame, correlations: pd.DataFrame,
                         min_datasets: int = 4) -> Figure:
    """Per-data-set differences against random vs data-set characteristics (scatter grid).

    One row per (method, outcome) of ``diffs`` (:func:`~mlabs.report.characteristics.dataset_differences`),
    one column per characteristic of ``correlations``
    (:func:`~mlabs.report.characteristics.characteristic_correlations`); each point is a data set,
    labelled, and each panel states Spearman's rho with its Holm-adjusted p. With fewer than
    ``min_datasets`` data sets a placeholder says the analysis is not computed.
    """
    title = "Differences against random vs data-set characteristics"
    n = diffs["dataset"].nunique() if len(diffs) else 0
    if n < min_datasets or correlations.empty:
        return placeholder_figure(title, f"Not computed: n = {n} data set{'s' * (n != 1)} "
                                         f"(a rank correlation needs at least {min_datasets}).")
    from .characteristics import CHARACTERISTICS

    panels = correlations[["method", "outcome"]].drop_duplicates().to_records(index=False).tolist()
    columns = list(dict.fromkeys(correlations["characteristic"]))
    colours = _palette(sorted({m for m, _ in panels}))
    fig = _figure(3.2 * len(columns), 2.6 * len(panels))
    axes = fig.subplots(len(panels), len(columns), squeeze=False)
    for i, (method, outcome) in enumerate(panels):
        part = diffs[(diffs["method"] == method) & (diffs["outcome"] == outcome)].set_index("dataset")
        for j, char in enumerate(columns):
            ax = axes[i][j]
            row = correlations[(correlations["method"] == method) & (correlations["outcome"] == outcome)
                               & (correlations["characteristic"] == char)]
            if row.empty or char not in chars:
                ax.axis("off")
                continue
            joined = part[["diff"]].join(chars[char], how="inner").dropna()
            ax.axhline(0.0, color="0.6", linewidth=0.8)
            ax.scatter(joined[char], joined["diff"], color=colours[method], s=22)
            for ds, r in joined.iterrows():
                ax.annotate(str(ds), (r[char], r["diff"]), fontsize=6, xytext=(2, 2), textcoords="offset points")
            r0 = row.iloc[0]
            stat = (f"rho = {r0['rho']:.2f}, Holm p = {format_p(r0['p_holm'])}, n = {r0['n']}"
                    if np.isfinite(r0["rho"]) else r0["note"])
            ax.set_title(stat, fontsize=8)
            ax.set_xlabel(CHARACTERISTICS[char][1], fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{method} − random\n{outcome}", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(title + " (one point per data set, mean over folds and models)", fontsize=10)
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
    drawn = sp.critical_difference_diagram(fr.ranks, sig, ax=ax, alpha=fr.alpha,
                                           color_palette=_palette(fr.methods),
                                           label_fmt_left="{label} ({rank:.2f})",
                                           label_fmt_right="({rank:.2f}) {label}")
    # scikit-posthocs draws each crossbar through a set of method names, in string-hash order,
    # which changes between Python processes: redraw it left to right, so a rerun gives the same image
    for lines in drawn["crossbars"]:
        for line in lines:
            x, y = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
            order = np.lexsort((y, x))
            line.set_data(x[order], y[order])
    verdict = "rejects" if fr.p_value < fr.alpha else "does not reject"
    scope = "pooled over models" if fr.model == POOLED else f"model {fr.model}"
    fig.suptitle(f"{fr.metric}: average rank over {len(fr.blocks)} data sets ({scope}), 1 = best\n"
                 f"Friedman χ² = {fr.statistic:.3g}, p = {fr.p_value:.3g} ({'exact' if fr.exact else 'Iman–Davenport F'}): "
                 f"{verdict} equal performance "
                 f"at α = {fr.alpha:g}\nbars join methods the Nemenyi test does not separate; "
                 f"Nemenyi critical difference CD = {fr.cd:.3g}", fontsize=9, y=0.98)
    return fig


#: data sets up to which the selection-strength figure draws one column per data set
_STRENGTH_PANELS = 4


def plot_selection_strength(curves: pd.DataFrame, methods: Sequence[str] | None = None) -> Figure:
    """p_max / p_min (log scale) and KL(p || uniform) by epoch, one line per method (mean over cells).

    One column per data set when there are at most four, else one column with the mean over data
    sets (each data set's mean over its models, folds and seeds first). Non-finite ratios (some
    sample cannot be drawn) are left out of the means. A placeholder when the curves carry no
    selection-strength columns.
    """
    if curves is None or curves.empty or not {"p_ratio", "kl_uniform"} <= set(curves.columns):
        return placeholder_figure("Selection strength",
                                  "No selection-strength columns in the curves (p_max / p_min, KL from uniform).")
    frame = curves.copy()
    frame["p_ratio"] = frame["p_ratio"].where(np.isfinite(frame["p_ratio"].astype(float)))
    order = method_order(frame["method"].dropna(), methods)
    datasets = sorted(frame["dataset"].dropna().unique())
    per_dataset = len(datasets) <= _STRENGTH_PANELS
    panels = datasets if per_dataset else ["mean over data sets"]
    palette = _local_palette(order)
    # a log axis only where the ratios span orders of magnitude (exact ranks, large s_e)
    log_ratio = bool(frame["p_ratio"].max(skipna=True) > 20)
    fig = _figure(3.4 * len(panels) + 2.4, 5.2)
    axes = fig.subplots(2, len(panels), squeeze=False, sharex="col")
    for col, panel in enumerate(panels):
        part = frame[frame["dataset"] == panel] if per_dataset else frame
        for method in order:
            rows = part[part["method"] == method]
            if rows.empty:
                continue
            for row, column in enumerate(("p_ratio", "kl_uniform")):
                by = rows.groupby(["dataset", "epoch"])[column].mean().groupby("epoch").mean()
                axes[row, col].plot(by.index, by.to_numpy(float), color=palette[method], label=method, linewidth=1.4)
        _mark_warmup(axes[0, col], _warmup(part), False)
        _mark_warmup(axes[1, col], _warmup(part), False)
        if log_ratio:
            axes[0, col].set_yscale("log")
        axes[0, col].set_title(str(panel), fontsize=9)
        axes[1, col].set_xlabel("epoch")
    axes[0, 0].set_ylabel("p_max / p_min")
    axes[1, 0].set_ylabel("KL(p ‖ uniform), nats")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def _local_palette(methods: Sequence[str]) -> dict[str, tuple]:
    """Distinct colours for the methods of one figure (the ablation profile has more methods than
    the canonical palette has colours)."""
    import seaborn as sns

    colours = sns.color_palette("tab10" if len(methods) <= 10 else "tab20", n_colors=max(len(methods), 3))
    return {m: colours[i] for i, m in enumerate(methods)}


def plot_ablation(results: pd.DataFrame, table: pd.DataFrame,
                  metrics: Sequence[str] = ("macro_auc", "macro_f1")) -> Figure:
    """Each ingredient's difference from its baseline, per data set and on average.

    One panel per metric; one row per (method, baseline) of ``table``
    (:func:`mlabs.report.ablation.ingredient_table`): a small dot per data set (method − baseline,
    pooled over models as in the tests) and a diamond for their mean, labelled with the verdict.
    The grey band is the tie margin. A placeholder when ``table`` is empty.
    """
    from .statistics import dataset_means

    if table is None or table.empty:
        return placeholder_figure("Ingredients", "No ablation method in the results.")
    metrics = [m for m in metrics if m in set(table["metric"])] or [str(table["metric"].iloc[0])]
    pairs = list(dict.fromkeys(zip(table["method"], table["baseline"])))
    palette = {"random": "#0072B2", "reweight": "#D55E00"}
    fig = _figure(4.2 * len(metrics) + 2.6, 0.42 * len(pairs) + 1.3)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False, sharey=True)).ravel()
    for ax, metric in zip(axes, metrics):
        margin = tie_margin(metric)
        ax.axvspan(-margin, margin, color="0.9", linewidth=0)
        ax.axvline(0.0, color="0.35", linewidth=0.8)
        for i, (method, baseline) in enumerate(pairs):
            y = len(pairs) - 1 - i
            means = dataset_means(results, metric, method, baseline, POOLED)
            colour = palette.get(baseline, "0.3")
            if len(means):
                d = (means["x"] - means["y"]).to_numpy(float)
                ax.plot(d, np.full(len(d), y), "o", markersize=3, color=colour, alpha=0.5)
                ax.plot([d.mean()], [y], "D", markersize=6, color=colour)
            row = table[(table["method"] == method) & (table["baseline"] == baseline) & (table["metric"] == metric)]
            if len(row):
                ax.annotate(str(row["verdict"].iloc[0]).replace("no significant difference", "n.s."), (1.0, y),
                            xycoords=("axes fraction", "data"), xytext=(3, 0), textcoords="offset points",
                            fontsize=7, va="center", color=colour)
        better = "higher" if higher_is_better(metric) else "lower"
        ax.set_title(f"{metric}: method − baseline ({better} is better)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.grid(axis="x", color="0.85", linewidth=0.5)
    axes[0].set_yticks(range(len(pairs)), labels=[f"{m} − {b}" for m, b in reversed(pairs)])
    axes[0].set_ylim(-0.6, len(pairs) - 0.4)
    fig.supxlabel("dots: data sets (mean over folds and models); diamond: their mean; right: the verdict",
                  fontsize=8)
    return fig
