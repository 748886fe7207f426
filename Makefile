# Two commands matter: `make demo` and `make test`. Both run `make setup` first, which is idempotent.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TINYMLAAS_DATA_DIR ?= $(CURDIR)/.data

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v g++ >/dev/null && command -v coap-client-notls >/dev/null && command -v chromium >/dev/null \
		&& command -v autoreconf >/dev/null && command -v libtoolize >/dev/null \
		&& command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
		&& test -f /usr/lib/arm-none-eabi/newlib/libc.a && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq g++ libcoap3-bin chromium autoconf automake libtool \
			gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm postgresql)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	# Quantization-aware training wraps tf_keras layers. tf_keras declares a dependency on the full
	# `tensorflow` wheel, which would be installed beside tensorflow-cpu; the two are one package, so
	# tf_keras (matched to the installed TensorFlow release) and its quantizer go in without deps.
	$(BIN)/python -m pip install -q --no-deps "tf_keras==$$($(BIN)/python -c 'from importlib.metadata import version; print(*version("tensorflow-cpu").split(".")[:2], sep=".")').*" \
		"tensorflow-model-optimization>=0.8" "dm-tree>=0.1.8"
	touch $(STAMP)

# `make demo DEMO_ARGS="--http-port 8080 --epochs 2"` passes options on to `tinymlaas demo`.
DEMO_ARGS ?=

demo: setup
	$(BIN)/tinymlaas demo $(DEMO_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# Two test workers: most of the suite waits on servers, timers and subprocesses, and the machines it
# runs on have two cores. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

bench: setup
	$(BIN)/python bench/lifecycle.py
	$(BIN)/python bench/fleet.py

clean:
	rm -rf $(VENV) .data .pytest_cache bench/results
