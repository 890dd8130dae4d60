"""A partial snapshot of a long profile: the report of the cells finished so far.

A profile such as ``breadth`` trains for days, in parts, and its DVC report stage runs only once
every train stage has finished. Until then ``python -m mlabs.partial_report <profile>`` reports
the models whose cells are finished on every data set of the profile or, while no model is, every
model on the data sets where all of them are finished (read from the cell store, nothing is
trained) into ``reports/<profile>/partial/``: the same tables, figures, findings and page as the
full report, each saying in its first line how many cells are still missing. With ``--model M``
it reports model M alone on the data sets where M is finished, into
``reports/<profile>/partial-M/``: an interim look at a model that is still training. The
profile's own report (``make repro-<profile>``) supersedes them; delete the folders then.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .config import load_params, methods_for, train_cells, train_config
from .grid import GridSpec, manifest_entries, stored_results
from .profiles import PROFILES_DIR, check_profiles, rewrite_path
from .store import CellStore, manifest_path, materialize, write_manifest

__all__ = ["Progress", "profile_progress", "write_partial", "main"]

PARTIAL_DIR = "partial"


@dataclass
class Progress:
    """How far a profile's train cells are: per (data set, model), the cells and their stored
    results (None where not finished)."""

    blocks: dict[tuple[str, str], tuple[list, list]]
    datasets: list[str]
    models: list[str]

    def counts(self, model: str | None = None, dataset: str | None = None) -> tuple[int, int]:
        """(finished, total) cells of ``model`` (None: every model) on ``dataset`` (None: every one)."""
        results = [r for (d, m), (_, res) in self.blocks.items()
                   if model in (None, m) and dataset in (None, d) for r in res]
        return sum(r is not None for r in results), len(results)

    def reported(self, model: str | None = None) -> tuple[list[str], list[str]]:
        """(models, data sets) of the snapshot: the models finished on every data set, or while
        there is none, every model on the data sets where all of them are finished; with ``model``,
        that model on the data sets where it is finished."""
        if model is not None:
            return [model], [d for d in self.datasets if _complete(self.counts(model=model, dataset=d))]
        models = [m for m in self.models if _complete(self.counts(model=m))]
        if models:
            return models, list(self.datasets)
        return list(self.models), [d for d in self.datasets if _complete(self.counts(dataset=d))]

    def notice(self, name: str, model: str | None = None) -> str:
        """The first line of every file of the partial snapshot (of ``model`` alone, if given)."""
        models, datasets = self.reported(model)
        finished, total = self.counts()
        where = (f"on all {len(datasets)} data sets" if len(datasets) == len(self.datasets) else
                 f"on {len(datasets)} of {len(self.datasets)} data sets ({', '.join(datasets)})")
        if model is not None:
            missing = [f"{model} on {d} ({f} of {t} cells)" for d in self.datasets if d not in datasets
                       for f, t in [self.counts(model=model, dataset=d)]]
        elif len(datasets) == len(self.datasets):
            missing = [f"{m} ({f} of {t} cells)" for m in self.models if m not in models
                       for f, t in [self.counts(model=m)]]
        else:
            missing = [f"{d} ({f} of {t} cells)" for d in self.datasets if d not in datasets
                       for f, t in [self.counts(dataset=d)]]
        pending = [m for m in self.models if m not in models] if model is None else []
        alone = "".join(f" {m} alone where it is finished: `python -m mlabs.partial_report {name} --model {m}`."
                        for m in pending)
        return (f"Partial snapshot of the {name} profile: {finished} of {total} cells are finished. "
                f"Reported: {', '.join(models)} {where}. Not reported yet: {', '.join(missing) or 'nothing'}.{alone}")


def _complete(counts: tuple[int, int]) -> bool:
    finished, total = counts
    return finished == total > 0


def profile_progress(params: dict, spec: GridSpec) -> Progress:
    """The finished cells of every (data set, model) of ``params``, looked up in ``spec``'s store."""
    datasets, models = list(params["data"]["datasets"]), list(params["train"]["models"])
    blocks = {}
    for dataset in datasets:
        for model in models:
            cells = train_cells(params, dataset, model)
            blocks[(dataset, model)] = (cells, stored_results(cells, spec))
    return Progress(blocks, datasets, models)


def write_partial(name: str, root: str | Path = ".", model: str | None = None) -> Path:
    """Write the partial snapshot of profile ``name`` into ``reports/<name>/partial/``, or with
    ``model``, of that model alone on the data sets where it is finished, into
    ``reports/<name>/partial-<model>/``.

    Raises
    ------
    ValueError
        When ``name`` is not a profile, ``model`` not one of its models, its data are not
        prepared, or neither a model has finished cells on every data set nor a data set on every
        model yet (with ``model``: no data set on that model).
    """
    from .report import write_report
    from .report.collect import unprepared
    from .report.page import render_page

    root = Path(root)
    check_profiles([name], root)
    params = load_params(root / PROFILES_DIR / name / "params.yaml")
    if model is not None and model not in params["train"]["models"]:
        raise ValueError(f"model {model!r} is not trained by profile {name} (its models: "
                         f"{', '.join(params['train']['models'])})")
    prepared = root / rewrite_path("artifacts/prepared", name)
    lacking = unprepared(prepared, params["data"]["datasets"])
    if lacking:
        raise ValueError(f"{len(lacking)} data sets of {name} are not prepared ({', '.join(lacking[:3])}"
                         f"{', ...' if len(lacking) > 3 else ''}): run "
                         f"`dvc repro profiles/{name}/dvc.yaml:prepare` (after `python -m mlabs.profiles {name}`)")
    spec = GridSpec(str(prepared), str(root / "artifacts/warmup"), str(root / "artifacts/work"),
                    train_config(params), store=str(root / "cells"))
    progress = profile_progress(params, spec)
    models, datasets = progress.reported(model)
    if not datasets:
        finished, total = progress.counts(model)
        raise ValueError((f"{model} has no data set of {name} with every cell finished" if model is not None else
                          f"no model of {name} has finished cells on every data set, nor any data set on every "
                          f"model,") + f" yet ({finished} of {total} cells finished): nothing to report")
    out = root / rewrite_path("reports", name) / (PARTIAL_DIR if model is None else f"{PARTIAL_DIR}-{model}")
    # the reported blocks can change between snapshots: no manifest of an earlier one stays behind
    shutil.rmtree(out / "cells", ignore_errors=True)
    manifests = []
    for dataset in datasets:
        for reported_model in models:
            cells, results = progress.blocks[(dataset, reported_model)]
            path = manifest_path(out / "cells", dataset, reported_model)
            manifests.append(write_manifest(path, manifest_entries(cells, results, spec)))
    view = materialize(manifests, CellStore(spec.store), root / rewrite_path("artifacts/views/default", name)
                       / out.name / "runs")
    reported = list(dict.fromkeys(m for each in models for m in methods_for(params, each)))
    datasets_dir = root / rewrite_path("reports/datasets", name)
    write_report(view, out, datasets_dir=datasets_dir if datasets_dir.is_dir() else None, methods=reported,
                 datasets=datasets, models=models, folds=params["train"]["folds"],
                 seeds=params["train"]["seeds"], n_folds=params["data"]["n_folds"], prepared_dir=prepared,
                 k_neighbors=params["selection"]["adaptive"]["k_neighbors"])
    notice = progress.notice(name, model)
    findings = out / "findings.md"
    findings.write_text(f"**{notice}**\n\n{findings.read_text()}")
    (out / "README.md").write_text(
        f"**{notice}**\n\nWritten from the cell store by `python -m mlabs.partial_report {name}"
        f"{'' if model is None else f' --model {model}'}` (no cell "
        f"trained). The profile's own report, `make repro-{name}`, supersedes this folder when every cell "
        "is finished.\n")
    render_page(out, results_root=view, profile=f"{name} (partial{'' if model is None else f', {model}'})",
                notice=notice, params_file=root / PROFILES_DIR / name / "params.yaml")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlabs.partial_report PROFILE [--model MODEL]``: the partial snapshot of a profile
    still training (with --model: of that model alone, on the data sets where it is finished)."""
    parser = argparse.ArgumentParser(prog="python -m mlabs.partial_report", description=main.__doc__)
    parser.add_argument("profile", help="a profile of profiles/, e.g. breadth")
    parser.add_argument("--model", default=None,
                        help="report this model alone, on the data sets where it is finished (e.g. dela)")
    parser.add_argument("--root", default=".", help="the project root (default: .)")
    args = parser.parse_args(argv)
    try:
        out = write_partial(args.profile, args.root, args.model)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((out / "README.md").read_text().splitlines()[0].strip("*"))
    print(f"written: {out}/ (findings.md, tables/, figures/, report.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
