# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= runner,ray,test

.PHONY: theory-solutions run test test-fast browser screenshots test-torch bench-peer bench bench-coverage bench-transfer device-wheels device-check bench-wd bench-optimizers bench-tune lint typecheck install clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[$(EXTRAS)]'
	@# Byte-compiled here, on every core: pip compiles what it installs one file at a time, 13,000 files and about
	@# half of its minute (60-62 s against 20-27 s with --no-compile, then 16-21 s for this on the 2 cores; the same
	@# files compiled, 2026-12-07). Where PYTHONDONTWRITEBYTECODE is set (CI, containers) nothing is compiled on
	@# import, so every process would compile what it imports again. The project's own modules too: an editable
	@# install leaves them uncompiled (0.15 s of each CLI start-up); an edited module is compiled from source until
	@# the next install, as before. A file that does not compile (pip skips them too) is said, not fatal. (Leaving
	@# the packages' test folders out with -x skipped every installed file in a checkout under a tests/ folder: -x
	@# reads the whole path; a review.)
	$(PY) -m compileall -q -j 0 abcscale fitting runner schemas service theory \
	  $$($(PY) -c 'import sysconfig; print(*{sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})') \
	  > /dev/null || echo "make: some installed files did not byte-compile; they compile when imported" >&2
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/abcscale demo

# Everything, the physics check included, on every core (pytest-xdist; `--dist worksteal`: an idle worker takes
# tests queued on the other, so the physics check's 100 s does not leave one core idle at the end). test-fast is
# the edit loop: it leaves out the end-to-end demo, sweep and kill -9 tests (marked e2e) and the physics check
# (marked slow).
# make test runs under tests/with_postgres.py: a throwaway PostgreSQL server (Debian's postgresql package,
# installed with apt-get when missing and run as root, as CI is) in a temporary folder, for the PostgreSQL tests,
# stopped and deleted afterwards even when tests fail. Without a server those tests fail (REQUIRE_POSTGRES=1);
# `make test REQUIRE_POSTGRES=0` lets them skip. test-fast runs them only with ABCSCALE_TEST_POSTGRES_URL set.
# The web pages are tested in Debian's chromium through chromium-driver (tests/service/test_pages_browser.py),
# installed with apt-get when missing and run as root, as CI is. Without them those tests fail
# (REQUIRE_BROWSER=1); `make test REQUIRE_BROWSER=0` lets them skip.
REQUIRE_POSTGRES ?= 1
REQUIRE_BROWSER ?= 1
test: $(STAMP) browser
	ABCSCALE_RUN_SLOW=1 ABCSCALE_REQUIRE_POSTGRES=$(REQUIRE_POSTGRES) ABCSCALE_REQUIRE_BROWSER=$(REQUIRE_BROWSER) \
	  $(PY) tests/with_postgres.py -- $(PY) -m pytest -n auto --dist worksteal

browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's chromium and chromium-driver" >&2; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends chromium chromium-driver || true; \
	  else \
	    echo "make: no chromium here (apt-get install chromium chromium-driver, as root); the page tests need it" >&2; \
	  fi; \
	fi

# The README's screenshots of the three pages (docs/screenshots/), taken by the page tests in Chromium.
screenshots: $(STAMP) browser
	ABCSCALE_REQUIRE_BROWSER=1 ABCSCALE_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q -p no:cacheprovider \
	  tests/service/test_pages_browser.py -k screenshots

test-fast: $(STAMP)
	$(PY) -m pytest -n auto --dist worksteal -m "not e2e and not slow"

# The PyTorch export (abcscale.torch) against real PyTorch and microsoft/mup, in a venv of its own: torch is
# several GB and no dependency of abcscale or `make test`. mup is optional (its tests skip without it); it is
# installed without its dependencies, which would pull torchvision, and with the few it imports.
TORCH_VENV ?= .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed

$(TORCH_STAMP): pyproject.toml
	@test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet -e '.[test]' torch==2.13.0
	-$(TORCH_VENV)/bin/python -m pip install --quiet --no-deps mup && \
	  $(TORCH_VENV)/bin/python -m pip install --quiet tqdm seaborn
	@touch $(TORCH_STAMP)

test-torch: $(TORCH_STAMP)
	$(TORCH_VENV)/bin/python -m pytest tests/torch -s -q -p no:cacheprovider --override-ini addopts=

# abcscale's runner against PyTorch + microsoft/mup (tests/benchmarks/peer/) on the same sweeps, whole process,
# alternating, cold and warm compile cache (7 min on the idle 2 cores on 2026-12-05, 36 min on loaded ones; BENCH_PEER_ARGS="--repeats 1" halves
# it, "--quick" is a smoke test). The torch venv is test-torch's.
BENCH_PEER_ARGS ?=
bench-peer: $(STAMP) $(TORCH_STAMP)
	$(PY) tests/benchmarks/peer_bench.py --torch-python $(TORCH_VENV)/bin/python $(BENCH_PEER_ARGS)

# The theory's LP answers for the built-in parameterizations and optimizers (theory/solutions.json, shipped so that
# `recommend` and a sweep need not import scipy.optimize): again after a change to the theory (a test says when).
theory-solutions: $(STAMP)
	$(PY) -c "from abcscale.theory.solver import write_shipped; print(write_shipped(), 'solutions written')"

bench: $(STAMP)
	$(PY) -m pytest tests/benchmarks -s -q -p no:cacheprovider --override-ini addopts=

bench-transfer: $(STAMP)
	$(PY) tests/benchmarks/transfer.py

# Issue 18's GPU check, prepared for a lent accelerator machine (README, "Runner speed vs PyTorch +
# microsoft/mup"): `make device-wheels` here puts abcscale's wheel and the pure-Python dependencies such a
# machine's image lacks (pydantic and its kin), for its Python ($(DEVICE_PY)), in .whl/; there,
# `bash tests/benchmarks/device_check.sh` installs them in a scratch folder and times the transfer benchmark's
# sweeps to width 1024 (tests/benchmarks/device_speed.sh beside it times the peer benchmark's sweeps there).
# `make device-check` runs the first here, on the CPU.
DEVICE_PY ?= 3.12
DEVICE_WHEELS ?= pydantic pydantic-core pydantic-settings python-dotenv annotated-types typing-inspection
device-wheels: $(STAMP)
	rm -rf .whl && mkdir -p .whl
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .
	$(PY) -m pip freeze | grep -i -E "^($$(echo $(DEVICE_WHEELS) | sed 's/[-_]/[-_]/g; s/ /|/g'))==" > .whl/pins.txt
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version $(DEVICE_PY) --implementation cp \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl -r .whl/pins.txt
	@ls -l .whl

device-check: $(STAMP)
	PYTHON=$(PY) bash tests/benchmarks/device_check.sh

# Coverage and median width of the 95% LR bands on synthetic sweeps with a known truth, with and without theory's
# prior, and a covariate table's joint-law exponents (2-4 minutes on 2 cores; `make bench` runs it too).
bench-coverage: $(STAMP)
	$(PY) -m pytest tests/benchmarks/bench_coverage.py -s -q -p no:cacheprovider --override-ini addopts=

# AdamW's weight decay across widths under the coupled transfer rule vs reusing the base decay (3-5 min on 2
# cores; `make bench` runs the same check). Cached in .bench-wd/: a rerun only reprints.
bench-wd: $(STAMP)
	$(PY) tests/benchmarks/bench_weight_decay.py

# Lion and Muon across widths: muP with the derived per-layer rule vs one global LR (about 10 min on 2 cores;
# `make bench` runs the same check). Cached in .bench-optimizers/: a rerun only reprints.
bench-optimizers: $(STAMP)
	$(PY) tests/benchmarks/bench_optimizers.py

# Tuned vs default constants at 2x and 4x the base width, and the search's cost in training runs at 4x (about
# 3 min on 2 cores; `make bench` runs a smaller search at 2x only).
bench-tune: $(STAMP)
	$(PY) tests/benchmarks/bench_tune.py

lint: $(STAMP) typecheck
	$(VENV)/bin/ruff check .

# mypy sees the installed layout (abcscale.schemas, ...) through a symlink tree of the mapped folders.
typecheck: $(STAMP)
	@rm -rf build/typecheck && mkdir -p build/typecheck/abcscale
	@for f in abcscale/*; do ln -s "$$PWD/$$f" build/typecheck/abcscale/; done
	@for d in schemas theory fitting runner service; do ln -s "$$PWD/$$d" build/typecheck/abcscale/$$d; done
	cd build/typecheck && ../../$(PY) -m mypy --config-file ../../pyproject.toml -p abcscale

clean:
	rm -rf $(VENV) .pytest_cache .jax_cache abcscale-demo
