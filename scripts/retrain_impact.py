"""Which committed cells would a code change retrain, and roughly how long would that take?

A cell's fingerprint covers the code that computes it (``mlabs.code_digest``): change a module in
its import graph and the cell trains again. Before editing a model, a sampler or the training
loop, this says what the change costs, per profile and in all (a cell shared by two profiles is
stored once and counted once in the total):

    python scripts/retrain_impact.py                        # the working tree against HEAD
    python scripts/retrain_impact.py --since HEAD~3         # against an older revision
    python scripts/retrain_impact.py --module mlabs.selection.chain.engine   # a planned change

``--since`` compares the real code digests (the package at the revision, read with git, against
the working tree), so a comment or docstring edit retrains nothing and shows as such;
``--module`` counts every cell whose digest covers one of the named modules. Hours are
``mlabs.cost``'s estimate on one slot (the profiles' measured runs took 1.2-2.2x it:
``reports/*/tables/timing.md``). The profiles are the default one and every ``profiles/<name>``
(``paper``, a plan never run, only with ``--profiles paper``). Reads parameters and code only:
nothing is trained and no data is needed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mlabs.code_digest import (cell_code_roots, code_digest, digest_modules, module_file,  # noqa: E402
                               warmup_code_roots)
from mlabs.config import load_params, sensitivity_cells, train_cells, train_config  # noqa: E402
from mlabs.cost import epoch_seconds, training_shape  # noqa: E402
from mlabs.data.registry import BY_FOLDED_NAME  # noqa: E402

#: profiles left out unless named: plans that were never run
NOT_RUN = ("paper",)


def profile_params(names: list[str] | None) -> dict[str, Path]:
    """``name -> params.yaml`` of the profiles (all run ones by default)."""
    found = {"default": ROOT / "params.yaml"}
    found.update({p.parent.name: p for p in sorted((ROOT / "profiles").glob("*/params.yaml"))})
    if names is None:
        return {n: p for n, p in found.items() if n not in NOT_RUN}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SystemExit(f"error: unknown profile(s) {', '.join(unknown)}; the profiles are {', '.join(found)}")
    return {n: found[n] for n in names}


def old_package(revision: str, tmp: str) -> Path:
    """The ``mlabs`` package of ``revision``, extracted under ``tmp``."""
    try:
        tar = subprocess.run(["git", "archive", revision, "src/mlabs"], cwd=ROOT, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"error: cannot read src/mlabs at {revision!r}: {exc.stderr.decode().strip()}; "
                         "name a commit of this repository") from None
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(tmp, filter="data")
    return Path(tmp) / "src" / "mlabs"


class Impact:
    """Decides whether a cell's or a warm-up's code changed: by real digests against an old
    package, or by the modules named as changed."""

    def __init__(self, old: Path | None = None, modules: list[str] | None = None):
        self.old, self.modules = old, set(modules or ())
        self._seen: dict[tuple[str, ...], bool] = {}

    def changed(self, roots: tuple[str, ...]) -> bool:
        if roots not in self._seen:
            if self.old is not None:
                try:
                    old = code_digest(roots, self.old)
                except (OSError, SyntaxError):      # the module did not exist or parse then
                    old = None
                self._seen[roots] = old != code_digest(roots)
            else:
                self._seen[roots] = bool(self.modules & set(digest_modules(roots)))
        return self._seen[roots]


def _shape(dataset: str, n_folds: int) -> tuple[int, int]:
    info = BY_FOLDED_NAME.get(dataset.casefold())
    if info is None:            # a data set of the user's own: the estimate's placeholder shape
        return 1000, 10
    return training_shape(info.n_instances, n_folds, info.n_labels_prepared)


def profile_impact(params: dict, impact: Impact) -> dict:
    """The profile's cells and warm-ups: totals, those that would retrain, and their estimated
    seconds on one slot, each keyed so that profiles sharing a cell count it once."""
    config, d = train_config(params), params["data"]
    data = (d["n_folds"], d["seed"], d["min_label_positives"], json.dumps(d.get("feature_ratio"), sort_keys=True))
    cells = list(dict.fromkeys(train_cells(params) + (sensitivity_cells(params) if "sensitivity" in params else [])))
    out = {"cells": {}, "retrain": {}, "warmups": {}, "rewarm": {}}
    for cell in cells:
        n, q = _shape(cell.dataset, d["n_folds"])
        settings = json.dumps(config.cell_settings(cell.model, cell.method), sort_keys=True, default=str)
        key = (tuple(cell.__dict__.values()), settings, data)
        out["cells"][key] = (config.epochs - config.warmup_epochs) * epoch_seconds(cell.dataset, cell.model, n, q)
        if impact.changed(cell_code_roots(cell.model, config.resolve_method(cell.method)[0])):
            out["retrain"][key] = out["cells"][key]
        wkey = (cell.dataset, cell.model, cell.fold, cell.seed, cell.batch_size,
                json.dumps(config.warmup_settings(cell.model), sort_keys=True, default=str), data)
        out["warmups"][wkey] = config.warmup_epochs * epoch_seconds(cell.dataset, cell.model, n, q)
        if impact.changed(warmup_code_roots(cell.model)):
            out["rewarm"][wkey] = out["warmups"][wkey]
    return out


def _line(name: str, part: dict) -> str:
    hours = (sum(part["retrain"].values()) + sum(part["rewarm"].values())) / 3600
    return (f"{name:12s} {len(part['retrain']):5d} of {len(part['cells']):5d} cells, "
            f"{len(part['rewarm']):4d} of {len(part['warmups']):4d} warm-ups, about {hours:6.1f} h")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--since", default="HEAD", help="revision to compare the working tree's code with")
    what.add_argument("--module", nargs="+", help="modules a planned change touches (mlabs.x.y)")
    ap.add_argument("--profiles", nargs="+", help="profiles to count (default: every run one)")
    args = ap.parse_args(argv)
    profiles = profile_params(args.profiles)
    with tempfile.TemporaryDirectory() as tmp:
        if args.module:
            unknown = [m for m in args.module if module_file(m) is None]
            if unknown:
                raise SystemExit(f"error: no module {', '.join(unknown)} under src/; name modules as mlabs.x.y")
            impact, what = Impact(modules=args.module), f"a change of {', '.join(args.module)}"
        else:
            impact, what = Impact(old=old_package(args.since, tmp)), f"the working tree's code against {args.since}"
        print(f"what {what} retrains (hours: mlabs.cost's estimate on one slot)")
        total = {"cells": {}, "retrain": {}, "warmups": {}, "rewarm": {}}
        for name, path in profiles.items():
            part = profile_impact(load_params(path), impact)
            print(_line(name, part))
            for k in total:
                total[k].update(part[k])
        print(_line("distinct", total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
