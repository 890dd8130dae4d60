"""Did a rerun reproduce a committed run? Compare the cells and verdicts of two commits.

For each cell that both commits' ``dvc.lock`` record (the ``result.json`` files under
``artifacts/runs`` and ``artifacts/sensitivity/runs``), the test and validation metrics and the best
epoch are compared exactly (timings are ignored); the counts of identical and differing cells are
printed per method, then the verdicts of ``reports/tables/verdicts.csv`` side by side. The cells are
read from the DVC cache (``.dvc/cache``) or the shipped remote (``dvc-store/``), so both runs must
have been pushed or pulled there.

Usage::

    python scripts/compare_runs.py 3cd3bc5 d1d3a72
    python scripts/compare_runs.py 3cd3bc5 HEAD --lock reports/seeds/dvc.lock   # another profile's lock
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


def cell_results(rev: str, lock_path: str) -> tuple[dict[str, dict], list[str]]:
    """{cell path: result.json} of the run outputs recorded in ``lock_path`` at ``rev``, and the
    outputs whose listing is in no cache."""
    lock = yaml.safe_load(git_show(rev, lock_path))
    results, missing = {}, []
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if not out["md5"].endswith(".dir") or not out["path"].startswith(RUN_DIRS):
                continue
            listing = cached(out["md5"])
            if listing is None:
                missing.append(out["path"])
                continue
            for entry in json.loads(listing):
                if entry["relpath"].endswith("result.json"):
                    data = cached(entry["md5"])
                    if data is not None:
                        results[f"{out['path']}/{entry['relpath']}"] = json.loads(data)
    return results, missing


def method_of(cell_path: str) -> str:
    if "/sensitivity/" in cell_path:
        return "sensitivity"
    parts = cell_path.split("/")   # artifacts/runs/<dataset>/<model>/<method-...>/<fold-seed>/result.json
    return f"{parts[4].split('-')[0]} ({parts[5].split('-')[1]})"


def verdicts(rev: str, lock_path: str) -> dict[tuple[str, str], dict]:
    report = str(Path(lock_path).parent / "tables" / "verdicts.csv") if lock_path != "dvc.lock" \
        else "reports/tables/verdicts.csv"
    rows = csv.DictReader(io.StringIO(git_show(rev, report)))
    return {(r["metric"], r["method"]): r for r in rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="git revision of the first run")
    ap.add_argument("new", help="git revision of the second run")
    ap.add_argument("--lock", default="dvc.lock",
                    help="the lock file of the profile (default dvc.lock; e.g. reports/seeds/dvc.lock)")
    args = ap.parse_args(argv)

    old, old_missing = cell_results(args.old, args.lock)
    new, new_missing = cell_results(args.new, args.lock)
    # outputs in neither cache are usually lock entries of stages no longer in the pipeline
    both = sorted(set(old_missing) & set(new_missing))
    if both:
        print(f"{len(both)} outputs of {args.lock} are in neither run's cache (entries of stages "
              f"no longer in the pipeline?), skipped")
    for rev, missing in ((args.old, old_missing), (args.new, new_missing)):
        only = [m for m in missing if m not in both]
        if only:
            print(f"{rev}: not in .dvc/cache or dvc-store, skipped: {', '.join(only)}")
    same, differ = collections.Counter(), collections.Counter()
    for cell in sorted(old.keys() & new.keys()):
        equal = all(old[cell].get(k) == new[cell].get(k) for k in COMPARED)
        (same if equal else differ)[method_of(cell)] += 1
    print(f"cells in both runs: {sum(same.values()) + sum(differ.values())} "
          f"(test and validation metrics and best epoch compared exactly)")
    for method in sorted(same.keys() | differ.keys()):
        print(f"  {method:24s} identical {same[method]:4d}   differ {differ[method]:4d}")

    vo, vn = verdicts(args.old, args.lock), verdicts(args.new, args.lock)
    equal = 0
    print("verdicts (wins/ties/losses, p):")
    for key in vo:
        a, b = vo[key], vn.get(key)
        held = b is not None and a["verdict"] == b["verdict"]
        equal += held
        right = f"{b['verdict']} ({b['wins']}/{b['ties']}/{b['losses']}, p = {float(b['p_value']):.3f})" if b else "-"
        print(f"  {'  ' if held else '!='} {key[0]:13s} {key[1]:13s} "
              f"{a['verdict']} ({a['wins']}/{a['ties']}/{a['losses']}, p = {float(a['p_value']):.3f})  |  {right}")
    print(f"verdicts the same: {equal} of {len(vo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
