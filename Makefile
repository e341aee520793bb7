# One Makefile for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.10
VENV := .venv
BIN := $(VENV)/bin
MODEL := models/prakerja.tar.gz
TRAIN_INPUTS := config.yml domain.yml $(shell find data -type f -name '*.yml' 2>/dev/null)

export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1
# make run / make shell are development: the simulator is on, a local key is made.
export PRAKERJA_ENV ?= development

.PHONY: help install train run run-scaled shell mail retention test lint validate bench-nlu bench-nlu-dev bench-nlu-compare \
	bench-policy bench-gateway bench-http-writes bench-pg-reads bench-announce bench-registration bench-sms bench-e2e soak telegram-webhook supervisor agent \
	screenshots clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt
	@scripts/check_python.sh $(PYTHON)
	@if [ -x $(BIN)/python ] && ! scripts/check_python.sh $(BIN)/python 2>/dev/null; then \
	  echo "Recreating $(VENV): it is not Python 3.10"; rm -rf $(VENV); fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned requirements into $(VENV) (log: var/pip-install.log)"
	@mkdir -p var
	@$(BIN)/python -m pip install --upgrade 'pip<27' > var/pip-install.log 2>&1 \
	  && $(BIN)/python -m pip install -r requirements.txt >> var/pip-install.log 2>&1 \
	  || { tail -n 30 var/pip-install.log; exit 1; }
	@$(BIN)/python -m pip check
	@touch $@

install: $(BIN)/.installed ## Create the Python 3.10 venv with the pinned requirements

$(MODEL): $(TRAIN_INPUTS) | $(BIN)/.installed
	@echo "Training the model (data, domain or config changed)"
	@mkdir -p models var
	$(BIN)/rasa train --fixed-model-name prakerja --out models --quiet > var/train.log 2>&1 \
	  || { tail -n 40 var/train.log; exit 1; }

train: $(MODEL) ## Train the model if data/, domain.yml or config.yml changed

run: $(MODEL) ## Start the gateway+simulator (8000), Rasa (5005), actions (5055)
	@mkdir -p var
	exec $(BIN)/python -m bot.launcher $(MODEL)

run-scaled: $(MODEL) ## Several gateways, Rasa and action servers on PostgreSQL+Redis (DATABASE_URL, REDIS_URL; ARGS=--rasa 2 ...)
	@mkdir -p var
	exec $(BIN)/python -m bot.scaled $(ARGS) $(MODEL)

shell: $(MODEL) ## Chat with the assistant in this terminal
	@mkdir -p var
	$(BIN)/python -m bot.launcher --shell $(MODEL)

mail: $(BIN)/.installed ## Show the newest e-mails in the local outbox (LAST=N, default 5)
	@$(BIN)/python -m bot.notify.mailbox $(if $(LAST),--last $(LAST))

validate: $(BIN)/.installed ## Check the training data and domain
	$(BIN)/rasa data validate --fail-on-warnings --quiet

lint: $(BIN)/.installed ## ruff and mypy on our code
	$(BIN)/ruff check bot actions tests scripts bench
	$(BIN)/mypy

# pytest-xdist: test files spread over this many processes (0: all in this one).
PYTEST_WORKERS ?= 2

test: $(MODEL) lint ## Install, train if needed, run every test (PYTEST_WORKERS=2 processes)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench-nlu: $(MODEL) ## Measure the model on the held-out set (ARGS=--aggregates-only)
	$(BIN)/python -m bench.nlu $(ARGS)

bench-nlu-dev: $(MODEL) ## Measure the model on the development set (to tune on; prints misses)
	$(BIN)/python -m bench.nlu --dev $(ARGS)

bench-nlu-compare: $(BIN)/.installed ## Compare NLU pipelines (5-fold CV, latency, misfires)
	$(BIN)/python -m bench.nlu --compare

bench-policy: $(BIN)/.installed ## Compare dialogue policies on the test stories
	$(BIN)/python -m bench.policy

bench-gateway: $(BIN)/.installed ## Gateway throughput and correctness under load (local fakes; ARGS="--closed-loop ...")
	$(BIN)/python -m bench.gateway $(ARGS)

bench-http-writes: $(BIN)/.installed ## aiohttp client CPU a request: headers and body in two writes or one (bot/http_writes.py)
	$(BIN)/python -m bench.http_writes $(ARGS)

bench-pg-reads: $(BIN)/.installed ## PostgreSQL: a read in a transaction or outside one (bot.db.reading)
	$(BIN)/python -m bench.pg_reads $(ARGS)

bench-announce: $(BIN)/.installed ## A batch of 164,000 announced: selection, pacing, live replies, exactly once through a kill (ARGS=--members N)
	$(BIN)/python -m bench.announce $(ARGS)

bench-registration: $(BIN)/.installed ## Registry throughput: registrations, duplicate storm, NIK queue, quota race
	$(BIN)/python -m bench.registration

bench-sms: $(MODEL) ## SMS segments of every answer per policy version, and of a whole scripted registration over SMS (BENCH_PORTS=18200-18299)
	$(BIN)/python -m bench.sms_segments
	$(BIN)/python -m bench.sms_registration

bench-e2e: $(MODEL) ## Whole path under closed-loop load vs stock Rasa, SQLite+PostgreSQL (ARGS=--quick; trains stock once, cached)
	$(BIN)/python -m bench.e2e $(ARGS)

soak: $(MODEL) ## Kill gateway, Rasa, actions under traffic; fail on lost/duplicate/out-of-order (ARGS=--short)
	$(BIN)/python -m bench.soak $(ARGS)

telegram-webhook: $(BIN)/.installed ## Register the Telegram webhook (needs TELEGRAM_* and PUBLIC_BASE_URL)
	$(BIN)/python -m bot.channels.telegram_cli set-webhook

supervisor: $(BIN)/.installed ## Create a console supervisor: make supervisor NAME=name (password: prompt or CONSOLE_PASSWORD)
	@[ -n "$(NAME)" ] || { echo "Usage: make supervisor NAME=name"; exit 2; }
	$(BIN)/python -m bot.console.admin create-supervisor "$(NAME)"

agent: $(BIN)/.installed ## Create a console agent: make agent NAME=name (password: prompt or CONSOLE_PASSWORD)
	@[ -n "$(NAME)" ] || { echo "Usage: make agent NAME=name"; exit 2; }
	$(BIN)/python -m bot.console.admin create-agent "$(NAME)"

retention: $(BIN)/.installed ## Remove conversations and personal data older than RETENTION_DAYS (the gateway also does it hourly)
	PRAKERJA_ENV=$${PRAKERJA_ENV:-development} $(BIN)/python -m bot.privacy.retention

screenshots: $(MODEL) ## Refresh docs/screenshots/console-*.png (runs the console browser test; needs chromium)
	$(BIN)/python -m scripts.console_screenshots

clean: ## Remove the model, results and runtime files (keeps the venv)
	rm -rf models results var .rasa
