# streetwatch — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export YOLO_OFFLINE := 1
export STREETWATCH_WEBHOOK_ALLOW_PRIVATE := 1

.PHONY: demo test lint typecheck bench fuzz clean-venv vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streetwatch demo

# Two workers: most tests wait on subprocesses, servers and clocks, so two share the 2-core CI machine well.
# worksteal: a worker that runs out takes tests queued on the other (the long live tests bunch up), 24 -> 22 min.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check detector zones service tests
	$(BIN)/mypy detector zones service

bench: $(STAMP)
	$(BIN)/python -m bench

# Long campaigns (every test named *fuzz*): about an hour at the default size; `make fuzz FUZZ_EXAMPLES=2000` for more.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	STREETWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests -k fuzz

# Third-party browser files, committed under service/static/vendor/ (see its README.md); needs npm.
vendor:
	sh service/static/vendor/fetch-leaflet.sh

clean-venv:
	rm -rf $(VENV)
