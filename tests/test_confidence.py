"""The confidence stage: targets from the model's own accuracy, the confidence line through the parser,
the prompt level, the split, the uncertainty reward's exact correctness and a run on the tiny model."""

import json

import pytest

from grasp_lib import examples, infer
from grasp_lib import params as P
from grasp_lib import stats
from grasp_lib.parsing import VALID, parse, stated_confidence, without_confidence
from grasp_lib.prompts import system_prompt
from grasp_lib.rewards.verifiers import UncertaintyReward
from grasp_lib.tasks import get_task
from grasp_lib.train import confidence
from grasp_lib.prompts import prompt_messages
from grasp_lib.train.common import start_model

LABELS = ("Chemical", "Disease")
TEXT = "Naloxone reversed the hypotension."
ROW = {"id": "r1", "dataset": "bc5cdr", "task": "ner", "text": TEXT,
       "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                    {"start": 22, "end": 33, "type": "Disease", "text": "hypotension"}]}
EMPTY = {"id": "r2", "dataset": "bc5cdr", "task": "ner", "text": "The rats were weighed daily.", "entities": []}
RIGHT = '{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}'
HALF = '{"Chemical": ["Naloxone"], "Disease": []}'


@pytest.mark.parametrize("completion, confidence_value", [
    (RIGHT + "\nConfidence: 80%", 0.8),
    (RIGHT + "\nconfidence: 7 %  \n", 0.07),
    (RIGHT + " Confidence: 100%", 1.0),
    (RIGHT + "\nConfidence: 0%", 0.0),
])
def test_a_final_confidence_line_is_part_of_the_schema(completion, confidence_value):
    parsed = parse(completion, LABELS)
    assert parsed.status == VALID and parsed.mentions == (("Naloxone", "Chemical"), ("hypotension", "Disease"))
    assert stated_confidence(completion) == pytest.approx(confidence_value)
    assert without_confidence(completion).strip() == RIGHT


def test_a_confidence_line_before_the_answer_is_prose_and_is_repaired():
    assert parse("Confidence: 80%\n" + RIGHT, LABELS).status == "repaired"


@pytest.mark.parametrize("row, completion, expected", [
    (ROW, RIGHT, True),
    (ROW, RIGHT + "\nConfidence: 40%", True),
    (ROW, HALF, False),
    (EMPTY, '{"Chemical": [], "Disease": []}', True),
    (EMPTY, "no idea", False),  # nothing predicted, nothing to find, but the answer did not parse
    (EMPTY, '{"Chemical": ["rats"], "Disease": []}', False),
])
def test_exactly_right(row, completion, expected):
    assert stats.exactly_right(stats.score_example(row, completion)) is expected


@pytest.mark.parametrize("right, percent", [
    ([True] * 8, 100), ([False] * 8, 0), ([True, False, False, False, False, False, False, False], 12),
    ([True, True, True, False, False, False, False, False], 38), ([True, False, False], 33)])
def test_confidence_percent(right, percent):
    assert stats.confidence_percent(right) == percent


def test_confidence_percent_needs_answers():
    with pytest.raises(ValueError, match="no answers"):
        stats.confidence_percent([])


@pytest.mark.parametrize("answer, target", [
    (RIGHT, RIGHT + "\nConfidence: 62%"),
    ("  " + RIGHT + "\nConfidence: 99%\n", RIGHT + "\nConfidence: 62%"),  # the old line is replaced
    ("\n\n", "Confidence: 62%"),
])
def test_confidence_target(answer, target):
    assert confidence.confidence_target(answer, 62) == target


def test_the_confidence_level_asks_for_the_line_and_drops_json_only():
    spec = get_task("bc5cdr")
    plain = system_prompt(spec, ["task", "schema"])
    asked = system_prompt(spec, ["task", "schema", "confidence"])
    assert plain.endswith("JSON only.") and "Confidence" not in plain
    assert "JSON only" not in asked
    assert asked.splitlines()[-1].startswith("After the JSON, one last line: Confidence: N%")


def test_params_confidence_stage_needs_its_rows_and_its_prompt_level():
    with pytest.raises(P.ParamsError, match="confidence_size"):
        P.load("params/smoke.yaml", {"stages": ["sft", "confidence"], "prompt.levels": ["schema", "confidence"]})
    with pytest.raises(P.ParamsError, match="confidence prompt level"):
        P.load("params/smoke.yaml", {"stages": ["sft", "confidence"], "data.confidence_size": 4})
    with pytest.raises(P.ParamsError, match="out of order"):
        P.load("params/smoke.yaml", {"stages": ["sft", "grpo", "confidence"], "data.confidence_size": 4,
                                     "prompt.levels": ["confidence"]})
    with pytest.raises(P.ParamsError, match=r"confidence: unknown key\(s\) \[.sample.\]"):
        P.load("params/smoke.yaml", {"confidence.sample": 3})
    loaded = P.load("params/confidence_quick.yaml")
    assert loaded.stages == ["sft", "confidence", "grpo"] and loaded.confidence.samples == 7


def test_confidence_split_is_disjoint_and_leaves_the_other_splits_unchanged():
    params = P.load("params/smoke.yaml")
    before, _ = examples.sample_splits(params.data, params.seed)
    params.data.confidence_size = 10
    after, _ = examples.sample_splits(params.data, params.seed)
    assert "confidence" not in before and len(after["confidence"]) == 10
    assert all(after[k] == before[k] for k in ("sft", "rl", "eval"))
    ids = {r["id"] for r in after["confidence"]}
    assert not ids & {r["id"] for r in after["sft"] + after["rl"]}
    params.data.confidence_size = 10 ** 6
    with pytest.raises(ValueError, match="data.confidence_size"):
        examples.sample_splits(params.data, params.seed)


def test_each_stage_starts_from_the_last_earlier_one(tmp_path):
    params = P.load("params/smoke.yaml")
    for stages, stage, expected in ((["sft", "confidence", "grpo"], "grpo", "confidence"),
                                    (["sft", "confidence", "dpo", "grpo"], "dpo", "confidence"),
                                    (["sft", "confidence"], "confidence", "sft"),
                                    (["confidence"], "confidence", None), (["sft", "grpo"], "grpo", "sft")):
        params.stages = stages
        assert start_model(params, tmp_path, stage) == (str(tmp_path / "models" / expected) if expected
                                                        else "tiny-random")


# greedy answer, then 3 samples, per row text: row 1 right 2 of 4 (greedy right), row 2 right 1 of 4 (greedy wrong)
ANSWERS = {TEXT: (RIGHT, [HALF, RIGHT, "oops"]),
           EMPTY["text"]: ('{"Chemical": ["rats"], "Disease": []}', ['{"Chemical": [], "Disease": []}', HALF, HALF])}


def test_measure_with_sample_targets_states_each_rows_share_of_right_answers(monkeypatch):
    def fake_generate(model, tokenizer, conversations, do_sample=False, num_samples=1, **options):
        texts = [ANSWERS[c[-1]["content"].removeprefix("Text: ")] for c in conversations]
        return [list(s[1][:num_samples]) for s in texts] if do_sample else [[s[0]] for s in texts]

    monkeypatch.setattr(infer, "generate", fake_generate)
    params = P.load("params/smoke.yaml", {"stages": ["confidence"], "data.confidence_size": 2,
                                          "prompt.levels": ["schema", "confidence"], "confidence.samples": 3,
                                          "confidence.target": "sample"})
    conversations = [prompt_messages(r, params, []) for r in (ROW, EMPTY)]
    records = confidence.measure(None, None, params, [ROW, EMPTY], conversations)
    assert [(r["greedy_right"], r["samples_right"], r["percent"]) for r in records] == [(True, 1, 50), (False, 1, 25)]
    assert records[0]["target"] == RIGHT + "\nConfidence: 50%"
    assert records[1]["target"] == '{"Chemical": ["rats"], "Disease": []}\nConfidence: 25%'


def test_group_targets_state_the_share_right_among_answers_of_the_same_kind():
    greedy = [ANSWERS[TEXT][0], ANSWERS[EMPTY["text"]][0]]
    sampled = [ANSWERS[TEXT][1], ANSWERS[EMPTY["text"]][1]]
    records = confidence.confidence_records([ROW, EMPTY], greedy, sampled, "group")
    # kinds: 2 items: RIGHT, RIGHT (both right) -> 100; 1 item: HALF, rats, HALF, HALF (none right) -> 0
    assert [(r["kind_items"], r["percent"], r["row_percent"]) for r in records] == [(2, 100, 50), (1, 0, 25)]
    capped = confidence.confidence_records([ROW, EMPTY], greedy, sampled, "group", max_items=1)
    assert [r["percent"] for r in capped] == [33, 33]  # 1+ items: 2 right of 6
    with pytest.raises(ValueError, match="confidence.target"):
        confidence.confidence_records([ROW], greedy[:1], sampled[:1], "mean")
    with pytest.raises(ValueError, match="confidence.answer"):
        confidence.confidence_records([ROW], greedy[:1], sampled[:1], "group", answer="teacher")
    with pytest.raises(P.ParamsError, match="confidence.target"):
        P.load("params/smoke.yaml", {"confidence.target": "mean"})


def test_gold_answers_carry_the_confidence_measured_for_their_kind():
    greedy = [ANSWERS[TEXT][0], ANSWERS[EMPTY["text"]][0]]
    sampled = [ANSWERS[TEXT][1], ANSWERS[EMPTY["text"]][1]]
    records = confidence.confidence_records([ROW, EMPTY], greedy, sampled, "group", answer="gold")
    # ROW's gold has 2 items (model answers with 2 items: 2 of 2 right); EMPTY's gold 0 (1 of 1 right)
    assert [r["target"] for r in records] == [RIGHT + "\nConfidence: 100%",
                                              '{"Chemical": [], "Disease": []}\nConfidence: 100%']
    four = dict(ROW, entities=ROW["entities"] * 2)  # a kind (4 items) the model never gave: the overall share
    records = confidence.confidence_records([four], [HALF], [["oops", RIGHT]], "group", answer="gold")
    assert records[0]["percent"] == 0  # none of HALF, oops, RIGHT is right for four's doubled gold
    with pytest.raises(P.ParamsError, match="confidence.answer"):
        P.load("params/smoke.yaml", {"confidence.answer": "teacher"})


def test_uncertainty_reward_exact_correctness_is_the_calibration_event():
    columns = {"text": [TEXT] * 3, "dataset": ["bc5cdr"] * 3, "task": ["ner"] * 3, "entities": [ROW["entities"]] * 3}
    completions = [RIGHT + "\nConfidence: 80%", HALF + "\nConfidence: 80%", HALF]
    exact = UncertaintyReward(correctness="exact")(completions, **columns)
    assert exact == [pytest.approx(1 - 0.2 ** 2), pytest.approx(1 - 0.8 ** 2), None]
    granular = UncertaintyReward()(completions, **columns)  # soft F1 of HALF: precision 1, recall 1/2
    assert granular[1] == pytest.approx(1 - (0.8 - 2 / 3) ** 2)
    with pytest.raises(ValueError, match="correctness"):
        UncertaintyReward(correctness="strict")


@pytest.mark.pins
def test_confidence_stage_runs_on_tiny_random_and_grpo_follows_it(tmp_path):
    from grasp_lib.train import grpo

    params = P.load("params/smoke.yaml", {
        "stages": ["confidence", "grpo"], "data.confidence_size": 4, "prompt.levels": ["task", "schema", "confidence"],
        "confidence.samples": 3, "confidence_sft.max_steps": 2, "confidence_sft.per_device_train_batch_size": 2,
        "confidence_sft.max_length": 256, "rewards.funcs": ["format", "entity", "uncertainty"],
        "grpo.reward_weights": [0.2, 1.0, 0.5], "rewards.uncertainty": {"correctness": "exact"}})
    examples.prepare(params, tmp_path)
    result = confidence.run(params, tmp_path)
    assert result["rows"] == 4 and result["answers_per_row"] == 4 and result["steps"] == 2
    lines = (tmp_path / "results" / "confidence_targets.jsonl").read_text().splitlines()
    targets = [json.loads(line) for line in lines]
    assert len(targets) == 4
    assert all(t["target"].endswith(f"Confidence: {t['percent']}%") for t in targets)
    assert (tmp_path / "models" / "confidence" / "config.json").exists()
    assert json.loads((tmp_path / "confidence_info.json").read_text())["params"]["confidence"]["samples"] == 3
    assert grpo.run(params, tmp_path)["steps"] == 2
    log = (tmp_path / "results" / "grpo_log.jsonl").read_text()
    assert "rewards/uncertainty/mean" in log


@pytest.mark.slow
def test_notebook_03_runs_sft_then_the_confidence_stage(tmp_path):
    from grasp_lib.runner import run_notebooks

    overrides = {"stages": ["sft", "confidence"], "data.confidence_size": 4,
                 "prompt.levels": ["task", "schema", "confidence"], "confidence.samples": 2,
                 "confidence_sft.max_steps": 1, "confidence_sft.max_length": 256}
    run_notebooks("params/smoke.yaml", overrides, tmp_path, ["01_data", "03_sft"])
    assert (tmp_path / "data" / "confidence.jsonl").read_text().count("\n") == 4
    assert (tmp_path / "models" / "confidence" / "config.json").exists()
    executed = (tmp_path / "notebooks" / "03_sft.ipynb").read_text()
    assert "greedy_right" in executed  # the targets table was shown
