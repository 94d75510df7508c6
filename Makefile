# The two contract commands: `make run` serves the assistant, `make test` sets up and passes the tests.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Compiled modules are kept (a machine-wide PYTHONDONTWRITEBYTECODE would recompile every module each start).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test setup setup-test browser lint index eval-report bench bench-beir bench-qa clean

PIP := $(BIN)/pip
UV := $(BIN)/uv
# Quiet installs (modules are compiled when first imported, not all at install). Two messages are dropped
# at their source: setuptools' "Editable installation" banner, and pip's warning for each package that a
# find-links/index folder configured on the machine does not hold.
PIP_INSTALL = set -o pipefail; PYTHONWARNINGS="ignore:Editable installation" \
	$(PIP) install -q --no-compile --no-build-isolation $(1) 2>&1 | { grep -v "is neither a file nor a directory" || true; }
# pip installs torch (the machine's pip settings may point at a local CPU wheel) and uv; uv installs the rest,
# in parallel and about thirty times faster than pip here, into the same environment.
UV_INSTALL = UV_LINK_MODE=copy $(UV) pip install -q --python $(BIN)/python $(1)

# Serving needs the library and the [serve] extra; the test tools come with `make test` only.
$(BIN)/python:
	@echo "[setup 1/3] creating the virtual environment $(VENV)"
	@$(PY) -m venv $(VENV)

$(BIN)/.serve-installed: pyproject.toml | $(BIN)/python
	@echo "[setup 2/3] installing uv and torch (CPU; used once, to export the embedding model to ONNX)"
	@$(call PIP_INSTALL,--upgrade pip 'setuptools>=68' 'uv>=0.9')
	@$(call PIP_INSTALL,torch==2.13.0)
	@echo "[setup 3/3] installing the assistant and what serving needs"
	@$(call UV_INSTALL,-e '.[serve]')
	@touch $@

$(BIN)/.test-installed: pyproject.toml $(BIN)/.serve-installed
	@echo "[setup] installing the test tools"
	@$(call UV_INSTALL,-e '.[test]')
	@touch $@

setup: $(BIN)/.serve-installed

setup-test: $(BIN)/.test-installed

# Serving only reads the index: `--ingest` adds and updates corpus/ in it first, as `make index` does
# (documents ingested from elsewhere stay; files that fail are listed and the rest is indexed), in the
# serving process while its answering processes' fork server loads.
run: setup
	$(BIN)/rag serve --ingest --host $(HOST) --port $(PORT) --workers $(WORKERS)

index: setup
	$(BIN)/rag ingest || [ $$? -eq 1 ]

# Debian's Chromium for the web-page test (the machine has no browser until it is installed).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else echo "chromium missing: install Debian's chromium package for the browser test"; fi; fi

lint: setup-test
	$(BIN)/ruff check .

test: setup-test browser lint index
	$(BIN)/python -m pytest
	$(BIN)/rag eval

eval-report: setup-test
	$(BIN)/rag eval --report eval/reports
	$(BIN)/rag eval --set eval/holdout.jsonl --thresholds eval/holdout-thresholds.toml --report eval/reports/holdout
	$(BIN)/rag eval --set eval/holdout2.jsonl --thresholds eval/holdout-thresholds.toml --report eval/reports/holdout2
	if [ -f eval/news2024/questions.jsonl ]; then for part in all tune measure; do \
		$(BIN)/rag eval --set eval/news2024/questions.jsonl --corpus-ids eval/news2024/articles.txt --part $$part \
			--thresholds eval/holdout-thresholds.toml --report eval/reports/news2024-$$part || exit 1; done; fi

# QA benchmarks over corpora nobody here wrote (data in RAG_BENCH_DIR, default ../shared/benchmarks).
bench-qa: setup-test
	$(BIN)/rag eval-qa --bench squad --part measure --report eval/reports/squad-measure
	$(BIN)/rag eval-qa --bench news-quiz --part measure --report eval/reports/news-quiz-measure

bench: setup-test
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/beir.py
	$(BIN)/python bench/answer.py
	$(BIN)/python bench/http_load.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/scale.py
	$(MAKE) bench-qa

clean:
	rm -rf $(VENV) index/CURRENT index/.lock index/gen-* index/beir-* index/bench index/cache
