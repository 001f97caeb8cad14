"""The `grounding` reward: the share of predicted strings that occur in the source text."""

from __future__ import annotations

from ..matching import ALIGNMENTS
from .common import answer_strings, golds, grounded, parse_completion


class GroundingReward:
    """Share of the distinct strings an answer claims are in the text that really are, in [0, 1].

    The strings are those of the family's parts that claim text: mentions (ner, joint), relation heads
    and tails (triples, joint) and drugs (nary). "Occurs" follows `alignment` (matching.candidates;
    default "verbatim", the strict reading of the metrics: a misspelt or re-cased string is not in the
    text; "lenient" also accepts case/whitespace changes and a typo). An answer that claims nothing
    scores 1 (nothing hallucinated); an unparsable answer scores 0; None for families whose answer is a
    label or free text (re, qa). The hallucination penalty of the composite: it needs no gold, so it
    also guards rows whose gold is incomplete.

    >>> grounding_reward(['{"Chemical": ["Naloxone", "aspirin"], "Disease": ["hypotension"]}'],
    ...     text=["Naloxone reversed the hypotension."], dataset=["bc5cdr"], task=["ner"])
    [0.6666666666666666]
    """

    __name__ = "grounding"

    def __init__(self, alignment: str = "verbatim"):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"rewards.grounding.alignment: expected one of {ALIGNMENTS}, got {alignment!r}")
        self.alignment = alignment

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            if not any(part.in_text for part in family.parts):
                rewards.append(None)
                continue
            parsed = parse_completion(completion, spec.dataset)
            if not parsed.ok:
                rewards.append(0.0)
                continue
            strings = set(answer_strings(parsed, family))
            source = row.get("text") or ""
            rewards.append(sum(grounded(source, s, self.alignment) for s in strings) / len(strings)
                           if strings else 1.0)
        return rewards


grounding_reward = GroundingReward()
