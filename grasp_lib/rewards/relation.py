"""The granular `relation` reward: soft F1 over relation triples, or label correctness for a marked pair."""

from __future__ import annotations

from .common import TRIPLE_FAMILIES, gold_triples, matched_f1, norm, parse_completion


def _tokens(s: str) -> frozenset[str]:
    return frozenset(norm(s).split())


def mention_similarity(a: str, b: str) -> float:
    """1 for the same mention (case/whitespace-insensitive), else word Jaccard (an overlapping mention)."""
    if norm(a) == norm(b):
        return 1.0
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


class RelationReward:
    """Soft F1 over relations with one-to-one matching, in [0, 1].

    Families "triples" and "joint": a predicted triple (h, r, t) against a gold (H, R, T) earns
    `head_weight * sim(h, H) + tail_weight * sim(t, T) + relation_weight * [r == R]` (weights
    normalised to sum 1), where sim is 1 for the same mention and word Jaccard for overlapping ones; a
    pair whose head or tail does not overlap at all earns 0 (so a triple about other entities never
    earns credit for its relation type). Direction is respected: for relation types listed in
    `symmetric_relations` the swapped orientation counts the same; for any other type a reversed
    triple earns `reversed_credit` times the swapped credit (default 0). Soft F1 is
    2 * sum of matched credits / (|pred| + |gold|), 1 when both are empty; a repeated triple matches
    nothing the second time. Family "re": 1 when the predicted label of the marked pair is the gold
    label, else 0 (an unparsable or unknown label is wrong, never mapped to a default class).
    Unparsable answers score 0; None for other families.

    Worked example, gold [aspirin, INHIBITOR, COX-1] and [aspirin, INHIBITOR, COX-2], weights
    0.25/0.25/0.5: answer [[aspirin, INHIBITOR, COX-1], [aspirin, ACTIVATOR, COX-2]] earns 1 and
    0.5, soft F1 = 2 * 1.5 / 4 = 0.75.

    >>> gold = [("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "INHIBITOR", "COX-2")]
    >>> RelationReward().score([("aspirin", "INHIBITOR", "COX-1"), ("aspirin", "ACTIVATOR", "COX-2")], gold)
    0.75
    >>> RelationReward().score([("COX-1", "INHIBITOR", "aspirin")], gold)  # reversed: direction matters
    0.0
    """

    __name__ = "relation"

    def __init__(self, head_weight: float = 0.25, tail_weight: float = 0.25, relation_weight: float = 0.5,
                 symmetric_relations: list[str] | tuple[str, ...] = (), reversed_credit: float = 0.0):
        total = head_weight + tail_weight + relation_weight
        if total <= 0:
            raise ValueError("relation reward weights must sum to a positive number")
        self.head_weight = head_weight / total
        self.tail_weight = tail_weight / total
        self.relation_weight = relation_weight / total
        self.symmetric_relations = frozenset(symmetric_relations)
        self.reversed_credit = reversed_credit

    def _oriented(self, h: str, r: str, t: str, gh: str, gr: str, gt: str) -> float:
        sh = mention_similarity(h, gh)
        st = mention_similarity(t, gt) if sh > 0 else 0.0
        if sh <= 0 or st <= 0:
            return 0.0
        return self.head_weight * sh + self.tail_weight * st + self.relation_weight * (r == gr)

    def triple_credit(self, pred: tuple[str, str, str], gold: tuple[str, str, str]) -> float:
        """Credit of one predicted triple against one gold triple, in [0, 1]."""
        h, r, t = pred
        gh, gr, gt = gold
        direct = self._oriented(h, r, t, gh, gr, gt)
        if direct >= 1.0:
            return 1.0
        swapped = self._oriented(t, r, h, gh, gr, gt)
        if r == gr and r in self.symmetric_relations:
            return max(direct, swapped)
        return max(direct, self.reversed_credit * swapped)

    def score(self, preds, golds) -> float:
        return matched_f1(list(preds), list(golds), self.triple_credit)

    def __call__(self, completions, dataset, task, relations=None, label=None, **kwargs) -> list[float | None]:
        n = len(completions)
        relations = relations if relations is not None else [None] * n
        label = label if label is not None else [None] * n
        rewards: list[float | None] = []
        for completion, name, family, gold, gold_label in zip(completions, dataset, task, relations, label):
            if family not in TRIPLE_FAMILIES and family != "re":
                rewards.append(None)
                continue
            parsed = parse_completion(completion, name)
            if not parsed.ok:
                rewards.append(0.0)
            elif family == "re":
                rewards.append(1.0 if parsed.label == gold_label else 0.0)
            else:
                rewards.append(self.score(parsed.relations, gold_triples(gold)))
        return rewards
