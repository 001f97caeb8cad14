import pytest

from grasp_lib.params import ParamsError, check_section, load, parse_override, write_run_info
from grasp_lib.paths import REPO_ROOT


def test_quick_params_load():
    params = load("params/quick.yaml")
    assert params.model == "smollm2-135m" and params.data.dataset == "bc5cdr"


def test_unknown_key_lists_valid_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata:\n  sft_sizes: 3\n")
    with pytest.raises(ParamsError, match=r"bad.yaml.data: unknown key\(s\) \['sft_sizes'\]; valid keys: .*sft_size"):
        load(bad)


def test_overrides_and_their_errors():
    assert parse_override("sft.learning_rate=1e-4") == ("sft.learning_rate", 1e-4)
    assert parse_override("stages=sft,grpo") == ("stages", ["sft", "grpo"])
    assert parse_override("lora=null") == ("lora", None)
    assert load("params/quick.yaml", {"data.sft_size": 7}).data.sft_size == 7
    with pytest.raises(ParamsError, match="stages"):
        load("params/quick.yaml", {"stages": ["sft", "dpoo"]})
    with pytest.raises(ParamsError, match="reward_weights"):
        load("params/quick.yaml", {"grpo.reward_weights": [1.0]})
    with pytest.raises(ParamsError, match="key=value"):
        parse_override("sft.learning_rate")


def test_trainer_sections_are_checked_against_trl():
    from trl import SFTConfig

    check_section({"learning_rate": 1e-4}, SFTConfig, "sft")
    with pytest.raises(ParamsError, match=r"sft: unknown key\(s\) \['learnig_rate'\].*learning_rate"):
        check_section({"learnig_rate": 1e-4}, SFTConfig, "sft")


def test_run_info_has_params_versions_and_commit(tmp_path):
    import json

    path = write_run_info(load("params/quick.yaml"), tmp_path, "test")
    info = json.loads(path.read_text())
    assert info["params"]["name"] == "quick" and info["versions"]["torch"].startswith("2.13")
    assert "git_commit" in info


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "params").glob("*.yaml")))
def test_every_params_file_validates_including_trainer_sections(path):
    from peft import LoraConfig
    from trl import DPOConfig, GRPOConfig, SFTConfig

    params = load(path)
    check_section(params.sft, SFTConfig, "sft")
    check_section(params.dpo, DPOConfig, "dpo")
    check_section(params.grpo, GRPOConfig, "grpo")
    if params.lora:
        check_section(params.lora, LoraConfig, "lora")


def test_one_stage_override_is_a_list():
    assert load("params/smoke.yaml", dict([parse_override("stages=grpo")])).stages == ["grpo"]
    assert load("params/smoke.yaml", dict([parse_override("stages=sft,dpo,grpo")])).stages == ["sft", "dpo", "grpo"]
