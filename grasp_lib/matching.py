"""Map predicted strings back to spans of the source text, and match predictions to gold one-to-one.

Shared by rewards and metrics. A span is (start, end) with end exclusive; a predicted mention that
cannot be found in the text gets span None (a hallucination: it can match nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

FUZZY_MIN_SCORE = 90.0  # rapidfuzz partial_ratio: tolerate a typo or changed hyphenation, not a new word


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str


def _free(span: tuple[int, int], taken: set[tuple[int, int]]) -> bool:
    return all(span[1] <= a or span[0] >= b for a, b in taken)


def _whole_words(text: str, span: tuple[int, int]) -> bool:
    """The span does not start or end inside a word ("dex" inside "dexamethasone" does)."""
    before = text[span[0] - 1] if span[0] > 0 else " "
    after = text[span[1]] if span[1] < len(text) else " "
    return not (before.isalnum() and text[span[0]].isalnum()) and not (after.isalnum() and text[span[1] - 1].isalnum())


def _candidates(text: str, mention: str):
    """Occurrences in preference order: exact, then case- and whitespace-insensitive."""
    start = text.find(mention)
    while start >= 0:
        yield start, start + len(mention)
        start = text.find(mention, start + 1)
    pattern = r"\s+".join(re.escape(token) for token in mention.split())
    for m in re.finditer(pattern, text, flags=re.IGNORECASE):
        yield m.span()


def locate(text: str, mention: str, taken: set[tuple[int, int]], fuzzy: bool = True) -> tuple[int, int] | None:
    """The first free occurrence of `mention`: whole-word occurrences first (exact, then case- and
    whitespace-insensitive), then inside words, then fuzzy. Free = overlapping no span already claimed."""
    if not mention.strip():
        return None
    candidates = list(dict.fromkeys(_candidates(text, mention)))
    for span in candidates:
        if _whole_words(text, span) and _free(span, taken):
            return span
    for span in candidates:
        if _free(span, taken):
            return span
    return fuzzy_span(text, mention, taken) if fuzzy else None


def fuzzy_span(text: str, mention: str, taken: set[tuple[int, int]]) -> tuple[int, int] | None:
    """The best fuzzy occurrence of `mention` (a typo or changed hyphenation), when it is free."""
    if len(mention) < 4:
        return None
    alignment = fuzz.partial_ratio_alignment(mention, text, score_cutoff=FUZZY_MIN_SCORE)
    if alignment is None:
        return None
    span = (alignment.dest_start, alignment.dest_end)
    return span if span[0] < span[1] and _free(span, taken) else None


def align(text: str, mentions: tuple[tuple[str, str], ...] | list) -> list[Span | None]:
    """Spans for predicted (text, type) mentions, in input order; a repeated mention claims the next
    occurrence. Longer mentions claim first, so "alkali" cannot take the middle of "Milk-alkali syndrome",
    and fuzzy matches come after every literal one, so a misspelt copy cannot take the span of the mention
    written correctly."""
    taken: set[tuple[int, int]] = set()
    spans: list[Span | None] = [None] * len(mentions)
    longest_first = sorted(range(len(mentions)), key=lambda k: -len(mentions[k][0]))
    # literal search first; `taken` only grows, so the fuzzy pass need not search literally again
    for find in (lambda m: locate(text, m, taken, fuzzy=False), lambda m: fuzzy_span(text, m, taken)):
        for i in longest_first:
            if spans[i] is None and mentions[i][0].strip():
                found = find(mentions[i][0])
                if found is not None:
                    taken.add(found)
                    spans[i] = Span(found[0], found[1], mentions[i][1])
    return spans


def overlap(a: Span, b: Span) -> float:
    """Character intersection over union of two spans, in [0, 1]."""
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / (max(a.end, b.end) - min(a.start, b.start))


def greedy_match(scores: list[list[float]]) -> list[tuple[int, int, float]]:
    """One-to-one matching, highest score first; pairs with score 0 are never matched.

    Greedy instead of the Hungarian algorithm: spans in one sentence rarely compete, and greedy keeps
    exact matches (score 1) always matched, which the strict metric needs.
    """
    candidates = sorted(((s, i, j) for i, row in enumerate(scores) for j, s in enumerate(row) if s > 0),
                        key=lambda c: (-c[0], c[1], c[2]))
    used_pred, used_gold, pairs = set(), set(), []
    for s, i, j in candidates:
        if i not in used_pred and j not in used_gold:
            used_pred.add(i)
            used_gold.add(j)
            pairs.append((i, j, s))
    return pairs
