# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test lint typecheck bench checkpoints clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,data,formats]'
	touch $(STAMP)

serve: $(STAMP)
	S5RF_COMPILATION_CACHE=.cache/xla $(BIN)/s5rf serve --host 127.0.0.1 --port 8000 \
		--checkpoints checkpoints

lint: $(STAMP)
	$(BIN)/ruff check model server clients cli tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Heavy, machine-dependent measurements; each prints a side-by-side table with ratios.
bench: $(STAMP)
	$(BIN)/python -m bench.advance
	$(BIN)/python -m bench.binning
	$(BIN)/python -m bench.train_step
	$(BIN)/python -m bench.server_load
	$(BIN)/python -m bench.store
	$(BIN)/python -m bench.cochlea
	$(BIN)/python -m bench.frames
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.readout_drift

checkpoints: $(STAMP)
	bash scripts/make_checkpoints.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
