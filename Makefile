# Prompt Playground: the few commands a developer needs.
# llama-cpp-python compiles ggml from source. A native build (-march=native) on a CPU that
# advertises AMX compiles ggml's AMX kernels, which crash (SIGSEGV) on the first decode here;
# a portable AVX2 build runs the embedded model everywhere this project runs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

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
