"""The granular `relation` reward: soft F1 over relation triples, or label correctness for a marked pair."""

from __future__ import annotations

from ..tasks import RELATIONS, norm, soft_f1
from .common import golds, parse_completion


def _tokens(s: str) -> frozenset[str]:
    return frozenset(norm(s).split())


def mention_similarity(a: str, b: str) -> float:
    """1 for the same mention (tasks.norm: case/whitespace-insensitive), else word Jaccard (an
    overlapping mention)."""
    if norm(a) == norm(b):
        return 1.0
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


class RelationReward:
    """Soft F1 over relations, the metric's one-to-one matching plus partial credit, in [0, 1].

    Families with triples (triples, joint): a predicted triple earns 1 against a gold triple that the
    metric counts as the same (tasks.Relations: head and tail equal after normalisation, the same
    relation type; for a type in the task's `symmetric` set either order). With `partial` (default) a
    triple that is not the same earns `head_weight * sim(h, H) + tail_weight * sim(t, T) +
    relation_weight * [r == R]` (weights normalised to sum 1; sim is word Jaccard, below 1 for different
    mentions), and only when head and tail both overlap, so a triple about other entities never earns
    credit for its relation type; a reversed triple of a directed type earns `reversed_credit` times
    the swapped credit (default 0), of a symmetric type the swapped credit. Soft F1 is 2 * matched
    credit / (|pred| + |gold|), 1 when both are empty; a repeated triple matches nothing the second
    time. With `partial` false the reward is the example's triple F1 of the metrics. Family "re": 1
    when the predicted label of the marked pair is the gold label, else 0 (an unparsable or unknown
    label is wrong, never mapped to a default class). Unparsable answers score 0; None for other families.

    Worked example, gold [aspirin, INHIBITOR, COX-1] and [aspirin, INHIBITOR, COX-2], weights
    0.25/0.25/0.5: answer [[aspirin, INHIBITOR, COX-1], [aspirin, ACTIVATOR, COX-2]] earns 1 and
    0.5, soft F1 = 2 * 1.5 / 4 = 0.75.

    >>> from grasp_lib.tasks import get_task
    >>> gold = [("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "INHIBITOR", "COX-2")]
    >>> spec = get_task("bc5cdr-cid")
    >>> RelationReward().score([("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "ACTIVATOR", "COX-2")], gold, spec)
    0.75
    >>> RelationReward().score([("COX-1", "INHIBITOR", "aspirin")], gold, spec)  # reversed: direction matters
    0.0
    """

    __name__ = "relation"

    def __init__(self, head_weight: float = 0.25, tail_weight: float = 0.25, relation_weight: float = 0.5,
                 reversed_credit: float = 0.0, partial: bool = True):
        total = head_weight + tail_weight + relation_weight
        if total <= 0:
            raise ValueError("relation reward weights must sum to a positive number")
        self.head_weight = head_weight / total
        self.tail_weight = tail_weight / total
        self.relation_weight = relation_weight / total
        self.reversed_credit = reversed_credit
        self.partial = partial

    def _oriented(self, h: str, r: str, t: str, gh: str, gr: str, gt: str) -> float:
        sh = mention_similarity(h, gh)
        st = mention_similarity(t, gt) if sh > 0 else 0.0
        if sh <= 0 or st <= 0:
            return 0.0
        return self.head_weight * sh + self.tail_weight * st + self.relation_weight * (r == gr)

    def triple_credit(self, pred: tuple[str, str, str], gold: tuple[str, str, str], spec) -> float:
        """Credit of one predicted triple against one gold triple, in [0, 1]; 1 exactly when the metric
        counts them as the same."""
        if RELATIONS.key(pred, spec) == RELATIONS.key(gold, spec):
            return 1.0
        if not self.partial:
            return 0.0
        h, r, t = pred
        direct, swapped = self._oriented(h, r, t, *gold), self._oriented(t, r, h, *gold)
        return max(direct, (1.0 if r == gold[1] and r in spec.symmetric else self.reversed_credit) * swapped)

    def score(self, preds, golds_, spec) -> float:
        pairs = RELATIONS.pairs(list(preds), list(golds_), spec, lambda p, g: self.triple_credit(p, g, spec))
        return soft_f1(sum(s for _, _, s in pairs), len(preds), len(golds_))

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            triples, label = family.part("relations"), family.part("label")
            if triples is None and label is None:
                rewards.append(None)
                continue
            parsed = parse_completion(completion, spec.dataset)
            if not parsed.ok:
                rewards.append(0.0)
            elif triples is not None:
                rewards.append(self.score(triples.predicted(parsed), triples.gold(row), spec))
            else:
                rewards.append(soft_f1(*label.matched(parsed, row, spec)))
        return rewards
