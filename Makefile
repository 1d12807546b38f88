# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= runner,ray,test

.PHONY: run test test-fast bench bench-transfer lint typecheck install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/abcscale demo

# Everything, the physics check included, on every core (pytest-xdist). test-fast is the edit loop: it leaves
# out the end-to-end demo and sweep tests (marked e2e) and the physics check (marked slow).
test: $(STAMP)
	ABCSCALE_RUN_SLOW=1 $(PY) -m pytest -n auto

test-fast: $(STAMP)
	$(PY) -m pytest -n auto -m "not e2e and not slow"

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -s -q -p no:cacheprovider --override-ini addopts=

bench-transfer: $(STAMP)
	$(PY) tests/benchmarks/transfer.py

lint: $(STAMP) typecheck
	$(VENV)/bin/ruff check .

# mypy sees the installed layout (abcscale.schemas, ...) through a symlink tree of the mapped folders.
typecheck: $(STAMP)
	@rm -rf build/typecheck && mkdir -p build/typecheck/abcscale
	@for f in abcscale/*; do ln -s "$$PWD/$$f" build/typecheck/abcscale/; done
	@for d in schemas theory fitting runner service; do ln -s "$$PWD/$$d" build/typecheck/abcscale/$$d; done
	cd build/typecheck && ../../$(PY) -m mypy --config-file ../../pyproject.toml -p abcscale

clean:
	rm -rf $(VENV) .pytest_cache abcscale-demo
