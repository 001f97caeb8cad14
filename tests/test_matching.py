import pytest

from grasp_lib.matching import Span, align, greedy_match, locate, overlap

TEXT = "Naloxone reversed the hypotension; naloxone again. Blood  pressure fell."


@pytest.mark.parametrize("mention, taken, expected", [
    ("Naloxone", set(), (0, 8)),  # exact
    ("Naloxone", {(0, 8)}, (35, 43)),  # next occurrence, case-insensitive
    ("blood pressure", set(), (51, 66)),  # case and whitespace normalised
    ("hypotensoin", set(), (22, 33)),  # fuzzy: a transposition scores 90.9 >= 90
    ("hypotension;", set(), (22, 34)),  # exact, punctuation included
    ("aspirin", set(), None),  # not in the text: hallucinated
    ("hypertension", set(), None),  # another word, not a typo: partial_ratio 83 < 90
    ("   ", set(), None),
])
def test_locate(mention, taken, expected):
    assert locate(TEXT, mention, taken) == expected


def test_fuzzy_locates_small_spelling_difference():
    text = "Patients received cyclophosphamide and developed haemorrhagic cystitis."
    span = locate(text, "hemorrhagic cystitis", set())
    assert span is not None and text[span[0]:span[1]].endswith("cystitis")


def test_align_claims_repeats_in_order():
    spans = align(TEXT, [("naloxone", "Chemical"), ("naloxone", "Chemical"), ("naloxone", "Chemical")])
    assert spans == [Span(35, 43, "Chemical"), Span(0, 8, "Chemical"), None]


def test_a_misspelt_longer_copy_cannot_take_the_span_of_the_literal_mention():
    text = "Naloxone reversed hypotension."
    spans = align(text, [("Naloxone", "Chemical"), ("Naloxonne", "Chemical")])
    assert spans == [Span(0, 8, "Chemical"), None]  # literal first, although the misspelt copy is longer


def test_overlap_and_greedy_match():
    assert overlap(Span(0, 10, "A"), Span(5, 15, "A")) == pytest.approx(5 / 15)
    assert overlap(Span(0, 5, "A"), Span(5, 9, "A")) == 0.0
    # pred 0 fits gold 1 best; pred 1 can then only take gold 0
    assert greedy_match([[0.2, 0.9], [0.5, 0.0]]) == [(0, 1, 0.9), (1, 0, 0.5)]
    assert greedy_match([[0.0]]) == []


@pytest.mark.parametrize("text, mention, taken, expected", [
    ("dexamethasone (dex) was given", "dex", set(), (15, 18)),  # whole word preferred over "dex" in "dexamethasone"
    ("dopaminergic neurons and dopamine", "dopamine", set(), (25, 33)),
    ("dopaminergic neurons", "dopamine", set(), (0, 8)),  # only inside a word: still located
    ("renal failure and failure", "failure", {(0, 13)}, (18, 25)),  # never inside a claimed span
])
def test_locate_prefers_whole_words_and_free_spans(text, mention, taken, expected):
    assert locate(text, mention, taken) == expected


def test_gold_answers_land_on_the_gold_spans_on_real_sentences():
    """Every gold target (grouped by type, as the model answers), parsed and aligned, gives exactly the
    gold spans on all BC5CDR test sentences."""
    from grasp_lib.examples import build_examples
    from grasp_lib.parsing import parse
    from grasp_lib.prompts import ner_target

    examples, _ = build_examples("bc5cdr", "test", "sentence")
    labels = ("Chemical", "Disease")
    wrong = 0
    for ex in examples:
        parsed = parse(ner_target(ex.entities, list(labels)), labels)
        spans = {(s.start, s.end, s.type) for s in align(ex.text, parsed.mentions) if s}
        wrong += spans != {(e["start"], e["end"], e["type"]) for e in ex.entities}
    assert wrong == 0
