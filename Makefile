# Quick start: `make demo` runs the main job, `make test` runs the tests.
# Each creates (or reuses) .venv, installs rsft with what it needs and builds the extension.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SRC    := $(shell find src -name '*.py' -o -name '*.pyx' -o -name '*.pxi' -o -name '*.tp' -o -name '*.pyi' -o -name '*.h') setup.py pyproject.toml

.PHONY: demo test test-debug test-min-numpy fuzz bench bench-save bench-compare info clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Builds an sdist, then installs the wheel pip builds from that sdist (not the source tree), so
# tests exercise what users get and a file missing from the sdist fails the build.
$(VENV)/.installed-test: $(PY) $(SRC)
	$(PY) -m pip install -q build
	rm -rf dist-sdist
	$(PY) -m build -q --sdist --outdir dist-sdist .
	$(PY) -m pip install -q --force-reinstall --no-deps dist-sdist/rsft-*.tar.gz
	$(PY) -m pip install -q "rsft[test]"     # the extra's packages (rsft itself is installed)
	@touch $@

# numba and torch (CPU, 2.13.0) are optional peers in the benchmarks, never dependencies of
# rsft: their rows are skipped when they cannot be installed.
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PY) -m pip install -q ".[bench]"
	-$(PY) -m pip install -q numba
	-$(PY) -m pip install -q torch==2.13.0
	@touch $@

demo: $(VENV)/.installed-test
	$(PY) -m rsft demo

info: $(VENV)/.installed-test
	$(PY) -m rsft info

test: $(VENV)/.installed-test
	cd tests && RSFT_REQUIRE_CYTHON=1 ../$(PY) -m pytest -q -p no:cacheprovider .

# The debug build (Cython's bounds, wraparound and initialisation checks on) in its own venv,
# running the parity tests; an error raised inside a kernel that cannot propagate it (an
# "unraisable" exception) fails the run.
test-debug: $(PY)
	rm -rf .venv-debug
	$(PYTHON) -m venv .venv-debug
	.venv-debug/bin/pip install -q --upgrade pip
	RSFT_CYTHON_DEBUG=1 .venv-debug/bin/pip install -q --no-cache-dir ".[test]"
	cd tests && RSFT_REQUIRE_CYTHON=1 ../.venv-debug/bin/python -c \
	    "import rsft._core as c; assert c.BUILD_DEBUG_CHECKS, 'not a debug build'"
	cd tests && RSFT_REQUIRE_CYTHON=1 ../.venv-debug/bin/python -m pytest -q -p no:cacheprovider \
	    -W error::pytest.PytestUnraisableExceptionWarning test_parity.py test_bitgen.py

# The lowest numpy rsft supports at run time (pyproject's dependency, numpy >= 1.26): a wheel
# built as usual (against numpy 2), installed in its own venv beside numpy 1.26.4, and the suite.
MIN_NUMPY := 1.26.4
test-min-numpy: $(PY)
	rm -rf .venv-min-numpy dist-min-numpy
	$(PY) -m pip wheel -q --no-deps -w dist-min-numpy .
	$(PYTHON) -m venv .venv-min-numpy
	.venv-min-numpy/bin/pip install -q "numpy==$(MIN_NUMPY)" pytest hypothesis scipy matplotlib \
	    "dask[array]" distributed
	.venv-min-numpy/bin/pip install -q --no-deps dist-min-numpy/rsft-*.whl
	cd tests && RSFT_REQUIRE_CYTHON=1 ../.venv-min-numpy/bin/python -c \
	    "import numpy; assert numpy.__version__ == '$(MIN_NUMPY)', numpy.__version__"
	cd tests && RSFT_REQUIRE_CYTHON=1 ../.venv-min-numpy/bin/python -m pytest -q -p no:cacheprovider .

# The property suite (tests/test_properties.py) with RSFT_FUZZ_EXAMPLES examples per property
# (default 10^4; `make fuzz RSFT_FUZZ_EXAMPLES=200` for a shorter run), both backends side by
# side; the last table counts the inputs each public entry point got.
RSFT_FUZZ_EXAMPLES ?= 10000
fuzz: $(VENV)/.installed-test
	cd tests && RSFT_REQUIRE_CYTHON=1 RSFT_FUZZ_EXAMPLES=$(RSFT_FUZZ_EXAMPLES) \
	    ../$(PY) -m pytest -q -p no:cacheprovider test_properties.py

# One pytest-benchmark run per area, each followed by its ratio report (all ratios in one run),
# then bench/scale.py: threads, the GIL, a busy core and the losses at n = 1e6 (it times the
# concurrent cases itself and starts, then kills, its own busy process), and bench/signals.py:
# the Ctrl-C latency of the long optimizer, loss and acceptor calls.
# Speed is asserted by the reports: each exits 1 when a measured target is missed and appends
# it to .bench-missed. Every area still runs and prints; `make bench` then fails if any run or
# report did, and its last line names each missed target with its measured value.
# `make bench-save` also stores each area's run (.benchmarks/<area>/, pytest-benchmark's
# --benchmark-save); `make bench-compare` runs again and prints each area against its last
# saved run (--benchmark-compare): save on one commit, compare on another.
BENCH_ARGS ?=
BENCH = cd bench && OPENBLAS_NUM_THREADS=1 RSFT_BENCH_MISSED=../.bench-missed \
	../$(PY) -m pytest -q -p no:cacheprovider --benchmark-only $(BENCH_ARGS)
REPORT = cd bench && RSFT_BENCH_MISSED=../.bench-missed ../$(PY)
bench: $(VENV)/.installed-bench
	@rm -f .bench-missed; status=0; \
	($(BENCH) --benchmark-storage=../.benchmarks/sampling \
	    --benchmark-json=../.bench-sampling.json test_bench_sampling.py) || status=1; \
	($(REPORT) report.py ../.bench-sampling.json) || status=1; \
	($(BENCH) --benchmark-storage=../.benchmarks/logconcave \
	    --benchmark-json=../.bench-logconcave.json test_bench_logconcave.py) || status=1; \
	($(REPORT) report_logconcave.py ../.bench-logconcave.json) || status=1; \
	($(BENCH) --benchmark-storage=../.benchmarks/optim \
	    --benchmark-json=../.bench-optim.json test_bench_optim.py) || status=1; \
	($(REPORT) report_optim.py ../.bench-optim.json) || status=1; \
	($(BENCH) --benchmark-storage=../.benchmarks/acceptors \
	    --benchmark-json=../.bench-acceptors.json test_bench_acceptors.py) || status=1; \
	($(REPORT) report_acceptors.py ../.bench-acceptors.json) || status=1; \
	($(BENCH) --benchmark-storage=../.benchmarks/losses \
	    --benchmark-columns=min,median,rounds --benchmark-sort=name \
	    test_bench_losses.py) || status=1; \
	($(REPORT) scale.py) || status=1; \
	($(REPORT) signals.py) || status=1; \
	($(BENCH) --benchmark-storage=../.benchmarks/dask \
	    --benchmark-json=../.bench-dask.json test_bench_dask.py) || status=1; \
	($(REPORT) report_dask.py ../.bench-dask.json) || status=1; \
	if [ -s .bench-missed ]; then \
	    echo "make bench: missed: $$(paste -sd ';' .bench-missed)"; \
	elif [ $$status -ne 0 ]; then echo "make bench: a benchmark run or result check failed"; \
	else echo "make bench: every target met"; fi; \
	exit $$status

bench-save:
	$(MAKE) bench BENCH_ARGS=--benchmark-save=rsft

bench-compare:
	$(MAKE) bench BENCH_ARGS=--benchmark-compare

clean:
	rm -rf $(VENV) .venv-debug .venv-min-numpy dist-min-numpy dist-sdist build *.egg-info src/*.egg-info src/rsft/_core.c src/rsft/*.so .bench*.json .bench-missed
