import dataclasses
import shutil

import pytest

from grasp_lib.params import ParamsError, RewardParams, load, parse_override
from grasp_lib.paths import REPO_ROOT
from grasp_lib.preflight import check_section, preflight, resolve_model
from grasp_lib.run_files import write_run_info


def test_quick_params_load():
    params = load("params/quick.yaml")
    assert params.model == "smollm2-135m" and params.data.dataset == "bc5cdr"


def test_unknown_key_lists_valid_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata:\n  sft_sizes: 3\n")
    with pytest.raises(ParamsError, match=r"bad.yaml: data: unknown key\(s\) \['sft_sizes'\] \(close matches: "
                                          r"\{'sft_sizes': \['sft_size'.*\}\); valid keys: .*sft_size"):
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

    path = write_run_info(load("params/quick.yaml").to_dict(), tmp_path, "test")
    info = json.loads(path.read_text())
    assert info["params"]["name"] == "quick" and info["versions"]["torch"].startswith("2.13")
    assert "git_commit" in info


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "params").glob("*.yaml")))
def test_every_params_file_passes_preflight(path, monkeypatch):
    """Trainer and LoRA sections built into their TRL/PEFT classes, rewards, datasets, the model."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # paper.yaml names a hub model: allowed where the hub is reachable
    preflight(load(path), path)


def test_values_are_checked_with_key_value_and_expectation(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: -1\ndata:\n  rl_size: 2.5\n  mixture: {bc5cdr: 0}\n"
                   "eval:\n  temperatures: []\n  int8: 'yes'\n")
    with pytest.raises(ParamsError) as err:
        load(bad)
    message = str(err.value)  # every problem of a section at once
    for part in ("data.rl_size = 2.5: expected a valid integer", "data.mixture.bc5cdr = 0: expected greater than "
                 "or equal to 1", "eval.temperatures = []: expected", "eval.int8 = 'yes': expected a valid boolean"):
        assert part in message
    with pytest.raises(ParamsError, match=r"name = 'a/b': expected .*pattern"):
        load("params/smoke.yaml", {"name": "a/b"})  # the run folder's name
    with pytest.raises(ParamsError, match="seed = -1"):
        load("params/smoke.yaml", {"seed": -1})


def test_one_name_is_a_list_and_yaml_text_numbers_get_a_hint():
    assert load("params/smoke.yaml", {"rewards.funcs": "format", "grpo.reward_weights": [1.0]}).rewards.funcs == ["format"]
    with pytest.raises(ParamsError, match=r"sft.learning_rate = '1e-4': expected a valid number \(YAML reads"):
        preflight(load("params/smoke.yaml", {"sft.learning_rate": "1e-4"}))


def test_override_of_a_null_section_creates_it():
    assert load("params/quick.yaml", {"lora.r": 8}).lora == {"r": 8}


def test_model_is_resolved_at_load_time(tmp_path, monkeypatch):
    assert resolve_model("tiny-random") == "built-in"
    (tmp_path / "m").mkdir()
    with pytest.raises(ParamsError, match="has no config.json"):
        resolve_model(str(tmp_path / "m"))
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(ParamsError, match=r"no weights \(\*.safetensors\)"):  # a config alone is not a model
        resolve_model(str(tmp_path / "m"))
    from grasp_lib.models import model_path

    shutil.copytree(model_path("tiny-random"), tmp_path / "m", dirs_exist_ok=True)
    assert resolve_model(str(tmp_path / "m")) == str(tmp_path / "m")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ParamsError, match=r"model = 'org/not-cached': expected a built-in name .* offline"):
        resolve_model("org/not-cached")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert resolve_model("org/not-cached") == "hub"
    with pytest.raises(ParamsError, match="model = 'not a valid id!'"):
        resolve_model("not a valid id!")


def test_data_dir_relative_to_the_repository_and_must_exist(tmp_path):
    from grasp_lib.paths import data_root

    assert load("params/smoke.yaml", {"data.data_dir": "tests/fixtures"}).data.data_dir == "tests/fixtures"
    assert data_root("tests/fixtures") == REPO_ROOT / "tests" / "fixtures"
    with pytest.raises(FileNotFoundError, match="params data.data_dir = '.*nope': no such folder"):
        data_root(str(tmp_path / "nope"))
    assert data_root(str(tmp_path / "nope"), must_exist=False) == tmp_path / "nope"  # a fetch target


def test_one_stage_override_is_a_list():
    assert load("params/smoke.yaml", dict([parse_override("stages=grpo")])).stages == ["grpo"]
    assert load("params/smoke.yaml", dict([parse_override("stages=sft,dpo,grpo")])).stages == ["sft", "dpo", "grpo"]


def test_the_reward_settings_are_the_reward_registry_s():
    """rewards.<key> in params is exactly what the rewards' builders read (rewards.SETTINGS), plus the
    settings that are not one reward's: a setting the schema accepts is read, and one the rewards read is
    accepted."""
    from grasp_lib import rewards

    not_one_rewards = {"funcs", "symmetric_relations", "adaptive", *rewards.SHARED}
    assert {f.name for f in dataclasses.fields(RewardParams)} - not_one_rewards == set(rewards.SETTINGS)


def test_grounding_alignment_is_a_setting_and_its_value_is_checked():
    overrides = {"rewards.funcs": ["format", "grounding"], "grpo.reward_weights": [1.0, 1.0]}
    params = load("params/smoke.yaml", overrides | {"rewards.grounding.alignment": "normalised"})
    preflight(params)
    from grasp_lib.rewards import build_rewards

    assert build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))[1].alignment == "normalised"
    with pytest.raises(ParamsError, match=r"rewards: rewards.grounding.alignment: expected one of"):
        preflight(load("params/smoke.yaml", overrides | {"rewards.grounding.alignment": "fuzzy"}))
    with pytest.raises(ParamsError, match=r"rewards.grounding.alignment = 1: expected a valid string"):
        preflight(load("params/smoke.yaml", overrides | {"rewards.grounding.alignment": 1}))
