# Two commands: `make run` serves the site, `make test` runs the whole suite.
# Each sets itself up: virtualenv, requirements, migrations, Redis, browser.

VENV := .venv
PY := $(VENV)/bin/python
PYTHON_FOR_VENV = $(shell scripts/find-python)

.PHONY: run serve test test-postgres test-scale cluster bench loadtest clean

run: $(VENV)/.installed-run
	scripts/dev-server

# The site in production mode on this machine: gunicorn, or uvicorn with SERVER=asgi.
SERVER ?= wsgi
serve: $(VENV)/.installed-run
	scripts/serve --server $(SERVER)

test: $(VENV)/.installed-test
	scripts/ensure-chromium
	$(PY) -m pytest

# The suite against PostgreSQL (the production database) instead of SQLite.
test-postgres: $(VENV)/.installed-test
	scripts/ensure-chromium
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/sessiondemo} $(PY) -m pytest

# The resharding test under traffic at full size (make test runs it smaller):
# 4,000 slots moved, a new primary given its whole share; under a minute.
test-scale: $(VENV)/.installed-test
	SESSIONDEMO_SCALE=1 $(PY) -m pytest sessiondemo/tests/test_cluster_resharding.py -k under_traffic

# A Redis Cluster to try the site on by hand: 3 primaries with a replica each
# on free loopback ports, in the foreground; it prints the settings to use.
cluster: $(VENV)/.installed-run
	$(PY) -m sessiondemo.testing.cluster

bench: $(VENV)/.installed-bench
	$(PY) bench/run.py

# The site under gunicorn and uvicorn, each with our engine and Django's cache
# engine, driven by locust on loopback (bench/loadtest/); about 5 minutes.
loadtest: $(VENV)/.installed-loadtest
	$(PY) bench/loadtest/run.py

$(VENV)/bin/python:
	@python="$(PYTHON_FOR_VENV)"; test -n "$$python" || exit 1; \
	echo "Creating $(VENV) with $$python"; "$$python" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: requirements.txt requirements-test.txt requirements-bench.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

$(VENV)/.installed-loadtest: requirements.txt requirements-test.txt requirements-bench.txt requirements-loadtest.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-loadtest.txt
	touch $@ $(VENV)/.installed-bench $(VENV)/.installed-test $(VENV)/.installed-run

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
