# Roundtable: `make run` starts it on the embedded offline model; `make test` runs the checks.
QUESTION ?= Should our city ban private cars downtown?
TURNS ?= 8
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: setup run lint test lock

setup:
	@./scripts/setup

run: setup
	.venv/bin/roundtable ask "$(QUESTION)" --max-turns $(TURNS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	.venv/bin/pytest -ra

# Re-resolve the lock after changing dependencies in pyproject.toml (needs the registry).
lock:
	.venv/bin/uv pip compile pyproject.toml --extra dev --python 3.11 --generate-hashes -o requirements.lock
