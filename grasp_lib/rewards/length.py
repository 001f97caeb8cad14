"""The `length` reward: no longer than the gold structure needs, and no repetition."""

from __future__ import annotations

from collections import Counter

from ..tasks import target_json
from .common import completion_text, golds, parse_completion


def ngram_repetition(text: str, n: int = 3, min_words: int = 12) -> float:
    """Share of repeated word n-grams in `text` (0 for short texts): degenerate loops score near 1."""
    words = text.split()
    if len(words) < min_words:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n))))
    return 1.0 - len(set(grams)) / len(grams)


class LengthReward:
    """Penalty for output beyond what the gold structure needs, and for repetition, in [0, 1].

    The budget is `ratio * len(gold answer) + allowance` characters, where the gold answer is the gold
    structure written in the task's output schema; a <think> block costs only its characters beyond
    `think_allowance`. Within budget the length factor is 1, beyond it falls linearly to 0 at twice the
    budget. The repetition factor is 1 - the share of predicted items repeated more often than the gold
    has them (mentions with type, triples, drug sets); for an unparsable answer and for the <think>
    block, 1 - the share of repeated word 3-grams. Items are compared as the metrics compare them (each
    part's normalised key, tasks.FAMILIES). Reward = length factor * repetition factor.
    Applies to every family (None never).

    Worked example (defaults 1.5 / 40): gold {"Chemical": ["Naloxone"], "Disease": []} is 43 characters,
    budget 104.5. '{"Chemical": ["Naloxone", "Naloxone", "Naloxone"], "Disease": []}' (67 characters) is
    within budget; 2 of its 3 items repeat beyond the gold's one: 1 * (1 - 2/3) = 0.3333.

    >>> gold = [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]
    >>> r = LengthReward()(['{"Chemical": ["Naloxone"], "Disease": []}',
    ...     '{"Chemical": ["Naloxone", "Naloxone", "Naloxone"], "Disease": []}', "x" * 209],
    ...     dataset=["bc5cdr"] * 3, task=["ner"] * 3, entities=[gold] * 3)
    >>> [round(v, 4) for v in r]
    [1.0, 0.3333, 0.0]
    """

    __name__ = "length"

    def __init__(self, ratio: float = 1.5, allowance: int = 40, think_allowance: int = 600):
        self.ratio = ratio
        self.allowance = allowance
        self.think_allowance = think_allowance

    @staticmethod
    def _keys(family, spec, items_of) -> list:
        return [(part.name, part.key(item, spec)) for part in family.parts for item in items_of(part)]

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        budgets: dict = {}  # TRL repeats each row G times: compute a row's budget once per call
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            key = (spec.dataset,) + tuple(id(row.get(c)) if isinstance(row.get(c), list) else row.get(c)
                                          for c in ("entities", "relations", "label", "combinations", "answer"))
            if key not in budgets:
                budgets[key] = (self.ratio * len(target_json(row, spec)) + self.allowance,
                                Counter(self._keys(family, spec, lambda part: part.gold(row))))
            budget, gold_counts = budgets[key]
            raw = completion_text(completion)
            parsed = parse_completion(completion, spec.dataset)
            think = parsed.think
            size = len(raw) - len(think) + max(0, len(think) - self.think_allowance)
            length_factor = 1.0 if size <= budget else max(0.0, 1.0 - (size - budget) / budget)
            repetition = ngram_repetition(think) if think else 0.0
            if not parsed.ok:
                repetition = max(repetition, ngram_repetition(raw))
            else:
                items = self._keys(family, spec, lambda part: part.predicted(parsed))
                if items:
                    excess = sum(max(0, count - max(1, gold_counts.get(item, 0)))
                                 for item, count in Counter(items).items())
                    repetition = max(repetition, excess / len(items))
            rewards.append(length_factor * (1.0 - repetition))
        return rewards
