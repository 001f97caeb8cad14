"""Grounded decoding's schemas and masks: every reachable state has an allowed token, every ending is valid."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grasp_lib import constrained
from grasp_lib.models import load_model
from grasp_lib.parsing import parse
from grasp_lib.tasks import TASKS, get_task

FAMILY_DATASETS = ["bc5cdr", "jnlpba", "bc5cdr-cid", "scier", "drugcomb", "ddi", "biorlhf"]
LEVELS = [[], ["reasoning"], ["confidence"], ["reasoning", "confidence"]]
WORDS = ["Cisplatin", "cisplatin", "induced", "naïve", "café", "漢字", "α-synuclein", '"quoted"', "back\\slash",
         "tab\tbed", "emoji😀", "a", "a a", "nephrotoxicity", "-", "(", ")", ",", "."]


@pytest.fixture(scope="module")
def grounding():
    _, tokenizer, _ = load_model("tiny-random")
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    return constrained.Grounding(tokenizer, [stop, tokenizer.convert_tokens_to_ids(".")]), tokenizer


def grounded_items(spec, parsed) -> list[str]:
    """Every string of a parsed answer that grounded decoding must copy from the text."""
    return ([m for m, _ in parsed.mentions] + [x for h, _, t in parsed.relations for x in (h, t)]
            + [d for drugs, _ in parsed.combinations for d in drugs])


def walk(grounding, answer, max_new: int, logits_seed: int) -> bytes:
    """Decode with random logits under the masks; asserts at every step what the constraint promises."""
    g, tokenizer = grounding
    row = g.start(answer)
    rng = torch.Generator().manual_seed(logits_seed)
    for step in range(max_new):
        remaining = max_new - step
        allowed = g.masks([row], remaining, len(tokenizer))
        assert allowed[0].any(), f"no allowed token after {bytes(row.prefix)!r}"
        logits = torch.randn(1, len(tokenizer), generator=rng).masked_fill(~allowed, float("-inf"))
        chosen = logits.argmax(-1)
        g.settle([row], logits, chosen, remaining, lambda one: one.argmax(-1))
        assert allowed[0, int(chosen[0])]
        g.advance([row], [int(chosen[0])])
        if row.done:
            break
        assert len(answer.closing(bytes(row.prefix))) + 1 <= answer.bound()  # the budget's bound holds
    return bytes(row.prefix)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dataset=st.sampled_from(FAMILY_DATASETS), words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=12),
       levels=st.sampled_from(LEVELS), max_new=st.sampled_from([12, 24, 48]), seed=st.integers(0, 10_000))
def test_every_state_has_a_token_and_every_answer_is_valid_and_grounded(grounding, dataset, words, levels, max_new,
                                                                        seed):
    spec = get_task(dataset)
    text = " ".join(words)
    answer = constrained.answer_schema(spec, text, levels)
    assume(len(answer.body.minimal()) + 1 <= max_new)  # below that no valid answer fits at all
    out = walk(grounding, answer, max_new, seed).decode("utf-8")  # complete UTF-8 even when cut by the limit
    parsed = parse(out, *spec.parse_args())
    assert parsed.status == "valid", (out, parsed.reason)
    assert all(item in text for item in grounded_items(spec, parsed)), out
    assert all(item for item in grounded_items(spec, parsed))  # no empty mention


def test_answers_follow_the_training_targets_format(grounding):
    """The gold answer of each family (prompts.build_target) is itself accepted token by token."""
    g, tokenizer = grounding
    text = 'Cisplatin induced "acute" nephrotoxicity; naïve rats.'
    targets = {
        "bc5cdr": {"Chemical": ["Cisplatin"], "Disease": ['"acute" nephrotoxicity']},
        "bc5cdr-cid": [["Cisplatin", "CID", "nephrotoxicity"]],
        "scier": {"entities": {"Method": ["naïve"], "Task": [], "Dataset": []},
                  "relations": [["naïve", "Used-For", "rats"]]},
        "drugcomb": [{"drugs": ["Cisplatin", "rats"], "label": "POS"}],
        "ddi": {"relation": "none"},
        "biorlhf": {"answer": "anything, \"free\" text ✓"},
    }
    for dataset, target in targets.items():
        answer = constrained.answer_schema(get_task(dataset), text, ["reasoning", "confidence"])
        completion = "<think>\nplan\n</think>\n" + json.dumps(target, ensure_ascii=False) + "\nConfidence: 80%"
        row = g.start(answer)
        for t in tokenizer(completion, add_special_tokens=False)["input_ids"]:
            assert g.masks([row], 500, len(tokenizer))[0, t], (dataset, bytes(row.prefix))
            g.advance([row], [t])
        assert answer.closing(bytes(row.prefix)) == b""
        assert g.masks([row], 500, len(tokenizer))[0, g.stop_ids].all()  # end-of-turn once complete


def test_mentions_types_and_labels_are_restricted(grounding):
    g, tokenizer = grounding
    answer = constrained.answer_schema(get_task("bc5cdr"), "Naloxone reversed hypotension.")

    def accepts(completion: str) -> bool:
        row = g.start(answer)
        for t in tokenizer(completion, add_special_tokens=False)["input_ids"]:
            if not g.masks([row], 500, len(tokenizer))[0, t]:
                return False
            g.advance([row], [t])
        return True

    assert accepts('{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}')
    assert not accepts('{"Chemical": ["naloxone"]')  # case-sensitive: verbatim spans only
    assert not accepts('{"Chemical": ["Naloxonne"]')  # a misspelling is not in the text
    assert not accepts('{"Drug": [')  # only the task's types
    assert not accepts('{"Chemical": [""')  # no empty mention
    assert not accepts('{"Disease": [], "Chemical"')  # keys in the task's order, each once
    row = g.start(answer)
    first = g.masks([row], 500, len(tokenizer))[0]
    assert not first[g.stop_ids].any()  # end-of-turn only once the JSON is complete


def test_closing_gives_the_shortest_valid_ending():
    text = 'a "b" c'
    ner = constrained.answer_schema(get_task("bc5cdr"), text, ["reasoning", "confidence"])
    assert ner.closing(b"") == b"{}"
    assert ner.closing(b'{"Chemical": ["a') == b'"]}'
    assert ner.closing(b'{"Chemical": ["a \\') == b'""]}'  # an escape is finished, never cut
    assert ner.closing(b'{"Chemical": ["') == b'a"]}'
    assert ner.closing(b'{"Chemical": ["a"], ') == b'"Disease": []}'
    assert ner.closing(b"<think>plan </thi") == b"nk>{}"
    assert ner.closing(b'{}\nConf') == b"idence: 0%"
    assert ner.closing(b'{}\nConfidence: 7') == b"%"
    triples = constrained.answer_schema(get_task("bc5cdr-cid"), text)
    assert triples.closing(b'[["c') == b'", "CID", "a"]]'
    nary = constrained.answer_schema(get_task("drugcomb"), text)
    assert nary.closing(b'[{"drugs": [') == b'"a"], "label": "POS"}]'
    qa = constrained.answer_schema(get_task("biorlhf"), text)
    cut = '{"answer": "caf\u00e9'.encode()[:-1]  # inside a two-byte character
    assert json.loads(cut + qa.closing(cut)) == {"answer": "caf\u00c0"}  # its rest, then the quote
    assert qa.closing(b'{"answer": "x\\u00') == b'00"}'


@pytest.mark.parametrize("dataset", sorted(TASKS))
def test_every_task_has_a_grammar_llguidance_accepts(grounding, dataset):
    g, _ = grounding
    for levels in LEVELS:
        answer = constrained.answer_schema(get_task(dataset), "Some text, with 'quotes' and \"more\".", levels)
        row = g.start(answer)  # raises when llguidance rejects the grammar
        assert not row.matcher.is_error()
        assert answer.bound() > len(answer.body.minimal())
