"""Several processes on the CPU: the stage modules under torchrun (`python -m torch.distributed.run
--standalone --nproc_per_node 2`, DDP over gloo), on the tiny model, against one process at the same global
batch. torchrun, not `accelerate launch --cpu --num_processes 2`, which starts one process on this machine
(accelerate spreads CPU processes only through mpirun). Each process prints its stage's summary, whose
`processes` is the trainer's world size as that process saw it."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grasp_lib import examples
from grasp_lib import params as P
from grasp_lib.paths import REPO_ROOT

SMOKE = "params/smoke.yaml"


def with_overrides(overrides: dict) -> P.Params:
    return P.load(SMOKE, {k: P.parse_override(f"{k}={v}")[1] for k, v in overrides.items()})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """data/*.jsonl of the smoke params (what notebook 01 writes), copied into each run folder below."""
    run = tmp_path_factory.mktemp("prepared")
    examples.prepare(P.load(SMOKE), run)
    return run / "data"


def launch(stage: str, processes: int, run_dir: Path, overrides: dict, data_dir: Path | None = None) -> list[dict]:
    """`python -m grasp_lib.train.<stage>` as one process, or under torchrun with `processes`; each process's
    printed summary. `data_dir`: prepared data to copy into the run folder first."""
    if data_dir is not None:
        shutil.copytree(data_dir, run_dir / "data")
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    command = [sys.executable, *launcher, "-m", f"grasp_lib.train.{stage}", "--params", SMOKE, "--run-dir", str(run_dir)]
    command += [arg for k, v in overrides.items() for arg in ("-p", f"{k}={v}")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
                        "OMP_NUM_THREADS": "1"}  # the same float arithmetic in both runs; two processes, two cores
    out = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(command)} failed:\n{out.stderr[-4000:]}"
    # the stage's summary, not the trainer's printed logs (also dicts)
    summaries = [ast.literal_eval(line) for line in out.stdout.splitlines() if "'resumed_from'" in line]
    assert [s["processes"] for s in summaries] == [processes] * processes, out.stdout[-2000:]
    return summaries


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def logged(run_dir: Path, stage: str, key: str) -> list[float]:
    lines = (run_dir / "results" / f"{stage}_log.jsonl").read_text().splitlines()
    return [entry[key] for entry in map(json.loads, lines) if key in entry]


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def prompts_per_step(run_dir: Path) -> list[list[str]]:
    """The prompts of each GRPO step, from TRL's completion logs (gathered over all processes), in order."""
    import pandas as pd

    files = sorted((run_dir / "checkpoints" / "grpo" / "completions").glob("completions_*.parquet"))
    return [sorted(json.dumps(p, sort_keys=True, default=list) for p in pd.read_parquet(f)["prompt"]) for f in files]


@pytest.mark.slow
def test_sft_on_two_processes_equals_one_process_at_the_same_global_batch(tmp_path, data_dir):
    from grasp_lib.models import model_path

    launch("sft", 1, tmp_path / "one", {"sft.per_device_train_batch_size": 4, "lora": "null"}, data_dir)
    launch("sft", 2, tmp_path / "two", {"sft.per_device_train_batch_size": 2, "lora": "null"}, data_dir)
    losses_one, losses_two = logged(tmp_path / "one", "sft", "loss"), logged(tmp_path / "two", "sft", "loss")
    assert len(losses_one) == len(losses_two) == 3  # smoke.yaml: max_steps 3
    assert losses_two == pytest.approx(losses_one, rel=1e-4)
    start = weights(Path(model_path("tiny-random")))
    w_one, w_two = weights(tmp_path / "one" / "models" / "sft"), weights(tmp_path / "two" / "models" / "sft")
    print(f"largest update {max_difference(start, w_one):.3g}, largest difference 1 vs 2 processes "
          f"{max_difference(w_one, w_two):.3g}")
    assert max_difference(w_one, w_two) < 1e-3 * max_difference(start, w_one)


@pytest.mark.slow
def test_grpo_on_two_processes_takes_the_same_global_batches_as_one_process(tmp_path, data_dir):
    """TRL seeds each process differently for generation (set_seed(seed, device_specific=True)), so sampled
    completions, and with them the weights, differ between 1 and 2 processes by design; what must agree is
    the data: the same prompts in each step, each with num_generations completions, one model written."""
    # stages=grpo: GRPO starts from the tiny model itself (no SFT model in these run folders)
    launch("grpo", 1, tmp_path / "one", {"stages": "grpo", "grpo.per_device_train_batch_size": 4}, data_dir)
    launch("grpo", 2, tmp_path / "two", {"stages": "grpo", "grpo.per_device_train_batch_size": 2}, data_dir)
    steps_one, steps_two = prompts_per_step(tmp_path / "one"), prompts_per_step(tmp_path / "two")
    assert len(steps_one) == 2 and steps_two == steps_one  # smoke.yaml: max_steps 2, 4 completions a step
    assert all(len(step) == 4 and len(set(step)) == 2 for step in steps_one)  # 2 prompts x 2 generations
    for run in ("one", "two"):
        assert (tmp_path / run / "models" / "grpo" / "model.safetensors").exists()
        assert len(logged(tmp_path / run, "grpo", "reward")) == 2


def test_two_process_dpo_runs_and_both_ranks_train_on_the_same_pairs(tmp_path):
    """Defect 9 of the GPU path in a real two-process run: DPO pairs sampled on rank 0 and sent to both ranks
    (not marked `pins`: TRL 1.15's DPO needs the fused-head shim, which the launched processes do not load);
    test_gpu_path's torchrun test shows rank 1 never samples."""
    overrides = {"stages": "dpo", "rewards.funcs": "format,length", "grpo.reward_weights": "1.0,1.0",
                 "preference.samples": 4, "preference.margin": 0.01, "dpo.max_steps": 2,
                 "dpo.per_device_train_batch_size": 2, "dpo.max_length": 256}
    examples.prepare(with_overrides(overrides), tmp_path)
    summaries = launch("dpo", 2, tmp_path, overrides)
    counts = [{k: v for k, v in s.items() if k in ("prompts", "samples", "pairs", "mean_reward")} for s in summaries]
    assert counts[0] == counts[1] and counts[0]["samples"] == 16
    pairs = (tmp_path / "results" / "dpo_pairs.jsonl").read_text().splitlines()
    assert len(pairs) == counts[0]["pairs"] and (tmp_path / "models" / "dpo" / "config.json").exists()
