# Entry points: `make run` (dashboard), `make test` (the whole suite), `make lint` (ruff and mypy, as CI runs them).
# Each builds .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# The offline MNIST copy beside this checkout and Debian's Fashion-MNIST, when present; override freely.
empty :=
space := $(empty) $(empty)
GAN_DATA_DIR ?= $(subst $(space),:,$(abspath $(wildcard ../shared/datasets /usr/share/datasets/fashion-mnist)))
export GAN_DATA_DIR
PORT ?= 8501

.PHONY: run demo test test-fast lint install clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt  # with its .pyc files: this machine sets PYTHONDONTWRITEBYTECODE
	touch $@

run: install
	$(PY) -m streamlit run app.py --server.port $(PORT)

demo: install  # the public demo profile (README "Public demo"); GAN_MAX_UPLOAD_MB etc. pass through
	PYTHON=$(PY) scripts/serve_demo.sh --server.port $(PORT)

test: install
	$(PY) -m pytest -q --durations=20  # the slowest tests in every CI log, to keep the run under 20 minutes

test-fast: install  # the edit loop, a minute or two: no Chromium, Ray, PostgreSQL or slow tests (`make test` is what CI runs)
	$(PY) -m pytest -q -m "not browser and not ray and not postgres and not slow" --durations=5

lint: install  # ruff on every Python file, mypy on gan_core (pyproject.toml); both run, then either fails it
	status=0; $(PY) -m ruff check . || status=1; $(PY) -m mypy || status=1; exit $$status

clean:
	rm -rf $(VENV) .cache .pytest_cache
