"""DPO stage: preference pairs from sampled completions ranked by the composite reward, TRL DPOTrainer."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grasp_lib import examples
from grasp_lib import params as P
from grasp_lib.rewards import composite_rewards
from grasp_lib.train import dpo, grpo


@pytest.mark.parametrize("rewards, margin, expected", [
    ([0.2, 0.9, 0.5], 0.1, ("b", "a")),
    ([0.5, 0.5, 0.5], 0.0, None),  # all tied: no pair even with margin 0
    ([0.5, 0.55, 0.5], 0.1, None),  # gap below the margin
    ([0.5, 0.75, 0.5], 0.25, ("b", "c")),  # a gap equal to the margin counts; worst: the last on ties
    ([1.0, 0.0, 1.0, 0.0], 0.5, ("a", "d")),  # ties: first best, last worst
    ([0.3], 0.0, None),  # one sample: nothing to compare
])
def test_build_pairs_table(rewards, margin, expected):
    completions = list("abcd")[:len(rewards)]
    pairs = dpo.build_pairs([{"prompt": "p", "completions": completions, "rewards": rewards}], margin)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == ([expected] if expected else [])
    assert all(p["prompt"] == "p" for p in pairs)


def test_build_pairs_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions but 1 rewards"):
        dpo.build_pairs([{"prompt": "p", "completions": ["a", "b"], "rewards": [1.0]}], 0.0)


REWARD = st.floats(min_value=-2, max_value=2, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(REWARD, min_size=0, max_size=6), max_size=5), st.floats(min_value=0, max_value=1))
def test_chosen_reward_always_exceeds_rejected_by_the_margin(groups, margin):
    pairs = dpo.build_pairs([{"prompt": i, "completions": [f"c{j}" for j in range(len(r))], "rewards": r}
                             for i, r in enumerate(groups)], margin)
    for pair in pairs:
        rewards = groups[pair["prompt"]]
        assert pair["chosen_reward"] > pair["rejected_reward"]
        assert pair["chosen_reward"] - pair["rejected_reward"] >= margin
        assert pair["chosen_reward"] == max(rewards) and pair["rejected_reward"] == min(rewards)
        assert pair["chosen"] != pair["rejected"]
    # a group yields a pair exactly when its spread reaches the margin
    assert len(pairs) == sum(1 for r in groups if len(r) > 1 and max(r) > min(r) and max(r) - min(r) >= margin)


def test_composite_reward_is_the_weighted_sum_and_skips_rewards_that_do_not_apply():
    def always(completions, **kw):
        return [1.0 for _ in completions]

    def only_first(completions, dataset, **kw):
        return [0.5 if d == "x" else None for d in dataset]

    rows = [{"id": "1", "dataset": "x"}, {"id": "2", "dataset": "y"}]
    assert composite_rewards([always, only_first], [0.2, 2.0], ["a", "b"], rows) == pytest.approx([1.2, 0.2])
    assert composite_rewards([always, only_first], None, ["a", "b"], rows) == pytest.approx([1.5, 1.0])


def test_stages_must_run_in_order_and_dpo_section_is_validated():
    assert P.load("params/smoke.yaml", {"stages": ["sft", "dpo", "grpo"]}).stages == ["sft", "dpo", "grpo"]
    with pytest.raises(P.ParamsError, match="out of order"):
        P.load("params/smoke.yaml", {"stages": ["grpo", "dpo"]})
    typo = P.load("params/smoke.yaml", {"stages": ["dpo"], "dpo.betta": 0.1})
    with pytest.raises(P.ParamsError, match="'beta'"):  # DPOConfig fields, checked before any work
        dpo.run(typo, "/nonexistent")


@pytest.mark.pins
def test_grpo_starts_from_the_dpo_model_when_dpo_ran(tmp_path, monkeypatch):
    class Stop(Exception):
        pass

    seen = []

    def fake_load(name, lora=None, **options):
        seen.append(name)
        raise Stop

    monkeypatch.setattr(grpo, "load_model", fake_load)
    params = P.load("params/smoke.yaml", {"stages": ["sft", "dpo", "grpo"]})
    examples.write_jsonl([], tmp_path / "data" / "rl.jsonl")
    for stages, expected in ((["sft", "dpo", "grpo"], tmp_path / "models" / "dpo"),
                             (["sft", "grpo"], tmp_path / "models" / "sft"), (["grpo"], "tiny-random")):
        params.stages = stages
        with pytest.raises(Stop):
            grpo.run(params, tmp_path)
        assert seen[-1] == str(expected)


@pytest.mark.pins
def test_dpo_smoke_on_tiny_random(tmp_path):
    # the untrained model writes noise, so format + length (which varies with the noise) rank its samples
    params = P.load("params/smoke.yaml", {
        "stages": ["dpo"], "rewards.funcs": ["format", "length"], "grpo.reward_weights": [1.0, 1.0],
        "preference.samples": 4, "preference.margin": 0.01, "dpo.max_steps": 2,
        "dpo.per_device_train_batch_size": 2, "dpo.max_length": 256, "dpo.learning_rate": 1e-4})
    examples.prepare(params, tmp_path)
    result = dpo.run(params, tmp_path)
    assert result["prompts"] == 4 and result["samples"] == 16 and result["pairs"] >= 1
    assert result["steps"] == 2
    pairs = [json.loads(line) for line in (tmp_path / "results" / "dpo_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == result["pairs"]
    assert all(p["chosen_reward"] - p["rejected_reward"] >= 0.01 for p in pairs)
    assert (tmp_path / "models" / "dpo" / "config.json").exists()
    log = [json.loads(line) for line in (tmp_path / "results" / "dpo_log.jsonl").read_text().splitlines()]
    assert any("rewards/margins" in e for e in log)


@pytest.mark.slow
def test_notebook_04_runs_dpo_then_grpo_from_it(tmp_path):
    from grasp_lib.runner import run_notebooks

    overrides = {"stages": ["dpo", "grpo"], "rewards.funcs": ["format", "length"], "grpo.reward_weights": [1.0, 1.0],
                 "preference.margin": 0.01, "dpo.max_steps": 1, "dpo.max_length": 256,
                 "dpo.per_device_train_batch_size": 2}
    run_notebooks("params/smoke.yaml", overrides, tmp_path, ["01_data", "04_grpo"])
    assert (tmp_path / "models" / "dpo" / "config.json").exists()
    assert (tmp_path / "models" / "grpo" / "config.json").exists()
    info = json.loads((tmp_path / "dpo_info.json").read_text())
    assert info["params"]["stages"] == ["dpo", "grpo"]
