"""The run folder's layout: where each stage's model is, and what a stage starts from."""

from grasp_lib import run_files


def test_stage_models_base_then_each_stage_in_order(tmp_path):
    assert run_files.stage_models(tmp_path, "tiny", ["sft", "grpo"]) == {
        "base": "tiny", "sft": str(tmp_path / "models" / "sft"), "grpo": str(tmp_path / "models" / "grpo")}
    assert run_files.stage_models(tmp_path, "tiny", []) == {"base": "tiny"}


def test_run_paths(tmp_path):
    assert run_files.checkpoints_dir(tmp_path, "dpo") == tmp_path / "checkpoints" / "dpo"
    assert run_files.result_path(tmp_path, "stage_tests.json") == tmp_path / "results" / "stage_tests.json"
    assert run_files.log_path(tmp_path, "grpo") == tmp_path / "results" / "grpo_log.jsonl"
    assert run_files.sources_path(tmp_path) == tmp_path / "figures" / "SOURCES.md"
    assert run_files.inputs_path(tmp_path) == tmp_path / "data" / "inputs.json"
