# One command per job. Everything runs from .venv, created when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
DB := data/liushou.duckdb
STAMP := $(VENV)/.installed

.PHONY: run test lint bench demo db clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(DEMO)/manifest.json: | $(STAMP)
	$(BIN)/liushou-geo demo --out $(DEMO) --scale city

$(DB): $(DEMO)/manifest.json | $(STAMP)
	$(BIN)/liushou-geo ingest --db $(DB) $(DEMO)    # ingests into a copy, swapped in when done

demo: $(DEMO)/manifest.json

db: $(DB)

## make run: set up, build the demo city and its database if missing, serve on 127.0.0.1:8501
run: $(STAMP) $(DB)
	$(BIN)/liushou-geo users ensure-admin
	$(BIN)/liushou-geo serve --db $(DB) --address 127.0.0.1 --port 8501

## make test: set up with test extras and run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest

## make bench: benchmark ingest, pages and planner at city scale (SCALE=province for the province), JSON in bench/
SCALE ?= city
bench: $(STAMP)
	$(BIN)/liushou-geo bench --scale $(SCALE) --json bench/$(SCALE).json

## make lint: pyflakes over the library, pages and tests
lint: $(STAMP)
	$(BIN)/python -m pyflakes liushou_geo pages app.py tests

clean:
	rm -rf $(DEMO) $(DB) $(DB).lock
