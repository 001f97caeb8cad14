"""Rewards for the NER family: `format` and the granular `entity` soft F1."""

from __future__ import annotations

from ..matching import Span, greedy_match, overlap
from ..parsing import REPAIRED, VALID
from .common import MENTION_FAMILIES, gold_spans, parse_completion, predicted_spans

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


def span_credit(pred: Span | None, gold: Span, overlap_weight: float, type_credit: float) -> float:
    """Credit of one predicted span against one gold span, in [0, 1]: 1 for exact span and type."""
    if pred is None:
        return 0.0
    if (pred.start, pred.end) == (gold.start, gold.end):
        boundary = 1.0
    else:
        boundary = overlap_weight * overlap(pred, gold)
    return boundary * (1.0 if pred.type == gold.type else type_credit)


def soft_f1(preds: list[Span | None], golds: list[Span], overlap_weight: float, type_credit: float) -> float:
    """2 * (sum of one-to-one pair credits) / (|pred| + |gold|); 1 when both are empty."""
    if not preds and not golds:
        return 1.0
    scores = [[span_credit(p, g, overlap_weight, type_credit) for g in golds] for p in preds]
    matched = sum(s for _, _, s in greedy_match(scores))
    return 2.0 * matched / (len(preds) + len(golds))


class EntityReward:
    """Soft F1 between predicted and gold entities with one-to-one matching, in [0, 1].

    A pair scores 1 for exact span and type; `overlap_weight * IoU` for overlapping spans (character
    intersection over union); the span credit is multiplied by `type_credit` when the type is wrong.
    Predicted strings are mapped to spans in the source text (exact, normalised, fuzzy); a mention not in
    the text matches nothing. An unparsable answer scores 0; None for rows whose family has no entities
    (applies to "ner" and "joint").

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

    def __init__(self, overlap_weight: float = 0.5, type_credit: float = 0.5):
        self.overlap_weight = overlap_weight
        self.type_credit = type_credit

    def __call__(self, completions, text, entities, dataset, task, **kwargs) -> list[float | None]:
        rewards = []
        for completion, source, gold, name, family in zip(completions, text, entities, dataset, task):
            if family not in MENTION_FAMILIES:
                rewards.append(None)
                continue
            parsed = parse_completion(completion, name)
            if not parsed.ok:
                rewards.append(0.0)
                continue
            preds = predicted_spans(parsed, source)
            rewards.append(soft_f1(preds, gold_spans(gold), self.overlap_weight, self.type_credit))
        return rewards
