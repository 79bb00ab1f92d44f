# Shortcuts; the README's two commands work without make.
.PHONY: run test lint ci

run:
	python3 scripts/dev.py run

test:
	python3 scripts/dev.py test

lint:
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/python manage.py makemigrations --check --dry-run

ci:
	bash .ci/run
