"""Find predicted strings in the source text, and match predicted items to gold items one to one.

Shared by rewards and metrics (through the task families of tasks.py). A span is (start, end), end
exclusive. How a predicted string is found in the text is the alignment:
- "verbatim": the string itself, case-sensitive (the `strict` reading of the metrics);
- "normalised": also case- and whitespace-insensitive occurrences;
- "lenient": "normalised", and where that finds nothing a fuzzy occurrence (rapidfuzz partial_ratio
  >= 90: a typo or a changed hyphenation).
A string's candidates are all its occurrences, whole-word ones first. Matching is a maximum-weight
one-to-one assignment (scipy's linear_sum_assignment) over items put into a canonical order first, so
a score never depends on the order of the predictions or of the gold, and is never below greedy's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz
from scipy.optimize import linear_sum_assignment

ALIGNMENTS = ("verbatim", "normalised", "lenient")
MATCHERS = ("optimal", "greedy")
FUZZY_MIN_SCORE = 90.0  # rapidfuzz partial_ratio: tolerate a typo or changed hyphenation, not a new word


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str


def _whole_words(text: str, span: tuple[int, int]) -> bool:
    """The span does not start or end inside a word ("dex" inside "dexamethasone" does)."""
    before = text[span[0] - 1] if span[0] > 0 else " "
    after = text[span[1]] if span[1] < len(text) else " "
    return not (before.isalnum() and text[span[0]].isalnum()) and not (after.isalnum() and text[span[1] - 1].isalnum())


def _literal(text: str, mention: str, normalised: bool):
    """Verbatim occurrences (overlapping ones too), then case- and whitespace-insensitive ones."""
    start = text.find(mention)
    while start >= 0:
        yield start, start + len(mention)
        start = text.find(mention, start + 1)
    if normalised:
        pattern = r"\s+".join(re.escape(token) for token in mention.split())
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            yield m.span()


def fuzzy_span(text: str, mention: str) -> tuple[int, int] | None:
    """The best fuzzy occurrence of `mention` (a typo or changed hyphenation), if one scores >= 90."""
    if len(mention) < 4:
        return None
    alignment = fuzz.partial_ratio_alignment(mention, text, score_cutoff=FUZZY_MIN_SCORE)
    if alignment is None or alignment.dest_start >= alignment.dest_end:
        return None
    return alignment.dest_start, alignment.dest_end


@lru_cache(maxsize=65536)  # rewards and metrics look up the same strings of the same texts many times
def candidates(text: str, mention: str, alignment: str = "verbatim") -> tuple[tuple[int, int], ...]:
    """Every occurrence of `mention` in `text` under `alignment`, in preference order: whole-word
    occurrences before those inside a word, verbatim before normalised; the fuzzy one only when no
    literal one exists. Empty: the string is not in the text (a hallucination under this alignment)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    if not mention.strip():
        return ()
    found = list(dict.fromkeys(_literal(text, mention, normalised=alignment != "verbatim")))
    ordered = [s for s in found if _whole_words(text, s)] + [s for s in found if not _whole_words(text, s)]
    if not ordered and alignment == "lenient":
        fuzzy = fuzzy_span(text, mention)
        ordered = [fuzzy] if fuzzy else []
    return tuple(ordered)


def locate(text: str, mention: str, alignment: str = "lenient") -> tuple[int, int] | None:
    """The preferred occurrence of `mention`, or None when it is not in the text."""
    found = candidates(text, mention, alignment)
    return found[0] if found else None


def overlap(a: Span, b: Span) -> float:
    """Character intersection over union of two spans, in [0, 1]."""
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / (max(a.end, b.end) - min(a.start, b.start))


def greedy_match(scores: list[list[float]]) -> list[tuple[int, int, float]]:
    """One-to-one matching, highest score first, ties by position; pairs with score 0 are never matched.
    Kept as the baseline that optimal matching must never fall below (and for the error analysis)."""
    candidates_ = sorted(((s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row) if s > 0),
                         key=lambda c: (-c[0], c[1], c[2]))
    used_pred, used_gold, pairs = set(), set(), []
    for s, i, j in candidates_:
        if i not in used_pred and j not in used_gold:
            used_pred.add(i)
            used_gold.add(j)
            pairs.append((i, j, s))
    return pairs


def optimal_match(scores: list[list[float]]) -> list[tuple[int, int, float]]:
    """The one-to-one matching with the largest total score (Hungarian algorithm, scipy); pairs with score
    0 are left out. Greedy can lose: [[0.9, 0.8], [0.7, 0.0]] greedy 0.9, optimal 0.8 + 0.7."""
    if not scores or not scores[0]:
        return []
    matrix = np.asarray(scores, dtype=float)
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return [(int(i), int(j), float(matrix[i, j])) for i, j in zip(rows, cols) if matrix[i, j] > 0]


def match(preds: list, golds: list, credit, key=None, gold_key=None,
          matcher: str = "optimal") -> list[tuple[int, int, float]]:
    """(pred index, gold index, credit) of a one-to-one matching of `preds` to `golds` by `credit(p, g)`.

    Both sides are put into the canonical order of `key` / `gold_key` (default: the item itself) before
    matching and the indices mapped back, so equal items listed in another order get the same pairs:
    no score built on this depends on input order. Items with equal keys must score alike."""
    if matcher not in MATCHERS:
        raise ValueError(f"matcher must be one of {MATCHERS}, got {matcher!r}")
    if not preds or not golds:
        return []
    key = key or (lambda item: item)
    gold_key = gold_key or key
    order_p = sorted(range(len(preds)), key=lambda i: key(preds[i]))
    order_g = sorted(range(len(golds)), key=lambda j: gold_key(golds[j]))
    scores = [[credit(preds[i], golds[j]) for j in order_g] for i in order_p]
    pairs = (optimal_match if matcher == "optimal" else greedy_match)(scores)
    return sorted((order_p[a], order_g[b], s) for a, b, s in pairs)


# ---------------------------------------------------------------- typed mentions against gold spans

def scheme_credit(scheme: str, pred: Span, gold: Span) -> float:
    """Credit of a located prediction against a gold span under nervaluate's (SemEval-2013) schemes:
    strict (same span and type), exact (same span), partial (same span 1, overlapping 0.5), type
    (overlapping, same type)."""
    same_span = (pred.start, pred.end) == (gold.start, gold.end)
    if scheme == "strict":
        return float(same_span and pred.type == gold.type)
    if scheme == "exact":
        return float(same_span)
    overlaps = overlap(pred, gold) > 0
    if scheme == "partial":
        return 1.0 if same_span else (0.5 if overlaps else 0.0)
    if scheme == "type":
        return float(overlaps and pred.type == gold.type)
    raise ValueError(f"unknown scheme {scheme!r}; known: strict, exact, partial, type")


@dataclass(frozen=True)
class Placed:
    """A predicted item with every span it may stand for (empty: not in the text)."""
    type: str
    spans: tuple[tuple[int, int], ...]


SAME_TYPE_TIE = 1e-6  # far below any difference of scheme credits (multiples of 0.5) over a sentence


def match_placed(items: list[Placed], golds: list[Span], credit, matcher: str = "optimal",
                 prefer_same_type: bool = False):
    """Match placed predictions to gold spans: an item earns against a gold span the best credit of any of
    its candidate spans. `prefer_same_type` (the metrics' type-agnostic schemes): among matchings of equal
    credit, the one pairing most predictions with gold spans of their own type, so per-type counts do
    not depend on an arbitrary tie. Returns (pairs [(i, j, credit)], the span each item is shown at: the
    one that earned its credit, else its first candidate not shown for another item, else None)."""
    best: dict[tuple[int, int], tuple[float, tuple[int, int]]] = {}
    bonus = SAME_TYPE_TIE if prefer_same_type else 0.0

    def item_credit(i: int, j: int) -> float:
        scored = [(credit(Span(s, e, items[i].type), golds[j]), (s, e)) for s, e in items[i].spans]
        best[i, j] = max(scored, key=lambda x: x[0], default=(0.0, None))
        return best[i, j][0] + (bonus if best[i, j][0] > 0 and items[i].type == golds[j].type else 0.0)

    pairs = match(list(range(len(items))), list(range(len(golds))), item_credit,
                  key=lambda i: (items[i].type, items[i].spans), gold_key=lambda j: (golds[j].start, golds[j].end,
                                                                                     golds[j].type), matcher=matcher)
    pairs = [(i, j, best[i, j][0]) for i, j, _ in pairs]  # the credit itself, without the tie bonus
    shown: list[tuple[int, int] | None] = [None] * len(items)
    for i, j, _ in pairs:
        shown[i] = best[i, j][1]
    used = set(shown)
    for i in sorted(range(len(items)), key=lambda i: (items[i].type, items[i].spans)):
        if shown[i] is None:
            shown[i] = next((s for s in items[i].spans if s not in used), None)
            used.add(shown[i])
    return pairs, [Span(s[0], s[1], it.type) if s else None for s, it in zip(shown, items)]


def place_listed(text: str, mentions, alignment: str = "verbatim") -> list[Placed]:
    """One item per listed (string, type): each listed string claims one occurrence (a repeat claims
    another), so a mention present twice but listed once costs recall, and a repeat costs precision."""
    return [Placed(t, candidates(text, m, alignment)) for m, t in mentions]


def place_all(text: str, mentions, alignment: str = "verbatim") -> list[Placed]:
    """The usual conversion of generative output to spans: every whole-word occurrence of each distinct
    predicted (string, type) is a prediction (a string found only inside words: its first occurrence),
    longer strings claiming first, so an occurrence inside a longer predicted one is not labelled again.
    A string not in the text is one unplaced prediction."""
    taken: list[tuple[int, int]] = []
    items = []
    for m, t in sorted(dict.fromkeys(mentions), key=lambda x: (-len(x[0]), x)):
        found = candidates(text, m, alignment)
        whole = [s for s in found if _whole_words(text, s)] or list(found[:1])
        free = [s for s in whole if all(s[1] <= a or s[0] >= b or (a, b) == s for a, b in taken)]
        if not found:
            items.append(Placed(t, ()))
        items += [Placed(t, (s,)) for s in free]
        taken += free
    return items
