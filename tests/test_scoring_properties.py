"""Hypothesis properties of the one scoring definition, for every task family:

- every score is invariant to permutations of the predictions and of the gold;
- a reward without partial credit equals the score the metrics give the same answer;
- per-label precision, recall and F1 are in [0, 1] under every view, and per-label credit adds up;
- a repeated prediction never raises precision under a view whose credit is exact;
- optimal matching never scores below greedy.
"""

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grasp_lib.metrics import example_counts, parsed_row, score_predictions
from grasp_lib.rewards import BinaryReward, EntityReward, NaryReward, RelationReward, factual_reward
from grasp_lib.tasks import ENTITIES, SCHEMES, EntityView, example_f1, family_of, get_task

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORD = st.text(alphabet="abcdefgh", min_size=5, max_size=5)  # text words; hallucinations use w-z


def variant(draw, s: str) -> str:
    """The string itself mostly, else re-cased, with an extra letter (a typo), or hallucinated."""
    kind = draw(st.sampled_from(["same", "same", "same", "upper", "typo", "fake"]))
    return {"same": s, "upper": s.upper(), "typo": s[:2] + s[1:], "fake": "wxyzw"}[kind]


@st.composite
def entity_case(draw, types):
    """(text, gold entities, predicted (string, type)): distinct words, gold spans of one or two words that
    do not overlap, predictions drawn from the gold strings (some varied, retyped, repeated), from
    phrases across gold boundaries, and hallucinations."""
    words = draw(st.lists(WORD, min_size=3, max_size=9, unique=True))
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    gold, i = [], 0
    while i < len(words):
        width = draw(st.sampled_from([0, 0, 1, 1, 2]))  # 0: no entity here
        if width and i + width <= len(words):
            t = " ".join(words[i:i + width])
            gold.append({"start": starts[i], "end": starts[i] + len(t), "type": draw(st.sampled_from(types)), "text": t})
        i += max(width, 1)
    phrases = [" ".join(words[i:i + 2]) for i in range(len(words) - 1)] + words
    pool = [g["text"] for g in gold] or words
    pred = [(variant(draw, draw(st.sampled_from(pool))), draw(st.sampled_from(types)))
            for _ in range(draw(st.integers(0, 5)))]
    pred += [(draw(st.sampled_from(phrases)), draw(st.sampled_from(types))) for _ in range(draw(st.integers(0, 2)))]
    return " ".join(words), gold, pred


@st.composite
def triple_items(draw, strings, relations):
    """(gold triples, predicted triples): predictions from the gold ones, some reversed, relabelled,
    re-cased or repeated, plus triples about other strings."""
    gold = draw(st.lists(st.tuples(st.sampled_from(strings), st.sampled_from(relations), st.sampled_from(strings)),
                         max_size=4, unique=True))
    pred = []
    for h, r, t in gold:
        kind = draw(st.sampled_from(["keep", "keep", "drop", "swap", "relabel", "upper", "twice"]))
        if kind == "swap":
            h, t = t, h
        r = draw(st.sampled_from(relations)) if kind == "relabel" else r
        h = h.upper() if kind == "upper" else h
        pred += [(h, r, t)] * (2 if kind == "twice" else kind != "drop")
    pred += draw(st.lists(st.tuples(st.sampled_from(strings + ["wxyzw"]), st.sampled_from(relations),
                                    st.sampled_from(strings)), max_size=2))
    return gold, pred


def _row(dataset, text="", **gold):
    spec = get_task(dataset)
    return {"id": "x", "task": spec.family, "dataset": dataset, "text": text, "entities": [], "relations": [],
            "label": None, "combinations": [], "answer": None, "alternatives": []} | gold


def _ner_json(mentions):
    return [{"text": m, "type": t} for m, t in mentions]


@st.composite
def ner(draw):
    text, gold, pred = draw(entity_case(["Chemical", "Disease"]))
    return _row("bc5cdr", text, entities=gold), {"mentions": pred}


@st.composite
def joint(draw):
    text, gold, pred = draw(entity_case(["Method", "Task", "Dataset"]))
    strings = [g["text"] for g in gold] + text.split()[:2]
    triples, pred_triples = draw(triple_items(strings, ["Used-For", "Synonym-Of", "Compare-With"]))
    return (_row("scier", text, entities=gold, relations=[{"head": h, "relation": r, "tail": t} for h, r, t in triples]),
            {"mentions": pred, "relations": pred_triples})


@st.composite
def triples(draw):
    strings = draw(st.lists(WORD, min_size=2, max_size=5, unique=True))
    gold, pred = draw(triple_items(strings, ["CID"]))
    return _row("bc5cdr-cid", " ".join(strings), relations=[{"head": h, "relation": r, "tail": t} for h, r, t in gold]), \
        {"relations": pred}


@st.composite
def nary(draw):
    drugs = draw(st.lists(WORD, min_size=3, max_size=7, unique=True))
    combo = st.tuples(st.lists(st.sampled_from(drugs), min_size=2, max_size=4, unique=True),
                      st.sampled_from(["POS", "COMB", "NEG"]))
    gold = draw(st.lists(combo, max_size=3, unique_by=lambda c: frozenset(c[0])))
    pred = []
    for ds, lab in gold:
        kind = draw(st.sampled_from(["keep", "drop", "shrink", "relabel", "twice"]))
        ds = ds[:-1] if kind == "shrink" and len(ds) > 2 else ds
        lab = draw(st.sampled_from(["POS", "COMB", "NEG"])) if kind == "relabel" else lab
        pred += [(list(reversed(ds)), lab)] * (2 if kind == "twice" else kind != "drop")
    pred += draw(st.lists(combo, max_size=2))
    return _row("drugcomb", combinations=[{"drugs": d, "label": lab} for d, lab in gold]), {"combinations": pred}


@st.composite
def re_pair(draw):
    labels = get_task("ddi").label_names
    row = _row("ddi", "a b", label=draw(st.sampled_from(labels)),
               entities=[{"start": 0, "end": 1, "type": "drug", "text": "a"}, {"start": 2, "end": 3, "type": "drug",
                                                                               "text": "b"}])
    return row, {"label": draw(st.sampled_from(labels + [None]))}


@st.composite
def qa(draw):
    words = draw(st.lists(st.sampled_from(["cox-2", "the", "enzyme", "inhibits", "COX-2", "levels", "a"]),
                          min_size=1, max_size=4))
    gold = " ".join(draw(st.lists(st.sampled_from(["COX-2", "enzyme", "inhibits", "levels"]), min_size=1, max_size=3)))
    return _row("biorlhf", "x", answer=gold), {"answer": " ".join(words) + draw(st.sampled_from(["", ".", "!"]))}


CASES = {"ner": ner(), "joint": joint(), "triples": triples(), "nary": nary(), "re": re_pair(), "qa": qa()}


def render(row: dict, answer: dict) -> str:
    """The completion of an answer in its family's output schema (lists in the order given)."""
    family = family_of(row["dataset"]).name
    if family == "ner":
        return json.dumps(_ner_json(answer["mentions"]))
    if family == "joint":
        return json.dumps({"entities": _ner_json(answer["mentions"]), "relations": [list(t) for t in answer["relations"]]})
    if family == "triples":
        return json.dumps([list(t) for t in answer["relations"]])
    if family == "nary":
        return json.dumps([{"drugs": d, "label": lab} for d, lab in answer["combinations"]])
    if family == "re":
        return "no label" if answer["label"] is None else json.dumps({"relation": answer["label"]})
    return json.dumps({"answer": answer["answer"]})


def shuffled(row: dict, answer: dict, rnd: random.Random) -> tuple[dict, dict]:
    """The same row and answer with every list (gold and predicted, drugs within a combination) reordered."""
    def mix(items):
        items = list(items)
        rnd.shuffle(items)
        return items
    row = row | {k: mix(row[k]) for k in ("entities", "relations")}
    row["combinations"] = mix({"drugs": mix(c["drugs"]), "label": c["label"]} for c in row["combinations"])
    answer = {k: (mix((mix(d), lab) for d, lab in v) if k == "combinations" else mix(v)) if isinstance(v, list) else v
              for k, v in answer.items()}
    return row, answer


def counts_of(row: dict, completion: str) -> dict:
    spec, family, parsed = parsed_row(row, completion)
    return example_counts(row, parsed, spec, family)


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == pytest.approx(b)


@pytest.mark.parametrize("family", sorted(CASES))
def test_every_score_is_invariant_to_the_order_of_predictions_and_gold(family):
    @FAST
    @given(CASES[family], st.randoms(use_true_random=False))
    def check(case, rnd):
        row, answer = case
        base = counts_of(row, render(row, answer))
        for _ in range(3):
            row2, answer2 = shuffled(row, answer, rnd)
            assert _close(counts_of(row2, render(row2, answer2)), base)
    check()


def _rewards_and_scores(row: dict, completion: str) -> list[tuple[str, float, float]]:
    """(what, reward without partial credit, the metrics' example score) for every reward of the family."""
    spec, family, parsed = parsed_row(row, completion)
    cols = {k: [v] for k, v in row.items() if k != "id"}
    score = (lambda part, view: example_f1(family.part(part).counts(parsed, row, spec, view)) if parsed.ok else 0.0)
    pairs = [("binary", BinaryReward()([completion], **cols)[0], float(family.exactly_right(parsed, row, spec)))]
    if family.part("entities"):
        pairs.append(("entity", EntityReward(0.0, 0.0)([completion], **cols)[0], score("entities", EntityView())))
        pairs.append(("entity lenient", EntityReward(0.0, 0.0, "lenient")([completion], **cols)[0],
                      score("entities", EntityView(alignment="lenient"))))
    if family.part("relations"):
        pairs.append(("relation", RelationReward(partial=False)([completion], **cols)[0], score("relations", "strict")))
    if family.part("label"):
        pairs.append(("relation (re)", RelationReward()([completion], **cols)[0], score("label", "accuracy")))
    if family.part("combinations"):
        pairs.append(("nary", NaryReward(0.0, 0.0)([completion], **cols)[0], score("combinations", "labelled_partial")))
        pairs.append(("nary exact", NaryReward(0.0, 0.0, overlap=False)([completion], **cols)[0],
                      score("combinations", "labelled_exact")))
    if family.part("answer"):
        pairs.append(("factual", factual_reward([completion], **cols)[0], score("answer", "token_f1")))
    return pairs


@pytest.mark.parametrize("family", sorted(CASES))
def test_a_reward_without_partial_credit_is_the_metrics_score(family):
    @FAST
    @given(CASES[family])
    def check(case):
        row, answer = case
        for what, reward, score in _rewards_and_scores(row, render(row, answer)):
            assert reward == pytest.approx(score), what
    check()


def _walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, path + (k,))


@pytest.mark.parametrize("family", sorted(CASES))
def test_per_label_scores_are_in_range_and_add_up(family):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(CASES[family], min_size=1, max_size=4))
    def check(cases):
        rows = [r | {"id": str(i)} for i, (r, _) in enumerate(cases)]
        metrics, _ = score_predictions(rows, [render(r, a) for r, a in cases])
        for path, node in _walk(metrics):
            if {"precision", "recall", "f1"} <= node.keys():
                assert all(0.0 <= node[k] <= 1.0 for k in ("precision", "recall", "f1")), path
            per = node.get("per_type") or node.get("per_label")
            if per is not None:  # every label listed: per-label counts add up to the micro ones
                for k in ("tp_p", "tp_r", "pred", "gold"):
                    assert sum(t[k] for t in per.values()) == pytest.approx(node["micro"][k]), (path, k)
    check()


EXACT_VIEWS = {  # views whose credit is 1 only for an equal item, the gold items being distinct under them
    "entities": [EntityView(s, a, o) for s in ("strict", "exact") for a, o in
                 (("verbatim", "listed"), ("lenient", "listed"), ("verbatim", "all"))] + [EntityView("set")],
    "relations": ["strict"],  # (boundaries: two gold triples may share head and tail)
    "combinations": ["pos_exact", "any_exact", "labelled_exact"],
    "label": ["micro"],
    "answer": ["exact_match", "token_f1"],
}


def _precision(c: dict) -> float | None:
    return c["tp_p"] / c["pred"] if c["pred"] else None


@pytest.mark.parametrize("family", sorted(CASES))
def test_a_repeated_prediction_never_raises_precision(family):
    """Words occur once in these texts, so a repeated mention has no second occurrence to claim; gold items
    are distinct. Per label too, except under the type-agnostic `exact` scheme, where a tie between two
    predictions of other types than the gold's may go either way. (Under overlap credit, the
    partial/type schemes and n-ary partial, a repeat may rightly match a second gold item it overlaps.)"""
    @FAST
    @given(CASES[family], st.data())
    def check(case, data):
        row, answer = case
        lists = [k for k, v in answer.items() if isinstance(v, list) and v]
        if not lists:
            return
        key = data.draw(st.sampled_from(lists))
        repeated = answer | {key: answer[key] + [data.draw(st.sampled_from(answer[key]))]}
        before, after = counts_of(row, render(row, answer)), counts_of(row, render(row, repeated))
        for part, views in EXACT_VIEWS.items():
            for view in views if part in before else []:
                labels = ["ALL"] if getattr(view, "scheme", "") == "exact" else list(after[part][view])
                for label in labels:
                    b, a = (_precision(x[part][view].get(label, {"tp_p": 0, "pred": 0})) for x in (before, after))
                    assert b is None or a <= b + 1e-12, (part, view, label)
    check()


@FAST
@given(ner())
def test_optimal_matching_never_scores_below_greedy(case):
    row, answer = case
    spec, _, parsed = parsed_row(row, render(row, answer))
    for scheme in SCHEMES:
        optimal = ENTITIES.counts(parsed, row, spec, EntityView(scheme, "lenient"))["ALL"]["tp_p"]
        greedy = ENTITIES.counts(parsed, row, spec, EntityView(scheme, "lenient", matcher="greedy"))["ALL"]["tp_p"]
        assert optimal >= greedy - 1e-12
