# The two set-up-and-go commands of the README:
#   make repro   set up .venv, restore the data, run the default DVC pipeline
#   make test    set up .venv, restore the data, run the test suite
#   make lab     set up .venv, restore the data, start JupyterLab at the project root
#   make pull    restore the data and the cached results the committed reports came from
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

.PHONY: help setup data pull push lab repro repro-paper repro-compare repro-imbalanced repro-seeds snapshot test bench clean-venv

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

# Restore the data and every cached pipeline output of dvc.lock (prepared folds, cell results).
pull: $(STAMP) ## restore the data and the cached results the committed reports came from
	$(BIN)/dvc pull

# After a `make repro*`: copy the new cached outputs into dvc-store/, then commit dvc-store/,
# dvc.lock and reports/ together, so that `dvc pull` in a fresh clone restores them.
push: $(STAMP) ## store the cached pipeline outputs in the shipped remote (dvc-store/)
	$(BIN)/dvc push

# JupyterLab from the venv, rooted at the project; the notebooks name the mlabs kernel (registered
# in the venv by setup) and find the project root themselves (mlabs.project). As root (most
# containers) Jupyter refuses to start without --allow-root, so it is passed then.
lab: data ## start JupyterLab at the project root (the mlabs kernel)
	cd "$(CURDIR)" && $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root)

# Stage commands find the venv themselves (scripts/run-notebook); PATH is set for anything else.
repro: data ## run the default profile's pipeline (dvc repro)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The full paper profile (days on a CPU; see README): params-paper.yaml becomes params.yaml.
repro-paper: data ## run the full paper profile (params-paper.yaml; days on a CPU)
	cp params-paper.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The compare profile (README): the other batch-selection methods on emotions.
repro-compare: data ## run the compare profile and snapshot it into reports/compare/
	cp params-compare.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	$(MAKE) snapshot PROFILE=compare

# The imbalanced profile (README): yeast, scene, enron with DELA and CLIF (1-2 h on 2 cores).
repro-imbalanced: data ## run the imbalanced profile and snapshot it into reports/imbalanced/
	cp params-imbalanced.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	$(MAKE) snapshot PROFILE=imbalanced

# The seeds profile (README): the default profile with a second seed; which verdicts hold for both.
repro-seeds: data ## run the seeds profile and snapshot it into reports/seeds/
	cp params-seeds.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	$(MAKE) snapshot PROFILE=seeds

# Copy the report the last repro wrote into reports/$(PROFILE)/, the committed snapshot of a
# profile other than the default (the default's report stays in reports/), and render its page
# (reports/$(PROFILE)/report.html); a README.md written there by hand is kept.
snapshot: ## copy the last report into reports/$(PROFILE)/ (PROFILE=name)
	@test -n "$(PROFILE)" || { echo "make snapshot: name the profile, e.g. make snapshot PROFILE=compare" >&2; exit 2; }
	rm -rf reports/$(PROFILE)/tables reports/$(PROFILE)/figures reports/$(PROFILE)/plots reports/$(PROFILE)/notebooks
	mkdir -p reports/$(PROFILE)
	cp -r reports/findings.md reports/metrics.json reports/machines.json reports/tables reports/figures reports/plots reports/$(PROFILE)/
	$(BIN)/python -m mlabs.report.page reports/$(PROFILE)

# Ray is an optional extra for users; the tests install it to exercise the Ray executor.
$(VENV)/.ray-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet ray==2.60.0
	touch $@

test: data $(VENV)/.ray-installed ## run the test suite (the page test needs chromium: .ci/run installs it)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: $(STAMP) ## run the sampler benchmark
	$(BIN)/python benchmarks/bench_selection.py

clean-venv: ## remove .venv
	rm -rf $(VENV)
