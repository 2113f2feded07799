# Roundtable: `make run` starts it on the embedded offline model; `make test` runs the checks.
QUESTION ?= Should our city ban private cars downtown?
TURNS ?= 8
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: setup run ask ui lint audit test lock

setup:
	@./scripts/setup

run: setup
	.venv/bin/roundtable ui

ui: run

ask: setup
	.venv/bin/roundtable ask "$(QUESTION)" --max-turns $(TURNS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

# pip-audit on the lock against security/allowlist.toml when a vulnerability database answers,
# and always the reviewed offline advisories (security/advisories.toml): no network is reported,
# not a failure; a vulnerable or forbidden pin fails.
audit: setup
	.venv/bin/python scripts/audit.py

test: lint audit
	./scripts/setup-test
	.venv/bin/pytest -ra

# Re-resolve the lock after changing dependencies in pyproject.toml (needs the registry).
lock:
	.venv/bin/uv pip compile pyproject.toml --extra dev --python 3.11 --generate-hashes -o requirements.lock
