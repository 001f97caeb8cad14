"""Error categories of entity predictions: hand-built cases, one per category, and run-level tables."""

import json

import pytest

from grasp_lib import errors

TEXT = "Naloxone reverses clonidine-induced hypotension in rats."
GOLD = [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
        {"start": 18, "end": 27, "type": "Chemical", "text": "clonidine"},
        {"start": 36, "end": 47, "type": "Disease", "text": "hypotension"}]


def pred(text, label, start=None):
    start = TEXT.find(text) if start is None else start
    return {"text": text, "type": label, "start": None if start < 0 else start,
            "end": None if start < 0 else start + len(text)}


@pytest.mark.parametrize("predicted, expected", [
    ([pred("Naloxone", "Chemical")], {"correct": 1, "missed": 2}),
    ([pred("Naloxone", "Disease")], {"wrong_type": 1, "missed": 2}),
    ([pred("clonidine-induced", "Chemical")], {"boundary": 1, "missed": 2}),
    ([pred("hypotension in rats", "Chemical")], {"boundary": 1, "missed": 2}),  # boundary and type both off
    ([pred("rats", "Disease")], {"spurious": 1, "missed": 3}),
    ([pred("aspirin", "Chemical")], {"hallucinated": 1, "missed": 3}),
    ([], {"missed": 3}),
    ([pred("Naloxone", "Chemical"), pred("Naloxone", "Disease", 0)], {"correct": 1, "spurious": 1, "missed": 2}),
    ([pred("clonidine", "Chemical"), pred("hypotension", "Disease"), pred("Naloxone", "Chemical")],
     {"correct": 3}),
])
def test_classify(predicted, expected):
    got = errors.classify(predicted, GOLD)
    counts = {c: sum(e["category"] == c for e in got) for c in errors.CATEGORIES}
    assert counts == {c: expected.get(c, 0) for c in errors.CATEGORIES}


def test_every_mention_is_counted_once():
    predicted = [pred("Naloxone", "Disease"), pred("clonidine-induced", "Chemical"), pred("rats", "Disease"),
                 pred("aspirin", "Chemical")]
    got = errors.classify(predicted, GOLD)
    assert sum(e["pred"] is not None for e in got) == len(predicted)
    assert sum(e["gold"] is not None for e in got) == len(GOLD)
    boundary = next(e for e in got if e["category"] == "boundary")
    assert boundary["same_type"] and boundary["gold"]["text"] == "clonidine"


def test_run_tables(tmp_path):
    rows = [{"id": "u1", "task": "ner", "dataset": "bc5cdr", "text": TEXT, "entities": GOLD}]
    records = [{"stage": "sft", "id": "u1", "dataset": "bc5cdr", "status": "valid", "reason": "",
                "completion": "...", "predicted": [pred("Naloxone", "Disease"), pred("clonidine", "Chemical"),
                                                   pred("aspirin", "Chemical")]},
               {"stage": "grpo", "id": "u1", "dataset": "bc5cdr", "status": "unparsable",
                "reason": "no JSON object or list found", "completion": "I do not know", "predicted": []}]
    (tmp_path / "data").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "results" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    entries, recs = errors.run_errors(tmp_path)
    summary = {s["stage"]: s for s in errors.summary(entries, recs)}
    assert summary["sft"] | {} == {"stage": "sft", "correct": 1, "wrong_type": 1, "boundary": 0, "spurious": 0,
                                   "hallucinated": 1, "missed": 1, "parse_failures": 0}
    assert summary["grpo"]["missed"] == 3 and summary["grpo"]["parse_failures"] == 1
    table = {(r["stage"], r["type"]): r for r in errors.by_type(entries)}
    # sft Chemical: clonidine right (tp), aspirin hallucinated (fp), Naloxone gold missed as wrong type (fn)
    assert (table[("sft", "Chemical")]["tp"], table[("sft", "Chemical")]["fp"], table[("sft", "Chemical")]["fn"]) \
        == (1, 1, 1)
    assert table[("sft", "Chemical")]["fp_hallucinated"] == 1 and table[("sft", "Chemical")]["fn_wrong_type"] == 1
    # sft Disease: Naloxone predicted as Disease (fp wrong type), hypotension missed (fn)
    assert (table[("sft", "Disease")]["fp"], table[("sft", "Disease")]["fn_missed"]) == (1, 1)
    assert [t["stage"] for t in errors.by_type(entries)][0] == "sft"  # stages in run order
    assert errors.examples(entries, "hallucinated")[0]["pred_text"] == "aspirin"
    failure = errors.parse_failures(recs)
    assert failure == [{"stage": "grpo", "id": "u1", "reason": "no JSON object or list found",
                        "completion": "I do not know"}]


def test_records_without_dataset_join_on_id():
    rows = [{"id": "u1", "task": "ner", "dataset": "bc5cdr", "text": TEXT, "entities": GOLD}]
    entries = errors.analyse(rows, [{"stage": "sft", "id": "u1", "predicted": [pred("Naloxone", "Chemical")]}])
    assert [e["category"] for e in entries] == ["correct", "missed", "missed"]
