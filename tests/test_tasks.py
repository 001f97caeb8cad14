"""Task registry, gold targets (round-trip through the parser for every family) and prompts per family."""

import json

import pytest

from grasp_lib.corpora import REGISTRY
from grasp_lib.parsing import parse
from grasp_lib.prompts import build_target, input_text, mark_entities, system_prompt
from grasp_lib.tasks import FAMILIES, OUTPUT_SCHEMAS, TASKS, family_of, get_task

ROWS = {
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


def test_every_corpus_has_a_task_and_every_family_is_covered():
    assert set(TASKS) == set(REGISTRY)
    assert {t.family for t in TASKS.values()} == set(FAMILIES) == set(OUTPUT_SCHEMAS)
    for spec in TASKS.values():
        assert spec.labels and all(isinstance(v, str) and v and "\n" not in v for v in spec.labels.values())
        assert spec.metric
        assert spec.negative is None or spec.negative in spec.labels
    assert get_task("scier").relation_labels and get_task("gad").negative == "none"
    for spec in TASKS.values():
        assert spec.symmetric <= set(spec.relation_labels or spec.labels)  # symmetric types are its relation types
        assert family_of(spec) is FAMILIES[spec.family] and family_of(spec.dataset) is FAMILIES[spec.family]


def test_unknown_task_lists_known():
    with pytest.raises(KeyError, match="known: .*drugcomb"):
        get_task("nope")


@pytest.mark.parametrize("family", sorted(ROWS))
def test_gold_target_round_trips_through_the_parser(family):
    name, row = ROWS[family]
    spec = get_task(name)
    parsed = parse(build_target(row, spec), *spec.parse_args())
    assert parsed.status == "valid", parsed.reason
    expected = {
        "ner": lambda: parsed.mentions == (("Naloxone", "Chemical"), ("hypotension", "Disease")),
        "re": lambda: parsed.label == "mechanism",
        "triples": lambda: parsed.relations == (("Naloxone", "CID", "hypotension"),),
        "nary": lambda: parsed.combinations == ((("cisplatin", "etoposide", "bleomycin"), "COMB"), (("a", "b"), "POS")),
        "joint": lambda: parsed.mentions == (("CornerNet", "Method"), ("object detection", "Task"))
        and parsed.relations == (("CornerNet", "Used-For", "object detection"),),
        "qa": lambda: parsed.answer == "8,484 DEGs",
    }[family]
    assert expected()


@pytest.mark.parametrize("family", sorted(ROWS))
def test_empty_gold_targets_are_valid_too(family):
    name, row = ROWS[family]
    spec = get_task(name)
    empty = dict(row, entities=[], relations=[], combinations=[])
    assert parse(build_target(empty, spec), *spec.parse_args()).ok


@pytest.mark.parametrize("text, entities, expected", [
    ("A and B", [(0, 1), (6, 7)], "<< A >> and [[ B ]]"),
    ("A and B", [(6, 7), (0, 1)], "<< A >> and [[ B ]]"),  # order by position, not by list order
    ("AB", [(0, 1), (1, 2)], "<< A >>[[ B ]]"),  # adjacent
    ("@GENE$ in @DISEASE$", [(0, 6), (10, 19)], "<< @GENE$ >> in [[ @DISEASE$ ]]"),
])
def test_mark_entities_table(text, entities, expected):
    rows = [{"start": s, "end": e, "type": "x", "text": text[s:e]} for s, e in entities]
    assert mark_entities(text, rows) == expected


def test_mark_entities_needs_a_pair():
    with pytest.raises(ValueError, match="exactly two"):
        mark_entities("A", [{"start": 0, "end": 1, "type": "x", "text": "A"}])


def test_input_text_marks_only_pairwise_re():
    assert input_text(ROWS["re"][1], get_task("ddi")) == "<< Aspirin >> increases [[ warfarin ]] levels."
    assert input_text(ROWS["ner"][1], get_task("bc5cdr")) == ROWS["ner"][1]["text"]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_system_prompt_levels_for_every_dataset(name):
    spec = get_task(name)
    full = system_prompt(spec, ["role", "task", "labels", "schema", "reasoning"])
    assert spec.domain in full and FAMILIES[spec.family].definition in full and "<think>" in full
    example = full.split("e.g. ", 1)[1].rsplit(". JSON only.", 1)[0]
    assert parse(example, *spec.parse_args()).ok  # the schema example is itself a valid answer
    if family_of(spec).label_heading:
        assert all(label in full for label in spec.labels)
    assert system_prompt(spec, []) == ""


def test_few_shot_uses_only_the_datasets_own_shots():
    spec = get_task("ddi")
    shots = [dict(ROWS["re"][1], dataset="ddi"), dict(ROWS["ner"][1], dataset="bc5cdr")]
    prompt = system_prompt(spec, ["few_shot"], shots)
    assert '<< Aspirin >>' in prompt and '{"relation": "mechanism"}' in prompt and "Naloxone" not in prompt
    assert json.loads(build_target(ROWS["nary"][1], get_task("drugcomb")))[0]["label"] == "COMB"
