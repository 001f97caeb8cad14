import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grasp_lib.matching import (Placed, Span, candidates, greedy_match, locate, match, match_placed, optimal_match,
                                overlap, place_all, place_listed, scheme_credit)

TEXT = "Naloxone reversed the hypotension; naloxone again. Blood  pressure fell."


@pytest.mark.parametrize("mention, alignment, expected", [
    ("Naloxone", "verbatim", ((0, 8),)),  # case-sensitive: "naloxone" at 35 is another string
    ("Naloxone", "normalised", ((0, 8), (35, 43))),  # case-insensitive: both occurrences
    ("naloxone", "verbatim", ((35, 43),)),
    ("blood pressure", "verbatim", ()),  # case and double space differ
    ("blood pressure", "normalised", ((51, 66),)),
    ("hypotensoin", "normalised", ()),  # a transposition is not a literal occurrence
    ("hypotensoin", "lenient", ((22, 33),)),  # fuzzy: partial_ratio 90.9 >= 90
    ("hypotension;", "verbatim", ((22, 34),)),  # punctuation included
    ("aspirin", "lenient", ()),  # not in the text: hallucinated
    ("hypertension", "lenient", ()),  # another word, not a typo: partial_ratio 83 < 90
    ("   ", "lenient", ()),
])
def test_candidates_per_alignment(mention, alignment, expected):
    assert candidates(TEXT, mention, alignment) == expected


def test_unknown_alignment_is_an_error():
    with pytest.raises(ValueError, match="alignment must be one of"):
        candidates(TEXT, "Naloxone", "fuzzy")


@pytest.mark.parametrize("text, mention, expected", [
    ("dexamethasone (dex) was given", "dex", (15, 18)),  # whole word preferred over "dex" in "dexamethasone"
    ("dopaminergic neurons and dopamine", "dopamine", (25, 33)),
    ("dopaminergic neurons", "dopamine", (0, 8)),  # only inside a word: still located
])
def test_locate_prefers_whole_words(text, mention, expected):
    assert locate(text, mention) == expected


def test_fuzzy_locates_small_spelling_difference_only_when_lenient():
    text = "Patients received cyclophosphamide and developed haemorrhagic cystitis."
    span = locate(text, "hemorrhagic cystitis", "lenient")
    assert span is not None and text[span[0]:span[1]].endswith("cystitis")
    assert locate(text, "hemorrhagic cystitis", "verbatim") is None


def test_listed_mentions_claim_one_occurrence_each():
    items = place_listed(TEXT, [("naloxone", "Chemical")] * 3, "normalised")
    golds = [Span(0, 8, "Chemical"), Span(35, 43, "Chemical")]
    pairs, shown = match_placed(items, golds, lambda p, g: scheme_credit("strict", p, g))
    assert len(pairs) == 2  # two occurrences, three listed: the third is a false positive
    assert sorted(shown, key=lambda s: (s is None, s and s.start)) == [Span(0, 8, "Chemical"), Span(35, 43, "Chemical"),
                                                                        None]


def test_every_occurrence_labels_each_distinct_string_once_per_occurrence():
    text = "Milk-alkali syndrome; alkali and alkali again."
    items = place_all(text, [("alkali", "Chemical"), ("Milk-alkali syndrome", "Disease"), ("alkali", "Chemical"),
                             ("ghost", "Chemical")])
    spans = sorted(s for it in items for s in it.spans)
    # "alkali" inside the longer predicted string is not labelled again; the repeat adds nothing; "ghost"
    # (not in the text) is one unplaced prediction
    assert spans == [(0, 20), (22, 28), (33, 39)]
    assert sum(1 for it in items if not it.spans) == 1


def test_overlap():
    assert overlap(Span(0, 10, "A"), Span(5, 15, "A")) == pytest.approx(5 / 15)
    assert overlap(Span(0, 5, "A"), Span(5, 9, "A")) == 0.0


def test_optimal_beats_greedy_where_greedy_is_myopic():
    scores = [[0.9, 0.8], [0.7, 0.0]]
    assert sum(s for *_, s in greedy_match(scores)) == pytest.approx(0.9)
    assert sorted(optimal_match(scores)) == [(0, 1, 0.8), (1, 0, 0.7)]
    assert optimal_match([[0.0]]) == [] and optimal_match([]) == []


def test_match_does_not_depend_on_input_order():
    """Two predictions tie for one gold item (credit 0.5 each): greedy takes the first listed, so the pairs
    depended on order; match sorts both sides into a canonical order first."""
    preds, golds = ["ab", "ba"], ["b"]
    credit = lambda p, g: 0.5 if g in p else 0.0  # noqa: E731
    assert match(preds, golds, credit) == [(0, 0, 0.5)]
    assert match(preds[::-1], golds, credit) == [(1, 0, 0.5)]  # the same item "ab" is matched
    with pytest.raises(ValueError, match="matcher"):
        match(preds, golds, credit, matcher="best")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5, 1.0, 0.3, 0.7]), min_size=4, max_size=4),
                min_size=1, max_size=5), st.integers(1, 4))
def test_optimal_is_one_to_one_and_never_below_greedy(scores, width):
    scores = [row[:width] for row in scores]
    best, greedy = optimal_match(scores), greedy_match(scores)
    assert len({i for i, _, _ in best}) == len({j for _, j, _ in best}) == len(best)
    assert all(s > 0 and scores[i][j] == s for i, j, s in best)
    assert sum(s for *_, s in best) >= sum(s for *_, s in greedy) - 1e-12


def test_placed_prediction_earns_its_best_candidate():
    # "naloxone" occurs twice; the gold is the second occurrence: the strict reading credits it there
    items = [Placed("Chemical", ((0, 8), (20, 28)))]
    pairs, shown = match_placed(items, [Span(20, 28, "Chemical")], lambda p, g: scheme_credit("strict", p, g))
    assert pairs == [(0, 0, 1.0)] and shown == [Span(20, 28, "Chemical")]


def test_gold_answers_land_on_the_gold_spans_on_real_sentences():
    """Every gold target (grouped by type, as the model answers), parsed and matched under the strict
    reading, gives exactly the gold spans on all BC5CDR test sentences."""
    from grasp_lib.examples import build_examples
    from grasp_lib.parsing import parse
    from grasp_lib.prompts import ner_target
    from grasp_lib.tasks import ENTITIES

    examples, _ = build_examples("bc5cdr", "test", "sentence")
    labels = ("Chemical", "Disease")
    wrong = 0
    for ex in examples:
        row = ex.to_row()
        shown = ENTITIES.shown_spans(parse(ner_target(ex.entities, list(labels)), labels), row)
        wrong += {(s.start, s.end, s.type) for s in shown if s} != {(e["start"], e["end"], e["type"])
                                                                    for e in ex.entities}
    assert wrong == 0
