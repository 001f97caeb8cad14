"""MimicSFT: the gold-derived <think> plan round-trips (the gold answer parses back out of its own
template) for every family, and the reasoning reward scores the template well."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grasp_lib import params as P
from grasp_lib.parsing import parse
from grasp_lib.prompts import build_target, reasoning_target
from grasp_lib.rewards import ReasoningReward
from grasp_lib.tasks import get_task
from grasp_lib.prompts import sft_rows

ROWS = {  # as in test_tasks.py

    "ner": ("bc5cdr", {"text": "Naloxone reverses hypotension.", "entities": [
        {"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
        {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]}),
    "re": ("ddi", {"text": "Aspirin increases warfarin levels.", "label": "mechanism", "entities": [
        {"start": 18, "end": 26, "type": "drug", "text": "warfarin"},
        {"start": 0, "end": 7, "type": "drug", "text": "Aspirin"}]}),
    "triples": ("bc5cdr-cid", {"text": "x", "entities": [], "relations": [
        {"head": "Naloxone", "relation": "CID", "tail": "hypotension"}]}),
    "nary": ("drugcomb", {"text": "x", "entities": [], "combinations": [
        {"drugs": ["cisplatin", "etoposide", "bleomycin"], "label": "COMB"}, {"drugs": ["a", "b"], "label": "POS"}]}),
    "joint": ("scier", {"text": "CornerNet does object detection", "entities": [
        {"start": 0, "end": 9, "type": "Method", "text": "CornerNet"},
        {"start": 15, "end": 31, "type": "Task", "text": "object detection"}],
        "relations": [{"head": "CornerNet", "relation": "Used-For", "tail": "object detection"}]}),
    "qa": ("biorlhf", {"text": "How many DEGs?", "entities": [], "answer": "8,484 DEGs"}),
}


@pytest.mark.parametrize("family", sorted(ROWS))
def test_reasoning_template_round_trips(family):
    name, row = ROWS[family]
    spec = get_task(name)
    target = reasoning_target(row, spec)
    assert target.startswith("<think>\n") and "\n</think>\n" in target
    with_think, plain = parse(target, *spec.parse_args()), parse(build_target(row, spec), *spec.parse_args())
    assert with_think.status == "valid" and with_think.think
    assert (with_think.mentions, with_think.relations, with_think.label, with_think.combinations,
            with_think.answer) == (plain.mentions, plain.relations, plain.label, plain.combinations, plain.answer)
    empty = dict(row, entities=[], relations=[], combinations=[]) if family not in ("re", "qa") else row
    assert parse(reasoning_target(empty, spec), *spec.parse_args()).ok


@pytest.mark.parametrize("family, minimum", [("ner", 0.85), ("re", 0.8), ("joint", 0.8)])
def test_reasoning_reward_scores_the_template_well(family, minimum):
    name, row = ROWS[family]
    target = reasoning_target(row, get_task(name))
    reward = ReasoningReward()([target], text=[row["text"]], dataset=[name], task=[family])[0]
    assert reward >= minimum, target
    # the answer alone, without the plan, earns nothing from this reward
    assert ReasoningReward()([build_target(row, get_task(name))], text=[row["text"]], dataset=[name],
                             task=[family]) == [0.0]


WORDS = st.lists(st.sampled_from(["aspirin", "fever", "of", "the", "renal", "failure", "and", "in", "5-FU", "(", ")"]),
                 min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(WORDS, st.data())
def test_ner_template_round_trips_on_random_texts(words, data):
    text = " ".join(words) + "."
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    picked = data.draw(st.sets(st.integers(0, len(words) - 1), max_size=4))
    entities = [{"start": starts[i], "end": starts[i] + len(words[i]), "text": words[i],
                 "type": data.draw(st.sampled_from(["Chemical", "Disease"]))} for i in sorted(picked)]
    row, spec = {"text": text, "entities": entities}, get_task("bc5cdr")
    parsed = parse(reasoning_target(row, spec), *spec.parse_args())
    assert parsed.status == "valid"
    assert parsed.mentions == parse(build_target(row, spec), *spec.parse_args()).mentions


def test_sft_rows_use_the_template_only_with_the_reasoning_level():
    name, row = ROWS["ner"]
    row = dict(row, dataset=name)
    plain = P.load("params/smoke.yaml")
    mimic = P.load("params/smoke.yaml", {"prompt.levels": ["role", "task", "labels", "schema", "reasoning"]})
    assert sft_rows([row], plain, [])[0]["completion"][0]["content"] == build_target(row, get_task(name))
    completion = sft_rows([row], mimic, [])[0]["completion"][0]["content"]
    assert completion.startswith("<think>") and completion == reasoning_target(row, get_task(name))
    assert "<think>" in sft_rows([row], mimic, [])[0]["prompt"][0]["content"]  # the instruction asks for it
