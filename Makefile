# cryptocast: `make help` lists the targets. Works with or without `nix develop`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GRAN ?= hour
DATA ?=
DATA_DIR ?=
PAIRS ?=
PYTHON_BIN ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# the packaged CLI ([project.scripts] in pyproject.toml): `$(CLI) --help` lists its commands
CLI := $(VENV)/bin/cryptocast
# first line of the targets that do not install: a clear message instead of "No such file"
NEED_VENV = @test -x $(CLI) || { echo "cryptocast is not installed in $(VENV) yet: run make install first" >&2; exit 2; }
# ZenML state (local store, artifact store, MLflow tracking DB) lives in the repository,
# so a clone never touches ~/.config/zenml. Override to use your own ZenML home/server.
export ZENML_CONFIG_PATH ?= $(CURDIR)/.zenml-home
export ZENML_ANALYTICS_OPT_IN ?= false
export ZENML_AUTO_OPEN_DASHBOARD ?= false
export ZENML_LOGGING_COLORS_DISABLED ?= true
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PRE_COMMIT_HOME ?= $(CURDIR)/.cache/pre-commit

CONFIG ?=
CI_STEP := MAKE=$(MAKE) bash scripts/ci_step.sh
# pytest-xdist workers of `make test` (one test module per worker at a time)
WORKERS ?= 2
# make setup STACK=remote: the ZenML server of `make stack-up` (or ZENML_STORE_URL ...)
STACK ?= local
# every path is quoted: a DATA_DIR or CONFIG with a space in it is one argument
DATA_ARGS := --gran $(GRAN) $(if $(DATA),--data "$(DATA)") $(if $(DATA_DIR),--data-dir "$(DATA_DIR)") $(if $(PAIRS),--pairs "$(PAIRS)")
TRAIN_ARGS := $(DATA_ARGS) $(if $(CONFIG),--config "$(CONFIG)") $(if $(UNTIL),--until "$(UNTIL)") $(if $(PROMOTE_BACKFILL),--promote-backfill) $(if $(REQUIRE_LEARNED),--require-learned)


.PHONY: help install lock setup stack-up stack-down stack-status hooks train report serve front front-stop app app-screenshot stop promote rollback forecasts metrics release-pr baseline monitor schedule unschedule exporter train-all status predict versions manifest mlflow-ui dashboard dashboard-stop lint format test test-fast ci bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24" "setuptools>=77"
	$(PY) -m pip install --quiet -r requirements.lock
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(VENV)/.installed ## Build .venv from the committed lockfile (idempotent)
	@echo "environment ready: $(VENV) ($$($(PY) --version))"

lock: ## Regenerate requirements.lock from pyproject.toml in a scratch venv
	bash scripts/lock.sh

setup: install ## Initialise ZenML and register the cryptocast stack (idempotent): [STACK=local|remote|kubernetes]
	$(CLI) setup --stack $(STACK)

stack-up: install ## Start the production stack on 127.0.0.1 (ZenML server, MLflow server, S3, DBs) [STACK_DIR=]
	$(CLI) stack-up

stack-down: install ## Stop the production stack (data and credentials stay in STACK_DIR, default .stack/)
	$(CLI) stack-down

stack-status: ## Health of each service of the production stack
	$(NEED_VENV)
	@$(CLI) stack-status

train: install ## Run the pipeline: GRAN=hour|day [DATA=auto|binance|files|sample] [DATA_DIR=] [PAIRS=] [CONFIG=] [UNTIL= [PROMOTE_BACKFILL=1]] [REQUIRE_LEARNED=1]
	$(CLI) train $(TRAIN_ARGS)

serve: install ## Start (or restart without downtime) the champion's server: GRAN=hour
	$(CLI) serve --gran $(GRAN)

front: install ## Start the stable front door of GRAN in the background (hour :8080, day :8081)
	$(CLI) front --gran $(GRAN)

front-stop: install ## Stop the front door of GRAN (model servers keep running)
	$(CLI) front-stop --gran $(GRAN)

app: install ## The forecast app (Streamlit) on http://127.0.0.1:8501 (Ctrl+C stops it): GRAN= [PORT=]
	$(VENV)/bin/streamlit run app/forecast_app.py --server.address 127.0.0.1 \
	  --server.port $(or $(PORT),8501) --server.headless true \
	  --browser.gatherUsageStats false --client.toolbarMode minimal -- --gran $(GRAN)

app-screenshot: install ## PNG of the forecast app as a browser draws it (headless Chromium) -> reports/forecast-app-<GRAN>.png: GRAN= [OUT=]
	$(PY) scripts/screenshot.py --gran $(GRAN) $(if $(OUT),--out "$(OUT)")

stop: install ## Stop the front door and the model servers of GRAN
	$(CLI) stop --gran $(GRAN)

promote: install ## Make VERSION the champion (a person's override, recorded): GRAN= VERSION=
	@test -n "$(VERSION)" || { echo "usage: make promote GRAN=hour VERSION=3"; exit 2; }
	$(CLI) promote --gran $(GRAN) --version $(VERSION) $(if $(REASON),--reason "$(REASON)")

rollback: install ## Champion back to 'previous' (or VERSION=n) and redeploy: GRAN=
	$(CLI) rollback --gran $(GRAN) $(if $(VERSION),--version $(VERSION)) $(if $(REASON),--reason "$(REASON)")

forecasts: install ## Latest stored forecasts of GRAN (DATABASE_URL, default SQLite)
	@$(CLI) forecasts --gran $(GRAN)

monitor: install ## Live accuracy + drift of the champion; retrains when needed: GRAN= [DATA= DATA_DIR= PAIRS=]
	$(CLI) monitor $(DATA_ARGS)

schedule: install ## Install the cron entries of GRAN (monitor + regular training): GRAN= [DATA= DATA_DIR= PAIRS=]
	$(CLI) schedule $(DATA_ARGS)

unschedule: install ## Remove the cron entries of GRAN (nothing else in the crontab)
	$(CLI) unschedule --gran $(GRAN)

exporter: install ## Prometheus metrics on http://127.0.0.1:9464/metrics (Ctrl+C stops it): [PORT=]
	$(CLI) exporter --port $(or $(PORT),9464)

status: ## What is served: champion, front door, model server, unfinished releases
	$(NEED_VENV)
	@$(CLI) status

predict: ## Forecast through the front door: GRAN=hour PAIR=BTC/USDT [HORIZON=]
	$(NEED_VENV)
	@$(CLI) predict --gran $(GRAN) --pair "$(or $(PAIR),BTC/USDT)" $(if $(HORIZON),--horizon $(HORIZON))

versions: ## Registered MLflow model versions with aliases: GRAN=hour
	$(NEED_VENV)
	@$(CLI) versions --gran $(GRAN)

manifest: ## Show models/<GRAN>_models/manifest.json
	$(NEED_VENV)
	@$(CLI) manifest --gran $(GRAN)

mlflow-ui: ## MLflow tracking UI on http://127.0.0.1:5000 (Ctrl+C stops it)
	$(NEED_VENV)
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(or $(PORT),5000) \
	  --backend-store-uri "$$($(CLI) tracking-uri)"

dashboard: ## ZenML dashboard on http://127.0.0.1:8237 (stop: make dashboard-stop)
	$(NEED_VENV)
	$(VENV)/bin/zenml login --local --port $(or $(PORT),8237)

dashboard-stop: ## Stop the local ZenML server and dashboard
	$(NEED_VENV)
	$(VENV)/bin/zenml logout --local

lint: install ## All pre-commit hooks on all files (ruff, whitespace, YAML/TOML, keys, ...)
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure

hooks: install ## Install the pre-commit git hook
	$(VENV)/bin/pre-commit install

format: ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install ## All tests (unit, e2e, realdata, browser) with coverage of all first-party code [WORKERS=2]
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 --cov --cov-report=term-missing:skip-covered --cov-report=xml:reports/coverage.xml --cov-fail-under=85

test-fast: install ## Unit tests only (tests/unit, no end-to-end or slow test), for the edit loop
	$(PY) -m pytest tests/unit -q -m "not e2e and not slow"

metrics: install ## Markdown metrics table of models/<GRAN>_models -> reports/metrics-<GRAN>.md
	$(CLI) metrics --gran $(GRAN) --out reports/metrics-$(GRAN).md

release-pr: ## (CI, branch dev) open or update the PR release/dev-to-main -> main
	bash scripts/release_pr.sh

# The same targets, in the same order, as .github/workflows/ml-cd.yml (tests/test_ci_parity.py)
# (each step timed into reports/ci-times.txt, which .ci/run prints at its end)
ci: ## What CI runs: lint, test, then train + metrics for hour and day
	@mkdir -p reports && rm -f reports/ci-times.txt
	$(CI_STEP) lint
	$(CI_STEP) test
	$(CI_STEP) train GRAN=hour
	$(CI_STEP) metrics GRAN=hour
	$(CI_STEP) train GRAN=day
	$(CI_STEP) metrics GRAN=day

report: install ## Accuracy of every candidate -> reports/accuracy-GRAN.md (+ PNGs): GRAN= [DATA= DATA_DIR= PAIRS=]
	$(CLI) report $(DATA_ARGS)

baseline: install ## Store the regression baseline (tests/baselines/regression.json)
	$(PY) scripts/baseline.py --write

bench: setup ## Timings: pipeline vs plain functions, scaling, contention -> reports/bench.json [SECTIONS=]
	$(PY) scripts/bench.py --out reports/bench.json $(if $(SECTIONS),--sections "$(SECTIONS)")

clean: ## Remove caches and build outputs (keeps .venv, models and ZenML state)
	rm -rf .pytest_cache .ruff_cache reports/coverage.xml src/*.egg-info .metrics
