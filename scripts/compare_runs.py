"""Did a rerun reproduce a committed run? Compare the cells and verdicts of two commits.

For each cell that both commits' lock file records (the ``result.json`` files of the outputs under
``artifacts/runs`` and ``artifacts/sensitivity/runs``), the test and validation metrics and the best
epoch are compared exactly (timings are ignored); the counts of identical and differing cells are
printed per method and seed, then the verdicts of the report's ``tables/verdicts.csv`` side by
side. The cells are read from the DVC cache (``.dvc/cache``) or the shipped remote
(``dvc-store/``), so both runs must have been pushed or pulled there.

Usage::

    python scripts/compare_runs.py 3cd3bc5 d1d3a72                    # the default profile
    python scripts/compare_runs.py f66423e HEAD --profile seeds       # reports/seeds/{dvc.lock,tables}
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CACHES = [ROOT / ".dvc" / "cache" / "files" / "md5", ROOT / "dvc-store" / "files" / "md5"]
#: what must be equal for two results of a cell to count as the same
COMPARED = ("test", "val", "best_epoch")
#: the DVC outputs that hold cells: artifacts/runs/<dataset>/<model> and the sensitivity runs
RUN_DIRS = ("artifacts/runs/", "artifacts/sensitivity/runs")


def git_show(rev: str, path: str) -> str:
    res = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"compare_runs: cannot read {path} at {rev}: {res.stderr.strip()}")
    return res.stdout


def cached(md5: str) -> bytes | None:
    for cache in CACHES:
        f = cache / md5[:2] / md5[2:]
        if f.is_file():
            return f.read_bytes()
    return None


def cell_results(rev: str, lock_path: str) -> tuple[dict[str, dict], set[str]]:
    """{cell path: result.json} of the run outputs that ``lock_path`` records at ``rev``, and the
    outputs whose listing is in neither cache."""
    lock = yaml.safe_load(git_show(rev, lock_path))
    results, missing = {}, set()
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if not out["md5"].endswith(".dir") or not out["path"].startswith(RUN_DIRS):
                continue
            listing = cached(out["md5"])
            if listing is None:
                missing.add(out["path"])
                continue
            for entry in json.loads(listing):
                data = cached(entry["md5"]) if entry["relpath"].endswith("result.json") else None
                if data is not None:
                    results[f"{out['path']}/{entry['relpath']}"] = json.loads(data)
    return results, missing


def compare_cells(old: dict[str, dict], new: dict[str, dict]) -> tuple[collections.Counter, collections.Counter]:
    """Per group (method and seed, or "sensitivity"), how many cells of both runs are identical and
    how many differ."""
    same, differ = collections.Counter(), collections.Counter()
    for path in old.keys() & new.keys():
        cell = old[path].get("cell", {})
        group = "sensitivity" if "/sensitivity/" in path else f"{cell.get('method')} (seed {cell.get('seed')})"
        equal = all(old[path].get(k) == new[path].get(k) for k in COMPARED)
        (same if equal else differ)[group] += 1
    return same, differ


def _verdict(row: dict) -> str:
    return f"{row['verdict']} ({row['wins']}/{row['ties']}/{row['losses']}, p = {float(row['p_value']):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="git revision of the first run")
    ap.add_argument("new", help="git revision of the second run")
    ap.add_argument("--profile", help="a committed snapshot under reports/ (e.g. seeds); default: "
                                      "the default profile (dvc.lock, reports/tables)")
    args = ap.parse_args(argv)
    lock, report = ((f"reports/{args.profile}/dvc.lock", f"reports/{args.profile}") if args.profile
                    else ("dvc.lock", "reports"))

    old, old_missing = cell_results(args.old, lock)
    new, new_missing = cell_results(args.new, lock)
    if old_missing | new_missing:
        # in neither cache: mostly lock entries of stages no longer in the pipeline
        print(f"skipped {len(old_missing | new_missing)} outputs of {lock} that are not cached: "
              f"{', '.join(sorted(old_missing | new_missing))}")
    same, differ = compare_cells(old, new)
    print(f"cells in both runs: {sum(same.values()) + sum(differ.values())} "
          f"(test and validation metrics and best epoch compared exactly)")
    for group in sorted(same.keys() | differ.keys()):
        print(f"  {group:24s} identical {same[group]:4d}   differ {differ[group]:4d}")

    rows = {rev: {(r["metric"], r["method"]): r
                  for r in csv.DictReader(io.StringIO(git_show(rev, f"{report}/tables/verdicts.csv")))}
            for rev in (args.old, args.new)}
    print("verdicts (wins/ties/losses, p):")
    held = 0
    for key, a in rows[args.old].items():
        b = rows[args.new].get(key)
        same_verdict = b is not None and a["verdict"] == b["verdict"]
        held += same_verdict
        print(f"  {'  ' if same_verdict else '!='} {key[0]:13s} {key[1]:13s} {_verdict(a)}  |  {_verdict(b) if b else '-'}")
    print(f"verdicts the same: {held} of {len(rows[args.old])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
