"""The rendered report page: self-contained, deterministic, with provenance, and opens in a browser."""

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlabs.report import paired_differences, plot_forest
from mlabs.report.page import PAGE_NAME, main, render_html, render_page

ROOT = Path(__file__).resolve().parents[1]
# every committed report folder: the default profile's and each snapshot's
REPORT_DIRS = [ROOT / "reports"] + sorted(p.parent for p in (ROOT / "reports").glob("*/metrics.json"))


@pytest.fixture(scope="module")
def default_copy(tmp_path_factory):
    """A copy of the default report folder, with a project root around it (dvc.yaml, dvc.lock)."""
    root = tmp_path_factory.mktemp("project")
    (root / "dvc.yaml").write_text("stages: {}\n")
    shutil.copy(ROOT / "dvc.lock", root / "dvc.lock")
    shutil.copytree(ROOT / "reports", root / "reports",
                    ignore=shutil.ignore_patterns("compare", "imbalanced", "seeds", "notebooks", PAGE_NAME))
    return root / "reports"


@pytest.fixture(scope="module")
def default_page(default_copy):
    return render_html(default_copy)


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
    positions = [default_page.index(s) for s in ("Claims and verdicts", "Claim 1", "Claim 2", "Method − random",
                                                  "Main tables", "Per-test detail", "<details>", "Provenance")]
    assert positions == sorted(positions)
    detail = default_page[default_page.index("<details>"):]
    assert "tables/wilcoxon.md" in detail and "findings.md" in detail


def test_every_figure_and_table_carries_its_provenance(default_page, default_copy):
    figures = re.findall(r"<figure>.*?</figure>", default_page, flags=re.S)
    tables = re.findall(r"<section>.*?</section>", default_page, flags=re.S)
    assert len(figures) == 1 + len(list((default_copy / "figures").glob("*.png")))  # + the forest plot
    assert len(tables) >= 10
    for block in figures + tables:
        assert "drawn by <code>mlabs." in block, block[-400:]
        assert re.search(r"report code sha256:[0-9a-f]{12}", block)
        assert re.search(r"params sha256:[0-9a-f]{12}", block)  # from the lock's recorded parameters
        assert re.search(r"data sha256:[0-9a-f]{12}", block)  # the lock's data checksums
        assert "computed on: not recorded" in block
    assert "emotions: prepared folds artifacts/prepared/emotions.npz (dvc.lock md5)" in default_page


def test_unknown_figure_machines_and_cells_code_are_shown(default_copy, tmp_path):
    report = tmp_path / "reports"
    shutil.copytree(default_copy, report)
    shutil.copy(default_copy.parent / "dvc.yaml", tmp_path / "dvc.yaml")
    # a figure of newer report code (e.g. gain against imbalance) is shown among the headline figures
    shutil.copy(report / "figures" / "minority_share.png", report / "figures" / "gain_vs_imbalance.png")
    (report / "machines.json").write_text(json.dumps({"cpu": "test machine"}))
    cell = tmp_path / "runs" / "emotions" / "dela" / "adaptive-se2-b128" / "fold0-seed0"
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


def test_paired_differences_match_a_direct_t_interval():
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
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    row = out.iloc[0]
    assert (row["method"], row["n_pairs"]) == ("adaptive", 5)
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
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
@pytest.mark.parametrize("report_dir", REPORT_DIRS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_opens_in_headless_chromium_with_the_network_off(report_dir, tmp_path):
    from PIL import Image

    page = render_page(report_dir, tmp_path / PAGE_NAME)  # the current code's page of this report
    seen = visit(page, CHROMIUM)
    assert seen.console_errors == []
    # the page itself, then only embedded images: no request left the machine
    assert seen.requests and seen.requests[0] == page.resolve().as_uri()
    assert all(url.startswith("data:") for url in seen.requests[1:]), seen.requests
    assert seen.images and all(i["scheme"] == "data" and i["complete"] and i["width"] > 0 for i in seen.images)
    shot = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text and figures, not a blank page
