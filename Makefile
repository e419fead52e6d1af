# The two commands (README): `make demo` sets up and runs the main job, `make test` sets up and runs the tests.
#
# Setup is split so the first `make demo` never waits for a compiler: the core install is wheels only
# (downloads, a few minutes on a fresh machine, with pip's progress shown). The optional [local] extra
# (llama-cpp-python, built from source: about 10 minutes on 2 cores) is installed where it is needed -
# `make test` and `make setup-local` - and the demo says which fallback it used without it.
# Each install step runs again only when pyproject.toml changes (stamp files in .venv/).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
export ANONYMIZED_TELEMETRY := False

.PHONY: setup setup-bench setup-local setup-test demo test cli-docs bench-locomo bench-longmemeval bench-qa-locomo bench-docs clean

$(BIN)/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.setup: pyproject.toml | $(BIN)/python
	@echo "==> installing ltm-agent and its dependencies into $(VENV): wheels only, no compiler;"
	@echo "    first run a few minutes (mostly downloads), later runs skip this step"
	$(PIP) install --progress-bar on -e .
	@touch $@

$(VENV)/.setup-bench: pyproject.toml | $(VENV)/.setup
	@echo "==> installing the [bench] extra (plots, benchmark peers)"
	$(PIP) install --progress-bar on -e '.[bench]'
	@touch $@

$(VENV)/.setup-local: pyproject.toml | $(VENV)/.setup
	@echo "==> installing the optional [local] extra: llama-cpp-python compiles llama.cpp from source"
	@echo "    (about 10 minutes on 2 cores; only the local model scorer and reader need it)"
	$(PIP) install -e '.[local]'
	@touch $@

$(VENV)/.setup-test: pyproject.toml | $(VENV)/.setup-local
	@echo "==> installing the [test] extra"
	$(PIP) install --progress-bar on -e '.[local,test]'
	@touch $@

setup: $(VENV)/.setup
setup-bench: $(VENV)/.setup-bench
setup-local: $(VENV)/.setup-local
setup-test: $(VENV)/.setup-test

demo: setup
	$(BIN)/ltm-agent demo

test: setup-test
	$(BIN)/python -m pytest -q

cli-docs: setup
	$(BIN)/python -m ltm_agent.app.cli_docs docs/cli.md

bench-locomo: setup-bench
	$(BIN)/ltm-agent bench retrieval --dataset locomo --data ../shared/data/locomo/locomo10_dev.json --out bench-out/locomo

bench-longmemeval: setup-bench
	$(BIN)/ltm-agent bench retrieval --dataset longmemeval --data ../shared/data/longmemeval/longmemeval_s_dev.jsonl.gz --out bench-out/longmemeval

bench-qa-locomo: setup-bench
	$(BIN)/ltm-agent bench qa --dataset locomo --data ../shared/data/locomo/locomo10_dev.json --out bench-out/qa-locomo --systems dense-turn,bm25-turn,ltm

bench-docs: setup-bench
	$(BIN)/ltm-agent bench docs --run bench-out/locomo --run bench-out/longmemeval --run bench-out/qa-locomo --out docs/benchmarks.md

clean:
	rm -rf $(VENV) build dist *.egg-info .ltm .ltm-demo bench-out
