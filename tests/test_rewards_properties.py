"""Property tests (hypothesis) for the rewards, and agreement of rewards with the metrics."""

import json
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grasp_lib import tasks
from grasp_lib.metrics import score_predictions
from grasp_lib.rewards import REWARDS, BinaryReward, EntityReward, NaryReward, RelationReward, build_rewards

SPECS = {
    "p_triples": tasks.TaskSpec("p_triples", "triples", "test", {"INHIBITOR": "i", "ACTIVATOR": "a"}),
    "p_nary": tasks.TaskSpec("p_nary", "nary", "test", {"POS": "p", "NEG": "n"}),
    "p_joint": tasks.TaskSpec("p_joint", "joint", "test", {"Chemical": "c", "Disease": "d"}, {"CID": "c"}),
    "p_re": tasks.TaskSpec("p_re", "re", "test", {"CPR:3": "u", "CPR:4": "d"}),
    "p_qa": tasks.TaskSpec("p_qa", "qa", "test", {}),
}
# hypothesis runs many examples in one test call, so the registry entries are added for the module
# (and removed after it), not per example
_saved = {}


def setup_module():
    for name, spec in SPECS.items():
        _saved[name] = tasks.TASKS.get(name)
        tasks.TASKS[name] = spec


def teardown_module():
    for name, old in _saved.items():
        if old is None:
            tasks.TASKS.pop(name, None)
        else:
            tasks.TASKS[name] = old


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Words of the text use letters a-h, hallucinated ones w-z: a hallucination never matches (even fuzzily).
WORD = st.text(alphabet="abcdefgh", min_size=5, max_size=5)
FAKE = st.text(alphabet="wxyz", min_size=5, max_size=5)
TYPES = ["Chemical", "Disease"]


def cols(r, n=1):
    return {k: [v] * n for k, v in r.items()}


@st.composite
def ner_case(draw):
    """A text of distinct 5-letter words, gold entities on some of them, a prediction that is a subset of
    the gold (some retyped) plus hallucinated items, and one gold item the prediction misses."""
    words = draw(st.lists(WORD, min_size=2, max_size=8, unique=True))
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    chosen = draw(st.lists(st.integers(0, len(words) - 1), min_size=1, unique=True))
    gold = [{"start": starts[i], "end": starts[i] + 5, "type": draw(st.sampled_from(TYPES)), "text": words[i]}
            for i in sorted(chosen)]
    kept = draw(st.lists(st.sampled_from(range(len(gold))), unique=True))
    pred = [(gold[i]["text"], gold[i]["type"] if draw(st.booleans()) else draw(st.sampled_from(TYPES)))
            for i in kept]
    pred += [(w, draw(st.sampled_from(TYPES))) for w in draw(st.lists(FAKE, max_size=3, unique=True))]
    missing = [g for i, g in enumerate(gold) if i not in kept]
    return text, gold, pred, missing


def ner_json(pred):
    return json.dumps([{"text": m, "type": t} for m, t in pred])


def ner_row(text, gold):
    return {"text": text, "task": "ner", "dataset": "bc5cdr", "entities": gold, "relations": [], "label": None,
            "combinations": [], "answer": None}


def entity(pred, text, gold, **kw):
    return EntityReward(**kw)([ner_json(pred)], **cols(ner_row(text, gold)))[0]


@FAST
@given(ner_case(), st.randoms())
def test_entity_order_and_monotonicity(case, rnd):
    text, gold, pred, missing = case
    base = entity(pred, text, gold)
    assert 0.0 <= base <= 1.0
    shuffled = list(pred)
    rnd.shuffle(shuffled)
    assert entity(shuffled, text, gold) == pytest.approx(base)
    perfect = [(g["text"], g["type"]) for g in gold]
    assert entity(perfect, text, gold) == 1.0
    for g in missing:  # adding a correct item never lowers the reward
        assert entity(pred + [(g["text"], g["type"])], text, gold) >= base - 1e-12
    assert entity(pred + [("wwwzz", "Chemical")], text, gold) <= base + 1e-12  # a hallucination never raises it


@FAST
@given(ner_case())
def test_rewards_and_metrics_agree_on_the_same_predictions(case):
    """Entity reward without partial credit == strict F1 of metrics; binary == (strict F1 is 1)."""
    text, gold, pred, _ = case
    r = ner_row(text, gold)
    completion = ner_json(pred)
    metrics, _ = score_predictions([r | {"id": "x"}], [completion])
    strict = metrics["strict"]["micro"]["f1"]
    assert entity(pred, text, gold, overlap_weight=0.0, type_credit=0.0) == pytest.approx(strict)
    assert BinaryReward()([completion], **cols(r))[0] == float(strict == 1.0)


def test_gold_answers_on_real_sentences_score_the_same_in_rewards_and_metrics():
    """On BC5CDR test sentences the gold answer has strict F1 1 (each mention is scored at the occurrence
    that is its gold span: "dex" in "dexamethasone (dex)" is the second one); per row the
    no-partial-credit entity reward equals the metric's strict F1, binary equals [F1 == 1], and every
    reward gives the gold answer 1."""
    from grasp_lib.examples import build_examples

    examples, _ = build_examples("bc5cdr", "test", "sentence")
    rows = [e.to_row() for e in random.Random(0).sample(examples, 300)]
    labels = tasks.get_task("bc5cdr").label_names
    completions = []
    for r in rows:
        grouped = {label: [] for label in labels}
        for e in r["entities"]:
            grouped[e["type"]].append(e["text"])
        completions.append(json.dumps(grouped, ensure_ascii=False))
    strict = []
    for r, c in zip(rows, completions):
        metrics, _ = score_predictions([r], [c])
        strict.append(metrics["strict"]["micro"]["f1"] if r["entities"] else 1.0)
    assert all(f == 1.0 for f in strict)
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "id"}
    no_partial = EntityReward(overlap_weight=0.0, type_credit=0.0)(completions, **columns)
    assert no_partial == pytest.approx(strict)
    assert BinaryReward()(completions, **columns) == [float(f == 1.0) for f in strict]
    for f in build_rewards(["format", "entity", "grounding", "length"]):
        values = f(completions, **columns)
        assert all(v == 1.0 for v, s in zip(values, strict) if s == 1.0), f.__name__


# ------------------------------------------------------------------ relations and combinations
@st.composite
def triple_case(draw):
    words = draw(st.lists(WORD, min_size=4, max_size=10, unique=True))
    pairs = draw(st.lists(st.tuples(st.sampled_from(words), st.sampled_from(words)).filter(lambda p: p[0] != p[1]),
                          min_size=1, max_size=5, unique=True))
    gold = [(h, draw(st.sampled_from(["INHIBITOR", "ACTIVATOR"])), t) for h, t in pairs]
    kept = draw(st.lists(st.sampled_from(range(len(gold))), unique=True))
    pred = [gold[i] if draw(st.booleans()) else (gold[i][0], "ACTIVATOR", gold[i][2]) for i in kept]
    pred += [(h, "INHIBITOR", t) for h, t in draw(st.lists(st.tuples(FAKE, FAKE), max_size=2))]
    missing = [g for i, g in enumerate(gold) if i not in kept]
    return gold, pred, missing


def relation(pred, gold):
    r = {"text": "", "task": "triples", "dataset": "p_triples", "entities": [],
         "relations": [{"head": h, "relation": x, "tail": t} for h, x, t in gold],
         "label": None, "combinations": [], "answer": None}
    return RelationReward()([json.dumps([list(p) for p in pred])], **cols(r))[0]


@FAST
@given(triple_case(), st.randoms())
def test_relation_order_and_monotonicity(case, rnd):
    gold, pred, missing = case
    base = relation(pred, gold)
    assert 0.0 <= base <= 1.0
    shuffled = list(pred)
    rnd.shuffle(shuffled)
    assert relation(shuffled, gold) == pytest.approx(base)
    assert relation(gold, gold) == 1.0
    for g in missing:
        assert relation(pred + [g], gold) >= base - 1e-12
    assert relation(pred + [("wwwww", "INHIBITOR", "zzzzz")], gold) <= base + 1e-12


@st.composite
def nary_case(draw):
    drugs = draw(st.lists(WORD, min_size=4, max_size=10, unique=True))
    sets = draw(st.lists(st.frozensets(st.sampled_from(drugs), min_size=2, max_size=4), min_size=1, max_size=4,
                         unique=True))
    gold = [(sorted(s), draw(st.sampled_from(["POS", "NEG"]))) for s in sets]
    kept = draw(st.lists(st.sampled_from(range(len(gold))), unique=True))
    pred = [(gold[i][0][:max(2, len(gold[i][0]) - draw(st.integers(0, 1)))], gold[i][1]) for i in kept]
    pred += [(list(d), "POS") for d in draw(st.lists(st.lists(FAKE, min_size=2, max_size=3, unique=True),
                                                      max_size=2, unique_by=lambda d: frozenset(d)))]
    # a correct item the prediction misses, whose drug set the prediction has not claimed
    claimed = {frozenset(d) for d, _ in pred}
    missing = [g for i, g in enumerate(gold) if i not in kept and frozenset(g[0]) not in claimed]
    return gold, pred, missing


def nary(pred, gold):
    r = {"text": "", "task": "nary", "dataset": "p_nary", "entities": [], "relations": [], "label": None,
         "combinations": [{"drugs": d, "label": lab} for d, lab in gold], "answer": None}
    return NaryReward()([json.dumps([{"drugs": d, "label": lab} for d, lab in pred])], **cols(r))[0]


@FAST
@given(nary_case(), st.randoms())
def test_nary_order_and_monotonicity(case, rnd):
    gold, pred, missing = case
    base = nary(pred, gold)
    assert 0.0 <= base <= 1.0
    shuffled = [(rnd.sample(d, len(d)), lab) for d, lab in pred]
    rnd.shuffle(shuffled)
    assert nary(shuffled, gold) == pytest.approx(base)
    assert nary(gold, gold) == 1.0
    for g in missing:
        assert nary(pred + [g], gold) >= base - 1e-12
    fake = (["wwwww", "zzzzz"], "POS")
    assume(frozenset(fake[0]) not in {frozenset(d) for d, _ in pred})
    assert nary(pred + [fake], gold) <= base + 1e-12


# ------------------------------------------------------------------ any string, every reward, every family
ROWS = [
    ner_row("Naloxone reversed clonidine-induced hypotension.",
            [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]),
    {"text": "aspirin inhibits COX-1", "task": "triples", "dataset": "p_triples", "entities": [],
     "relations": [{"head": "aspirin", "relation": "INHIBITOR", "tail": "COX-1"}], "label": None,
     "combinations": [], "answer": None},
    {"text": "a and b", "task": "nary", "dataset": "p_nary", "entities": [], "relations": [], "label": None,
     "combinations": [{"drugs": ["a", "b"], "label": "POS"}], "answer": None},
    {"text": "cocaine seizures", "task": "joint", "dataset": "p_joint",
     "entities": [{"start": 0, "end": 7, "type": "Chemical", "text": "cocaine"}],
     "relations": [{"head": "cocaine", "relation": "CID", "tail": "seizures"}], "label": None,
     "combinations": [], "answer": None},
    {"text": "x", "task": "re", "dataset": "p_re", "entities": [], "relations": [], "label": "CPR:4",
     "combinations": [], "answer": None},
    {"text": "x", "task": "qa", "dataset": "p_qa", "entities": [], "relations": [], "label": None,
     "combinations": [], "answer": "it increases COX-2"},
]
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                       lambda children: st.lists(children, max_size=4)
                       | st.dictionaries(st.sampled_from(["Chemical", "Disease", "drugs", "label", "entities",
                                                          "relations", "relation", "answer", "text", "type"]),
                                         children, max_size=4), max_leaves=12)
ANY_COMPLETION = (st.text(max_size=200) | JSONISH.map(json.dumps)
                  | st.tuples(st.text(max_size=20), JSONISH.map(json.dumps), st.integers(0, 60)).map(
                      lambda t: "<think>" + t[0] + "</think>" + t[1][:t[2] or None]))
ALL = build_rewards(sorted(REWARDS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_COMPLETION, st.sampled_from(range(len(ROWS))))
def test_any_string_never_raises_and_stays_in_range(completion, which):
    r = ROWS[which]
    for f in ALL:
        out = f([completion, [{"role": "assistant", "content": completion}]], **cols(r, 2))
        assert len(out) == 2 and out[0] == out[1]
        assert out[0] is None or 0.0 <= out[0] <= 1.0, (f.__name__, completion, out)


# ------------------------------------------------------------------ adversarial completions, 10,000 per family
# The gold answer of each ROWS entry in its family's schema: the seed the adversarial generator mutates.
GOLD_ANSWERS = ['{"Chemical": ["Naloxone"], "Disease": []}', '[["aspirin", "INHIBITOR", "COX-1"]]',
                '[{"drugs": ["a", "b"], "label": "POS"}]',
                '{"entities": {"Chemical": ["cocaine"], "Disease": ["seizures"]}, "relations": [["cocaine", "CID", '
                '"seizures"]]}', '{"relation": "CPR:4"}', '{"answer": "it increases COX-2"}']
NOISE = ['[', ']', '{', '}', '"', '\\', ',', ':', ' ', '\n', '\\"', '```', '<think>', '</think>', 'null', '1e9',
         'Confidence: 80%', '\u00e9', '\u2028', '\x00', '\ud7ff', 'confiden']


def heavy_completions(answer: str) -> list[str]:
    """The worst inputs known: deep nesting (10k levels), 100k-character whitespace runs where the old
    patterns backtracked, long runs of escapes and strings, and a completion past parsing.MAX_CHARS."""
    from grasp_lib.parsing import MAX_CHARS

    run = " " * 100_000
    return ["[" * 10_000, "{" * 10_000, "[" * 10_000 + "]" * 10_000, '{"Chemical": ' + "[" * 10_000,
            '{"a": ' * 10_000 + "1" + "}" * 10_000, "[{" * 5_000 + answer, run + "x", run + answer + run,
            answer + "\n" + run + "Confidence: 80%", "confidence:" + run + "x", "```" + run + "x",
            "<think>" + run, answer[:-1] + run, '{"Chemical": ["' + run + '"]}', '["' + "\\" * 100_000,
            '{"Chemical": ["' + '\\"' * 50_000, '{"Chemical": [' + '"a",' * 25_000, "confiden" * 12_500,
            "\t\n" * 50_000 + "{", answer + "x" * MAX_CHARS]


def light_completion(answer: str, rng: random.Random) -> str:
    """The gold answer damaged the ways a policy damages it: cut, noise inserted, wrapped, repeated."""
    text = answer
    for _ in range(rng.choice([0, 1, 1, 2, 3, 6])):
        kind = rng.randrange(5)
        at = rng.randrange(len(text) + 1)
        if kind == 0:
            text = text[:at]
        elif kind == 1:
            text = text[:at] + rng.choice(NOISE) * rng.choice([1, 1, 2, 40]) + text[at:]
        elif kind == 2:
            text = rng.choice(["Sure: ", "```json\n", "<think>" + text[:at] + "</think>", "[" * 40]) + text
        elif kind == 3:
            text += rng.choice(["\nConfidence: 75%", " Hope it helps", "```", "]" * 3, text])
        else:
            text = "".join(rng.choice(NOISE + list("abc{}[]")) for _ in range(rng.randrange(60)))
    return text


def _in_unit_range(metrics: dict) -> bool:
    """Every precision / recall / F1 / accuracy in the metrics is in [0, 1]."""
    names = ("precision", "recall", "f1", "accuracy")
    stack, ok = [metrics], True
    while stack:
        node = stack.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                stack.append(value)
            elif key in names and isinstance(value, float):
                ok = ok and 0.0 <= value <= 1.0
    return ok


@pytest.mark.slow  # about a minute: 60,000 completions through 13 rewards and the metrics
@pytest.mark.parametrize("which", range(len(ROWS)), ids=[r["task"] for r in ROWS])
def test_adversarial_completions_never_raise_and_stay_in_range(which):
    from grasp_lib.parsing import REPAIRED, UNPARSABLE, VALID, parse

    row, answer, rng = ROWS[which], GOLD_ANSWERS[which], random.Random(which)
    heavy = heavy_completions(answer)
    completions = heavy + [light_completion(answer, rng) for _ in range(10_000 - len(heavy))]
    assert len(completions) == 10_000 and max(map(len, completions)) > 100_000
    spec = tasks.get_task(row["dataset"])
    statuses = {parse(c, *spec.parse_args()).status for c in completions}
    assert statuses <= {VALID, REPAIRED, UNPARSABLE} and UNPARSABLE in statuses
    for start in range(0, len(completions), 1000):  # TRL's way: one call per reward on a batch
        batch = completions[start:start + 1000]
        for f in ALL:
            out = f(batch, **cols(row, len(batch)))
            assert len(out) == len(batch)
            assert all(v is None or 0.0 <= v <= 1.0 for v in out), f.__name__
    metrics, records = score_predictions([row | {"id": str(i)} for i in range(len(completions))], completions)
    assert sum(metrics["parse_status"].values()) == len(records) == 10_000
    assert _in_unit_range(metrics)
