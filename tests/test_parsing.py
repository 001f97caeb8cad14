import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grasp_lib import parsing
from grasp_lib.parsing import REPAIRED, UNPARSABLE, VALID, parse

LABELS = ("Chemical", "Disease")


@pytest.mark.parametrize("completion, status, mentions", [
    ('{"Chemical": ["naloxone"], "Disease": []}', VALID, [("naloxone", "Chemical")]),
    ('{"Chemical": [], "Disease": []}', VALID, []),
    ('[{"text": "delirium", "type": "Disease"}]', VALID, [("delirium", "Disease")]),  # list shape
    ('```json\n{"Disease": ["delirium"]}\n```', REPAIRED, [("delirium", "Disease")]),  # code fence
    ('Here you go: {"Disease": ["delirium"]} Hope it helps', REPAIRED, [("delirium", "Disease")]),
    ('{"Chemical": ["naloxone", "IDM"', REPAIRED, [("naloxone", "Chemical"), ("IDM", "Chemical")]),  # truncated
    ('{"Chemical": ["nalox', REPAIRED, [("nalox", "Chemical")]),  # truncated inside a string
    ('{"Gene": ["p53"], "Disease": ["cancer"]}', REPAIRED, [("cancer", "Disease")]),  # unknown type dropped
    ('{"Chemical": [1, "x"]}', REPAIRED, [("x", "Chemical")]),  # non-string item dropped
    ('<think>naloxone is a drug</think>{"Chemical": ["naloxone"]}', VALID, [("naloxone", "Chemical")]),
    ('I cannot find any entities.', UNPARSABLE, []),
    ('', UNPARSABLE, []),
    ('{"Chemical": ]', UNPARSABLE, []),
    ('"just a string"', UNPARSABLE, []),
    ('Ναλοξόνη {"Chemical": ["ναλοξόνη"]}', REPAIRED, [("ναλοξόνη", "Chemical")]),  # unicode
])
def test_parse_table(completion, status, mentions):
    parsed = parse(completion, LABELS)
    assert parsed.status == status
    assert list(parsed.mentions) == mentions
    assert (parsed.reason == "") == (status == VALID)


def test_non_string_completion_is_unparsable_not_an_exception():
    assert parse(None, LABELS).status == UNPARSABLE


@pytest.mark.parametrize("family, completion, labels, relation_labels, status, field, expected", [
    ("re", '{"relation": "CPR:4"}', ("CPR:3", "CPR:4"), (), VALID, "label", "CPR:4"),
    ("re", '{"relation": "CPR:9"}', ("CPR:3", "CPR:4"), (), UNPARSABLE, "label", None),
    ("triples", '[["cisplatin", "CID", "nephrotoxicity"]]', ("CID",), (), VALID, "relations",
     (("cisplatin", "CID", "nephrotoxicity"),)),
    ("triples", '[["a", "XYZ", "b"], ["c", "CID", "d"]]', ("CID",), (), REPAIRED, "relations", (("c", "CID", "d"),)),
    ("nary", '[{"drugs": ["a", "b"], "label": "POS"}]', ("POS", "COMB", "NEG"), (), VALID, "combinations",
     ((("a", "b"), "POS"),)),
    ("nary", '[]', ("POS",), (), VALID, "combinations", ()),
    ("joint", '{"entities": {"Method": ["BERT"]}, "relations": [["BERT", "Used-For", "NER"]]}',
     ("Method", "Task"), ("Used-For",), VALID, "relations", (("BERT", "Used-For", "NER"),)),
    ("qa", '{"answer": "upregulated"}', (), (), VALID, "answer", "upregulated"),
    ("nope", '{}', (), (), UNPARSABLE, "answer", None),
])
def test_parse_other_families(family, completion, labels, relation_labels, status, field, expected):
    parsed = parse(completion, labels, family, relation_labels)
    assert parsed.status == status
    assert getattr(parsed, field) == expected


# ------------------------------------------------------------------ bounded rewrites match the old patterns
# The unbounded patterns: same results, but quadratic on whitespace runs.
OLD_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
OLD_CONFIDENCE = re.compile(r"confiden\w*\W{0,4}(\d{1,3}(?:\.\d+)?)\s*(%?)", re.IGNORECASE)
OLD_CONFIDENCE_LINE = re.compile(r"\s*confidence\s*:\s*\d{1,3}(?:\.\d+)?\s*%?\s*$", re.IGNORECASE)


def old_close_brackets(fragment):
    """The old closer (right wherever no backslash is involved)."""
    stack, in_string, escaped = [], False, False
    for ch in fragment:
        if in_string:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
    if not stack and not in_string:
        return None
    return fragment.rstrip().rstrip(",") + ('"' if in_string else "") + "".join(reversed(stack))


def chunks(*parts):
    return st.lists(st.sampled_from(parts), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(chunks("```", "json", " ", "\n", "x", "{}", "\t"))
def test_unfence_equals_the_old_fence_pattern(text):
    stripped = text.strip()
    assert parsing._unfence(stripped) == OLD_FENCE.sub("", stripped)


@settings(max_examples=400, deadline=None)
@given(chunks("confidence", "Confidence", "CONFIDENT", ":", " ", "\n", "80", "0.5", "%", "x", "{}", "\t", "_level"))
def test_confidence_patterns_equal_the_old_ones(text):
    assert parsing.without_confidence(text) == OLD_CONFIDENCE_LINE.sub("", text)
    # the old \w* could give a word's own digits back ("confidence80" -> 0): the new one reads 80
    assume(not re.search(r"[A-Za-z_]\d", text))
    # the new pattern bounds the word after "confiden" to 16 letters (bounded work): longer words differ on purpose
    assume(not re.search(r"confiden[a-z_]{17}", text, re.IGNORECASE))
    old = OLD_CONFIDENCE.search(text)
    new = parsing._CONFIDENCE.search(text)
    assert (old and old.groups()) == (new and (new.group("number"), new.group("percent")))


@settings(max_examples=400, deadline=None)
@given(chunks('"', "[", "]", "{", "}", ",", " ", "a", ":", '"x"'))
def test_close_brackets_equals_the_old_one_without_escapes(fragment):
    assert parsing._close_brackets(fragment) == old_close_brackets(fragment)


@pytest.mark.parametrize("fragment, closed", [
    ('{"Chemical": ["5\\"-AMP", "nalox', '{"Chemical": ["5\\"-AMP", "nalox"]}'),  # the old one closed at \"
    ('["a\\\\", "b', '["a\\\\", "b"]'),  # an escaped backslash ends before the quote
    ('["b\\', '["b"]'),  # a dangling backslash is dropped, not left to escape the closing quote
    ("[" * 32, "[" * 32 + "]" * 32),
    ("[" * 33, None),  # deeper than parsing.MAX_DEPTH: not closed
])
def test_close_brackets_reads_escapes(fragment, closed):
    assert parsing._close_brackets(fragment) == closed
