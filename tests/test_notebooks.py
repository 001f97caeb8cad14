"""Papermill smoke run of all six notebooks on the tiny from-scratch model."""

import json

import pytest

from grasp_lib.runner import NOTEBOOKS, NotebookFailed, run_notebooks


@pytest.mark.slow
def test_every_notebook_runs_on_tiny_random(tmp_path):
    timings = run_notebooks("params/smoke.yaml", {}, tmp_path, NOTEBOOKS)
    assert list(timings) == NOTEBOOKS
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert list(metrics) == ["base", "sft", "grpo"] and metrics["sft"]["n"] == 8
    grpo_log = (tmp_path / "results" / "grpo_log.jsonl").read_text()
    assert "rewards/entity/mean" in grpo_log and "rewards/format/mean" in grpo_log
    for name in ("f1_by_stage.png", "f1_by_stage.pdf", "grpo_curves.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    info = json.loads((tmp_path / "sft_info.json").read_text())
    assert info["params"]["model"] == "tiny-random" and "trl" in info["versions"]


def test_failing_notebook_stops_the_run_and_is_named(tmp_path):
    with pytest.raises(NotebookFailed, match="02_prompts"):
        # no data/ in this run folder: notebook 02 cannot read sft.jsonl
        run_notebooks("params/smoke.yaml", {}, tmp_path, ["02_prompts", "03_sft"])
    assert not (tmp_path / "notebooks" / "03_sft.ipynb").exists()
