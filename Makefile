# Two commands on a fresh machine with only Python 3: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-lowest lint typecheck unit interop resilience bench bench-quick clean screenshots conformance

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tokensmith demo

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

# The suite once more on the lowest versions pyproject.toml allows for the direct dependencies, in an environment
# of its own: each pinned at its floor (.ci/floors.py), the test tools and indirect dependencies at the newest that
# fit. Browser and interop tests run in `make test` only.
LOWEST_VENV ?= .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_STAMP := $(LOWEST_VENV)/.installed-stamp

$(LOWEST_STAMP): pyproject.toml .ci/floors.py
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LOWEST_BIN)/python .ci/floors.py constraints > $(LOWEST_VENV)/floors.txt
	$(LOWEST_BIN)/python -m pip install --quiet -c $(LOWEST_VENV)/floors.txt -e '.[all,test]'
	@touch $(LOWEST_STAMP)

test-lowest: $(LOWEST_STAMP)
	$(LOWEST_BIN)/python .ci/floors.py check
	$(LOWEST_BIN)/python -m pytest -m "not browser and not interop"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples .ci
	$(BIN)/ruff format --check src tests bench examples .ci

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not postgres and not browser and not interop"

# The fault and load suite (tests/resilience, docs/security.md): kill -9, PostgreSQL restarts, key rotation, two
# replicas, attacks, and a soak of RESILIENCE_SOAK_SECONDS (ten minutes here; CI runs it with 30). Each test prints
# what it measured; RESILIENCE_REPORT=file also collects the figures as JSON lines.
RESILIENCE_SOAK_SECONDS ?= 600
resilience: $(STAMP)
	RESILIENCE_SOAK_SECONDS=$(RESILIENCE_SOAK_SECONDS) $(BIN)/python -m pytest tests/resilience -s -p no:cacheprovider

# The benchmark (docs/performance.md): under 10 minutes; QUICK=1 (or bench-quick) is the under-a-minute smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# Retake docs/screenshots/ (the browser test; without this it writes them to a temporary directory).
screenshots: $(STAMP)
	TOKENSMITH_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/demo/test_browser.py

# Third-party peers against tokensmith (docs/interop.md): needs java 17+, mvn, node 20+ and npm.
interop: $(STAMP)
	$(BIN)/python -m pytest tests/interop

# The OpenID Foundation conformance plans (docs/interop.md#conformance): needs the suite's source tarball in
# ../shared/conformance (CONFORMANCE_SHARED), Go, Maven, a Temurin 25 JDK and nginx. Builds are cached.
conformance: $(STAMP)
	@$(BIN)/python -c 'import pyparsing' 2>/dev/null || $(BIN)/python -m pip install --quiet pyparsing
	cache="$$(conformance/build.sh)" && $(BIN)/python conformance/run.py "$$cache"

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .mypy_cache .ruff_cache .pytest_cache
