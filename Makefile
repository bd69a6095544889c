# disposal-watch: `make run` (demo on a local broker) and `make test` (whole suite, real broker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the install is redone when the metadata or the compiled event reader's source changes
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py streams/codec/_event_reader.c | cksum | cut -d' ' -f1)

.PHONY: install test run stop bench bench-restart bench-soak bench-ingest bench-fuzz bench-pause bench-national bench-restore lint clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py streams/codec/_event_reader.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

test: install
	scripts/test.sh

# what test runs before the tests: ruff, formatting, mypy
lint: install
	$(BIN)/ruff check streams alerts tests bench setup.py
	$(BIN)/ruff format --check --quiet streams alerts tests bench setup.py
	$(BIN)/mypy

run: install
	scripts/run.sh

stop:
	scripts/stop.sh

bench: install
	scripts/with-broker.sh $(BIN)/python bench/throughput.py

bench-restart: install
	scripts/with-broker.sh $(BIN)/python bench/restart.py

bench-ingest: install
	scripts/with-broker.sh $(BIN)/python bench/ingest.py --clients

bench-fuzz: install
	$(BIN)/python bench/fuzz.py --seconds 600

bench-pause: install
	DW_PAUSE_RUNS=10 scripts/with-broker.sh $(BIN)/pytest -q -s tests/integration/test_cluster.py -k paused

bench-national: install
	scripts/with-broker.sh $(BIN)/python bench/national.py

bench-restore: install
	scripts/with-broker.sh $(BIN)/python bench/restore.py

bench-soak: install
	scripts/with-broker.sh $(BIN)/python bench/soak_kill.py

clean:
	rm -rf $(VENV) var .pytest_cache
