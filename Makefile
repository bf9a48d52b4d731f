# make install: the virtualenv .venv with this package, its book and test extras (once; again
#               only when pyproject.toml or constraints.txt change)
# make test:    lint with ruff (a lint error fails the target), fetch the optional real data
#               (skipped offline), then run pytest
# make book:    execute every chapter and build the HTML book into _build/html/ (PROFILE=quick);
#               the book serves its own JavaScript (fetched once with npm into _build/vendor/)
# make clean:   remove build outputs (_build/); keeps .venv and the chapters' artifacts/

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PROFILE ?= quick

.PHONY: install test book clean

# Tools beyond Python: npm fetches the JavaScript the book serves itself (widgets, MathJax), and
# Chromium runs tests/test_browser.py. Missing ones are installed where we are root with apt-get
# (CI on Debian); elsewhere a note says what to install (the tests that need them skip).
define need
	@missing=; for tool in $(1); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && apt-get install -y --no-install-recommends $$missing fonts-dejavu-core; \
	else echo "note: not installed:$$missing (on Debian: apt-get install$$missing)"; fi
endef

install: $(STAMP)

# torch first, pinned by constraints.txt, so nothing later can pull another torch build
$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -c constraints.txt torch==2.13.0
	$(VENV)/bin/pip install -c constraints.txt -e '.[book,test]'
	touch $@

test: install
	$(VENV)/bin/ruff check .
	$(call need,npm chromium)
	$(VENV)/bin/xtomo fetch-data
	$(VENV)/bin/python -m pytest

book: install
	$(call need,npm)
	$(VENV)/bin/xtomo fetch-data
	$(VENV)/bin/xtomo book --profile $(PROFILE)

clean:
	rm -rf _build .pytest_cache
