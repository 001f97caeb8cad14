"""Every training stage is a module entry point (for `accelerate launch -m`), and the accelerate configs load."""

import subprocess
import sys

import pytest
from accelerate.commands.config.config_args import load_config_from_file

pytestmark = pytest.mark.pins  # also under the GPU pin set (make test-gpu-pins)


@pytest.mark.parametrize("stage", ["sft", "dpo", "grpo"])
def test_stage_module_entry_point(stage):
    out = subprocess.run([sys.executable, "-m", f"grasp_lib.train.{stage}", "--help"], capture_output=True,
                         text=True, timeout=600)  # a loaded machine imports torch and TRL slowly
    assert out.returncode == 0, out.stderr
    assert "--params" in out.stdout and "--run-dir" in out.stdout and "KEY=VALUE" in out.stdout


def test_entry_point_applies_overrides_before_any_work(tmp_path):
    # a typo in an override fails at once, naming the key (nothing is loaded or trained)
    out = subprocess.run([sys.executable, "-m", "grasp_lib.train.grpo", "--params", "params/smoke.yaml",
                          "--run-dir", str(tmp_path), "-p", "grpo.use_vlm=true"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode != 0 and "use_vlm" in out.stderr and "use_vllm" in out.stderr


@pytest.mark.parametrize("name, kind, zero", [("ddp", "MULTI_GPU", None), ("zero2", "DEEPSPEED", 2),
                                              ("zero3", "DEEPSPEED", 3)])
def test_accelerate_configs(name, kind, zero):
    config = load_config_from_file(f"params/accelerate/{name}.yaml")
    assert config.distributed_type.name == kind
    assert (config.deepspeed_config or {}).get("zero_stage") == zero
