# Quick start: `make demo` runs the main job, `make test` runs the tests.
# Each creates (or reuses) .venv, installs rsft with what it needs and builds the extension.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SRC    := $(shell find src -name '*.py' -o -name '*.pyx' -o -name '*.pyi') setup.py pyproject.toml

.PHONY: demo test bench info clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Installs the built wheel (not the source tree), so tests exercise what users get.
$(VENV)/.installed-test: $(PY) $(SRC)
	$(PY) -m pip install -q ".[test]"
	@touch $@

# numba is an optional peer in the benchmarks (skipped when it cannot be installed).
$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PY) -m pip install -q ".[bench]"
	-$(PY) -m pip install -q numba
	@touch $@

demo: $(VENV)/.installed-test
	$(PY) -m rsft demo

info: $(VENV)/.installed-test
	$(PY) -m rsft info

test: $(VENV)/.installed-test
	cd tests && RSFT_REQUIRE_CYTHON=1 ../$(PY) -m pytest -q -p no:cacheprovider .

bench: $(VENV)/.installed-bench
	cd bench && ../$(PY) -m pytest -q -p no:cacheprovider --benchmark-only \
		--benchmark-json=../.bench.json . && ../$(PY) report.py ../.bench.json

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info src/rsft/_core.c src/rsft/*.so .bench.json
