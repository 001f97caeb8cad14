"""The `grounding` reward: the share of predicted strings that occur in the source text."""

from __future__ import annotations

from .common import MENTION_FAMILIES, TRIPLE_FAMILIES, grounded, parse_completion, predicted_strings

GROUNDED_FAMILIES = MENTION_FAMILIES | TRIPLE_FAMILIES | {"nary"}


def grounding_reward(completions, text, dataset, task, **kwargs) -> list[float | None]:
    """Share of the distinct strings an answer claims are in the text that really are, in [0, 1].

    The strings are mentions (ner, joint), relation heads and tails (triples, joint) and drugs (nary);
    "occurs" is matching.locate: exact, case/whitespace-insensitive, or fuzzy (a typo still counts).
    An answer that claims nothing scores 1 (nothing hallucinated); an unparsable answer scores 0;
    None for families whose answer is a label or free text (re, qa). The hallucination penalty of the
    composite: it needs no gold, so it also guards rows whose gold is incomplete.

    >>> grounding_reward(['{"Chemical": ["Naloxone", "aspirin"], "Disease": ["hypotension"]}'],
    ...     text=["Naloxone reversed the hypotension."], dataset=["bc5cdr"], task=["ner"])
    [0.6666666666666666]
    """
    rewards: list[float | None] = []
    for completion, source, name, family in zip(completions, text, dataset, task):
        if family not in GROUNDED_FAMILIES:
            rewards.append(None)
            continue
        parsed = parse_completion(completion, name)
        if not parsed.ok:
            rewards.append(0.0)
            continue
        strings = set(predicted_strings(parsed, family))
        rewards.append(sum(grounded(source, s) for s in strings) / len(strings) if strings else 1.0)
    return rewards


grounding_reward.__name__ = "grounding"
