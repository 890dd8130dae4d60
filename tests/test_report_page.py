"""The rendered report page: self-contained, deterministic, with provenance, and opens in a browser."""

import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from mlabs.metrics import HIGHER_IS_BETTER
from mlabs.report import paired_differences, plot_forest, write_report
from mlabs.report.page import PAGE_NAME, main, render_html, render_page
from test_report import write_cell  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parents[1]
#: every committed report folder: the default profile's, each snapshot's and each partial snapshot's
COMMITTED = [ROOT / "reports"] + sorted(p.parent for pattern in ("*/metrics.json", "*/partial/metrics.json")
                                        for p in (ROOT / "reports").glob(pattern))

# A synthetic study written by the current write_report: 6 data sets x 2 models x 3 methods x 3
# folds. adaptive gains 0.01 + 0.004 i (data set i) over random, growing with the data set's
# imbalance and labels; chain differs from random by at most 0.002, within the tie margin.
DATASETS = ("ds0", "ds1", "ds2", "ds3", "ds4", "ds5")  # 6: enough for the Bayesian signed-rank test
MODELS = ("m1", "m2")
METHODS = ("random", "adaptive", "chain")
FOLDS = (0, 1, 2)


def _value(metric, dataset, model, method, fold):
    i = DATASETS.index(dataset)
    gain = {"random": 0.0, "adaptive": 0.01 + 0.004 * i + 0.002 * fold, "chain": -0.001 * fold}[method]
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return round((0.6 if sign > 0 else 0.3) + 0.01 * i + 0.01 * fold + 0.005 * (model == "m2") + sign * gain, 6)


def _lock(datasets) -> dict:
    stages = {f"prepare@{ds}": {"params": {"params.yaml": {"data.n_folds": len(FOLDS)}},
                                "deps": [{"path": "data", "md5": "1" * 32 + ".dir"}],
                                "outs": [{"path": f"artifacts/prepared/{ds}.npz", "md5": f"{i:032x}"}]}
              for i, ds in enumerate(datasets)}
    return {"schema": "2.0", "stages": stages}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project root (dvc.yaml, dvc.lock, params.yaml) with two reports of the current report code:
    ``reports`` over 6 data sets and ``reports/one`` over one of them."""
    root = tmp_path_factory.mktemp("project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    (root / "dvc.lock").write_text(yaml.safe_dump(_lock(DATASETS)))
    (root / "params.yaml").write_text("data:\n  n_folds: 3\n")
    runs, stats_dir = root / "artifacts" / "runs", root / "reports" / "datasets"
    for ds in DATASETS:
        for model in MODELS:
            for method in METHODS:
                for fold in FOLDS:
                    write_cell(runs, ds, model, method, fold, metric_value=_value)
    stats_dir.mkdir(parents=True)
    for i, ds in enumerate(DATASETS):
        (stats_dir / f"{ds}.json").write_text(json.dumps(
            {"name": ds, "MeanIR'": 1.5 + i * i, "q'": 5 + 3 * i, "cardinality'": 1.2 + 0.3 * i}))
    write_report(runs, root / "reports", datasets_dir=stats_dir, n_folds=len(FOLDS))
    write_report(runs, root / "reports" / "one", datasets_dir=stats_dir, datasets=["ds0"], n_folds=len(FOLDS))
    return root


@pytest.fixture(scope="module")
def default_copy(project):
    return project / "reports"


@pytest.fixture(scope="module")
def default_page(default_copy):
    return render_html(default_copy)


@pytest.fixture(scope="module")
def one_page(project):
    return render_html(project / "reports" / "one")


def _claims_text(page: str) -> str:
    """The claims section as plain text (up to the first figure)."""
    section = page[page.index("Claims and verdicts"):page.index("<figure>")]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", section)))


def test_page_is_self_contained(default_page):
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', default_page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in default_page.lower()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", default_page)  # nothing fetched from elsewhere
    assert "@import" not in default_page and "url(" not in default_page


def test_page_is_byte_identical_when_rendered_again(default_copy, tmp_path):
    a = render_page(default_copy, tmp_path / "a.html").read_bytes()
    b = render_page(default_copy, tmp_path / "b.html").read_bytes()
    assert a == b
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if head:
        assert head[:7] not in a.decode()


def test_claims_come_first_then_tables_then_folded_detail(default_page):
    positions = [default_page.index(s) for s in ("What this profile found", "Claims and verdicts", "claim 1 (tested)",
                                                  "claim 2 (tested)", "claim 3 (tested)", "claim 4 (tested)",
                                                  "Method − random", "vs imbalance", "Main tables",
                                                  "Per-test detail", "<details>", "Provenance")]
    assert positions == sorted(positions)
    detail = default_page[default_page.index("<details>"):]
    for rel in ("tables/wilcoxon.md", "tables/within_dataset.md", "tables/friedman.md", "tables/characteristics.md",
                "findings.md"):
        assert rel in detail


def test_every_figure_and_table_carries_its_provenance(default_page, default_copy):
    figures = re.findall(r"<figure>.*?</figure>", default_page, flags=re.S)
    tables = re.findall(r"<section>.*?</section>", default_page, flags=re.S)
    # a placeholder figure (it says why it could not be drawn) is one line of text, not an image
    placeholders = re.findall(r'<p class="missing">figures/[^:]+\.png: ', default_page)
    assert placeholders and len(figures) + len(placeholders) == len(list((default_copy / "figures").glob("*.png")))
    assert len(tables) >= 10
    for block in figures + tables:
        assert "drawn by <code>mlabs." in block, block[-400:]
        assert re.search(r"report code sha256:[0-9a-f]{12}", block)
        assert re.search(r"params sha256:[0-9a-f]{12}", block)  # from the lock's recorded parameters
        assert re.search(r"data sha256:[0-9a-f]{12}", block)  # the lock's data checksums
        assert "computed on: machines.json sha256:" in block  # write_report's record of the cells' machines
    assert "ds2: prepared folds artifacts/prepared/ds2.npz (dvc.lock md5)" in default_page


def test_unknown_figure_machines_and_cells_code_are_shown(default_copy, tmp_path):
    report = tmp_path / "reports"
    shutil.copytree(default_copy, report)
    shutil.copy(default_copy.parent / "dvc.yaml", tmp_path / "dvc.yaml")
    # a figure of newer report code (e.g. gain against imbalance) is shown among the headline figures
    shutil.copy(report / "figures" / "minority_share.png", report / "figures" / "gain_vs_imbalance.png")
    (report / "machines.json").write_text(json.dumps({"cpu": "test machine"}))
    cell = tmp_path / "runs" / "ds0" / "m1" / "adaptive-se2-b16" / "fold0-seed0"
    cell.mkdir(parents=True)
    (cell / "result.json").write_text(json.dumps({"status": "ok", "code_digest": "ab" * 32}))
    other = cell.parent / "fold0-seed7"  # a cell of another profile in the same tree: not this report's
    other.mkdir()
    (other / "result.json").write_text(json.dumps({"status": "ok", "code_digest": "cd" * 32}))
    page = render_html(report, results_root=tmp_path / "runs")
    hook = page.index("figures/gain_vs_imbalance.png")
    assert page.index("Further figures") < hook < page.index("Main tables")
    assert "drawn by <code>not recorded</code>" in page[hook:hook + 2000]
    assert "computed on: machines.json sha256:" in page and "test machine" in page
    assert f"cells' code sha256:{'ab' * 6}" in page and "cd" * 6 not in page


def test_claims_name_level_unit_n_tests_and_holm_family(default_page, one_page):
    many = _claims_text(default_page)
    for text in ("adaptive vs random, across data sets (unit: 6 data sets (mean of 3 folds and 2 models); n = 6)",
                 "Two-sided Wilcoxon signed-rank test", "Bayesian signed-rank test (rope = the tie margin",
                 "Holm family: Holm over 6 metrics + 2 convergence measures for adaptive vs random",
                 "chain vs random, across data sets",
                 "practically equivalent on macro_f1",  # chain is within the tie margin: a finding, not a gap
                 "Friedman test on macro-AUC, blocks = data sets", "n = 6 data sets): p = ",
                 "Spearman rank correlation", "adaptive macro_auc vs mean_ir: rho = +1.00"):
        assert text in many, (text, many)
    assert "paired runs" not in many
    one = _claims_text(one_page)
    for text in ("adaptive vs random, within data set (unit: 3 folds of ds0 (mean of 2 models); n = 3)",
                 "Nadeau-Bengio corrected resampled t-test", "Bayesian correlated t-test",
                 "Holm family: Holm over 6 metrics", "practically equivalent",
                 "Friedman test on macro-AUC over data sets: not computed (n = 1 data set;",
                 "claim 4 (tested)", "Not computed: n = 1 data set; a rank correlation needs at least 4."):
        assert text in one, text
    assert "Wilcoxon" not in one


def test_characteristics_figure_is_a_headline_figure_only_with_several_data_sets(default_page, one_page):
    for page, headline in ((default_page, True), (one_page, False)):
        hook = page.index("figures/characteristics.png") if "figures/characteristics.png" in page else \
            page.index("vs imbalance, labels")
        assert (hook < page.index("Main tables")) == headline


def test_missing_or_odd_inputs_give_short_text_not_an_exception(default_copy, tmp_path):
    report = tmp_path / "reports"
    shutil.copytree(default_copy, report, ignore=shutil.ignore_patterns("one"))
    for rel in ("tables/verdicts.csv", "tables/characteristics.csv", "tables/within_dataset.md",
                "figures/forest.png", "figures/characteristics.png", "tables/main_macro_auc.csv"):
        (report / rel).unlink()
    (report / "metrics.json").write_text('{"cells": "?", "friedman_macro_auc": {"p_value": null, "avg_rank": 3}}')
    page = render_html(report)
    claims = _claims_text(page)
    assert "Verdicts: not available (tables/verdicts.csv is missing or unreadable)." in claims
    assert "Not computed: no verdict for these metrics" in claims
    assert "Friedman test on macro-AUC over data sets: not computed (n not recorded;" in claims
    assert "Not available (tables/characteristics.csv is missing)." in claims
    assert "not available (figures/forest.png is missing)" in page
    assert "not available (tables/within_dataset.md is missing)" in page
    (report / "metrics.json").write_text("[1, 2")  # unreadable
    (report / "tables" / "verdicts.csv").write_text("metric,method\nmacro_auc,adaptive\n")  # no result columns
    claims = _claims_text(render_html(report))
    assert "adaptive vs random, level not recorded (unit: not recorded; n = not recorded)" in claims
    assert "Friedman test on macro-AUC: not available" in claims


@pytest.mark.parametrize("report_dir", COMMITTED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_committed_report_renders(report_dir):
    page = render_html(report_dir)  # whatever report code wrote it: missing parts are "not available"
    assert "claim 1 (tested)" in page and page.endswith("</body></html>\n")


def test_paired_differences_give_the_corrected_interval_of_the_fold_differences():
    rng = np.random.default_rng(0)
    rows = []
    for method, shift in (("random", 0.0), ("adaptive", 0.02)):
        for fold in range(5):
            rows.append({"dataset": "d", "model": "m", "method": method, "fold": fold, "seed": 0,
                         "status": "ok", "macro_auc": 0.8 + shift + 0.01 * fold + rng.normal(0, 0.01)})
    frame = pd.DataFrame(rows)
    out = paired_differences(frame, "macro_auc")
    d = (frame[frame.method == "adaptive"]["macro_auc"].to_numpy()
         - frame[frame.method == "random"]["macro_auc"].to_numpy())
    # Nadeau-Bengio: the variance of the mean is (1/n + n_test/n_train) s², not s² / n
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) * np.sqrt(1 / 5 + 0.125)
    row = out.iloc[0]
    assert (row["method"], row["n_pairs"]) == ("adaptive", 5)
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    # the interval excludes 0 exactly where the corrected t-test gives p < 0.05
    from mlabs.report import corrected_ttest

    assert (row["ci_low"] > 0) == (corrected_ttest(d, 0.125)[1] < 0.05)
    fig = plot_forest(out)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_command_refuses_a_folder_without_tables(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no tables/ folder" in capsys.readouterr().err


# --- in a real browser ------------------------------------------------------------------------

from chromium_page import find_chromium, visit  # noqa: E402  (tests/ is on sys.path under pytest)

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found (install Debian's chromium: .ci/run does; "
                                              "or set CHROMIUM to its path)")
@pytest.mark.parametrize("folder", ["reports", "reports/one"])
def test_page_opens_in_headless_chromium_with_the_network_off(project, folder, tmp_path):
    from PIL import Image

    # reports written by the current report code (6 data sets, and one); the committed reports
    # are rendered without a browser above
    page = render_page(project / folder, tmp_path / PAGE_NAME)
    seen = visit(page, CHROMIUM)
    assert seen.console_errors == []
    # the page itself, then only embedded images: no request left the machine
    assert seen.requests and seen.requests[0] == page.resolve().as_uri()
    assert all(url.startswith("data:") for url in seen.requests[1:]), seen.requests
    assert seen.images and all(i["scheme"] == "data" and i["complete"] and i["width"] > 0 for i in seen.images)
    shot = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and figures, not a blank page


def test_the_page_opens_with_what_the_profile_found(default_page):
    head = default_page[default_page.index("What this profile found"):default_page.index("Claims and verdicts")]
    assert "<b>adaptive</b> vs random (" in head and "unit: " in head
    assert "test metrics (6): " in head and "convergence measures (2): " in head and "Bayesian: " in head


def test_the_headline_names_the_significant_verdicts_with_their_wins_ties_and_losses():
    from mlabs.report.page import _headline

    rows = pd.DataFrame({"metric": ["macro_auc", "macro_f1", "epochs_to_95"], "method": "adaptive",
                         "level": "across data sets", "unit": "14 data sets (mean of 5 folds and 1 model)",
                         "verdict": ["no significant difference", "worse", "better"],
                         "bayes_verdict": ["practically equivalent", "undecided", "undecided"],
                         "wins": [5, 2, 3], "ties": [4, 1, 11], "losses": [5, 11, 0], "p_holm": [1.0, 0.02, 0.01]})
    text = re.sub(r"<[^>]+>", "", _headline(rows, ["adaptive"]))
    assert ("adaptive vs random (across data sets, unit: 14 data sets (mean of 5 folds and 1 model)):test metrics "
            "(2): worse on macro_f1 (Holm p = 0.02, wins/ties/losses 2/1/11); no significant difference on the "
            "other 1 of 2; Bayesian: practically equivalent on 1, undecided on 1.convergence measures (1): "
            "better on epochs_to_95 (Holm p = 0.01, wins/ties/losses 3/11/0); Bayesian: undecided on 1.") in text
    assert "no verdicts" in _headline(rows.iloc[:0], ["adaptive"])


def test_the_headline_says_when_too_few_data_sets_leave_no_verdict_possible():
    from mlabs.report.page import _headline

    rows = pd.DataFrame({"metric": ["macro_auc"], "method": "adaptive", "level": "across data sets",
                         "unit": "3 data sets (mean of 5 folds and 2 models)", "n": [3],
                         "verdict": ["no significant difference"], "bayes_verdict": ["not computed"]})
    assert "with n = 3 data sets the Wilcoxon test cannot reach p &lt; 0.05: its p is at least 0.25" in \
        _headline(rows, ["adaptive"])
    assert "cannot reach" not in _headline(rows.assign(n=[14]), ["adaptive"])


def test_the_headline_counts_a_metric_without_a_p_value_as_not_computed():
    # statistics.verdict writes "no significant difference" where no test could run; the headline and
    # the claim paragraphs share one wording (page._frequentist) and must not count it as a finding
    from mlabs.report.page import _headline, _method_claim

    rows = pd.DataFrame({"metric": ["macro_auc", "macro_f1"], "method": "adaptive", "level": "across data sets",
                         "unit": "14 data sets", "n": [14, 14], "verdict": "no significant difference",
                         "p_value": [0.4, float("nan")], "p_holm": [0.8, float("nan")],
                         "bayes_verdict": ["practically equivalent", "not computed"]})
    for text in (_headline(rows, ["adaptive"]), _method_claim(rows, "adaptive")):
        assert "no significant difference on 1 of 2" in text
        assert "not computed on 1 of 2 (too few pairs; the detail tables say which)" in text
