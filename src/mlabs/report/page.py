"""The rendered report: one self-contained HTML page per profile.

:func:`render_page` reads a report folder (``reports/`` for the default profile, ``reports/<profile>/``
for another profile) and writes ``report.html`` into it: the claims tested and their verdicts
with the headline figures first, then the main tables, then every figure left, and the full
per-test detail folded. The page opens with the network off: figures are embedded as PNG data
URIs, the style is inline, there are no scripts and no fonts to fetch.

Every figure and table carries its provenance: the function that drew it, a digest of the report
code, of the parameters and of the data, where the cells were computed and, when the results
record it, the digest of the cells' code. Nothing in the page depends on the time or the commit,
so rendering the same inputs twice gives the same bytes.

Render a committed report from its committed tables and figures, without running the pipeline::

    python -m mlabs.report.page reports/compare
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Sequence

import pandas as pd
import yaml

from ..convergence import CONVERGENCE_METRICS
from ..metrics import REPORTED_METRICS
from .characteristics import MIN_DATASETS_CORRELATION
from .conventions import BASELINE, PLACEHOLDER_PREFIX, TIE_MARGIN, method_order, tie_margin
from .statistics import BAYES_THRESHOLD, MIN_DATASETS, wilcoxon_min_p

__all__ = ["PAGE_NAME", "render_page", "report_code_digest", "main"]

#: The page's file name inside its report folder.
PAGE_NAME = "report.html"
_REPORT_CODE = Path(__file__).resolve().parent

#: Which function drew each figure (glob on the file name); a figure not listed here is shown
#: among the headline figures as "not recorded" (a figure added by newer report code).
FIGURE_CODE = (
    ("forest.png", "mlabs.report.figures.plot_forest"),
    ("convergence_*.png", "mlabs.report.figures.plot_convergence"),
    ("motivation_*.png", "mlabs.report.figures.plot_motivation"),
    ("minority_share.png", "mlabs.report.figures.plot_minority_share"),
    ("sensitivity_se.png", "mlabs.report.figures.plot_sensitivity_se"),
    ("sensitivity_batch.png", "mlabs.report.figures.plot_sensitivity_batch"),
    ("cd_*.png", "mlabs.report.figures.plot_critical_difference"),
    ("characteristics.png", "mlabs.report.figures.plot_characteristics"),
    ("selection_strength.png", "mlabs.report.figures.plot_selection_strength"),
    ("ablation.png", "mlabs.report.figures.plot_ablation"),
)
#: Which function wrote each table (glob on the file name).
TABLE_CODE = (
    ("main_*.md", "mlabs.report.tables.main_table_markdown"),
    ("datasets.md", "mlabs.report.tables.dataset_table"),
    ("failed.md", "mlabs.report.tables.failed_markdown"),
    ("wilcoxon.md", "mlabs.report.statistics.wilcoxon_table"),
    ("friedman.md", "mlabs.report.statistics.friedman_markdown"),
    ("verdicts.md", "mlabs.report.statistics.verdict_table"),
    ("verdicts_by_seed.md", "mlabs.report.statistics.verdicts_by_seed"),
    ("convergence.md", "mlabs.convergence.convergence_results, mlabs.report.tables.main_table_markdown"),
    ("within_dataset.md", "mlabs.report.within_dataset.within_dataset_table"),
    ("characteristics.md", "mlabs.report.characteristics.characteristic_correlations"),
    ("selection_strength.md", "mlabs.report.ablation.selection_strength_table"),
    ("ablation.md", "mlabs.report.ablation.ingredient_table"),
    ("timing.md", "mlabs.report.ablation.timing_table"),
    ("findings.md", "mlabs.report.findings_text.findings"),
)
_NOT_RECORDED = "not recorded"


def _code_of(name: str, table: Sequence[tuple[str, str]]) -> str | None:
    return next((code for pattern, code in table if fnmatch(name, pattern)), None)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def report_code_digest(folder: str | Path = _REPORT_CODE) -> str:
    """SHA-256 over the report code: every ``*.py`` of ``folder``, by name, name and content."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# provenance


@dataclass
class Provenance:
    """What every figure and table of one page was computed from (see the module docstring)."""

    report_code: str
    params: str
    params_source: str
    data: list[tuple[str, str]] = field(default_factory=list)  # (what, checksum)
    machines: str = _NOT_RECORDED
    machines_detail: str = ""
    cells_code: list[str] = field(default_factory=list)

    @property
    def data_digest(self) -> str:
        lines = "".join(f"{what}\t{digest}\n" for what, digest in self.data)
        return _sha256(lines.encode()) if self.data else ""

    def caption(self, code: str | None) -> str:
        parts = [f"drawn by <code>{html.escape(code or _NOT_RECORDED)}</code>",
                 f"report code sha256:{self.report_code[:12]}",
                 f"params sha256:{self.params[:12]}" if self.params else f"params {_NOT_RECORDED}",
                 f"data sha256:{self.data_digest[:12]}" if self.data else f"data {_NOT_RECORDED}",
                 f"computed on: {html.escape(self.machines)}"]
        if self.cells_code:
            parts.append("cells' code " + ", ".join(f"sha256:{d[:12]}" for d in self.cells_code))
        return " · ".join(parts)


def _project_root(report_dir: Path) -> Path | None:
    for folder in (report_dir, *report_dir.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return None


def _profile_files(report_dir: Path, name: str) -> list[Path]:
    """Where the file ``name`` (``dvc.lock``, ``params.yaml``) of the report's profile may be: a
    profile's in ``profiles/<profile>/`` (docs/pipeline.md), the default's at the project root
    (``reports/``), or, for an older snapshot, a copy in the report folder."""
    root = _project_root(report_dir)
    out = [report_dir / name]
    if root is not None:
        if report_dir.resolve() == (root / "reports").resolve():
            out.append(root / name)
        else:
            out.append(root / "profiles" / report_dir.name / name)
    return out


def _find_lock(report_dir: Path) -> Path | None:
    return next((c for c in _profile_files(report_dir, "dvc.lock") if c.is_file()), None)


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _lock_params(lock: dict) -> dict:
    """Every parameter value the lock's stages recorded (the values the cells ran with)."""
    merged: dict = {}
    for stage in (lock.get("stages") or {}).values():
        for values in (stage.get("params") or {}).values():
            merged.update(values or {})
    return merged


def _lock_data(lock: dict, datasets: Sequence[str]) -> list[tuple[str, str]]:
    """The md5 DVC recorded for each data set's prepared folds and for the raw data folder."""
    out = []
    stages = lock.get("stages") or {}
    for ds in datasets:
        stage = stages.get(f"prepare@{ds}") or {}
        for entry in stage.get("deps") or []:
            if entry.get("path") == "data":
                out.append((f"{ds}: raw data folder data/ (dvc.lock md5)", str(entry.get("md5"))))
        for entry in stage.get("outs") or []:
            if str(entry.get("path", "")).endswith(".npz"):
                out.append((f"{ds}: prepared folds {entry['path']} (dvc.lock md5)", str(entry.get("md5"))))
    return out


def _report_cells(report_dir: Path) -> set[tuple] | None:
    """The (dataset, model, method, batch size, fold, seed) of every cell the report covers."""
    path = report_dir / "tables" / "convergence.csv"
    if not path.is_file():
        return None
    cells = pd.read_csv(path)
    key = ["dataset", "model", "method", "batch_size", "fold", "seed"]
    if not set(key) <= set(cells.columns):
        return None
    return {(str(d), str(m), str(me), int(b), int(f), int(s))
            for d, m, me, b, f, s in cells[key].itertuples(index=False)}


def _results_code_digests(results_root: Path, cells: set[tuple] | None, datasets: Sequence[str],
                          models: Sequence[str]) -> list[str]:
    """The distinct ``code_digest`` values that the report's cells recorded in their result.json."""
    from ..results import parse_cell_dir

    digests = set()
    for path in sorted(results_root.rglob("result.json")):
        c = parse_cell_dir(path, results_root)
        if cells is not None:
            try:
                ident = (c["dataset"], c["model"], c["method"], int(c["batch_size"]), int(c["fold"]), int(c["seed"]))
            except (TypeError, ValueError):  # a folder of another layout
                continue
            if ident not in cells:
                continue
        elif c["dataset"] not in datasets or c["model"] not in models:
            continue
        try:
            digest = json.loads(path.read_text()).get("code_digest")
        except (OSError, ValueError):
            continue
        if digest:
            digests.add(str(digest))
    return sorted(digests)


def collect_provenance(report_dir: Path, *, datasets: Sequence[str], models: Sequence[str],
                       lock_path: Path | None = None, params_file: Path | None = None,
                       results_root: Path | None = None) -> Provenance:
    """The provenance of a report folder (paths as in :func:`render_page`)."""
    root = _project_root(report_dir)
    lock = yaml.safe_load(lock_path.read_text()) if lock_path is not None and lock_path.is_file() else None
    if lock:
        params = _lock_params(lock)
        params_source = f"the parameters recorded by its stages in {lock_path.name}"
    elif params_file is not None and params_file.is_file():
        raw = yaml.safe_load(params_file.read_text()) or {}
        params = {k: v for k, v in raw.items() if k != "grid"}  # grid: how cells run, not what they compute
        params_source = f"{params_file.name} (every section but grid)"
    else:
        params, params_source = {}, _NOT_RECORDED
    data = _lock_data(lock, datasets) if lock else []
    if root is not None and (root / "data" / "SHA256SUMS").is_file():
        manifest = (root / "data" / "SHA256SUMS").read_bytes()
        data.append(("raw data manifest data/SHA256SUMS (sha256)", _sha256(manifest)))
    prov = Provenance(report_code=report_code_digest(), params=_sha256(_canonical(params)) if params else "",
                      params_source=params_source, data=data)
    machines = report_dir / "machines.json"
    if machines.is_file():
        raw = machines.read_bytes()
        prov.machines = f"{machines.name} sha256:{_sha256(raw)[:12]}"
        prov.machines_detail = raw.decode(errors="replace")
    if results_root is not None and results_root.is_dir():
        prov.cells_code = _results_code_digests(results_root, _report_cells(report_dir), datasets, models)
    return prov


# ---------------------------------------------------------------------------------------------
# HTML


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#1d1d1d;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{margin-bottom:.3em}.notice{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em .8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;display:block;overflow-x:auto}
th,td{border:1px solid #d0d0d0;padding:.2em .5em;text-align:left;white-space:nowrap}
th{background:#f3f3f3}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.prov,figcaption{font-size:.75em;color:#555}.prov code,figcaption code{font-size:1em}
.claim{margin:.6em 0}.verdict-better{color:#1a7f37;font-weight:600}.verdict-worse{color:#b42318;font-weight:600}
.verdict-equal{color:#1f4e9c;font-weight:600}.missing{color:#666;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 1.5em}
details{margin:1em 0}summary{cursor:pointer;font-weight:600}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
"""


def _placeholder(path: Path) -> str | None:
    """What a placeholder figure says (why the figure could not be drawn), None for a real figure."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = str(image.info.get("Description", ""))
    except OSError:
        return None
    return text[len(PLACEHOLDER_PREFIX):] if text.startswith(PLACEHOLDER_PREFIX) else None


#: the caption of each figure a report writes (glob on the file name; {} = the name's variable part)
FIGURE_TITLES = (
    ("convergence_*.png", "Validation macro-AUC (top) and training loss (bottom) by epoch on {}, one column per "
                          "model: mean over folds (and seeds), shaded ± std; dotted line: end of the shared "
                          "warm-up"),
    ("motivation_*.png", "Training loss of samples with minority labels (solid) and without (dashed) on {}, mean "
                         "over models and folds (left), and their ratio per run, averaged the same way (right)"),
    ("cd_*.png", "Critical-difference diagram of {} over data sets: average rank (1 = best); methods joined by a "
                 "bar do not differ by the Nemenyi test at α = 0.05 (drawn only when the Friedman test rejects)"),
    ("minority_share.png", "How often samples with minority labels were drawn, relative to their share of the "
                           "training set (1 = as under shuffled batches), per data set and method: mean over the "
                           "selection epochs; error bars: std over models and folds"),
    ("selection_strength.png", "How far each method's selection distribution p was from uniform by epoch: "
                               "p_max / p_min (log scale) and KL(p ‖ uniform), mean over cells; dotted line: end "
                               "of the warm-up. For chain, p is the distribution of its chain seeds only"),
    ("sensitivity_se.png", "Test metrics against the selection pressure s_e (log2 axis) for adaptive, from the "
                           "sensitivity cells: mean ± std over models and folds; random (no s_e) as the "
                           "horizontal line with its ± std band"),
    ("sensitivity_batch.png", "Test metrics against the batch size (log2 axis) for random and adaptive, from the "
                              "sensitivity cells"),
)


def _figure_title(name: str) -> str:
    for pattern, title in FIGURE_TITLES:
        if fnmatch(name, pattern):
            head, star, tail = pattern.partition("*")
            return title.format(name[len(head): len(name) - len(tail)] if star else "")
    return f"figures/{name}"


class _Page:
    def __init__(self, report_dir: Path, prov: Provenance):
        self.dir = report_dir
        self.prov = prov
        self.parts: list[str] = []
        self.shown: set[str] = set()

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def figure_bytes(self, data: bytes, title: str, code: str | None) -> None:
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        self.add(f'<figure><img src="{uri}" alt="{html.escape(title)}">'
                 f"<figcaption><b>{html.escape(title)}</b><br>{self.prov.caption(code)}</figcaption></figure>")

    def missing(self, what: str, why: str = "not available") -> None:
        self.add(f'<p class="missing">{html.escape(what)}: {html.escape(why)}.</p>')

    def figure(self, name: str, title: str | None = None, *, required: bool = False) -> None:
        path = self.dir / "figures" / name
        if name in self.shown:
            return
        if not path.is_file():
            if required:
                self.missing(title or f"figures/{name}", f"not available (figures/{name} is missing)")
            return
        self.shown.add(name)
        why = _placeholder(path)
        if why is not None:
            self.missing(f"figures/{name}", why)
            return
        self.figure_bytes(path.read_bytes(), title or _figure_title(name), _code_of(name, FIGURE_CODE))

    def figures(self, pattern: str, grid: bool = False) -> None:
        paths = [p for p in sorted((self.dir / "figures").glob(pattern)) if p.name not in self.shown]
        if not paths:
            return
        if grid:
            self.add('<div class="grid">')
        for path in paths:
            self.figure(path.name)
        if grid:
            self.add("</div>")

    def table(self, rel: str, title: str | None = None, *, required: bool = False) -> None:
        path = self.dir / rel
        if rel in self.shown:
            return
        try:
            text = path.read_text() if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            text = None
        if text is None:
            if required:
                self.missing(title or rel, f"not available ({rel} is missing)")
            return
        self.shown.add(rel)
        self.add(f"<section><h3>{html.escape(title or rel)}</h3>{_markdown(text)}"
                 f'<p class="prov">{html.escape(rel)} · {self.prov.caption(_code_of(path.name, TABLE_CODE))}</p>'
                 "</section>")


def _num(value) -> float:
    """A finite float, or NaN for anything else (None, text, a missing field)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _fmt(value, spec: str = ".3g", missing: str = "n/a") -> str:
    value = _num(value)
    return missing if math.isnan(value) else format(value, spec)


def _text(value, missing: str = "") -> str:
    """A table cell as text: empty (NaN, None) becomes ``missing``."""
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _read_csv(path: Path) -> pd.DataFrame | None:
    """A table of the report, or None when it is missing or unreadable (the page says so)."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):  # pandas' EmptyDataError and ParserError are ValueErrors
        return None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


#: the tests behind each level of tables/verdicts.csv (statistics.verdict_table)
_TESTS = {
    "across data sets": ("two-sided Wilcoxon signed-rank test", "Bayesian signed-rank test"),
    "within data set": ("Nadeau-Bengio corrected resampled t-test", "Bayesian correlated t-test"),
}
_BAYES_WORD = {"better": "p_better", "practically equivalent": "p_equivalent", "worse": "p_worse"}


def _verdict_span(verdict: str) -> str:
    cls = {"better": "verdict-better", "worse": "verdict-worse", "practically equivalent": "verdict-equal"}.get(verdict)
    return f'<span class="{cls}">{html.escape(verdict)}</span>' if cls else html.escape(verdict)


def _listing(rows: pd.DataFrame, show) -> str:
    return ", ".join(f"{html.escape(_text(r.get('metric'), '?'))} ({show(r)})" for _, r in rows.iterrows())


def _wtl(row) -> str:
    """``wins/ties/losses w/t/l`` of a verdict row (ties: within the tie margin)."""
    return "wins/ties/losses " + "/".join(_fmt(row.get(k), ".0f", "?") for k in ("wins", "ties", "losses"))


def _method_claim(rows: pd.DataFrame, method: str) -> str:
    """One paragraph: ``method`` against the baseline on the claim's metrics, both tests, unit, n, family."""
    first = rows.iloc[0]
    level = _text(first.get("level"), "level not recorded")
    frequentist, bayesian = _TESTS.get(level, ("test not recorded", "Bayesian test not recorded"))
    # effect_measure: the column names the measure; snapshots before it was renamed call it effect_size
    effect_name = _text(first.get("effect_measure", first.get("effect_size")), "effect")
    # the metrics of a claim may differ in n (a convergence measure can miss runs): name each unit
    units = {}
    for _, r in rows.iterrows():
        key = (_text(r.get("unit"), "not recorded"), _fmt(r.get("n"), ".0f", "not recorded"))
        units.setdefault(key, []).append(_text(r.get("metric"), "?"))
    if len(units) == 1:
        (unit, n), = units
        where = f"unit: {html.escape(unit)}; n = {n}"
    else:
        where = "; ".join(f"{html.escape(', '.join(ms))}: unit {html.escape(u)}, n = {n}" for (u, n), ms in units.items())
    out = [f"<b>{html.escape(method)}</b> vs {BASELINE}, {html.escape(level)} ({where})."]

    said = _frequentist(rows, lambda r: (
        f"Δ = {_fmt(r.get('mean_diff'), '+.3g')}, {_wtl(r)}, "
        f"{html.escape(effect_name)} = {_fmt(r.get('effect'), '.2f')}, Holm p = {_fmt(r.get('p_holm'), '.2g')}"))
    out.append(f"{html.escape(frequentist[0].upper() + frequentist[1:])}: {'; '.join(said)}.")
    if "bayes_verdict" in rows:
        said = _bayesian(rows, named=True)
        out.append(f"{html.escape(bayesian)} (rope = the tie margin, ±{TIE_MARGIN:g} on a metric and "
                   f"±{tie_margin('epochs_to_95'):g} epoch on epochs_to_95; a verdict needs a posterior "
                   f"probability above {BAYES_THRESHOLD:g}): {'; '.join(said) or 'not available'}.")
    else:
        out.append(f"{html.escape(bayesian)}: not available.")
    families = list(rows.get("family", pd.Series(dtype=object)).dropna().astype(str))
    holm = [f for f in families if f.startswith("Holm")] or families  # else: "no test computed for ..."
    out.append(f"Holm family: {html.escape(holm[0])}." if holm else "Holm family: not recorded.")
    return f"<p>{' '.join(out)}</p>"


def _frequentist(rows: pd.DataFrame, detail, quiet_note: str = "") -> list[str]:
    """The frequentist verdicts of ``rows`` as phrases: better and worse by metric, each with
    ``detail(row)``; the rest counted, those without a p-value (too few pairs) apart; ``quiet_note``
    follows the count of no significant difference."""
    if "verdict" not in rows:
        return ["verdict not available"]
    verdicts = rows["verdict"].astype(str)
    said = [f"{_verdict_span(word)} on " + _listing(rows[verdicts == word], detail)
            for word in ("better", "worse") if (verdicts == word).any()]
    rest = rows[~verdicts.isin(["better", "worse"])]
    # statistics.verdict says "no significant difference" also where no test ran (no p-value): tell
    # them apart where the table has its p-values
    untested = int(rest["p_value"].map(_num).isna().sum()) if "p_value" in rest else 0
    if len(rest) > untested:
        said.append(f"no significant difference on {'the other ' if said else ''}{len(rest) - untested} "
                    f"of {len(rows)}{quiet_note}")
    if untested:
        said.append(f"not computed on {untested} of {len(rows)} (too few pairs; the detail tables say which)")
    return said


def _bayesian(rows: pd.DataFrame, named: bool) -> list[str]:
    """The Bayesian verdicts of ``rows`` as phrases: with ``named``, better / practically equivalent /
    worse by metric with their posterior probability, else only counted."""
    verdicts = rows["bayes_verdict"].astype(str)
    said = []
    for word in ("better", "practically equivalent", "worse"):
        hits = rows[verdicts == word]
        if len(hits):
            said.append(f"{_verdict_span(word)} on " + (
                _listing(hits, lambda r, k=_BAYES_WORD[word]: f"P = {_fmt(r.get(k), '.3f')}") if named else f"{len(hits)}"))
    for word in ("undecided", "not computed"):
        k = int((verdicts == word).sum())
        if k:
            said.append(f"{word} on {k}" + (" (too few data sets or folds)" if named and word == "not computed" else ""))
    return said


def _tally(rows: pd.DataFrame) -> str:
    """The verdicts of ``rows`` in one phrase: the significant ones by name, the rest counted, then
    the Bayesian verdicts counted."""
    n = min((_num(v) for v in rows.get("n", [])), default=math.nan)
    note = ""
    if _text(rows.iloc[0].get("level")) == "across data sets" and wilcoxon_min_p(n) >= 0.05:
        note = (f" (with n = {n:.0f} data sets the Wilcoxon test cannot reach p &lt; 0.05: its p is at "
                f"least {wilcoxon_min_p(n):.3g}, so no verdict was possible)")
    said = _frequentist(rows, lambda r: f"Holm p = {_fmt(r.get('p_holm'), '.2g')}, " + _wtl(r), note)
    if "bayes_verdict" in rows:
        said.append("Bayesian: " + ", ".join(_bayesian(rows, named=False)))
    return "; ".join(said)


def _headline(verdicts: pd.DataFrame, methods: Sequence[str]) -> str:
    """What the profile found, before the details: per method, its verdicts on the test metrics and on
    the convergence measures, with the unit and n."""
    items = []
    for method in methods:
        rows = verdicts[verdicts["method"] == method]
        if rows.empty:
            continue
        first = rows.iloc[0]
        parts = []
        for label, names in (("test metrics", REPORTED_METRICS), ("convergence measures", CONVERGENCE_METRICS)):
            part = rows[rows["metric"].isin(list(names))]
            if len(part):
                parts.append(f"{label} ({len(part)}): {_tally(part)}.")
        items.append(f"<li><b>{html.escape(method)}</b> vs {BASELINE} ({html.escape(_text(first.get('level'), 'level not recorded'))}"
                     f", unit: {html.escape(_text(first.get('unit'), 'not recorded'))}):<br>{'<br>'.join(parts)}</li>")
    if not items:
        return "<p>What this profile found: no verdicts (tables/verdicts.csv is missing or empty).</p>"
    return ('<div class="claim"><h2>What this profile found</h2><ul>' + "".join(items) + "</ul>"
            "<p>better / worse need a Holm-adjusted p below 0.05, more wins than losses (or the reverse) and a "
            "mean difference beyond the tie margin; practically equivalent: the Bayesian test puts more than "
            f"{BAYES_THRESHOLD:g} of its posterior within the tie margin. Each test in full: the claims "
            "below.</p></div>")


def _read_verdicts(tables: Path) -> pd.DataFrame | None:
    verdicts = _read_csv(tables / "verdicts.csv")
    if verdicts is None or not {"metric", "method"} <= set(verdicts.columns):
        return None
    return verdicts.astype({"metric": str, "method": str})


def _compared(verdicts: pd.DataFrame, order: Sequence[str]) -> list[str]:
    """The methods of ``verdicts`` compared with the baseline, in the report's order."""
    present = list(dict.fromkeys(verdicts["method"]))
    return [m for m in order if m != BASELINE and m in present] + [m for m in present if m not in order and m != BASELINE]


def _claims(page: _Page, tables: Path, metrics_json: dict, order: Sequence[str],
            verdicts: pd.DataFrame | None) -> None:
    if verdicts is None:
        page.add("<p>Verdicts: not available (tables/verdicts.csv is missing or unreadable).</p>")
        verdicts = pd.DataFrame(columns=["metric", "method"])
    methods = _compared(verdicts, order)
    claims = (
        ("The paper's claim 1 (tested): selecting batches adaptively improves the test metrics over shuffled batches.",
         list(REPORTED_METRICS),
         "Each test metric at the epoch of best validation macro-AUC, Δ = method − random in the metric's units. "
         "better / worse need a Holm-adjusted p below the level, more wins than losses (or the reverse) and a "
         "mean difference beyond the tie margin (tables/verdicts.md); the tests per data set over its folds are "
         "in tables/within_dataset.md (per-test detail)."),
        ("The paper's claim 2 (tested): it reaches a given validation macro-AUC in fewer epochs.",
         list(CONVERGENCE_METRICS),
         "epochs_to_95: first epoch reaching 95 % of random's best validation macro-AUC in the same fold "
         "(lower is better); curve_area: mean validation macro-AUC over the selection epochs. Same tests and "
         "Holm family as claim 1."),
    )
    for title, metrics, how in claims:
        rows = verdicts[verdicts["metric"].isin(metrics)]
        paragraphs = [_method_claim(rows[rows["method"] == m], m) for m in methods if (rows["method"] == m).any()]
        body = "".join(paragraphs) or "<p>Not computed: no verdict for these metrics in tables/verdicts.csv.</p>"
        page.add(f'<div class="claim"><h3>{title}</h3>{body}'
                 f'<p class="prov">{how} · {page.prov.caption("mlabs.report.statistics.verdict_table")}</p></div>')
    _friedman_claim(page, metrics_json, len(methods) + int((verdicts["method"] == BASELINE).any()))
    _characteristics_claim(page, tables)


def _friedman_claim(page: _Page, metrics_json: dict, n_methods: int) -> None:
    fr = metrics_json.get("friedman_macro_auc")
    fr = fr if isinstance(fr, dict) else {}
    n = _num(fr.get("n_datasets"))
    ranks = fr.get("avg_rank") if isinstance(fr.get("avg_rank"), dict) else {}
    ranks = sorted(((str(m), _num(r)) for m, r in ranks.items() if not math.isnan(_num(r))), key=lambda kv: kv[1])
    rank_text = (" Average ranks (1 = best): " + ", ".join(f"{html.escape(m)} {r:.2f}" for m, r in ranks) + "."
                 if ranks else "")
    n_text = "n not recorded" if math.isnan(n) else f"n = {n:.0f} data set{'s' * (n != 1)}"
    p = _num(fr.get("p_value"))
    if not fr:
        text = "Friedman test on macro-AUC: not available (metrics.json has no friedman_macro_auc)."
    elif math.isnan(p):
        lacking = ([f"at least 3 methods, and this report compares {n_methods}"] if n_methods < 3 else []) + (
            [f"at least {MIN_DATASETS} data sets"] if math.isnan(n) or n < MIN_DATASETS else [])
        text = (f"Friedman test on macro-AUC over data sets: not computed ({n_text}; it needs "
                f"{' and '.join(lacking) or 'what tables/friedman.md names'})."
                + (rank_text if not math.isnan(n) and n >= 2 else ""))
    else:
        post = (" The Nemenyi post-hoc test and the critical-difference diagrams are below." if p < 0.05 else
                " It does not reject equal performance at α = 0.05, so no post-hoc test follows (Demšar 2006).")
        text = (f"Friedman test on macro-AUC, blocks = data sets (value = mean over folds and "
                f"models; {n_text}): p = {p:.3g}.{rank_text}{post}")
    page.add('<div class="claim"><h3>The paper\'s claim 3 (tested): the methods rank differently over data sets.</h3>'
             f"<p>{text}</p>"
             f'<p class="prov">metrics.json · {page.prov.caption("mlabs.report.statistics.friedman_nemenyi")}</p></div>')


#: the most correlations the claim's paragraph names; the rest are in tables/characteristics.md
_MAX_LISTED = 4


def _characteristics_claim(page: _Page, tables: Path) -> None:
    corr = _read_csv(tables / "characteristics.csv")
    title = "The paper's claim 4 (tested): the gain over random grows with imbalance, the number of labels or label correlation."
    if corr is None or not {"method", "outcome", "characteristic", "rho"} <= set(corr.columns):
        text = "Not available (tables/characteristics.csv is missing)."
    else:
        computed = corr[corr["rho"].map(lambda v: not math.isnan(_num(v)))]
        if not len(computed):
            n = int(max((_num(v) for v in corr.get("n", [])), default=0) or 0) if "n" in corr else 0
            text = (f"Not computed: n = {n} data set{'s' * (n != 1)}; a rank correlation needs at least "
                    f"{MIN_DATASETS_CORRELATION}.")
        else:
            hits = computed[computed.get("p_holm", pd.Series(math.nan, index=computed.index)).map(_num) < 0.05]
            family = _text(computed["family"].iloc[0], "Holm family not recorded") if "family" in computed else \
                "Holm family not recorded"
            shown = hits.assign(_p=hits["p_holm"].map(_num)).sort_values("_p", kind="mergesort").head(_MAX_LISTED)
            found = ("; ".join(f"{html.escape(str(r['method']))} {html.escape(str(r['outcome']))} vs "
                               f"{html.escape(str(r['characteristic']))}: rho = {_fmt(r['rho'], '+.2f')}, "
                               f"Holm p = {_fmt(r.get('p_holm'), '.2g')}" for _, r in shown.iterrows())
                     + (f"; and {len(hits) - len(shown)} more (tables/characteristics.md)"
                        if len(hits) > len(shown) else "")
                     if len(hits) else "no correlation with Holm-adjusted p below 0.05")
            n = _fmt(computed["n"].max(), ".0f") if "n" in computed else "not recorded"
            text = (f"Spearman rank correlation of the per-data-set difference against random (mean over folds and "
                    f"models) with each characteristic, n = {n} data sets, {len(computed)} correlations computed "
                    f"({html.escape(family)}): {found}. The figure below shows every panel.")
    page.add(f'<div class="claim"><h3>{title}</h3><p>{text}</p><p class="prov">tables/characteristics.csv · '
             f'{page.prov.caption("mlabs.report.characteristics.characteristic_correlations")}</p></div>')


def _profile_order(report_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Methods, data sets and models of the report, read from its main table (empty when it is missing)."""
    main = _read_csv(report_dir / "tables" / "main_macro_auc.csv")
    if main is None:
        return [], [], []
    methods = [c[: -len("_mean")] for c in main.columns if c.endswith("_mean")]
    names = {col: list(dict.fromkeys(main[col].astype(str))) if col in main else [] for col in ("dataset", "model")}
    return method_order(methods, methods), names["dataset"], names["model"]


def render_html(report_dir: str | Path, *, lock: str | Path | None = None, params_file: str | Path | None = None,
                results_root: str | Path | None = None, profile: str | None = None,
                notice: str | None = None) -> str:
    """The page of ``report_dir`` as a string (see :func:`render_page`)."""
    report_dir = Path(report_dir)
    tables = report_dir / "tables"
    order, datasets, models = _profile_order(report_dir)
    lock_path = Path(lock) if lock is not None else _find_lock(report_dir)
    if params_file is None:
        params_file = next((c for c in _profile_files(report_dir, "params.yaml")[1:] if c.is_file()), None)
    prov = collect_provenance(report_dir, datasets=datasets, models=models, lock_path=lock_path,
                              params_file=Path(params_file) if params_file is not None else None,
                              results_root=Path(results_root) if results_root is not None else None)
    profile = profile or ("default" if report_dir.name == "reports" else report_dir.name)
    metrics_json = _read_json(report_dir / "metrics.json")
    page = _Page(report_dir, prov)

    cells = metrics_json.get("cells") if isinstance(metrics_json.get("cells"), dict) else {}
    cell_text = (f"Cells: {_fmt(cells.get('ok'), '.0f', 'not recorded')} finished, "
                 f"{_fmt(cells.get('failed'), '.0f', 'not recorded')} failed." if cells
                 else "Cells: not recorded (metrics.json is missing).")
    page.add(f"<h1>Multi-label adaptive batch selection: the {html.escape(profile)} profile</h1>")
    if notice:
        page.add(f'<p class="notice"><b>{html.escape(notice)}</b></p>')
    page.add(f"<p>Data sets: {html.escape(', '.join(datasets) or 'none')}. "
             f"Models: {html.escape(', '.join(models) or 'none')}. "
             f"Methods compared with {BASELINE} (shuffled batches): "
             f"{html.escape(', '.join(m for m in order if m != BASELINE) or 'none')}. {cell_text} "
             "The full text of the findings is in findings.md (at the end of this page).</p>")
    verdicts = _read_verdicts(tables)
    if verdicts is not None:
        page.add(_headline(verdicts, _compared(verdicts, order)))

    page.add("<h2>Claims and verdicts</h2>")
    _claims(page, tables, metrics_json, order, verdicts)
    page.figure("forest.png", "Method − random per data set and model, with 95 % intervals "
                              "(test metrics and the two convergence measures; grey: tie margin)", required=True)
    if len(datasets) >= 2:  # one data set: the figure is a placeholder, shown with the other figures
        page.figure("characteristics.png", "Difference against random per data set vs imbalance, labels, "
                                           "cardinality and label correlation", required=True)
    page.figures("convergence_*.png")
    # figures this page does not know (newer report code): headline figures until placed here
    unknown = [p for p in sorted((report_dir / "figures").glob("*.png")) if _code_of(p.name, FIGURE_CODE) is None]
    if unknown:
        page.add("<h3>Further figures</h3>")
        for path in unknown:
            page.figure(path.name)

    page.add("<h2>Main tables</h2>")
    page.table("tables/datasets.md", "Data sets (columns explained above the table)", required=True)
    page.table("tables/verdicts.md", "Verdicts against random", required=True)
    for metric in REPORTED_METRICS:
        page.table(f"tables/main_{metric}.md", f"Test {metric} (mean ± std over runs, best in bold)", required=True)
    for path in sorted(tables.glob("main_*.md")):
        page.table(f"tables/{path.name}")

    page.add("<h2>More figures</h2>")
    page.figures("cd_*.png", grid=True)
    page.figures("motivation_*.png")
    for name in ("characteristics.png", "minority_share.png", "sensitivity_se.png", "sensitivity_batch.png"):
        page.figure(name)
    page.figures("*.png")  # any figure not shown yet

    page.add("<h2>Per-test detail</h2><details><summary>Every test (across data sets, within each data set, "
             "Friedman, characteristics), the convergence tables, failed cells and the full findings "
             "(click to open)</summary>")
    for rel, title in (("tables/wilcoxon.md", "Across data sets: Wilcoxon and Bayesian signed-rank tests"),
                       ("tables/within_dataset.md", "Within each data set: corrected and Bayesian correlated t-tests"),
                       ("tables/friedman.md", "Friedman and Nemenyi tests over data sets"),
                       ("tables/characteristics.md", "Differences against data-set characteristics")):
        page.table(rel, f"{title} ({rel})", required=True)
    for rel in ("tables/convergence.md", "tables/verdicts_by_seed.md", "tables/failed.md"):
        page.table(rel)
    for path in sorted(tables.glob("*.md")):
        page.table(f"tables/{path.name}")
    page.table("findings.md", "findings.md", required=True)
    page.add("</details>")

    page.add("<h2>Provenance</h2><ul>"
             f"<li>Report code (every src/mlabs/report/*.py): sha256:{prov.report_code}</li>"
             f"<li>Parameters, from {html.escape(prov.params_source)}: "
             + (f"sha256:{prov.params}" if prov.params else _NOT_RECORDED) + "</li>"
             "<li>Data: " + (f"sha256:{prov.data_digest} over<ul>"
                             + "".join(f"<li>{html.escape(w)}: {html.escape(d)}</li>" for w, d in prov.data)
                             + "</ul>" if prov.data else _NOT_RECORDED) + "</li>"
             f"<li>Where the cells were computed: {html.escape(prov.machines)}</li>"
             + (f"<li>Cells' code (result.json code_digest): {', '.join(prov.cells_code)}</li>"
                if prov.cells_code else "")
             + "</ul>")
    if prov.machines_detail:
        page.add(f"<details><summary>machines.json</summary><pre>{html.escape(prov.machines_detail)}</pre></details>")
    readme = report_dir / "README.md"
    if readme.is_file():
        page.add("<details><summary>How this snapshot was run (README.md)</summary>"
                 f"{_markdown(readme.read_text())}</details>")

    title = f"mlabs report: {profile} profile"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            '<link rel="icon" href="data:,">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(page.parts) + "\n</body></html>\n")


def render_page(report_dir: str | Path, out: str | Path | None = None, *, lock: str | Path | None = None,
                params_file: str | Path | None = None, results_root: str | Path | None = None,
                profile: str | None = None, notice: str | None = None) -> Path:
    """Write the self-contained HTML page of a report folder.

    Parameters
    ----------
    report_dir : str or Path
        The report folder (``reports`` or ``reports/<profile>``), with ``tables/``, ``figures/``,
        ``metrics.json`` and ``findings.md`` as :func:`mlabs.report.write_report` writes them.
    out : str or Path, optional
        The page (default: ``<report_dir>/report.html``).
    lock : str or Path, optional
        The profile's ``dvc.lock``, source of the parameter digest and data checksums (default:
        ``<report_dir>/dvc.lock`` of an older snapshot, else the profile's: the root ``dvc.lock``
        for ``reports/``, ``profiles/<name>/dvc.lock`` for ``reports/<name>``).
    params_file : str or Path, optional
        Parameter file to digest when there is no lock (default: found as ``lock`` is, the root
        ``params.yaml`` or ``profiles/<name>/params.yaml``).
    results_root : str or Path, optional
        The cell results (``artifacts/runs``): their ``code_digest`` values, when they record one,
        are listed as the cells' code.
    profile : str, optional
        The profile's name in the title (default: the folder's name, ``default`` for ``reports``).
    notice : str, optional
        A sentence shown in bold under the title (a partial snapshot says what is missing).

    Returns
    -------
    Path
        The page written.
    """
    from .._io import write_text_atomic

    text = render_html(report_dir, lock=lock, params_file=params_file, results_root=results_root, profile=profile,
                       notice=notice)
    return write_text_atomic(text, Path(out) if out is not None else Path(report_dir) / PAGE_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlabs.report.page REPORT_DIR...``: render each folder's page from its committed files."""
    parser = argparse.ArgumentParser(prog="python -m mlabs.report.page", description=main.__doc__)
    parser.add_argument("report_dirs", nargs="+", help="report folders, e.g. reports reports/compare")
    parser.add_argument("--results", default=None, help="cell results root for the cells' code digest "
                                                        "(e.g. artifacts/runs; default: not read)")
    args = parser.parse_args(argv)
    for folder in args.report_dirs:
        if not (Path(folder) / "tables").is_dir():
            print(f"{folder}: no tables/ folder; is it a report folder (reports, reports/<profile>)?",
                  file=sys.stderr)
            return 2
        path = render_page(folder, results_root=args.results)
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
