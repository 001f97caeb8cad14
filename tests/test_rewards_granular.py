"""Hand-computed values for every reward beyond format/entity (tests/test_rewards.py), table-driven."""

import json
import pickle

import pytest

from grasp_lib import tasks
from grasp_lib.rewards import (REWARDS, BinaryReward, ConsistencyReward, GroundingReward, LengthReward, NaryReward,
                               PathwayReward, ReasoningReward, RelationReward, TaskAdaptive, UncertaintyReward,
                               VerifierReward, build_rewards, factual_reward, grounding_reward)

TEXT = "Naloxone reversed clonidine-induced hypotension."
GOLD = [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
        {"start": 18, "end": 27, "type": "Chemical", "text": "clonidine"},
        {"start": 36, "end": 47, "type": "Disease", "text": "hypotension"}]
PERFECT_NER = '{"Chemical": ["Naloxone", "clonidine"], "Disease": ["hypotension"]}'

TEST_TASKS = {
    "t_re": tasks.TaskSpec("t_re", "re", "test", {"CPR:3": "upregulator", "CPR:4": "downregulator", "false": "none"}),
    "t_triples": tasks.TaskSpec("t_triples", "triples", "test",
                                {"INHIBITOR": "i", "ACTIVATOR": "a", "ASSOCIATED": "s"}),
    "t_nary": tasks.TaskSpec("t_nary", "nary", "test", {"POS": "p", "NEG": "n", "COMB": "c"}),
    "t_joint": tasks.TaskSpec("t_joint", "joint", "test", {"Chemical": "c", "Disease": "d"}, {"CID": "induces"}),
    "t_qa": tasks.TaskSpec("t_qa", "qa", "test", {}),
    "t_sym": tasks.TaskSpec("t_sym", "triples", "test", {"INHIBITOR": "i", "ASSOCIATED": "s"},
                            symmetric=frozenset({"ASSOCIATED"})),
}


@pytest.fixture(autouse=True)
def test_tasks(monkeypatch):
    for name, spec in TEST_TASKS.items():
        monkeypatch.setitem(tasks.TASKS, name, spec)


def row(task, dataset, text="", entities=(), relations=(), label=None, combinations=(), answer=None):
    return {"text": text, "task": task, "dataset": dataset, "entities": list(entities),
            "relations": list(relations), "label": label, "combinations": list(combinations), "answer": answer}


def call(func, completion, r):
    """A reward on one completion, with the row's columns as TRL passes them."""
    return func([completion], **{k: [v] for k, v in r.items()})[0]


def ner_row(gold=GOLD, text=TEXT):
    return row("ner", "bc5cdr", text, gold)


# ---------------------------------------------------------------- relation
REL_GOLD = [{"head": "aspirin", "relation": "INHIBITOR", "tail": "COX-1"},
            {"head": "aspirin", "relation": "INHIBITOR", "tail": "COX-2"}]
REL_TEXT = "aspirin inhibits COX-1 and COX-2."


def triples(*items):
    return json.dumps([list(t) for t in items])


@pytest.mark.parametrize("completion, gold, settings, expected", [
    (triples(("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "INHIBITOR", "COX-2")), REL_GOLD, {}, 1.0),
    ("[]", REL_GOLD, {}, 0.0),  # empty prediction
    ("[]", [], {}, 1.0),  # empty gold, empty prediction
    (triples(("aspirin", "INHIBITOR", "COX-1")), [], {}, 0.0),  # empty gold, something predicted
    # duplicate: the repeat matches nothing (COX-1 vs COX-2 share no word): 2 * 1 / (2 + 2)
    (triples(("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "INHIBITOR", "COX-1")), REL_GOLD, {}, 0.5),
    # reversed direction of an asymmetric type: nothing, or reversed_credit * 1 -> 2 * 0.5 / 3
    (triples(("COX-1", "INHIBITOR", "aspirin")), REL_GOLD, {}, 0.0),
    (triples(("COX-1", "INHIBITOR", "aspirin")), REL_GOLD, {"reversed_credit": 0.5}, 1 / 3),
    # right pair, wrong type: head 0.25 + tail 0.25 -> 2 * 0.5 / 3
    (triples(("aspirin", "ACTIVATOR", "COX-1")), REL_GOLD, {}, 1 / 3),
    # overlapping tail "COX-1 enzyme": word Jaccard 1/2 -> 0.25 + 0.125 + 0.5 = 0.875 -> 2 * 0.875 / 3
    (triples(("aspirin", "INHIBITOR", "COX-1 enzyme")), REL_GOLD, {}, 2 * 0.875 / 3),
    # hallucinated triple: 2 * 1 / (2 + 2)
    (triples(("aspirin", "INHIBITOR", "COX-1"), ("ibuprofen", "INHIBITOR", "COX-3")), REL_GOLD, {}, 0.5),
    # case and unicode: casefold("Β-CAROTENE") == "β-carotene"
    (triples(("Β-CAROTENE", "INHIBITOR", "cox-2")), [{"head": "β-carotene", "relation": "INHIBITOR", "tail": "COX-2"}],
     {}, 1.0),
    ("aspirin inhibits COX-1", REL_GOLD, {}, 0.0),  # unparsable
])
def test_relation_hand_computed(completion, gold, settings, expected):
    reward = RelationReward(**settings)
    assert call(reward, completion, row("triples", "t_triples", REL_TEXT, relations=gold)) == pytest.approx(expected)


def test_relation_symmetric_types_ignore_direction():
    """Symmetry is the task's (TaskSpec.symmetric): the same in the relation reward, binary and the metric."""
    gold = [{"head": "lithium", "relation": "ASSOCIATED", "tail": "tremor"}]
    swapped = triples(("tremor", "ASSOCIATED", "lithium"))
    directed = row("triples", "t_triples", "lithium and tremor", relations=gold)
    symmetric = row("triples", "t_sym", "lithium and tremor", relations=gold)
    assert call(RelationReward(), swapped, directed) == call(BinaryReward(), swapped, directed) == 0.0
    assert call(RelationReward(), swapped, symmetric) == call(BinaryReward(), swapped, symmetric) == 1.0
    # partial credit for a symmetric type: an overlapping swapped triple earns its swapped credit
    near = triples(("tremor", "ASSOCIATED", "lithium salts"))  # head 0.25 * 1/2 + tail 0.25 + relation 0.5
    assert call(RelationReward(), near, symmetric) == pytest.approx(2 * 0.875 / 2)
    assert call(RelationReward(), near, directed) == 0.0
    with pytest.raises(ValueError, match="TaskSpec.symmetric"):
        build_rewards(["relation", "binary"], {"symmetric_relations": ["ASSOCIATED"]})


@pytest.mark.parametrize("completion, expected", [
    ('{"relation": "CPR:4"}', 1.0),
    ('{"relation": "CPR:3"}', 0.0),
    ('{"relation": "CPR:9"}', 0.0),  # unknown label: wrong, never mapped to a default class
    ("The relation is CPR:4.", 0.0),  # unparsable
])
def test_relation_label_of_marked_pair(completion, expected):
    assert call(RelationReward(), completion, row("re", "t_re", "x", label="CPR:4")) == expected


def test_relation_joint_and_not_applicable():
    r = row("joint", "t_joint", "cocaine caused seizures", relations=[
        {"head": "cocaine", "relation": "CID", "tail": "seizures"}])
    answer = '{"entities": {"Chemical": ["cocaine"], "Disease": ["seizures"]}, "relations": [["cocaine", "CID", "seizures"]]}'
    assert call(RelationReward(), answer, r) == 1.0
    assert call(RelationReward(), PERFECT_NER, ner_row()) is None


# ---------------------------------------------------------------- nary
NARY_GOLD = [{"drugs": ["cisplatin", "paclitaxel", "gemcitabine"], "label": "POS"},
             {"drugs": ["aspirin", "warfarin"], "label": "NEG"}]


def combos(*items):
    return json.dumps([{"drugs": list(d), "label": lab} for d, lab in items])


@pytest.mark.parametrize("completion, gold, expected", [
    (combos((["gemcitabine", "cisplatin", "paclitaxel"], "POS"), (["warfarin", "aspirin"], "NEG")), NARY_GOLD, 1.0),
    # partial drug set: Jaccard 2/3 -> 2 * (2/3) / (1 + 2)
    (combos((["cisplatin", "paclitaxel"], "POS"),), NARY_GOLD, 4 / 9),
    # one shared drug is below min_shared 2: no credit
    (combos((["cisplatin", "aspirin"], "POS"),), NARY_GOLD, 0.0),
    # exact set, wrong label: label_credit 0.5 -> 2 * 0.5 / 3
    (combos((["aspirin", "warfarin"], "POS"),), NARY_GOLD, 1 / 3),
    # duplicate: matched once (M = 1), R = 1 -> (2 - 0.5) / (2 + 2)
    (combos((["aspirin", "warfarin"], "NEG"), (["warfarin", "aspirin"], "NEG")), NARY_GOLD, 0.375),
    # contradiction: NEG matches (1), POS matches nothing, R = 1 -> (2 - 0.5) / 4
    (combos((["aspirin", "warfarin"], "NEG"), (["aspirin", "warfarin"], "POS")), NARY_GOLD, 0.375),
    # case and whitespace in drug names: one of two found -> 2 * 1 / 3
    (combos((["Aspirin ", "WARFARIN"], "NEG"),), NARY_GOLD, 2 / 3),
    (combos((["α-interferon", "ribavirin"], "COMB"),), [{"drugs": ["Α-INTERFERON", "ribavirin"], "label": "COMB"}], 1.0),
    ("[]", [], 1.0),  # no combination in the text, none predicted
    ("[]", NARY_GOLD, 0.0),
    (combos((["aspirin", "warfarin"], "NEG"),), [], 0.0),
    ('[{"drugs": ["aspirin", "warfarin"], "label": "NEG"}', NARY_GOLD, 2 / 3),  # truncated, repaired
    ("aspirin plus warfarin", NARY_GOLD, 0.0),
])
def test_nary_hand_computed(completion, gold, expected):
    assert call(NaryReward(), completion, row("nary", "t_nary", "x", combinations=gold)) == pytest.approx(expected)


# ---------------------------------------------------------------- grounding
@pytest.mark.parametrize("completion, r, expected", [
    (PERFECT_NER, ner_row(), 1.0),
    ('{"Chemical": ["Naloxone", "aspirin"], "Disease": ["hypotension"]}', ner_row(), 2 / 3),
    ('{"Chemical": ["Naloxone", "Naloxone"], "Disease": []}', ner_row(), 1.0),  # repeats are length's business
    # strict reading: "clonidin" is in the text verbatim (inside "clonidine"), "HYPOTENSION" is not
    ('{"Chemical": ["clonidin"], "Disease": ["HYPOTENSION"]}', ner_row(), 0.5),
    ('{"Chemical": [], "Disease": []}', ner_row(), 1.0),  # nothing claimed, nothing hallucinated
    ("Naloxone and aspirin", ner_row(), 0.0),  # unparsable
    (combos((["aspirin", "warfarin"], "NEG"),), row("nary", "t_nary", "aspirin with heparin"), 0.5),
    (triples(("aspirin", "INHIBITOR", "COX-3")), row("triples", "t_triples", REL_TEXT), 0.5),
    ('{"relation": "CPR:4"}', row("re", "t_re", "x", label="CPR:4"), None),
])
def test_grounding_hand_computed(completion, r, expected):
    assert call(grounding_reward, completion, r) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("alignment, expected", [("verbatim", 0.0), ("normalised", 0.5), ("lenient", 1.0)])
def test_grounding_alignment(alignment, expected):
    """A typo (fuzzy: lenient only) and another case (normalised and lenient)."""
    completion = '{"Chemical": ["clonnidine"], "Disease": ["HYPOTENSION"]}'
    assert call(GroundingReward(alignment), completion, ner_row()) == pytest.approx(expected)


# ---------------------------------------------------------------- length
def test_length_hand_computed():
    gold_len = len(PERFECT_NER)  # the gold answer in the output schema
    budget = 1.5 * gold_len + 40
    assert call(LengthReward(), PERFECT_NER, ner_row()) == 1.0
    long = PERFECT_NER + " " + "x" * 80  # prose after the JSON
    size = len(long)
    assert size > budget
    assert call(LengthReward(), long, ner_row()) == pytest.approx(1 - (size - budget) / budget)
    # repetition: 4 items, "Naloxone" 3 times where the gold has it once -> 2 excess -> 1 - 2/4
    rep = '{"Chemical": ["Naloxone", "Naloxone", "Naloxone"], "Disease": ["hypotension"]}'
    assert call(LengthReward(), rep, ner_row()) == pytest.approx(0.5)
    # a mention the gold repeats may be repeated as often
    text = "cocaine and cocaine"
    gold = [{"start": 0, "end": 7, "type": "Chemical", "text": "cocaine"},
            {"start": 12, "end": 19, "type": "Chemical", "text": "cocaine"}]
    assert call(LengthReward(), '{"Chemical": ["cocaine", "cocaine"], "Disease": []}', ner_row(gold, text)) == 1.0
    # a degenerate loop (unparsable): 30 words, 28 3-grams, 1 distinct -> repetition 27/28; 119 characters
    # against the budget 1.5 * 31 + 40 = 86.5 of '{"Chemical": [], "Disease": []}'
    loop = " ".join(["the"] * 30)
    expected = (1 - (119 - 86.5) / 86.5) * (1 / 28)
    assert call(LengthReward(), loop, ner_row([], "x")) == pytest.approx(expected)
    # a think block within think_allowance costs nothing
    think = ("<think>Naloxone is a drug, so Chemical. Clonidine is also a drug that induced the disease; "
             "hypotension is a disorder of blood pressure, so Disease. Nothing else is named.</think>")
    assert call(LengthReward(), think + PERFECT_NER, ner_row()) == 1.0
    size = len(think) + len(PERFECT_NER)  # with think_allowance 0 it all counts
    assert call(LengthReward(think_allowance=0), think + PERFECT_NER, ner_row()) == pytest.approx(
        max(0.0, 1 - (size - budget) / budget))
    # the same think block said five times is a loop: its 3-grams repeat
    looping = "<think>" + "Naloxone is a drug, hypotension a disease. " * 5 + "</think>"
    assert call(LengthReward(), looping + PERFECT_NER, ner_row()) < 0.3
    assert call(LengthReward(), '{"relation": "CPR:4"}', row("re", "t_re", "x", label="CPR:4")) == 1.0


# ---------------------------------------------------------------- binary
@pytest.mark.parametrize("completion, r, expected", [
    (PERFECT_NER, ner_row(), 1.0),
    ('{"Disease": ["hypotension"], "Chemical": ["clonidine", "Naloxone"]}', ner_row(), 1.0),
    ('{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}', ner_row(), 0.0),  # one missing
    ('{"Chemical": ["Naloxone", "clonidine", "aspirin"], "Disease": ["hypotension"]}', ner_row(), 0.0),
    ('{"Chemical": ["Naloxone", "clonidine", "hypotension"], "Disease": []}', ner_row(), 0.0),  # wrong type
    ('{"Chemical": ["Naloxone", "Naloxone", "clonidine"], "Disease": ["hypotension"]}', ner_row(), 0.0),
    ('{"Chemical": [], "Disease": []}', ner_row([], "nothing"), 1.0),
    ('{"relation": "CPR:4"}', row("re", "t_re", "x", label="CPR:4"), 1.0),
    ('{"relation": "false"}', row("re", "t_re", "x", label="CPR:4"), 0.0),
    (combos((["warfarin", "Aspirin"], "NEG"), (["gemcitabine", "cisplatin", "paclitaxel"], "POS")),
     row("nary", "t_nary", "x", combinations=NARY_GOLD), 1.0),
    (combos((["warfarin", "aspirin"], "NEG"),), row("nary", "t_nary", "x", combinations=NARY_GOLD), 0.0),
    ('{"answer": "The COX-2"}', row("qa", "t_qa", "x", answer="the cox-2"), 1.0),
    ("COX-2", row("qa", "t_qa", "x", answer="COX-2"), 0.0),
])
def test_binary_hand_computed(completion, r, expected):
    assert call(BinaryReward(), completion, r) == expected


# ---------------------------------------------------------------- reasoning
def test_reasoning_is_grounded_in_the_text_not_the_gold():
    r = ner_row()
    answer = '{"Chemical": ["Naloxone"], "Disease": []}'
    assert call(ReasoningReward(), answer, r) == 0.0  # no think block
    # quotes that are not in the text earn no relevance and no rule credit; the answer item is not
    # mentioned either: 0
    fake = '<think>"opioid antagonist" is a Chemical.</think>'
    assert call(ReasoningReward(), fake + '{"Chemical": ["Naloxone"]}', r) == 0.0
    # one grounded quote of 8 characters in a 48-character text, on a line naming a type, answer item
    # mentioned: relevance 0.5 + 0.5 * (1 - 8/48), rule 1, consistency 1
    good = '<think>"Naloxone" is a drug: Chemical.</think>'
    expected = (0.5 + 0.5 * (1 - 8 / 48) + 1 + 1) / 3
    assert call(ReasoningReward(), good + answer, r) == pytest.approx(expected)
    # quoting the whole text earns only the floor of relevance
    whole = f'<think>"{TEXT}" Chemical</think>'
    assert call(ReasoningReward(relevance=1, rule=0, consistency=0), whole + answer, r) == pytest.approx(0.5)


# ---------------------------------------------------------------- verifiers
@pytest.mark.parametrize("completion, gold, expected", [
    ('{"answer": "the COX-2 enzyme"}', "COX-2 enzyme", 1.0),
    ('{"answer": "COX-2"}', "COX-2 enzyme", 2 / 3),  # token F1: P 1, R 1/2
    ('{"answer": "no"}', "yes", 0.0),
    ("yes", "yes", 0.0),  # unparsable: not read as an answer
])
def test_factual_verifier(completion, gold, expected):
    assert call(factual_reward, completion, row("qa", "t_qa", "x", answer=gold)) == pytest.approx(expected)


def test_factual_not_applicable_to_extraction():
    assert call(factual_reward, PERFECT_NER, ner_row()) is None


@pytest.mark.parametrize("completion, gold, expected", [
    ('{"answer": "it inhibits COX-2"}', "decreases COX-2 activity", 1.0),
    ('{"answer": "it does not inhibit COX-2"}', "decreases COX-2 activity", 0.0),  # negation flips
    ('{"answer": "it increases and decreases COX-2"}', "decreases COX-2 activity", 0.5),  # mixed
    ('{"answer": "COX-2"}', "decreases COX-2 activity", 0.3),  # no direction stated
    ('{"answer": "COX-2"}', "COX-2", None),  # the gold states no direction
])
def test_pathway_verifier_qa(completion, gold, expected):
    assert call(PathwayReward(), completion, row("qa", "t_qa", "x", answer=gold)) == expected


def test_pathway_verifier_relations():
    r = row("triples", "t_triples", REL_TEXT, relations=REL_GOLD)  # INHIBITOR: down
    assert call(PathwayReward(), triples(("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "ACTIVATOR", "COX-2")), r) \
        == pytest.approx((1.0 + 0.0) / 2)
    assert call(PathwayReward(), "[]", r) == pytest.approx(0.3)
    re_row = row("re", "t_re", "x", label="CPR:4")
    assert call(PathwayReward({"CPR:3": "up", "CPR:4": "down"}), '{"relation": "CPR:3"}', re_row) == 0.0
    assert call(PathwayReward({"CPR:3": "up", "CPR:4": "down"}), '{"relation": "CPR:4"}', re_row) == 1.0
    assert call(PathwayReward(), '{"relation": "CPR:4"}', re_row) is None  # no polarity known for CPR:4


def test_consistency_verifier():
    c = ConsistencyReward()
    assert call(c, '{"Chemical": ["lithium", "Lithium"], "Disease": ["lithium", "tremor"]}', ner_row()) == 0.25
    assert call(c, PERFECT_NER, ner_row()) == 1.0
    joint = row("joint", "t_joint", "x")
    # one relation whose tail is not among the answer's entities: 1 bad of 2 mentions + 1 relation
    answer = '{"entities": {"Chemical": ["cocaine"], "Disease": ["seizures"]}, "relations": [["cocaine", "CID", "coma"]]}'
    assert call(c, answer, joint) == pytest.approx(2 / 3)
    contradicting = combos((["a", "b"], "POS"), (["b", "a"], "NEG"), (["c", "d"], "POS"))
    assert call(c, contradicting, row("nary", "t_nary", "x")) == pytest.approx(1 / 3)
    assert call(c, '{"relation": "CPR:4"}', row("re", "t_re", "x", label="CPR:4")) is None


def test_uncertainty_verifier_is_a_brier_score_against_the_granular_correctness():
    u = UncertaintyReward()
    # entity soft F1 of this answer is 0.5 (1 of 3 found); stated confidence 0.9 -> 1 - 0.4^2
    answer = '{"Chemical": ["Naloxone"], "Disease": []}'
    assert call(u, answer + " Confidence: 90%", ner_row()) == pytest.approx(1 - 0.4 ** 2)
    assert call(u, answer + ' {"confidence": 0.5}', ner_row()) == pytest.approx(1.0)
    assert call(u, '{"answer": "yes"} This is possibly right.', row("qa", "t_qa", "x", answer="yes")) \
        == pytest.approx(1 - 0.75 ** 2)  # hedging: 0.25
    assert call(u, answer, ner_row()) is None  # no confidence stated


def test_verifier_composite_renormalises_over_applicable():
    v = VerifierReward()
    # NER row: only consistency applies (1.0)
    assert call(v, PERFECT_NER, ner_row()) == 1.0
    # QA row with a direction: factual 1 (0.35), pathway 1 (0.30), uncertainty absent, consistency None
    assert call(v, '{"answer": "inhibits COX-2"}', row("qa", "t_qa", "x", answer="inhibits COX-2")) == 1.0
    # factual 0 and pathway 0.3: (0.35 * 0 + 0.30 * 0.3) / 0.65
    assert call(v, '{"answer": "COX-1"}', row("qa", "t_qa", "x", answer="inhibits COX-2")) \
        == pytest.approx(0.09 / 0.65)
    # nothing applies: re row with a label of no known polarity and no confidence stated
    assert call(v, '{"relation": "false"}', row("re", "t_re", "x", label="false")) is None
    with pytest.raises(KeyError, match="known"):
        VerifierReward({"V9": 1.0})


# ---------------------------------------------------------------- task-adaptive weighting
def test_task_adaptive_normalises_per_task_and_passes_none():
    rows = [row("ner", "bc5cdr", TEXT, GOLD)] * 2 + [row("re", "t_re", "x", label="CPR:4")] * 2
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    completions = [PERFECT_NER, '{"Chemical": ["Naloxone"], "Disease": []}', '{"relation": "CPR:4"}', "x"]
    from grasp_lib.rewards import EntityReward
    wrapped = TaskAdaptive(EntityReward())
    out = wrapped(completions, **cols)
    # ner values 1.0 and 0.5: mean 0.75, sample std 0.35355 -> +-0.7069; re rows: None
    assert out[0] == pytest.approx(0.25 / (0.5 ** 0.5 / 2 + 1e-4)) and out[1] == pytest.approx(-out[0])
    assert out[2] is None and out[3] is None
    assert wrapped.__name__ == "entity"
    # format: ner rows (1, 1) and re rows (1, 0) are normalised separately
    fmt = TaskAdaptive(REWARDS["format"]({}))
    logged = {}
    out = fmt(completions, log_metric=logged.__setitem__, **cols)
    assert out[0] == out[1] == 0.0  # ner: no spread yet, centred
    assert out[2] == pytest.approx(0.5 / (0.5 ** 0.5 + 1e-4)) and out[3] == pytest.approx(-out[2])
    assert logged == {"raw/format/ner": 1.0, "raw/format/re": 0.5}
    restored = pickle.loads(pickle.dumps(fmt))
    assert restored.__name__ == "format" and restored.stats["re"].count == 2


def test_build_rewards_every_name_is_stable_picklable_and_adaptive_switch():
    names = sorted(REWARDS)
    funcs = build_rewards(names)
    assert [f.__name__ for f in funcs] == names
    for f in funcs:
        assert pickle.loads(pickle.dumps(f)).__name__ == f.__name__
    wrapped = build_rewards(["format", "entity"], {"adaptive": True, "adaptive_settings": {"clip": 2.0}})
    assert all(isinstance(f, TaskAdaptive) and f.clip == 2.0 for f in wrapped)
    assert [f.__name__ for f in wrapped] == ["format", "entity"]
    assert not any(isinstance(f, TaskAdaptive) for f in build_rewards(["format"], {"adaptive": False}))


def test_rewards_accept_trl_extra_kwargs():
    """TRL also passes prompts, completion_ids, trainer_state, log_extra, log_metric."""
    r = ner_row()
    extra = {"prompts": ["p"], "completion_ids": [[1]], "trainer_state": None,
             "log_extra": lambda *a: None, "log_metric": lambda *a: None}
    for f in build_rewards(sorted(REWARDS)):
        out = f([PERFECT_NER], **{k: [v] for k, v in r.items()}, **extra)
        assert len(out) == 1


def test_nary_score_does_not_depend_on_the_order_of_combinations():
    """Regression (found by hypothesis): equal credits competing for one gold combination were matched by
    position, so reordering the answer changed the reward."""
    from itertools import permutations

    from grasp_lib.rewards import NaryReward

    gold = [(("a", "b"), "POS"), (("a", "ba"), "POS"), (("a", "b", "c", "ba"), "POS"), (("a", "b", "ba", "bb"), "POS")]
    preds = [(("a", "b"), "POS"), (("a", "ba"), "POS"), (("a", "b", "c"), "POS"), (("a", "b", "ba"), "POS")]
    reward = NaryReward()
    assert {round(reward.score(list(p), gold), 9) for p in permutations(preds)} == {0.875}
    assert {round(reward.score(preds, list(g)), 9) for g in permutations(gold)} == {0.875}
