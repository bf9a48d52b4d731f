# make install: the virtualenv .venv with this package, its book and test extras (once; again
#               only when pyproject.toml or constraints.txt change)
# make test:    lint with ruff (a lint error fails the target), fetch the real data, then run
#               pytest. Offline without the data, the fetch's error is reported and the tests that
#               need it skip; under CI=true a failed fetch stops the target (and a missing
#               prerequisite fails its tests instead of skipping them)
# make book:    execute every chapter and build the HTML book into _build/html/ (PROFILE=quick);
#               the book serves its own JavaScript (fetched once with npm into _build/vendor/).
#               Offline it builds once the real data is in data/real/ (fetch-data then passes)
# make clean:   remove build outputs (_build/); keeps .venv and the chapters' artifacts/
# make mutate:  mutation testing (mutmut) of the core modules, one at a time, then the score per
#               module; MODULE=xtomo/evaluation/metrics.py for one (minutes), all by default (hours)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PROFILE ?= quick
MODULE ?= all

.PHONY: install test book clean mutate

# Tools beyond Python: npm fetches the JavaScript the book serves itself (widgets, MathJax), and
# Chromium runs tests/test_browser.py. Missing ones are installed where we are root with apt-get
# (CI on Debian); elsewhere a note says what to install (the tests that need them skip, or fail
# under CI=true).
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
	$(VENV)/bin/xtomo fetch-data || [ "$$CI" != true ]
	$(VENV)/bin/python -m pytest

book: install
	$(call need,npm)
	$(VENV)/bin/xtomo fetch-data
	$(VENV)/bin/xtomo book --profile $(PROFILE)

clean:
	rm -rf _build .pytest_cache

# one worker at the lowest priority: the tests of each mutant run while other work goes on
mutate: install
	OMP_NUM_THREADS=1 nice -n 19 $(VENV)/bin/python benchmarks/mutation.py --run $(MODULE)
