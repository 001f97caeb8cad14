import json
import random

import pytest
from nervaluate import Evaluator

from grasp_lib.matching import Span
from grasp_lib.metrics import ner_scores, score_predictions
from grasp_lib.rewards import EntityReward

LABELS = ["Chemical", "Disease"]


def test_hand_computed_scores():
    gold = [[Span(0, 8, "Chemical"), Span(36, 47, "Disease")], [Span(0, 5, "Disease")]]
    pred = [[Span(0, 8, "Chemical"), Span(30, 47, "Disease"), None], [Span(0, 5, "Chemical")]]
    scores = ner_scores(pred, gold, LABELS)
    # strict: 1 correct of 4 predicted, 3 gold
    assert scores["strict"]["micro"]["precision"] == pytest.approx(1 / 4)
    assert scores["strict"]["micro"]["recall"] == pytest.approx(1 / 3)
    # exact (type ignored): also the second example -> 2 correct
    assert scores["exact"]["micro"]["tp"] == 2
    # partial: 2 exact + 0.5 for the overlap
    assert scores["partial"]["micro"]["tp"] == pytest.approx(2.5)
    # type: overlap with the same type: Naloxone and the Disease overlap
    assert scores["type"]["micro"]["tp"] == 2
    assert scores["strict"]["per_type"]["Disease"]["tp"] == 0
    assert scores["strict"]["macro_f1"] == pytest.approx((2 * 0.5 * 1.0 / 1.5 + 0) / 2)


def _nervaluate(pred, gold):
    def to_dicts(spans):
        return [[{"label": s.type, "start": s.start, "end": s.end - 1} for s in doc if s] for doc in spans]
    results = Evaluator(to_dicts(gold), to_dicts(pred), tags=LABELS, loader="dict").evaluate()
    return results["overall"]


def test_agrees_with_nervaluate_on_random_non_ambiguous_cases():
    rng = random.Random(0)
    for _ in range(200):
        gold, pred = [], []
        for _doc in range(3):
            starts = rng.sample(range(0, 200, 20), 4)  # spans 20 apart never touch each other
            g = [Span(s, s + rng.randint(3, 8), rng.choice(LABELS)) for s in starts[:rng.randint(0, 4)]]
            p = []
            for span in g:
                kind = rng.random()
                if kind < 0.4:
                    p.append(span)
                elif kind < 0.6:
                    p.append(Span(span.start, span.end, "Disease" if span.type == "Chemical" else "Chemical"))
                elif kind < 0.8:
                    p.append(Span(span.start + 1, span.end + 2, span.type))
            p += [Span(s + 10, s + 14, rng.choice(LABELS)) for s in starts[:rng.randint(0, 2)]]  # spurious
            gold.append(g)
            pred.append(p)
        ours, theirs = ner_scores(pred, gold, LABELS), _nervaluate(pred, gold)
        for scheme, name in (("strict", "strict"), ("exact", "exact"), ("partial", "partial"), ("type", "ent_type")):
            assert ours[scheme]["micro"]["f1"] == pytest.approx(theirs[name].f1), scheme


def test_reward_and_metric_agree_on_the_same_predictions():
    rows = [{"id": "a", "dataset": "bc5cdr", "text": "Naloxone reversed hypotension.",
             "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                          {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]}]
    for completion in ('{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}',
                       '{"Chemical": ["Naloxone"], "Disease": []}', '{"Chemical": ["hypotension"]}', "garbage"):
        metrics, records = score_predictions(rows, [completion])
        reward = EntityReward(overlap_weight=0.0, type_credit=0.0)(
            [completion], text=[rows[0]["text"]], entities=[rows[0]["entities"]], dataset=["bc5cdr"], task=["ner"])[0]
        # with partial credit switched off the soft F1 is exactly the strict F1 of one example
        assert reward == pytest.approx(metrics["strict"]["micro"]["f1"])
    perfect, _ = score_predictions(rows, ['{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}'])
    assert perfect["strict"]["micro"]["f1"] == 1.0


def test_parse_status_counted():
    rows = [{"id": "a", "dataset": "bc5cdr", "text": "x", "entities": []}] * 2
    metrics, records = score_predictions(rows, ['{"Chemical": []}', "oops"])
    assert metrics["parse_status"] == {"valid": 1, "unparsable": 1}
    assert records[1]["status"] == "unparsable"


def test_mention_not_in_text_is_a_false_positive_of_its_type():
    """A hallucinated mention lowers its type's precision, not only the micro total, so per-type and
    micro counts add up (predicted per type sums to predicted overall)."""
    rows = [{"id": "1", "dataset": "bc5cdr", "text": "Naloxone reversed hypotension.",
             "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                          {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]}]
    completion = '{"Chemical": ["Naloxone", "Naloxonne", "Naloxone"], "Disease": ["hypotension"]}'
    metrics, records = score_predictions(rows, [completion])
    strict = metrics["strict"]
    assert strict["per_type"]["Chemical"]["pred"] == 3  # one located, two not in the text
    assert strict["per_type"]["Chemical"]["precision"] == pytest.approx(1 / 3)
    assert strict["per_type"]["Disease"]["precision"] == 1.0
    assert sum(t["pred"] for t in strict["per_type"].values()) == strict["micro"]["pred"] == 4
    assert strict["micro"]["precision"] == pytest.approx(2 / 4)
    assert [p["start"] for p in records[0]["predicted"]] == [0, None, None, 18]  # records keep None


def _perturbed_answer(row: dict, rng: random.Random) -> str:
    """A plausible model answer: gold mentions kept, dropped, retyped, re-cased, extended by a word,
    repeated, or a hallucination added."""
    words = row["text"].split()
    mentions = []
    for e in row["entities"]:
        kind = rng.choice(["keep", "keep", "keep", "drop", "retype", "lower", "extend", "twice"])
        text, label = e["text"], e["type"]
        if kind == "retype":
            label = "Disease" if label == "Chemical" else "Chemical"
        elif kind == "lower":
            text = text.lower()
        elif kind == "extend":
            text = row["text"][e["start"]:].split(" ", 2)[:2]
            text = " ".join(text)
        mentions += [(text, label)] * (2 if kind == "twice" else kind != "drop")
    if rng.random() < 0.3:
        mentions.append((rng.choice(words), "Chemical"))
    if rng.random() < 0.2:
        mentions.append(("aspirinol", "Chemical"))
    rng.shuffle(mentions)
    return json.dumps([{"text": m, "type": t} for m, t in mentions])


def test_strict_agrees_with_nervaluate_and_set_f1_with_plain_sets_on_real_sentences():
    """On 400 BC5CDR test sentences with perturbed gold answers: the strict F1 equals nervaluate's strict F1
    on the spans the mentions are shown at, and the set F1 equals a plain set F1 of (sentence, string, type)."""
    from grasp_lib.examples import build_examples
    from grasp_lib.metrics import cross_check

    examples, _ = build_examples("bc5cdr", "test", "sentence")
    rng = random.Random(0)
    rows = [e.to_row() for e in rng.sample(examples, 400)]
    completions = [_perturbed_answer(r, rng) for r in rows]
    check = cross_check(rows, completions)
    assert check["strict"] == pytest.approx(check["nervaluate_strict"])
    # nervaluate in answer order lets an overlapping mention listed first use up a gold entity
    assert check["nervaluate_listed"] < check["strict"]
    assert check["set"] == pytest.approx(check["plain_set"])
    metrics, _ = score_predictions(rows, completions)
    assert metrics["strict"]["micro"]["f1"] == pytest.approx(check["strict"])
    assert 0.4 < metrics["strict"]["micro"]["f1"] < metrics["lenient"]["strict"]["micro"]["f1"] < 0.95


def _dataset_metrics(dataset: str, golds: list[dict], completions: list[str]) -> dict:
    rows = [{"id": str(i), "dataset": dataset, "text": "x", "entities": []} | g for i, g in enumerate(golds)]
    return score_predictions(rows, completions)[0]["datasets"][dataset]


@pytest.mark.parametrize("preds, golds, f1", [
    (["mechanism", "effect", "none"], ["mechanism", "mechanism", "none"], 2 * 0.5 * 0.5 / 1.0),  # tp 1, pred 2, gold 2
    (["none", "none"], ["none", "none"], 0.0),  # no positives at all
    ([None, "mechanism"], ["mechanism", "mechanism"], 2 * 1 * 0.5 / 1.5),  # unparsable: a miss, not a default class
])
def test_relation_label_micro_f1_over_positive_classes(preds, golds, f1):
    completions = ["no json" if p is None else json.dumps({"relation": p}) for p in preds]
    result = _dataset_metrics("ddi", [{"label": g} for g in golds], completions)
    assert result["micro"]["f1"] == pytest.approx(f1)
    assert result["accuracy"] == pytest.approx(sum(p == g for p, g in zip(preds, golds)) / len(golds))


def test_nary_views_exact_partial_pos_any_labelled():
    gold = {"combinations": [{"drugs": ["a", "b", "c"], "label": "POS"}, {"drugs": ["d", "e"], "label": "COMB"}]}
    pred = '[{"drugs": ["A", "b"], "label": "POS"}, {"drugs": ["d", "e"], "label": "NEG"}]'
    s = _dataset_metrics("drugcomb", [gold], [pred])
    assert s["pos_exact"]["f1"] == 0.0
    assert s["pos_partial"]["precision"] == pytest.approx(2 / 3)  # Jaccard {a,b} vs {a,b,c}
    assert s["any_exact"]["f1"] == pytest.approx(0.5)  # {d,e} matches, labels ignored
    assert s["any_partial"]["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert s["labelled_partial"]["recall"] == pytest.approx(2 / 3 / 2)  # {d,e} has the wrong label
    one_shared = _dataset_metrics("drugcomb", [{"combinations": [{"drugs": ["a", "b", "c"], "label": "POS"}]}],
                                  ['[{"drugs": ["a", "x"], "label": "POS"}]'])
    assert one_shared["pos_partial"]["f1"] == 0.0


def test_triples_and_qa():
    s = _dataset_metrics("bc5cdr-cid", [{"relations": [{"head": "cnn", "relation": "CID", "tail": "x"}]}],
                         ['[["CNN", "CID", "X"], ["CNN", "CID", "X"]]'])
    assert s["strict"]["precision"] == 0.5 and s["strict"]["recall"] == 1.0  # the repeat matches nothing
    q = _dataset_metrics("biorlhf", [{"answer": a} for a in ("8,484 DEGs", "112 DEGs", "x")],
                         ['{"answer": "8,484 DEGs"}', '{"answer": "about 112"}', "none"])
    assert q["exact_match"] == pytest.approx(1 / 3) and q["token_f1"] == pytest.approx((1 + 0.5) / 3)


def _ner_metrics():
    from grasp_lib.tasks import SCHEMES

    block = lambda f1: {s: {"micro": {"f1": f1}, "macro_f1": f1 / 2} for s in SCHEMES}  # noqa: E731
    return {"base": block(0.1) | {"lenient": block(0.2), "all_occurrences": block(0.3), "set": {"micro": {"f1": 0.4}}},
            "qa": {"n": 1}}


def test_readings_table_one_row_per_stage_and_reading():
    from grasp_lib.metrics import readings_table

    table = readings_table(_ner_metrics())
    assert [(r["reading"], r["strict"], r["type"], r["set F1"]) for r in table] == [
        ("strict", 0.1, 0.1, 0.4), ("lenient", 0.2, 0.2, 0.4), ("all occurrences", 0.3, 0.3, 0.4)]


def test_macro_table_per_stage_and_scheme():
    from grasp_lib.metrics import macro_table

    assert macro_table(_ner_metrics()) == [{"stage": "base", "strict": 0.05, "exact": 0.05, "partial": 0.05,
                                            "type": 0.05}]


def test_text_table_aligns_columns_and_marks_missing_values():
    from grasp_lib.metrics import text_table

    text = text_table([{"stage": "base", "f1": 0.5}, {"stage": "grpo"}], ["stage", "f1"], indent="")
    assert text.splitlines() == ["stage      f1", " base  0.5000", " grpo       -"]
