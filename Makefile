# The two commands of the README. Each sets up .venv on first use, then runs.
.PHONY: quickstart test lint setup clean

setup:
	@bash scripts/bootstrap.sh

quickstart: setup
	.venv/bin/pcm3 quickstart --out runs/quickstart

test: setup
	.venv/bin/ruff check .
	.venv/bin/pytest -q

lint: setup
	.venv/bin/ruff check .

clean:
	rm -rf runs .pytest_cache .ruff_cache
