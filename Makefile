# Prompt Playground: the few commands a developer needs.
PIP_INSTALL = pip install --upgrade pip >/dev/null && pip install -c constraints.txt

.PHONY: install app test lint fix bench

install:  ## install the app and the `playground` command
	$(PIP_INSTALL) -e .

app: install  ## install, then launch the app on the embedded model
	playground app

test:  ## install with test extras, lint, then run the whole suite
	$(PIP_INSTALL) -e ".[test]"
	ruff check . && ruff format --check .
	python -m pytest

lint:
	ruff check . && ruff format --check .

fix:
	ruff check --fix . && ruff format .

bench:  ## every benchmark in bench/ (prints ratios against its baseline)
	for b in bench/bench_*.py; do echo "== $$b"; python $$b || exit 1; done
