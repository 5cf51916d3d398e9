# Developer entry points. Each runs the set-up first; the set-up is idempotent, works on a
# fresh clone, and is a no-op in seconds when nothing changed (stamp files, see below).
#
#   make lab     JupyterLab on notebooks/ with the extension installed in develop mode;
#                installs only what running needs (the package and JupyterLab). The
#                shipped notebooks are saved without outputs (tools/lab-config/), so a
#                tour leaves the checkout clean.
#   make test    adds the test extras, then the labextension's linters and every test layer,
#                the browser included (installs Debian's chromium, and libfuse2 for a real
#                FUSE mount in tests/faults, if missing)
#   make bench   every benchmarks/bench_*.py (with the test extras: the benchmarks reuse the
#                tests' fixtures); fails if any fails, or if there are none
#   make clean   build output and stamps (keeps .venv); `make distclean` also drops .venv
#
# Set-up, in order (each step reruns only when its inputs change):
#   1. .venv with pip and the build tools (hatchling, hatch-jupyter-builder, editables, jupyterlab)
#   2. `jlpm install` in labextension/        <- package.json, yarn.lock, .yarnrc.yml
#   3. `jlpm build:prod` -> bgtasks_ext/labextension  <- labextension sources
#   4. `pip install -e .[lab]`, `jupyter-builder develop`  <- pyproject.toml
#      (`make test`: `.[lab,test]` instead, its own stamp; the test extra has `distributed`
#      for tests/dask, which start a real `dask scheduler` and `dask worker`)
# Step 3 runs before step 4 so the jupyter-builder hook inside `pip install -e` finds the
# JS up to date and does not build it a second time.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := setup

PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
JLPM := $(VENV)/bin/jlpm
JUPYTER := $(VENV)/bin/jupyter
# `jlpm build:prod` runs `jupyter labextension build`: it must be the venv's.
export PATH := $(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

IS_ROOT := $(filter 0,$(shell id -u))
ALLOW_ROOT := $(if $(IS_ROOT),--allow-root,)
CHROMIUM := /usr/bin/chromium
# tests/faults/test_store_location.py mounts a real FUSE filesystem (fusepy needs libfuse2).
LIBFUSE := /usr/lib/$(shell uname -m)-linux-gnu/libfuse.so.2

EXT := labextension
EXT_OUT := bgtasks_ext/labextension
EXT_SOURCES := $(shell find $(EXT)/src $(EXT)/style $(EXT)/schema -type f 2>/dev/null) \
	$(EXT)/package.json $(EXT)/tsconfig.json
EXT_BUILT := $(EXT_OUT)/static/style.js

STAMP_TOOLS := $(VENV)/.stamp-build-tools
STAMP_NODE := $(EXT)/node_modules/.stamp-jlpm-install
STAMP_INSTALL := $(VENV)/.stamp-install
STAMP_TEST := $(VENV)/.stamp-install-test
LAB_EXTRAS := lab
TEST_EXTRAS := lab,test
# make lab's Jupyter config: a pre-save hook keeps the shipped notebooks without outputs.
LAB_CONFIG := $(CURDIR)/tools/lab-config
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/jupyter-bgtasks

BENCHES := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: setup setup-test lab test bench clean distclean

setup: $(STAMP_INSTALL) $(EXT_BUILT)
setup-test: $(STAMP_TEST) $(EXT_BUILT)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_TOOLS): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install editables hatchling "hatch-jupyter-builder>=0.10" "jupyterlab>=4.6,<5"
	touch $@

$(STAMP_NODE): $(EXT)/package.json $(wildcard $(EXT)/yarn.lock) $(EXT)/.yarnrc.yml | $(STAMP_TOOLS)
	cd $(EXT) && $(JLPM) install
	touch $@

$(EXT_BUILT): $(EXT_SOURCES) $(STAMP_NODE)
	cd $(EXT) && $(JLPM) build:prod
	touch $@

# $(call editable,EXTRAS): the package in develop mode with EXTRAS.
# pip would write the wheel's shared-data through the develop symlink into $(EXT_OUT)
# (and delete from it when it uninstalls the old editable): unlink it first,
# `jupyter-builder develop` links it again.
define editable
	if [ -L $(LABEXT_LINK) ]; then rm $(LABEXT_LINK); fi
	$(PIP) install --no-build-isolation -e ".[$(1)]"
	$(VENV)/bin/jupyter-builder develop --overwrite .
endef

# What running needs: the `lab` extra is JupyterLab itself (a wheel installed into an
# existing JupyterLab needs none of it).
$(STAMP_INSTALL): pyproject.toml $(STAMP_TOOLS) | $(EXT_BUILT)
	$(call editable,$(LAB_EXTRAS))
	touch $@

# The test set includes the running set, so it brings that stamp up to date too.
$(STAMP_TEST): pyproject.toml $(STAMP_TOOLS) | $(EXT_BUILT)
	$(call editable,$(TEST_EXTRAS))
	touch $@ $(STAMP_INSTALL)

# $(call debian,PACKAGE,FILE,WHO): install Debian's PACKAGE for the tests when FILE is
# missing (as root); otherwise say how, and stop.
define debian
	@if [ -z "$(IS_ROOT)" ]; then \
		echo "make: $(2) is missing (for $(3)); it comes with Debian's $(1):" >&2; \
		echo "      sudo apt-get install -y --no-install-recommends $(1)" >&2; \
		exit 1; \
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1)
endef

$(CHROMIUM):
	$(call debian,chromium,$(CHROMIUM),the browser tests)

$(LIBFUSE):
	$(call debian,libfuse2,$(LIBFUSE),the FUSE mount of tests/faults)

lab: setup
	mkdir -p notebooks
	JUPYTER_CONFIG_PATH="$(LAB_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(JUPYTER) lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

test: setup-test $(CHROMIUM) $(LIBFUSE)
	cd $(EXT) && $(JLPM) lint:check
	$(PY) -m pytest tests -n 2 --dist loadgroup -m "not serial" $(PYTEST_ARGS)
	$(PY) -m pytest tests -m serial $(PYTEST_ARGS)

bench: setup-test
	@if [ -z "$(BENCHES)" ]; then echo "make bench: no benchmarks/bench_*.py found" >&2; exit 1; fi
	@failed=""; \
	for bench in $(BENCHES); do \
		echo "== $$bench"; \
		$(PY) "$$bench" || failed="$$failed $$bench"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi

clean:
	rm -rf $(EXT_OUT) $(EXT)/lib $(EXT)/tsconfig.tsbuildinfo $(EXT)/node_modules \
		$(EXT)/.yarn/cache $(EXT)/.yarn/install-state.gz \
		tests/artifacts .pytest_cache .mypy_cache .hypothesis build dist
	rm -f $(STAMP_TOOLS) $(STAMP_INSTALL) $(STAMP_TEST)
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
