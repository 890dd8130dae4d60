# The two set-up-and-go commands of the README:
#   make repro   set up .venv, restore the data, run the default DVC pipeline
#   make test    set up .venv, restore the data, run the test suite
#   make lab     set up .venv, restore the data, start JupyterLab at the project root
#   make pull    restore the data and the prepared folds of every committed profile
#   make push    store the cached pipeline outputs in the shipped remote (dvc-store/)
#   make help    every target with one line
# They install everything they need; re-running skips what is already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlabs-installed
KERNEL := mlabs
# torch's wheel index: empty = PyPI (on Linux x86-64 the CUDA build, several GB with its CUDA
# libraries); TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the CPU-only build
TORCH_INDEX ?=

.PHONY: help setup data pull push lab repro profiles repro-paper repro-compare repro-imbalanced repro-seeds repro-breadth repro-ablation status test bench clean-venv

.DEFAULT_GOAL := setup

# `make help`: every target with the line of its `## ` comment.
help: ## list the targets with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install the pinned dependencies and the mlabs kernel

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned, from TORCH_INDEX when given (see above)
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# the kernel the notebooks name, installed inside the venv (not in ~/.local)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mlabs)" >/dev/null
	touch $(STAMP)

# Restore the raw data from the remote that ships inside the repository (no network).
data: $(STAMP) ## restore the raw data from the shipped remote (dvc-store/, no network)
	$(BIN)/dvc pull --quiet data.dvc

# Restore the data and the cached outputs of every pipeline's lock (the default's dvc.lock and each
# profiles/<name>/dvc.lock: the prepared folds); the finished cells come with git (cells/).
# Only the pipelines that have a lock were run and committed: a profile never run has nothing to pull.
COMMITTED := dvc.yaml $(patsubst %/dvc.lock,%/dvc.yaml,$(shell git ls-files 'profiles/*/dvc.lock' 2>/dev/null))

pull: $(STAMP) ## restore the data and the prepared folds of every committed profile
	$(BIN)/dvc pull data.dvc $(COMMITTED)

# After a `make repro*`: copy the new cached outputs into dvc-store/, then commit dvc-store/, the
# locks, cells/ and reports/ together, so that a fresh clone restores them with `make pull`.
push: $(STAMP) ## store the cached pipeline outputs in the shipped remote (dvc-store/)
	$(BIN)/dvc push

# JupyterLab from the venv, rooted at the project; the notebooks name the mlabs kernel (registered
# in the venv by setup) and find the project root themselves (mlabs.project). As root (most
# containers) Jupyter refuses to start without --allow-root, so it is passed then.
lab: data ## start JupyterLab at the project root (the mlabs kernel)
	cd "$(CURDIR)" && $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root)

# Stage commands find the venv themselves (scripts/run-notebook); PATH is set for anything else.
# The root dvc.yaml only: the profiles' pipelines (profiles/*/dvc.yaml) run with repro-<name>.
repro: data ## run the default profile's pipeline (dvc repro)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro dvc.yaml

# Another profile: profiles/<name>/ holds its overlay (what differs from params.yaml), its generated
# params.yaml, and once run its dvc.yaml (written here, just before its first run) and dvc.lock:
# commit both when the profile is finished (a pipeline without a lock would show
# in a bare `dvc status`). Its outputs go to reports/<name>/. Running one never touches
# params.yaml or dvc.lock of the default (docs/pipeline.md). Finished cells are shared through the
# cell store cells/, so a cell another profile trained is not trained again.
PROFILE_REPRO = PYTHONPATH="$(CURDIR)/src" $(BIN)/python -m mlabs.profiles $(1) && \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro profiles/$(1)/dvc.yaml

profiles: $(STAMP) ## regenerate profiles/*/params.yaml (and the dvc.yaml of profiles run) from the overlays
	PYTHONPATH="$(CURDIR)/src" $(BIN)/python -m mlabs.profiles

repro-paper: data ## run the full paper profile (profiles/paper; weeks on a 2-core CPU)
	$(call PROFILE_REPRO,paper)

repro-compare: data ## run the compare profile (profiles/compare; report in reports/compare/)
	$(call PROFILE_REPRO,compare)

repro-imbalanced: data ## run the imbalanced profile (yeast, scene, enron with DELA and CLIF)
	$(call PROFILE_REPRO,imbalanced)

repro-seeds: data ## run the seeds profile (the default main grid with a second seed; no sweep)
	$(call PROFILE_REPRO,seeds)

repro-breadth: data ## run the breadth profile (14 data sets, C2AE and DELA; resumable, many hours)
	$(call PROFILE_REPRO,breadth)

repro-ablation: data ## run the ablation profile (14 data sets, C2AE, the ablation methods)
	$(call PROFILE_REPRO,ablation)

# What is out of date in every pipeline (the default and each profile), one line per stage.
status: $(STAMP) ## show what is out of date, per profile (dvc status)
	@for f in dvc.yaml profiles/*/dvc.yaml; do echo "== $$f"; $(BIN)/dvc status $$f; done

# Ray is an optional extra for users; the tests install it to exercise the Ray executor.
$(VENV)/.ray-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet ray==2.60.0
	touch $@

test: data $(VENV)/.ray-installed ## run the test suite (the page test needs chromium: .ci/run installs it)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q -n auto --maxprocesses 4

bench: $(STAMP) ## run the sampler benchmark
	$(BIN)/python benchmarks/bench_selection.py

clean-venv: ## remove .venv
	rm -rf $(VENV)
