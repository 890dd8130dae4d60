"""Old code against new code in one run: a benchmark script of this repository, alternated.

Usage::

    python benchmarks/bench_revisions.py --old 980b45b -- --sizes 1e5 1e6 --no-knn --repeats 3
    python benchmarks/bench_revisions.py --old 980b45b --rounds 4 -- --others --sizes 1e4 1e5

The ``--old`` revision's ``src/`` and ``benchmarks/`` are exported to a temporary folder (``git
archive``); the new side is the working tree. The benchmark script (``--script``, default
``benchmarks/bench_selection.py``, given the arguments after ``--``) then runs ``--rounds`` times
for each side, old and new alternating, each in a fresh process, so both see the same machine
load over the run. Every number of every markdown table row the script prints is collected, and
for each the median over rounds is printed for both sides with the ratio new / old (below 1: the
new code is faster; for times, and for the script's own ratios to randperm, within about 0.1 of 1
is noise on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def export_revision(rev: str, dest: Path) -> None:
    """Write ``src/`` and ``benchmarks/`` of git revision ``rev`` under ``dest``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src", "benchmarks"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        sys.exit(f"bench_revisions: cannot export revision {rev!r}: {archive.stderr.decode().strip()}; "
                 "name a commit of this repository")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def table_rows(output: str) -> dict[str, list[tuple[str, float]]]:
    """The numbers of every markdown table row as (column name, value), keyed by table number and
    the row's first cell; a cell with two numbers (``10.2 (6.1x)``) gives both, the second marked."""
    rows: dict[str, list[tuple[str, float]]] = {}
    table, header = 0, None
    for line in output.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            table, header = table + 1, cells
            continue
        if _NUMBER.fullmatch(cells[0].replace(" ", "")) is None:
            continue  # the separator row, or a row without a numeric label
        values = []
        for name, cell in zip(header[1:], cells[1:]):
            for k, x in enumerate(_NUMBER.findall(cell)):
                values.append((name if k == 0 else f"{name} [{k + 1}]", float(x)))
        rows[f"table {table}, {cells[0]}"] = values
    return rows


def run(tree: Path, script: str, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    done = subprocess.run([sys.executable, str(tree / script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_revisions: {script} failed in {tree}:\n{done.stderr[-2000:]}")
    return done.stdout


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="git revision of the old code (e.g. a commit hash)")
    ap.add_argument("--script", default="benchmarks/bench_selection.py", help="benchmark script, repository path")
    ap.add_argument("--rounds", type=int, default=3, help="runs per side, alternating (default 3)")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script, after --")
    opts = ap.parse_args(argv)
    if opts.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {opts.rounds}")
    if not (ROOT / opts.script).is_file():
        ap.error(f"--script {opts.script} is not a file of this repository")
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp)
        export_revision(opts.old, old_tree)
        if not (old_tree / opts.script).is_file():
            sys.exit(f"bench_revisions: revision {opts.old} has no {opts.script}")
        results = {"old": [], "new": []}
        for r in range(opts.rounds):
            for side, tree in (("old", old_tree), ("new", ROOT)):
                print(f"round {r + 1}/{opts.rounds}: {side}", file=sys.stderr, flush=True)
                results[side].append(table_rows(run(tree, opts.script, args)))
    print(f"{opts.script} {' '.join(args)}: old = {opts.old}, new = working tree; median of {opts.rounds} "
          "alternating runs each; numbers in the order the script prints them")
    print("| row | column | old | new | new / old |")
    print("|---|---|---|---|---|")
    runs = results["old"] + results["new"]
    for key, first in results["old"][0].items():
        if not all(key in run_ and len(run_[key]) == len(first) for run_ in runs):
            continue
        for i, (name, _) in enumerate(first):
            old = statistics.median(run_[key][i][1] for run_ in results["old"])
            new = statistics.median(run_[key][i][1] for run_ in results["new"])
            ratio = f"{new / old:.2f}" if old else "n/a"
            print(f"| {key} | {name} | {old:g} | {new:g} | {ratio} |")

if __name__ == "__main__":
    main()
