"""The GPU pin set (requirements/gpu.txt over pyproject.toml, merged by scripts/gpu_pins.py): what `make gpu`
installs and what `make test-gpu-pins` installs on a CPU. Resolving and installing them is the Makefile's
job (pip's dry run and `pip check`); this checks how the two lists are made."""

import importlib.util
import re

import pytest

from grasp_lib.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("gpu_pins", REPO_ROOT / "scripts" / "gpu_pins.py")
gpu_pins = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_pins)


def pins(kind: str) -> dict[str, str]:
    return {gpu_pins.canonical(r): r for r in gpu_pins.merged(kind)}


def test_gpu_list_has_unsloth_and_the_versions_it_accepts():
    gpu = pins("gpu")
    assert gpu["unsloth"] == "unsloth==2026.10.9" and gpu["unsloth-zoo"] == "unsloth_zoo==2026.10.9"
    assert gpu["transformers"] == "transformers==5.17.0" and gpu["trl"] == "trl==1.15.0"
    major, minor = map(int, re.search(r"==(\d+)\.(\d+)", gpu["torch"]).groups())
    assert (major, minor) < (2, 15)  # unsloth: torch<2.15.0
    assert gpu["datasets"].split("==")[1] < "5"


def test_cpu_list_is_the_gpu_list_minus_unsloth_cuda_and_triton():
    cpu, gpu = pins("cpu"), pins("gpu")
    assert cpu["torch"] == "torch==2.13.0"  # the local CPU build, on the same pip line as the rest
    for name in ("unsloth", "unsloth-zoo", "triton", "xformers", "bitsandbytes", "torchvision", "torchao"):
        assert name not in cpu and name in gpu
    assert {n: r for n, r in cpu.items() if n != "torch"} == {n: gpu[n] for n in cpu if n != "torch"}


def test_every_project_dependency_is_in_both_lists():
    # a package added to pyproject joins the GPU environment by itself, at pyproject's pin unless overridden
    overridden = {gpu_pins.canonical(r) for r, _ in gpu_pins.gpu_overrides()}
    for requirement in gpu_pins.project_requirements():
        name = gpu_pins.canonical(requirement)
        for kind in ("cpu", "gpu"):
            assert name in pins(kind)
            if name not in overridden:
                assert pins(kind)[name] == requirement


def test_a_loose_gpu_pin_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "gpu.txt"
    bad.write_text("# comment\ntrl==1.15.0  # fine\ntransformers<=5.17\n")
    with pytest.raises(ValueError, match=r"gpu.txt:3: expected an exact pin"):
        gpu_pins.gpu_overrides(bad)
