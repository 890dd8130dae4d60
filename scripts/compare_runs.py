"""Did a rerun reproduce a committed run? Compare the cells and verdicts of two commits.

For each cell that both commits report (the manifests ``<report>/cells/*.json`` and the cells they
name in the cell store ``cells/``, read with git; for a commit from before the store, the
``result.json`` files of the DVC outputs under ``artifacts/runs`` and ``artifacts/sensitivity/runs``
that its lock file records, read from the DVC cache or the shipped remote ``dvc-store/``), the test
and validation metrics and the best epoch are compared exactly (stored results hold no timings);
the counts of identical and differing cells are printed per method and seed, with how many of them
were computed on the same kind of machine in both runs, then the machines themselves, then the
verdicts of the report's ``tables/verdicts.csv`` side by side. Cells are matched by their folder in
the result tree (``runs/<dataset>/<model>/...`` or ``sensitivity/...``).

Where a cell was computed comes from the report's committed ``machines.json`` (written from the
cells' uncached timing sidecars, see ``mlabs.report.machines``: CPU model, torch CPU capability,
threads, Python, torch and numpy versions, device); a revision without it has unknown machines.

Usage::

    python scripts/compare_runs.py HEAD~3 HEAD                        # the default profile (reports/)
    python scripts/compare_runs.py HEAD~3 HEAD --profile seeds        # reports/seeds/
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CACHES = [ROOT / ".dvc" / "cache" / "files" / "md5", ROOT / "dvc-store" / "files" / "md5"]
#: what must be equal for two results of a cell to count as the same
COMPARED = ("test", "val", "best_epoch")
#: the DVC outputs that held cells before the cell store: artifacts/runs/<dataset>/<model> and the
#: sensitivity runs
RUN_DIRS = ("artifacts/runs/", "artifacts/sensitivity/runs")
#: where a result tree's cells have lived (old outputs, the report's views), and the common name
_TREES = re.compile(r"^(?:artifacts/runs/|artifacts/views/[^/]+/runs/)|^(?:artifacts/sensitivity/runs/|"
                    r"artifacts/views/[^/]+/sensitivity/)")


def normalize(path: str) -> str:
    """A cell's folder (or a file in it) as ``runs/<rel>`` or ``sensitivity/<rel>``, whichever tree
    it was read from; a path of no known tree is returned as it is."""
    m = _TREES.match(path)
    if m is None:
        return path
    return ("sensitivity/" if "sensitivity" in m.group(0) else "runs/") + path[m.end():]


def git_show(rev: str, path: str, required: bool = True) -> str | None:
    """``path`` at ``rev``; a missing file ends the script, or gives None when not ``required``."""
    res = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True)
    if res.returncode != 0:
        if not required:
            return None
        sys.exit(f"compare_runs: cannot read {path} at {rev}: {res.stderr.strip()}")
    return res.stdout


def cached(md5: str) -> bytes | None:
    for cache in CACHES:
        f = cache / md5[:2] / md5[2:]
        if f.is_file():
            return f.read_bytes()
    return None


def git_ls(rev: str, folder: str) -> list[str]:
    """The files of ``folder`` at ``rev`` (none when it does not exist there)."""
    res = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, f"{folder}/"],
                         capture_output=True, text=True)
    return res.stdout.split() if res.returncode == 0 else []


def cell_results(rev: str, report: str, lock_path: str | None = None) -> tuple[dict[str, dict], set[str]]:
    """{normalized cell path (:func:`normalize`): result.json} of the cells ``report`` reports at
    ``rev``, and what could not be read (manifest entries whose cell is not in the store; for a
    revision from before the store, the outputs of ``lock_path`` whose listing is in neither cache)."""
    manifests = [p for p in git_ls(rev, f"{report}/cells") if p.endswith(".json")]
    if manifests or lock_path is None:
        results, missing = {}, set()
        for manifest in manifests:
            tree = "sensitivity" if Path(manifest).name == "sensitivity.json" else "runs"
            for entry in json.loads(git_show(rev, manifest))["cells"]:
                if "key" not in entry:
                    continue  # a failed cell: no metrics to compare
                key = entry["key"]
                text = git_show(rev, f"cells/{key[:2]}/{key}/result.json", required=False)
                if text is None:
                    missing.add(f"{tree}/{entry['path']}")
                else:
                    results[f"{tree}/{entry['path']}/result.json"] = json.loads(text)
        return results, missing
    return _locked_results(rev, lock_path)


def _locked_results(rev: str, lock_path: str) -> tuple[dict[str, dict], set[str]]:
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
                    results[normalize(f"{out['path']}/{entry['relpath']}")] = json.loads(data)
    return results, missing


def compare_cells(old: dict[str, dict], new: dict[str, dict]) -> tuple[collections.Counter, collections.Counter]:
    """Per group (method and seed, or "sensitivity"), how many cells of both runs are identical and
    how many differ."""
    same, differ = collections.Counter(), collections.Counter()
    for path in old.keys() & new.keys():
        group = _group(path, old[path].get("cell", {}))
        equal = all(old[path].get(k) == new[path].get(k) for k in COMPARED)
        (same if equal else differ)[group] += 1
    return same, differ


def cell_machines(rev: str, report: str) -> dict[str, dict | None] | None:
    """{cell folder: machine record, or None if unknown} from ``{report}/machines.json`` at ``rev``,
    or None when that revision has no such file."""
    text = git_show(rev, f"{report}/machines.json", required=False)
    if text is None:
        return None
    summary = json.loads(text)
    machines = summary.get("machines", {})
    return {normalize(key): machines.get(entry.get("machine")) for key, entry in summary.get("cells", {}).items()}


def compare_machines(old: dict[str, dict | None] | None, new: dict[str, dict | None] | None,
                     results: dict[str, dict]) -> dict[str, collections.Counter]:
    """Per group, how many of the cells of ``results`` ({``.../result.json``: result}) were computed
    on the same kind of machine in both runs (``same``), on another (``other``), or where either
    run's record is missing (``unknown``)."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path, result in results.items():
        folder = path.rsplit("/", 1)[0]
        a = None if old is None else old.get(folder)
        b = None if new is None else new.get(folder)
        group = _group(path, result.get("cell", {}))
        counts[group]["unknown" if a is None or b is None else "same" if a == b else "other"] += 1
    return counts


def describe_machine(record: dict) -> str:
    text = (f"{record.get('cpu')}, {record.get('cpu_capability')}, {record.get('torch_threads')} thread(s), "
            f"Python {record.get('python')}, torch {record.get('torch')}, numpy {record.get('numpy')}, "
            f"{record.get('device')}")
    return text + (f" ({record['gpu']})" if record.get("gpu") else "")


def _group(path: str, cell: dict | None) -> str:
    return "sensitivity" if path.startswith("sensitivity/") or "/sensitivity/" in path else f"{(cell or {}).get('method')} (seed {(cell or {}).get('seed')})"


def _verdict(row: dict) -> str:
    return f"{row['verdict']} ({row['wins']}/{row['ties']}/{row['losses']}, p = {float(row['p_value']):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="git revision of the first run")
    ap.add_argument("new", help="git revision of the second run")
    ap.add_argument("--profile", help="a profile (profiles/<name>/, report in reports/<name>/, e.g. seeds); "
                                      "default: the default profile (reports/)")
    args = ap.parse_args(argv)
    if args.profile:
        from mlabs.profiles import check_profiles

        try:
            check_profiles([args.profile], ROOT)
        except ValueError as err:
            sys.exit(f"compare_runs: --profile {err}")
    # the lock only serves revisions from before the cell store, when a profile's lock was
    # copied into its report folder
    lock, report = ((f"reports/{args.profile}/dvc.lock", f"reports/{args.profile}") if args.profile
                    else ("dvc.lock", "reports"))

    old, old_missing = cell_results(args.old, report, lock)
    new, new_missing = cell_results(args.new, report, lock)
    if old_missing | new_missing:
        # not stored or not cached: a manifest committed without its cells, or lock entries of
        # stages no longer in the pipeline
        print(f"skipped {len(old_missing | new_missing)} cells or outputs that could not be read: "
              f"{', '.join(sorted(old_missing | new_missing)[:10])}")
    same, differ = compare_cells(old, new)
    both = old.keys() & new.keys()
    machines = {rev: cell_machines(rev, report) for rev in (args.old, args.new)}
    kinds = compare_machines(machines[args.old], machines[args.new], {p: old[p] for p in both})
    print(f"cells in both runs: {sum(same.values()) + sum(differ.values())} "
          f"(test and validation metrics and best epoch compared exactly; machine: the same kind of "
          f"machine in both runs, another, or unknown)")
    for group in sorted(same.keys() | differ.keys()):
        k = kinds[group]
        print(f"  {group:24s} identical {same[group]:4d}   differ {differ[group]:4d}   "
              f"machine same {k['same']:4d}   other {k['other']:4d}   unknown {k['unknown']:4d}")
    for rev in (args.old, args.new):
        if machines[rev] is None:
            print(f"machines of {rev}: unknown (no {report}/machines.json)")
            continue
        used = collections.Counter(json.dumps(machines[rev].get(p.rsplit("/", 1)[0]), sort_keys=True)
                                   for p in both)
        print(f"machines of {rev}:")
        for record, n in sorted(used.items(), key=lambda kv: -kv[1]):
            record = json.loads(record)
            print(f"  {n:4d} cells: {describe_machine(record) if record else 'unknown (no timing sidecar)'}")

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
