"""Defect 9 of the GPU path in a real two-process run on the CPU: DPO pairs sampled on rank 0 and sent to both
ranks (not marked `pins`: TRL 1.15's DPO needs the fused-head shim, which the launched processes do not load)."""

import ast
import subprocess
import sys

from grasp_lib import examples
from grasp_lib import params as P


def test_two_process_dpo_runs_and_both_ranks_train_on_the_same_pairs(tmp_path):
    """Two processes (torchrun, gloo; `accelerate launch --cpu` starts one): the stage runs end to end with
    sampling on rank 0 (test_gpu_path's torchrun test shows rank 1 never samples), the same counts on both ranks."""
    overrides = {"stages": "dpo", "rewards.funcs": "format,length", "grpo.reward_weights": "1.0,1.0",
                 "preference.samples": 4, "preference.margin": 0.01, "dpo.max_steps": 2,
                 "dpo.per_device_train_batch_size": 2, "dpo.max_length": 256}
    params = P.load("params/smoke.yaml", {k: P.parse_override(f"{k}={v}")[1] for k, v in overrides.items()})
    examples.prepare(params, tmp_path)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "grasp_lib.train.dpo", "--params", "params/smoke.yaml", "--run-dir", str(tmp_path)]
    command += [arg for k, v in overrides.items() for arg in ("-p", f"{k}={v}")]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summaries = [line for line in out.stdout.splitlines() if line.startswith("{'prompts'")]
    assert len(summaries) == 2
    counts = [{k: v for k, v in ast.literal_eval(s).items()
               if k in ("prompts", "samples", "pairs", "mean_reward")} for s in summaries]
    assert counts[0] == counts[1] and counts[0]["samples"] == 16
    pairs = (tmp_path / "results" / "dpo_pairs.jsonl").read_text().splitlines()
    assert len(pairs) == counts[0]["pairs"] and (tmp_path / "models" / "dpo" / "config.json").exists()
