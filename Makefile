# VisionPrefer Studio. `make demo` runs the app on this machine; `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test venv services browser lint typecheck imports pytest pytest-sqlite mutants bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the demo: SQLite, embedded broker, a real worker process, the web server.
demo: venv
	$(PY) scripts/run_demo.py

## Set up and run every check: ruff, mypy, import-linter, pytest on PostgreSQL + Redis + Chromium.
test: venv services browser lint typecheck imports pytest pytest-sqlite

services:
	bash scripts/ensure_services.sh

browser:
	bash scripts/ensure_chromium.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy config api core annotate pipeline scoring

imports: venv
	$(VENV)/bin/lint-imports

pytest: venv
	$(PY) -m pytest -q

## The second, short lane: assignment, labeling, submit and import tests on SQLite (what `make demo` runs on).
SQLITE_TESTS := tests/annotate/test_assign_engine.py tests/annotate/test_assign_concurrency.py \
	tests/annotate/test_label_submit.py tests/annotate/test_constraints.py tests/scoring/test_judgments_io.py
pytest-sqlite: venv
	rm -rf .test-sqlite && mkdir -p .test-sqlite
	DATABASE_URL=sqlite:///$(CURDIR)/.test-sqlite/db.sqlite3 TEST_DATABASE_NAME=$(CURDIR)/.test-sqlite/test.sqlite3 \
		$(PY) -m pytest -q $(SQLITE_TESTS)

## Mutation testing (slow, not in CI): mutmut per module with a narrow test selection; docs/mutants.md.
mutants: venv
	$(PY) scripts/mutants.py

bench: venv
	@ls bench/*.py

clean:
	rm -rf $(VENV) .demo db.sqlite3 media .test-media staticfiles
