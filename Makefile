# The two commands (README): `make demo` sets up and runs the main job, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ANONYMIZED_TELEMETRY := False

.PHONY: setup setup-test demo test bench-locomo bench-longmemeval bench-qa-locomo bench-docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,bench]'

setup-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,test]'

demo: setup
	$(BIN)/ltm-agent demo

test: setup-test
	$(BIN)/python -m pytest -q

bench-locomo: setup
	$(BIN)/ltm-agent bench retrieval --dataset locomo --data ../shared/data/locomo/locomo10_dev.json --out bench-out/locomo

bench-longmemeval: setup
	$(BIN)/ltm-agent bench retrieval --dataset longmemeval --data ../shared/data/longmemeval/longmemeval_s_dev.jsonl.gz --out bench-out/longmemeval

bench-qa-locomo: setup
	$(BIN)/ltm-agent bench qa --dataset locomo --data ../shared/data/locomo/locomo10_dev.json --out bench-out/qa-locomo --systems dense-turn,bm25-turn,ltm

bench-docs: setup
	$(BIN)/ltm-agent bench docs --run bench-out/locomo --run bench-out/longmemeval --run bench-out/qa-locomo --out docs/benchmarks.md

clean:
	rm -rf $(VENV) build dist *.egg-info .ltm bench-out
