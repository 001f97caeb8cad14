import pytest

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
