"""Hand-computed cases: one scoring definition per family, shared by rewards and metrics.

Each case catches a way scoring goes wrong (greedy matching, order-dependent alignment, credit under the
gold type, separate normalisations in rewards and metrics, fuzzy "strict").
"""

import json
from itertools import permutations

import pytest

from grasp_lib.matching import Span
from grasp_lib.metrics import ner_scores, score_predictions
from grasp_lib.parsing import parse
from grasp_lib.rewards import BinaryReward, EntityReward, RelationReward, factual_reward
from grasp_lib.tasks import get_task

LABELS = ["Chemical", "Disease"]
TEXT = "Naloxone reversed hypotension."
GOLD = [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
        {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]


def ner_row(text=TEXT, entities=GOLD, **extra):
    return {"id": "1", "task": "ner", "dataset": "bc5cdr", "text": text, "entities": entities} | extra


def columns(row, n=1):
    return {k: [v] * n for k, v in row.items() if k != "id"}


def listed(*mentions):
    return json.dumps([{"text": m, "type": t} for m, t in mentions])


# ---------------------------------------------------------------- order of predictions

def test_partial_and_type_schemes_do_not_depend_on_the_order_of_predictions():
    """p1 overlaps both gold spans, p2 only the first. Greedy matching with ties at 0.5 gave the partial
    scheme 0.5 or 1.0 and the type scheme 1 or 2 depending on which was listed first."""
    gold = [Span(0, 10, "Chemical"), Span(12, 20, "Chemical")]
    p1, p2 = Span(5, 15, "Chemical"), Span(0, 6, "Chemical")
    for preds in ([p1, p2], [p2, p1]):
        scores = ner_scores([preds], [gold], LABELS)
        assert scores["partial"]["micro"]["tp"] == 1.0  # p2-first and p1-second, 0.5 each
        assert scores["type"]["micro"]["tp"] == 2.0
        assert scores["strict"]["micro"]["tp"] == 0.0


def test_entity_reward_does_not_depend_on_the_order_of_mentions():
    """Two overlapping mentions of equal length: the old alignment let the first listed claim the text and
    left the other unplaced (0.0625 or 0.06875). Now each is placed and the matching is optimal:
    "beta gamma delta"/Chemical [6,22) with "gamma delta"/Disease [11,22): 0.5 * 11/16 * 0.5 = 0.171875;
    "alpha beta gamma"/Disease [0,16) with "gamma"/Disease [11,16): 0.5 * 5/16 = 0.15625;
    soft F1 = 2 * 0.328125 / (2 + 3) = 0.13125."""
    text = "alpha beta gamma delta"
    gold = [{"start": 6, "end": 10, "type": "Chemical", "text": "beta"},
            {"start": 11, "end": 16, "type": "Disease", "text": "gamma"},
            {"start": 11, "end": 22, "type": "Disease", "text": "gamma delta"}]
    mentions = [("beta gamma delta", "Chemical"), ("alpha beta gamma", "Disease")]
    row = ner_row(text, gold)
    for order in permutations(mentions):
        for gold_order in permutations(gold):
            got = EntityReward()([listed(*order)], **columns(row | {"entities": list(gold_order)}))[0]
            assert got == pytest.approx(0.13125)


# ---------------------------------------------------------------- per-type counts

def test_per_type_precision_never_exceeds_one_and_counts_add_up():
    """Exact scheme (type ignored): a Disease prediction on a Chemical span. Its credit counted under the
    gold type gave Chemical precision 2/1; now precision counts it under the prediction's type and recall
    under the gold's."""
    gold = [Span(0, 8, "Chemical"), Span(10, 18, "Chemical")]
    pred = [Span(0, 8, "Chemical"), Span(10, 18, "Disease")]
    exact = ner_scores([pred], [gold], LABELS)["exact"]
    chem, dis = exact["per_type"]["Chemical"], exact["per_type"]["Disease"]
    assert (chem["precision"], chem["recall"]) == (1.0, 1.0)
    assert (dis["precision"], dis["recall"], dis["f1"]) == (1.0, 0.0, 0.0)
    assert chem["tp_p"] + dis["tp_p"] == chem["tp_r"] + dis["tp_r"] == exact["micro"]["tp"] == 2
    assert exact["macro_f1"] == pytest.approx(0.5)


# ---------------------------------------------------------------- strict and lenient

@pytest.mark.parametrize("mention, strict, lenient", [
    ("Naloxone", 1.0, 1.0),
    ("Naloxonne", 0.0, 1.0),  # a misspelling: rapidfuzz maps it onto the gold span, the strict reading does not
    ("naloxone", 0.0, 1.0),  # another case: a different string
    ("Naloxone reversed", 0.0, 0.0),  # a longer span: wrong boundaries under both readings
])
def test_strict_is_the_verbatim_string_and_lenient_tolerates_case_and_typos(mention, strict, lenient):
    row = ner_row(entities=GOLD[:1])
    metrics, _ = score_predictions([row], [listed((mention, "Chemical"))])
    assert metrics["strict"]["micro"]["f1"] == strict
    assert metrics["lenient"]["strict"]["micro"]["f1"] == lenient
    assert EntityReward(0.0, 0.0)([listed((mention, "Chemical"))], **columns(row))[0] == strict
    assert EntityReward(0.0, 0.0, alignment="lenient")([listed((mention, "Chemical"))], **columns(row))[0] == lenient


def test_occurrence_conventions_and_set_f1():
    """A mention present twice, listed once: the listed reading misses one occurrence; the usual
    generative-IE conversion labels both; the (string, type) set is complete."""
    text = "cocaine and cocaine"
    gold = [{"start": 0, "end": 7, "type": "Chemical", "text": "cocaine"},
            {"start": 12, "end": 19, "type": "Chemical", "text": "cocaine"}]
    metrics, _ = score_predictions([ner_row(text, gold)], ['{"Chemical": ["cocaine"]}'])
    assert (metrics["strict"]["micro"]["precision"], metrics["strict"]["micro"]["recall"]) == (1.0, 0.5)
    assert metrics["all_occurrences"]["strict"]["micro"]["f1"] == 1.0
    assert metrics["set"]["micro"]["f1"] == 1.0
    twice, _ = score_predictions([ner_row(text, gold)], ['{"Chemical": ["cocaine", "cocaine", "cocaine"]}'])
    assert twice["strict"]["micro"]["precision"] == pytest.approx(2 / 3)  # a third repeat has no occurrence left
    assert twice["all_occurrences"]["strict"]["micro"]["precision"] == 1.0  # a repeat labels nothing new


# ---------------------------------------------------------------- rewards and metrics on the same answer

def qa_row(answer):
    return {"id": "q", "task": "qa", "dataset": "biorlhf", "text": "x", "entities": [], "answer": answer}


@pytest.mark.parametrize("completion, gold, token_f1, exact", [
    ('{"answer": "the COX-2 enzyme."}', "COX-2 enzyme", 1.0, 1.0),  # articles, punctuation and case
    ('{"answer": "COX-2"}', "COX-2 enzyme", 2 / 3, 0.0),
    ('{"answer": "no"}', "yes", 0.0, 0.0),
])
def test_qa_reward_and_metric_use_one_normalisation(completion, gold, token_f1, exact):
    """Before: factual reward 1.0, binary reward 0.0 and metric exact match 0 for the first answer."""
    row = qa_row(gold)
    metrics, _ = score_predictions([row], [completion])
    result = metrics["datasets"]["biorlhf"]
    assert (result["token_f1"], result["exact_match"]) == (pytest.approx(token_f1), exact)
    assert factual_reward([completion], **columns(row))[0] == pytest.approx(token_f1)
    assert BinaryReward()([completion], **columns(row))[0] == exact


def scier_row(relation):
    return {"id": "s", "task": "joint", "dataset": "scier", "text": "BERT or Bidirectional Encoder",
            "entities": [{"start": 0, "end": 4, "type": "Method", "text": "BERT"},
                         {"start": 8, "end": 29, "type": "Method", "text": "Bidirectional Encoder"}],
            "relations": [{"head": "BERT", "relation": relation, "tail": "Bidirectional Encoder"}]}


@pytest.mark.parametrize("relation, expected", [("Synonym-Of", 1.0), ("Used-For", 0.0)])
def test_swapped_relation_scores_alike_in_reward_metric_and_binary(relation, expected):
    """The swapped triple of a symmetric type (tasks.TaskSpec.symmetric) is the gold triple for the
    relation reward, the metric and the binary reward alike; of a directed type it is wrong in all three.
    Before: RelationReward 1.0 (symmetric_relations setting) against triple_scores 0.0."""
    row = scier_row(relation)
    answer = json.dumps({"entities": {"Method": ["BERT", "Bidirectional Encoder"], "Task": [], "Dataset": []},
                         "relations": [["bidirectional  encoder", relation, "bert"]]})
    metrics, _ = score_predictions([row], [answer])
    assert metrics["datasets"]["scier"]["relations"]["strict"]["f1"] == expected
    assert RelationReward()([answer], **columns(row))[0] == expected
    assert BinaryReward()([answer], **columns(row))[0] == expected
    assert metrics["datasets"]["scier"]["entities"]["strict"]["micro"]["f1"] == 1.0


def test_boundaries_of_a_symmetric_pair_do_not_depend_on_its_order():
    """Hypothesis's counterexample: the boundaries view (relation ignored) compared the raw argument order,
    so a symmetric prediction listed both ways scored by the order of the list (equal keys, unequal credit)."""
    row = scier_row("Used-For")
    row["relations"].append({"head": "BERT", "relation": "Compare-With", "tail": "Bidirectional Encoder"})
    both_ways = [["BERT", "Compare-With", "Bidirectional Encoder"], ["Bidirectional Encoder", "Compare-With", "BERT"]]
    results = [score_predictions([row], [json.dumps({"entities": {"Method": ["BERT"]}, "relations": order})])[0]
               ["datasets"]["scier"]["relations"] for order in (both_ways, both_ways[::-1])]
    assert results[0] == results[1]
    assert results[0]["boundaries"]["tp"] == 2  # either way round, each prediction is a gold pair's boundaries


def test_symmetric_relations_are_a_task_property_not_a_reward_setting():
    from grasp_lib.rewards import build_rewards

    assert get_task("scier").symmetric == {"Synonym-Of", "Compare-With"}
    with pytest.raises(ValueError, match="TaskSpec.symmetric"):
        build_rewards(["relation"], {"symmetric_relations": ["Synonym-Of"]})


def test_duplicate_combinations_never_raise_precision():
    """n-ary precision counted each predicted combination's best match, so a repeat of a right one kept
    precision at 1; matched one to one it halves."""
    row = {"id": "d", "task": "nary", "dataset": "drugcomb", "text": "x", "entities": [],
           "combinations": [{"drugs": ["a", "b"], "label": "POS"}]}
    once = '[{"drugs": ["a", "b"], "label": "POS"}]'
    twice = '[{"drugs": ["a", "b"], "label": "POS"}, {"drugs": ["B", "a"], "label": "POS"}]'
    for view in ("pos_exact", "pos_partial", "any_exact", "labelled_partial"):
        one, _ = score_predictions([row], [once])
        two, _ = score_predictions([row], [twice])
        assert one["datasets"]["drugcomb"][view]["precision"] == 1.0
        assert two["datasets"]["drugcomb"][view]["precision"] == 0.5
        assert two["datasets"]["drugcomb"][view]["recall"] == 1.0


def test_headline_and_parse_status_of_every_family():
    rows = [ner_row(), qa_row("COX-2"), scier_row("Used-For"),
            {"id": "r", "task": "re", "dataset": "ddi", "text": "a b", "label": "none",
             "entities": [{"start": 0, "end": 1, "type": "drug", "text": "a"},
                          {"start": 2, "end": 3, "type": "drug", "text": "b"}]}]
    completions = ['{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}', "COX-2", "{}", '{"relation": "none"}']
    metrics, records = score_predictions(rows, completions)
    assert metrics["datasets"]["bc5cdr"]["headline"] == {"name": "strict micro-F1", "value": 1.0}
    assert metrics["datasets"]["biorlhf"]["parse_status"] == {"unparsable": 1}
    assert metrics["datasets"]["ddi"]["accuracy"] == 1.0 and metrics["datasets"]["ddi"]["micro"]["pred"] == 0
    assert metrics["strict"]["micro"]["f1"] == 1.0 and metrics["pooled_ner_datasets"] == ["bc5cdr"]
    assert metrics["scoring"]["alignment"] == "verbatim" and len(records) == 4


def test_close_brackets_escaped_quote():
    """A truncated answer whose string holds an escaped quote is repaired (the escape does not end the
    string)."""
    parsed = parse('{"Chemical": ["5\\"-AMP", "nalox', ("Chemical",))
    assert parsed.status == "repaired"
    assert parsed.mentions == (('5"-AMP', "Chemical"), ("nalox", "Chemical"))
