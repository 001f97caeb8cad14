"""The ablation baseline `binary`: 1 only for an exactly correct structure."""

from __future__ import annotations

from collections import Counter

from .common import (MENTION_FAMILIES, TRIPLE_FAMILIES, gold_combinations, gold_spans, gold_triples, norm,
                     parse_completion, predicted_spans)
from .nary import drug_set


class BinaryReward:
    """1 when the answer is exactly the gold structure, else 0 (in {0, 1}): what granularity is measured against.

    Exactly: every predicted mention maps to a distinct gold span with its type and no gold span is
    missed (the strict metric's F1 is 1); triples equal the gold ones as a multiset (mentions compared
    case/whitespace-insensitively; the two arguments of a relation type in `symmetric_relations` in
    either order); combinations equal as a multiset of (drug set, label); the relation label equals the
    gold label (re); the answer equals the gold answer after normalisation (qa). Unparsable: 0.

    >>> BinaryReward()(['{"Chemical": ["Naloxone"], "Disease": []}', '{"Chemical": [], "Disease": []}'],
    ...     text=["Naloxone works."] * 2, dataset=["bc5cdr"] * 2, task=["ner"] * 2,
    ...     entities=[[{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]] * 2)
    [1.0, 0.0]
    """

    __name__ = "binary"

    def __init__(self, symmetric_relations: list[str] | tuple[str, ...] = ()):
        self.symmetric_relations = frozenset(symmetric_relations)

    def _triple(self, h: str, r: str, t: str) -> tuple:
        h, t = norm(h), norm(t)
        return (r,) + tuple(sorted((h, t))) if r in self.symmetric_relations else (h, r, t)

    def exact(self, parsed, family: str, text, entities, relations, label, combinations, answer) -> bool:
        if family in MENTION_FAMILIES:
            spans = predicted_spans(parsed, text or "")
            if None in spans or Counter(spans) != Counter(gold_spans(entities or [])):
                return False
        if family in TRIPLE_FAMILIES:
            if (Counter(self._triple(*t) for t in parsed.relations)
                    != Counter(self._triple(*t) for t in gold_triples(relations))):
                return False
        if family == "nary":
            pred = Counter((drug_set(d), lab) for d, lab in parsed.combinations)
            if pred != Counter((drug_set(d), lab) for d, lab in gold_combinations(combinations)):
                return False
        if family == "re":
            return parsed.label == label
        if family == "qa":
            return parsed.answer is not None and norm(parsed.answer) == norm(answer or "")
        return True

    def __call__(self, completions, dataset, task, text=None, entities=None, relations=None, label=None,
                 combinations=None, answer=None, **kwargs) -> list[float]:
        n = len(completions)
        cols = [c if c is not None else [None] * n for c in (text, entities, relations, label, combinations, answer)]
        rewards = []
        for completion, name, family, *gold in zip(completions, dataset, task, *cols):
            parsed = parse_completion(completion, name)
            rewards.append(1.0 if parsed.ok and self.exact(parsed, family, *gold) else 0.0)
        return rewards
