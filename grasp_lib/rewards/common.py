"""Helpers every reward uses: completion text, the parsed answer, gold structures of one row, caches.

Rewards are called by TRL once per reward function on the same batch, so the expensive steps are
cached by their (hashable) inputs: `parse` (in parsing.py), the alignment of predicted mentions to the
text, and whether a string occurs in the text. `clear_caches()` empties them (the benchmark calls it
so that it measures cold work, as a new GRPO batch sees it).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache

from ..matching import Span, align, greedy_match, locate
from ..parsing import Parsed, parse
from ..tasks import get_task

# Task families whose answer carries each kind of item (see tasks.OUTPUT_SCHEMAS).
MENTION_FAMILIES = frozenset({"ner", "joint"})
TRIPLE_FAMILIES = frozenset({"triples", "joint"})


def completion_text(completion) -> str:
    """TRL passes plain strings, or (conversational prompts) a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def parse_completion(completion, dataset: str) -> Parsed:
    return parse(completion_text(completion), *get_task(dataset).parse_args())


def norm(s: str) -> str:
    """Case- and whitespace-insensitive form of a mention, used to compare strings that are not spans."""
    return " ".join(s.casefold().split())


def gold_spans(entities: list[dict]) -> list[Span]:
    return [Span(e["start"], e["end"], e["type"]) for e in entities]


@lru_cache(maxsize=65536)
def _aligned(text: str, mentions: tuple) -> tuple:
    return tuple(align(text, mentions))


def predicted_spans(parsed: Parsed, text: str) -> list[Span | None]:
    """matching.align of the parsed mentions (cached: entity, binary and metrics-style rewards share it)."""
    return list(_aligned(text, parsed.mentions))


@lru_cache(maxsize=131072)
def grounded(text: str, mention: str) -> bool:
    """Whether `mention` occurs in `text` (exact, case/whitespace-normalised, or fuzzy: matching.locate)."""
    return locate(text, mention, set()) is not None


def clear_caches() -> None:
    parse.cache_clear()
    _aligned.cache_clear()
    grounded.cache_clear()


def gold_triples(relations: list[dict] | None) -> list[tuple[str, str, str]]:
    return [(r["head"], r["relation"], r["tail"]) for r in relations or []]


def gold_combinations(combinations: list[dict] | None) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(c["drugs"]), c["label"]) for c in combinations or []]


def gold_answer_json(family: str, labels: list[str], entities, relations, label, combinations, answer) -> str:
    """The gold structure written in the task's output schema (what a perfect answer needs to say)."""
    if family in MENTION_FAMILIES:
        grouped: dict[str, list[str]] = {name: [] for name in labels}
        for ent in sorted(entities or [], key=lambda e: (e["start"], e["end"])):
            grouped.setdefault(ent["type"], []).append(ent["text"])
        if family == "ner":
            return json.dumps(grouped, ensure_ascii=False)
        return json.dumps({"entities": grouped, "relations": [list(t) for t in gold_triples(relations)]},
                          ensure_ascii=False)
    if family == "triples":
        return json.dumps([list(t) for t in gold_triples(relations)], ensure_ascii=False)
    if family == "nary":
        return json.dumps([{"drugs": list(d), "label": lab} for d, lab in gold_combinations(combinations)],
                          ensure_ascii=False)
    if family == "re":
        return json.dumps({"relation": label}, ensure_ascii=False)
    return json.dumps({"answer": answer or ""}, ensure_ascii=False)


def predicted_items(parsed: Parsed, family: str) -> list:
    """The answer's items, normalised, one per predicted item (repeats kept): what repetition counts."""
    items: list = []
    if family in MENTION_FAMILIES:
        items += [("m", norm(m), t) for m, t in parsed.mentions]
    if family in TRIPLE_FAMILIES:
        items += [("r", norm(h), r, norm(t)) for h, r, t in parsed.relations]
    if family == "nary":
        items += [("c", frozenset(norm(d) for d in drugs), lab) for drugs, lab in parsed.combinations]
    return items


def gold_items(family: str, entities, relations, combinations) -> Counter:
    items: Counter = Counter()
    if family in MENTION_FAMILIES:
        items.update(("m", norm(e["text"]), e["type"]) for e in entities or [])
    if family in TRIPLE_FAMILIES:
        items.update(("r", norm(h), r, norm(t)) for h, r, t in gold_triples(relations))
    if family == "nary":
        items.update(("c", frozenset(norm(d) for d in drugs), lab) for drugs, lab in gold_combinations(combinations))
    return items


def predicted_strings(parsed: Parsed, family: str) -> list[str]:
    """Every text string the answer claims is in the source: mentions, relation arguments, drugs."""
    strings: list[str] = []
    if family in MENTION_FAMILIES:
        strings += [m for m, _ in parsed.mentions]
    if family in TRIPLE_FAMILIES:
        for h, _, t in parsed.relations:
            strings += [h, t]
    if family == "nary":
        for drugs, _ in parsed.combinations:
            strings += list(drugs)
    return strings


def column(kwargs: dict, name: str, n: int) -> list:
    """A column TRL passed, or Nones when the dataset does not have it (rows of one family only)."""
    values = kwargs.get(name)
    return list(values) if values is not None else [None] * n


def matched_f1(preds: list, golds: list, credit, key=str) -> float:
    """2 * (sum of one-to-one pair credits, matching.greedy_match) / (|preds| + |golds|); 1 when both are
    empty. Items are matched in the canonical order `key` gives: greedy matching breaks equal credits by
    position, so without it the order of an answer's items could change its reward."""
    if not preds and not golds:
        return 1.0
    if not preds or not golds:
        return 0.0
    golds = sorted(golds, key=key)
    scores = [[credit(p, g) for g in golds] for p in sorted(preds, key=key)]
    return 2.0 * sum(s for _, _, s in greedy_match(scores)) / (len(preds) + len(golds))
