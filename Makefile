# The two set-up-and-go commands of the README:
#   make repro   set up .venv, restore the data, run the default DVC pipeline
#   make test    set up .venv, restore the data, run the test suite
# Both install everything they need; re-running skips what is already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mlabs-installed
KERNEL := mlabs

.PHONY: setup data repro repro-paper repro-compare repro-imbalanced test bench clean-venv

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# the kernel the notebooks name, installed inside the venv (not in ~/.local)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mlabs)" >/dev/null
	touch $(STAMP)

# Restore the raw data from the remote that ships inside the repository (no network).
data: $(STAMP)
	$(BIN)/dvc pull --quiet data.dvc

# papermill and the kernel come from the venv, so the stages find them on PATH
repro: data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The full paper profile (days on a CPU; see README): params-paper.yaml becomes params.yaml.
repro-paper: data
	cp params-paper.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The compare profile (README): the other batch-selection methods on emotions.
repro-compare: data
	cp params-compare.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The imbalanced profile (README): yeast, scene, enron with DELA and CLIF (1-2 h on 2 cores).
repro-imbalanced: data
	cp params-imbalanced.yaml params.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# Ray is an optional extra for users; the tests install it to exercise the Ray executor.
$(VENV)/.ray-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet ray==2.60.0
	touch $@

test: data $(VENV)/.ray-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_selection.py

clean-venv:
	rm -rf $(VENV)
