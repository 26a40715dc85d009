# MiniRAG. The two commands: `make run` (the product, embedded) and `make test` (the whole suite).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test fuzz eval lint format lock worker beat schema clean

help:
	@echo "make run     serve MiniRAG on http://127.0.0.1:$(PORT) (embedded: SQLite, local Qdrant, offline models)"
	@echo "make test    run the whole test suite (real PostgreSQL and Redis)"
	@echo "make worker  a Celery worker (needs REDIS_URL);  make beat: the scheduler"
	@echo "make lint    ruff;  make lock: re-pin requirements;  make schema: print the OpenAPI schema"
	@echo "make fuzz    the long API fuzz run (MINIRAG_FUZZ_EXAMPLES, default 200 per operation and mode; ~10 min)"
	@echo "make eval    answer quality on the evaluation sets (docs/quality.md; EVAL_ARGS=\"--set minirag\")"

$(STAMP): requirements.txt requirements-dev.txt scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $@

install: $(STAMP)

# --no-proxy-headers: the client address is the TCP peer; MiniRAG reads X-Forwarded-For itself, for
# exactly MINIRAG_NUM_PROXIES hops (uvicorn would otherwise trust it from any process on this host).
run: install
	@scripts/ensure_system_packages.sh --optional ocr
	@$(PY) scripts/init_env.py
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	@exec $(VENV)/bin/uvicorn minirag.asgi:application --host 127.0.0.1 --port $(PORT) --lifespan off --no-proxy-headers

# On every core (pytest-xdist; PYTEST_WORKERS=0 runs it in one process). Each worker has its own test
# database; a test file, and the browser package, go to one worker whole (conftest.py).
test: install
	@scripts/ensure_services.sh
	@scripts/ensure_browser_tools.sh
	@scripts/ensure_system_packages.sh ocr test-fonts
	@$(VENV)/bin/pytest -n $${PYTEST_WORKERS:-auto} --dist loadfile $(PYTEST_ARGS)

# The API fuzz suite with many more examples than the bounded run inside `make test`.
fuzz: install
	@scripts/ensure_services.sh
	@MINIRAG_FUZZ_EXAMPLES=$${MINIRAG_FUZZ_EXAMPLES:-200} MINIRAG_FUZZ_COVERAGE=$${MINIRAG_FUZZ_COVERAGE:-1} \
		$(VENV)/bin/pytest minirag/tests/test_fuzz_api.py -p no:cacheprovider -s $(PYTEST_ARGS)

# Answer quality on every evaluation set (docs/quality.md), in a throwaway embedded MiniRAG.
eval: install
	@scripts/ensure_system_packages.sh eval-docs
	@$(PY) -m evaluation validate
	@$(PY) -m evaluation run $(EVAL_ARGS)

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: install
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

lock: install
	@$(VENV)/bin/pip-compile -q --strip-extras --no-header --allow-unsafe requirements.in -o requirements.txt
	@$(VENV)/bin/pip-compile -q --strip-extras --no-header --allow-unsafe requirements-dev.in -o requirements-dev.txt

worker: install
	@$(VENV)/bin/celery -A minirag worker --loglevel=INFO

beat: install
	@$(VENV)/bin/celery -A minirag beat --loglevel=INFO

schema: install
	@$(PY) manage.py spectacular --validate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules
