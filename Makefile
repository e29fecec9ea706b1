# Set-up and the two main commands. PYTHON may point at any Python >= 3.10 (a venv's, conda's, ...).
PYTHON ?= python

.PHONY: install quickstart test

# mediapipe 0.10.21 (LMD's landmark detector) goes in without its declared pins, which would
# downgrade numpy and protobuf; what it needs at run time is in the `landmarks` extra.
install:
	$(PYTHON) -m pip install -c constraints.txt -e ".[all,dev]"
	$(PYTHON) -m pip install -c constraints.txt --no-deps mediapipe==0.10.21
	$(PYTHON) -m talker.install

quickstart: install
	$(PYTHON) -m talker.fit experiment=quickstart

test: install
	$(PYTHON) -m pytest
