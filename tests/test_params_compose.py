"""Params files compose: `base: other.yaml` is merged underneath before validation."""

import json

import pytest

from grasp_lib.params import ParamsError, deep_merge, load
from grasp_lib.run_files import write_run_info


def test_mappings_merge_at_every_depth_and_everything_else_replaces():
    base = {"name": "quick", "sft": {"learning_rate": 3e-4, "warmup_steps": 5},
            "rewards": {"funcs": ["format", "entity"], "entity": {"overlap_weight": 0.5, "type_credit": 0.5}},
            "lora": {"r": 8}}
    top = {"sft": {"warmup_steps": 2}, "rewards": {"funcs": ["binary"], "entity": {"type_credit": 0.0}}, "lora": None}
    assert deep_merge(base, top) == {
        "name": "quick", "sft": {"learning_rate": 3e-4, "warmup_steps": 2},
        "rewards": {"funcs": ["binary"], "entity": {"overlap_weight": 0.5, "type_credit": 0.0}}, "lora": None}
    assert base["sft"]["warmup_steps"] == 5  # the base is not modified


def test_a_file_based_on_another_gets_its_values_then_overrides_apply(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\nsft: {learning_rate: 1.0e-3, max_steps: 3}\n"
                                          "data: {sft_size: 16, eval_size: 8}\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nname: child\nsft: {max_steps: 5}\n")
    (tmp_path / "grandchild.yaml").write_text("base: child.yaml\ndata: {eval_size: 4}\n")
    params = load(tmp_path / "grandchild.yaml", {"sft.max_steps": 7})
    assert params.name == "child" and params.sft == {"learning_rate": 1e-3, "max_steps": 7}
    assert (params.data.sft_size, params.data.eval_size) == (16, 4)
    info = json.loads(write_run_info(params.to_dict(), tmp_path / "run", "test").read_text())
    assert info["params"]["sft"] == {"learning_rate": 1e-3, "max_steps": 7}  # the resolved params, as run


def test_a_key_of_the_merged_result_is_validated(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ndata: {sft_sizes: 3}\n")
    with pytest.raises(ParamsError, match=r"child.yaml: data: unknown key\(s\) \['sft_sizes'\]"):
        load(tmp_path / "child.yaml")


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "base: missing.yaml\n"}, r"a.yaml: key base: .*missing.yaml does not exist"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, r"b.yaml: key base: files form a cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"),
    ({"a.yaml": "base: [quick.yaml]\n"}, r"a.yaml: key base: expected a file name"),
    ({"a.yaml": "- name\n"}, r"a.yaml: expected a mapping of keys to values, got list"),
])
def test_bad_base_errors_name_the_file_and_the_key(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ParamsError, match=message):
        load(tmp_path / "a.yaml")


def differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    """Dotted keys whose values differ."""
    keys = set(a) | set(b)
    nested = {k for k in keys if isinstance(a.get(k), dict) and isinstance(b.get(k), dict)}
    return ({d for k in nested for d in differences(a[k], b[k], f"{prefix}{k}.")}
            | {f"{prefix}{k}" for k in keys - nested if a.get(k) != b.get(k)})


@pytest.mark.parametrize("path, changed", [
    ("params/ablation_binary.yaml", {"name", "grpo.max_steps", "grpo.reward_weights", "rewards.funcs"}),
    ("params/ablation_granular.yaml", {"name", "grpo.max_steps", "grpo.reward_weights", "rewards.funcs"}),
    ("params/ablation_adaptive.yaml", {"name", "grpo.max_steps", "grpo.reward_weights", "rewards.funcs",
                                       "rewards.adaptive"}),
    ("params/mimic_quick.yaml", {"name", "prompt.levels", "grpo.max_completion_length", "grpo.reward_weights",
                                 "rewards.funcs", "eval.max_new_tokens"}),
])
def test_variants_of_quick_differ_from_it_only_where_they_say(path, changed):
    assert differences(load("params/quick.yaml").to_dict(), load(path).to_dict()) == changed
