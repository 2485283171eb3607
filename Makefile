# Every target creates and uses a virtual environment under the repo: a fresh machine needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-output

.PHONY: install demo test fuzz bench bench-online bench-workers clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: install
	mkdir -p $(DEMO)
	$(BIN)/ldaem fit corpora/ap/ap.dat --vocab corpora/ap/vocab.txt -k 20 --seed 1 -o $(DEMO)/ap.npz
	$(BIN)/ldaem topics $(DEMO)/ap.npz -n 10

test: install
	$(BIN)/python -m pytest -q

# The fuzz tests of `make test` with 20 times the examples, new ones each run (tests/test_fuzz.py).
fuzz: install
	LDAEM_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/test_fuzz.py --hypothesis-show-statistics

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/starts.py
	$(BIN)/python bench/map.py

# Online EM streaming 2M generated documents (written once to bench/data/) against gensim and scikit-learn: about 90 minutes.
bench-online: $(VENV)/.bench-installed
	$(BIN)/python bench/online_scale.py

# Seconds per batch EM iteration in-process and on local Dask clusters of 1, 2 and 4 workers.
bench-workers: $(VENV)/.bench-installed
	$(BIN)/python bench/workers.py

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info .pytest_cache
	rm -f ldaem/__pycache__/*.nbi ldaem/__pycache__/*.nbc
