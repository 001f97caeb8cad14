"""Taiyi two-stage SFT: one trainer pass per curriculum stage (stage A's family, then everything)."""

import json

import pytest
from transformers import TrainerCallback

from grasp_lib import examples
from grasp_lib import params as P
from grasp_lib.train import sft

pytestmark = pytest.mark.pins  # also under the GPU pin set (make test-gpu-pins)


class Passes(TrainerCallback):
    def __init__(self):
        self.passes = []

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.passes.append({"output_dir": args.output_dir, "rows": len(train_dataloader.dataset)})


def test_curriculum_runs_stage_a_then_stage_b(tmp_path):
    params = P.load("params/smoke.yaml", {
        "stages": ["sft"], "sft.max_steps": 2, "sft.per_device_train_batch_size": 2,
        "data.mixture": {"bc5cdr": 8, "gad": 8}, "data.sft_size": 8, "data.rl_size": 1, "data.eval_size": 1,
        "data.curriculum": "re"})
    splits, _ = examples.prepare(params, tmp_path)
    stage_a = [r for r in splits["sft"] if r["stage"] == "A"]
    assert stage_a and all(r["task"] == "re" for r in stage_a)

    passes = Passes()
    result = sft.run(params, tmp_path, callbacks=[passes])
    assert [p["output_dir"].rsplit("/", 1)[-1] for p in passes.passes] == ["stage-A", "stage-B"]
    assert [p["rows"] for p in passes.passes] == [len(stage_a), 8]  # stage B: every family
    assert result["stages"]["A"]["examples"] == len(stage_a) and result["steps"] == 4
    log = [json.loads(line) for line in (tmp_path / "results" / "sft_log.jsonl").read_text().splitlines()]
    losses = [(e["curriculum_stage"], e["step"]) for e in log if "loss" in e]
    assert losses == [("A", 1), ("A", 2), ("B", 3), ("B", 4)]  # one continuous step axis
    assert (tmp_path / "models" / "sft" / "config.json").exists()


def test_without_curriculum_one_pass(tmp_path):
    params = P.load("params/smoke.yaml", {"stages": ["sft"], "sft.max_steps": 1})
    examples.prepare(params, tmp_path)
    passes = Passes()
    result = sft.run(params, tmp_path, callbacks=[passes])
    assert len(passes.passes) == 1 and passes.passes[0]["output_dir"].endswith("checkpoints/sft")
    assert "stages" not in result and result["resumed_from"] is None
