# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv on first use, then run the demo pipeline
#   make test   create .venv on first use, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Meltano: no telemetry, no version check, and the project's own executables.
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export MELTANO_DISABLE_TRACKING := true
export MELTANO_CLI_DISABLE_VERSION_CHECK := true
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test install browser clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt examples/spendlake-source-toy/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e examples/spendlake-source-toy
	touch $(STAMP)

demo: $(STAMP)
	umask 077 && $(BIN)/spendlake demo

# The dashboard's browser test drives Debian's chromium, so Playwright never downloads a browser.
browser:
	@if [ -x /usr/bin/chromium ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "chromium is missing: install it with 'sudo apt-get install --no-install-recommends chromium'," \
			"or the browser test skips (and fails when CI=true)."; \
	fi

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .meltano .pytest_cache .hypothesis
