# Set-up and the two main commands. PYTHON may point at any Python >= 3.10 (a venv's, conda's, ...).
PYTHON ?= python

.PHONY: install quickstart test

install:
	$(PYTHON) -m pip install -c constraints.txt -e ".[all,dev]"
	$(PYTHON) -m talker.install

quickstart: install
	$(PYTHON) -m talker.fit experiment=quickstart

test: install
	$(PYTHON) -m pytest
