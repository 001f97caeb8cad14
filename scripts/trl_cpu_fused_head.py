"""pytest plugin of `make test-gpu-pins` (`-p trl_cpu_fused_head`): TRL 1.15 on a CPU.

TRL 1.15, the version Unsloth pins, computes every SFT (and confidence SFT) loss through a fused LM head whose
kernel is Triton, which runs on CUDA only: without triton the kernel is None (`AttributeError: 'NoneType'
object has no attribute 'apply'`), with triton on a CPU it fails for want of a driver. TRL 1.16 (the CPU pin)
falls back to torch; on a GPU the Triton kernel runs. For the CPU check of the GPU pins, TRL's kernel is
routed, for CPU tensors only, to the torch twin that Unsloth's own CPU backend installs
(unsloth_zoo.cpu.ops.patch_trl_fused_lm_head), read from the pinned unsloth_zoo wheel (GRASP_UNSLOTH_CPU_OPS,
written by `scripts/gpu_pins.py cpu-ops`): the code a CPU user of the GPU pins runs, not a copy of ours.
"""

import importlib.util
import os


def pytest_configure(config):
    path = os.environ.get("GRASP_UNSLOTH_CPU_OPS")
    if not path:
        return
    spec = importlib.util.spec_from_file_location("unsloth_zoo_cpu_ops", path)
    ops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ops)
    if not ops.patch_trl_fused_lm_head():
        raise RuntimeError(f"{path}: patch_trl_fused_lm_head found no fused LM head in the installed TRL")
