"""The ablation baseline `binary`: 1 only for an exactly correct structure."""

from __future__ import annotations

from .common import golds, parse_completion


class BinaryReward:
    """1 when the answer is exactly the gold structure, else 0 (in {0, 1}): what granularity is measured against.

    Exactly: tasks.Family.exactly_right, the metrics' own verdict: every part of the answer has
    per-example F1 1 under its exact view (entities: every listed mention verbatim at a distinct gold
    span with its type, none missed; triples: the same multiset of normalised triples, symmetric types
    in either order; combinations: the same (drug set, label) pairs; the relation label of the pair;
    the answer after SQuAD normalisation). Unparsable: 0.

    >>> BinaryReward()(['{"Chemical": ["Naloxone"], "Disease": []}', '{"Chemical": [], "Disease": []}'],
    ...     text=["Naloxone works."] * 2, dataset=["bc5cdr"] * 2, task=["ner"] * 2,
    ...     entities=[[{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]] * 2)
    [1.0, 0.0]
    """

    __name__ = "binary"

    def __call__(self, completions, dataset, **columns) -> list[float]:
        return [float(family.exactly_right(parse_completion(completion, spec.dataset), row, spec))
                for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns))]
