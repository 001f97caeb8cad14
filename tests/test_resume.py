"""Checkpoints every N steps and automatic resume: a GRPO run on tiny-random killed after its first
checkpoint is rerun with the same params, continues from that checkpoint and finishes."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from grasp_lib import examples
from grasp_lib import params as P
from grasp_lib.train import common, grpo, sft

pytestmark = pytest.mark.pins  # also under the GPU pin set (make test-gpu-pins)

OVERRIDES = {"stages": ["grpo"], "grpo.max_steps": 3, "grpo.save_strategy": "steps", "grpo.save_steps": 1}


class Killed(RuntimeError):
    pass


class KillAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise Killed(f"killed after saving step {state.global_step}")


class Steps(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)


def _final(log_path):
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    return [e for e in entries if "loss" in e and "reward" in e]


@pytest.fixture
def smoke(tmp_path):
    params = P.load("params/smoke.yaml", OVERRIDES)
    examples.prepare(params, tmp_path / "a")
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b" / "data")
    return params, tmp_path


def test_last_checkpoint_is_none_without_checkpoints_or_when_resume_is_off(tmp_path):
    assert common.last_checkpoint(tmp_path / "missing") is None
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-10").mkdir()
    assert common.last_checkpoint(tmp_path).endswith("checkpoint-10")
    assert common.last_checkpoint(tmp_path, resume=False) is None


def test_killed_grpo_run_resumes_from_its_checkpoint_and_finishes(smoke):
    params, tmp = smoke
    run_a = tmp / "a"
    with pytest.raises(Killed):
        grpo.run(params, run_a, callbacks=[KillAfterFirstSave()])
    checkpoints = run_a / "checkpoints" / "grpo"
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-1"]
    assert not (run_a / "models" / "grpo").exists()

    steps = Steps()
    result = grpo.run(params, run_a, callbacks=[steps])
    assert result["resumed_from"].endswith("checkpoint-1")
    assert steps.seen == [2, 3]  # started from the checkpoint's global_step, not from 0
    assert result["steps"] == 3
    assert (run_a / "models" / "grpo" / "config.json").exists()
    resumed_log = _final(run_a / "results" / "grpo_log.jsonl")
    assert [e["step"] for e in resumed_log] == [1, 2, 3]  # the first run's step 1 is kept in the log

    # the same seed without interruption: compare what each step logged
    fresh = grpo.run(params, tmp / "b")
    assert fresh["resumed_from"] is None
    fresh_log = _final(tmp / "b" / "results" / "grpo_log.jsonl")
    for key in ("reward", "loss", "completions/mean_length"):
        assert [e[key] for e in resumed_log] == [e[key] for e in fresh_log], key  # bit-identical on CPU
    resumed_weights = load_file(run_a / "models" / "grpo" / "model.safetensors")
    fresh_weights = load_file(tmp / "b" / "models" / "grpo" / "model.safetensors")
    assert resumed_weights.keys() == fresh_weights.keys()
    assert all(torch.equal(resumed_weights[k], fresh_weights[k]) for k in fresh_weights)


def test_killed_sft_run_resumes_from_its_checkpoint(smoke):
    params, tmp = smoke
    params.stages = ["sft"]
    params.sft |= {"max_steps": 2, "save_strategy": "steps", "save_steps": 1}
    with pytest.raises(Killed):
        sft.run(params, tmp / "a", callbacks=[KillAfterFirstSave()])
    steps = Steps()
    result = sft.run(params, tmp / "a", callbacks=[steps])
    assert result["resumed_from"].endswith("checkpoint-1") and steps.seen == [2] and result["steps"] == 2
    params.resume = False  # resume: false starts over
    steps = Steps()
    assert sft.run(params, tmp / "a", callbacks=[steps])["resumed_from"] is None and steps.seen == [1, 2]
