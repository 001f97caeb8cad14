"""Every training stage is a module entry point (for `accelerate launch -m`), and the accelerate configs load."""

import subprocess
import sys

import pytest
from accelerate.commands.config.config_args import load_config_from_file


@pytest.mark.parametrize("stage", ["sft", "dpo", "grpo"])
def test_stage_module_entry_point(stage):
    out = subprocess.run([sys.executable, "-m", f"grasp_lib.train.{stage}", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--params" in out.stdout and "--run-dir" in out.stdout


@pytest.mark.parametrize("name, kind, zero", [("ddp", "MULTI_GPU", None), ("zero2", "DEEPSPEED", 2),
                                              ("zero3", "DEEPSPEED", 3)])
def test_accelerate_configs(name, kind, zero):
    config = load_config_from_file(f"params/accelerate/{name}.yaml")
    assert config.distributed_type.name == kind
    assert (config.deepspeed_config or {}).get("zero_stage") == zero
