# make install: the virtualenv .venv with this package, its book and test extras (once; again
#               only when pyproject.toml or constraints.txt change)
# make test:    fetch the optional real data (skipped offline), then run pytest
# make book:    execute every chapter and build the HTML book into _build/html/ (PROFILE=quick)
# make clean:   remove build outputs (_build/); keeps .venv and the chapters' artifacts/

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PROFILE ?= quick

.PHONY: install test book clean

install: $(STAMP)

# torch first, pinned by constraints.txt, so nothing later can pull another torch build
$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -c constraints.txt torch==2.13.0
	$(VENV)/bin/pip install -c constraints.txt -e '.[book,test]'
	touch $@

test: install
	$(VENV)/bin/xtomo fetch-data
	$(VENV)/bin/python -m pytest

book: install
	$(VENV)/bin/xtomo fetch-data
	$(VENV)/bin/xtomo book --profile $(PROFILE)

clean:
	rm -rf _build .pytest_cache
