# Two entry points: `make demo` (the main job on the embedded sample) and `make test`.
# Both create or reuse the virtual environment in .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv tools demo test lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; installing the rest first would let a dependency pull CUDA builds
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[stack,dev,augment]'
	@touch $(STAMP)

venv: $(STAMP)

# checkov (scans the rendered Helm chart) pins versions that conflict with .venv, so it gets its own venv.
# Best effort: when it can't be installed, tests/deploy/test_checkov.py is skipped and says why.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
$(TOOLS_STAMP):
	-@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS) || python3 -m venv $(TOOLS)
	-$(TOOLS)/bin/python -m pip install -q checkov==3.3.30 && touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

# the curated condition-form index of the nearest-form step, built once (~30 s) and rebuilt when a table changes;
# without it the extractor would embed the forms at every start (docs/normalization.md)
FORMS_INDEX := terminology/condition-forms-v1.npz
$(FORMS_INDEX): $(STAMP) $(wildcard clinie/normalize/data/conditions*.tsv) clinie/normalize/data/sited_findings.tsv
	$(BIN)/clinie terminology build --forms --out terminology/icd10cm.json.gz --forms-out $(FORMS_INDEX)

demo: $(STAMP) $(FORMS_INDEX)
	CLINIE_FORMS_INDEX=$(FORMS_INDEX) $(BIN)/clinie demo

test: $(STAMP) $(TOOLS_STAMP)
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
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
