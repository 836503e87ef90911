# Two entry points: `make demo` (the main job on the embedded sample) and `make test`.
# Both create or reuse the virtual environment in .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; installing the rest first would let a dependency pull CUDA builds
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[stack,dev,augment]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clinie demo

test: $(STAMP)
	$(BIN)/ruff check clinie services tests benchmarks
	$(BIN)/mypy clinie services
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# lint-imports: the one-way module dependencies (library -> services never); contracts in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check clinie services tests benchmarks
	$(BIN)/mypy clinie services
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
