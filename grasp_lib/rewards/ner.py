"""Rewards for entities: `format` and the granular `entity` soft F1."""

from __future__ import annotations

from ..matching import ALIGNMENTS, Span, overlap
from ..parsing import REPAIRED, VALID
from ..tasks import soft_f1
from .common import golds, parse_completion

_FORMAT_SCORE = {VALID: 1.0, REPAIRED: 0.5}


def format_reward(completions, dataset, log_extra=None, **kwargs) -> list[float]:
    """How well the answer follows the output schema, in {0, 0.5, 1}.

    1 for JSON of the task's schema and nothing else; 0.5 when the parser had to repair it (code fences,
    prose around it, missing brackets, items of the wrong shape); 0 when nothing could be parsed.

    >>> format_reward(['{"Chemical": [], "Disease": []}', '```json\\n{"Chemical": []}\\n```', 'no idea'],
    ...               dataset=["bc5cdr"] * 3)
    [1.0, 0.5, 0.0]
    """
    parsed = [parse_completion(c, d) for c, d in zip(completions, dataset)]
    if log_extra is not None:  # GRPO: the parser's verdict goes into the logged completions table
        log_extra("parse", [f"{p.status}: {p.reason}" if p.reason else p.status for p in parsed])
    return [_FORMAT_SCORE.get(p.status, 0.0) for p in parsed]


format_reward.__name__ = "format"


def span_credit(pred: Span, gold: Span, overlap_weight: float, type_credit: float) -> float:
    """Credit of one placed prediction against one gold span, in [0, 1]: 1 for exact span and type (the
    metric's strict credit), `overlap_weight * IoU` for an overlapping span, times `type_credit` for
    the wrong type."""
    if (pred.start, pred.end) == (gold.start, gold.end):
        boundary = 1.0
    else:
        boundary = overlap_weight * overlap(pred, gold)
    return boundary * (1.0 if pred.type == gold.type else type_credit)


class EntityReward:
    """Soft F1 between predicted and gold entities, the strict metric's matching plus partial credit, in [0, 1].

    The entities part of the task family (tasks.Entities) places each listed mention at its occurrences
    in the text under `alignment` (default "verbatim", the strict reading: a string not in the text
    verbatim matches nothing) and matches mentions to gold spans one to one, optimally. A pair scores
    1 for exact span and type; `overlap_weight * IoU` for overlapping spans (character intersection over
    union); the span credit is multiplied by `type_credit` when the type is wrong. With both at 0 the
    reward is the example's strict F1 of the metrics. An unparsable answer scores 0; None for rows whose
    family has no entities.

    Worked example (overlap_weight 0.5, type_credit 0.5), text "Naloxone reversed hypotension.",
    gold Naloxone/Chemical [0,8) and hypotension/Disease [18,29):
    answer {"Chemical": ["Naloxone"], "Disease": ["reversed hypotension"]}: pair credits 1 and
    0.5 * 11/20 = 0.275, soft F1 = 2 * 1.275 / 4 = 0.6375.

    >>> EntityReward()(['{"Chemical": ["Naloxone"], "Disease": ["reversed hypotension"]}'],
    ...     text=["Naloxone reversed hypotension."], dataset=["bc5cdr"], task=["ner"],
    ...     entities=[[{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
    ...                {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]])
    [0.6375]
    """

    __name__ = "entity"

    def __init__(self, overlap_weight: float = 0.5, type_credit: float = 0.5, alignment: str = "verbatim"):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"rewards.entity.alignment: expected one of {ALIGNMENTS}, got {alignment!r}")
        self.overlap_weight = overlap_weight
        self.type_credit = type_credit
        self.alignment = alignment

    def credit(self, pred: Span, gold: Span) -> float:
        return span_credit(pred, gold, self.overlap_weight, self.type_credit)

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            part = family.part("entities")
            parsed = parse_completion(completion, spec.dataset) if part else None
            if part is None or not parsed.ok:
                rewards.append(None if part is None else 0.0)
                continue
            rewards.append(soft_f1(*part.matched(parsed, row, spec, self.credit, self.alignment)))
        return rewards
