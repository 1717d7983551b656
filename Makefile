# HashInsight: `make run` starts the product with a demo farm; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup assets lint fmt migrate seed serve messages bench mutation up logs clean

$(VENV)/.installed: requirements.txt requirements-dev.txt edge/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

static/vendor/.built: node_modules/.package-lock.json scripts/build_assets.mjs
	npm run --silent build
	touch $@

setup: $(VENV)/.installed static/vendor/.built

assets: static/vendor/.built

run: setup migrate seed serve

# With COMPOSE=1, migrate and seed run inside the docker compose stack instead of the local venv.
ifdef COMPOSE
MANAGE := docker compose run --rm web python manage.py
else
MANAGE := $(PY) manage.py
endif

migrate: $(if $(COMPOSE),,setup)
	$(MANAGE) migrate --noinput

seed: $(if $(COMPOSE),,setup)
	$(MANAGE) seed_demo

serve:
	@echo "HashInsight on http://$(HOST):$(PORT)/  (demo logins: var/demo-credentials.txt)"
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT)

test: setup
	scripts/ensure_chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	@# Threads in ASGI and async tests open their own connections; persistent ones would outlive the test database.
	DB_CONN_MAX_AGE=0 $(VENV)/bin/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

messages: setup
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=node_modules --ignore=mutants
	$(PY) manage.py compilemessages --ignore=.venv --ignore=mutants

bench: setup
	$(PY) bench/run_all.py

# Mutation testing of the services, selectors and outbox (mutmut, through scripts/mutation_run.py so the
# @transaction.atomic services are mutated too; configured in pyproject.toml). Runs resume where they
# stopped; `rm -rf mutants` starts afresh. Two children by default: the box is shared.
MUTATION_JOBS ?= 2
mutation: setup
	$(PY) scripts/mutation_run.py run --max-children $(MUTATION_JOBS)
	$(PY) scripts/mutation_report.py

# Production (docker compose; see README).
up:
	test -f .env || (echo "copy .env.example to .env and fill it in first" && exit 1)
	docker compose up -d --build
logs:
	docker compose logs -f --tail=200
clean:
	rm -rf $(VENV) node_modules static/vendor
