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

.PHONY: run test setup browser lint index eval-report bench bench-beir bench-qa clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.installed

# Serving only reads the index: `make index` adds and updates corpus/ in it first (documents ingested
# from elsewhere stay). Exit status 1 means some files failed (listed) while the rest was indexed.
run: setup index
	$(BIN)/rag serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

index: setup
	$(BIN)/rag ingest || [ $$? -eq 1 ]

# Debian's Chromium for the web-page test (the machine has no browser until it is installed).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else echo "chromium missing: install Debian's chromium package for the browser test"; fi; fi

lint: setup
	$(BIN)/ruff check .

test: setup browser lint index
	$(BIN)/python -m pytest
	$(BIN)/rag eval

eval-report: setup
	$(BIN)/rag eval --report eval/reports
	$(BIN)/rag eval --set eval/holdout.jsonl --thresholds eval/holdout-thresholds.toml --report eval/reports/holdout
	$(BIN)/rag eval --set eval/holdout2.jsonl --thresholds eval/holdout-thresholds.toml --report eval/reports/holdout2
	if [ -f eval/news2024/questions.jsonl ]; then for part in all tune measure; do \
		$(BIN)/rag eval --set eval/news2024/questions.jsonl --corpus-ids eval/news2024/corpus_ids.txt --part $$part \
			--thresholds eval/holdout-thresholds.toml --report eval/reports/news2024-$$part || exit 1; done; fi

# QA benchmarks over corpora nobody here wrote (data in RAG_BENCH_DIR, default ../shared/benchmarks).
bench-qa: setup
	$(BIN)/rag eval-qa --bench squad --part measure --report eval/reports/squad-measure
	$(BIN)/rag eval-qa --bench news-quiz --part measure --report eval/reports/news-quiz-measure

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/beir.py
	$(BIN)/python bench/answer.py
	$(BIN)/python bench/http_load.py
	$(MAKE) bench-qa

clean:
	rm -rf $(VENV) index/CURRENT index/.lock index/gen-* index/beir-* index/bench index/cache
