"""The granular `nary` reward: drug combinations scored by drug-set overlap and label (RexDrug-style)."""

from __future__ import annotations

from ..tasks import COMBINATIONS, drug_set, set_credit, soft_f1
from .common import golds, parse_completion


class NaryReward:
    """Soft F1 over drug combinations with a penalty for duplicate or contradictory ones, in [0, 1].

    The metric's matching of combinations (tasks.Combinations: drug names normalised, one to one,
    optimal) with this credit: a predicted combination against a gold one earns the metric's drug-set
    credit (`overlap` true: Jaccard when at least two drugs are shared, RexDrug's partial match, the
    `labelled_partial` view; false: 1 for the same set only, `labelled_exact`) times 1 for the right
    label or `label_credit` for a wrong one. With M the matched credit and R the number of predicted
    combinations whose drug set was already predicted (a duplicate with the same label, a contradiction
    with another one), the reward is max(0, (2M - penalty * R) / (|pred| + |gold|)): soft F1 minus the
    penalty. With label_credit and penalty 0 it is the example's F1 under the metric's view. An empty
    answer for a text without combinations scores 1. With the default penalty 0.5, hedging (the same
    drugs under two labels) never beats committing to one label. Unparsable answers score 0; None for
    rows whose family has no combinations.

    Worked example, gold {a, b, c}: POS; answer [{a, b}: POS, {a, b}: NEG] (defaults): credits 2/3
    (Jaccard) and 2/3 * 0.5, matched once: M = 2/3; the second item contradicts the first (R = 1):
    (4/3 - 0.5) / 3 = 0.2778.

    >>> gold = [(("a", "b", "c"), "POS")]
    >>> round(NaryReward().score([(("a", "b"), "POS"), (("B", "a"), "NEG")], gold), 4)
    0.2778
    """

    __name__ = "nary"

    def __init__(self, label_credit: float = 0.5, penalty: float = 0.5, overlap: bool = True):
        self.label_credit = label_credit
        self.penalty = penalty
        self.overlap = overlap

    def combination_credit(self, pred: tuple, gold: tuple) -> float:
        credit = set_credit(drug_set(pred[0]), drug_set(gold[0]), self.overlap)
        return credit * (1.0 if pred[1] == gold[1] else self.label_credit)

    def score(self, preds, golds_) -> float:
        """Reward of predicted against gold combinations, each (drugs, label)."""
        preds, golds_ = list(preds), list(golds_)
        pairs = COMBINATIONS.pairs(preds, golds_, None, self.combination_credit)
        f1 = soft_f1(sum(s for _, _, s in pairs), len(preds), len(golds_))
        seen, repeated = set(), 0
        for drugs, _ in preds:
            repeated += drug_set(drugs) in seen
            seen.add(drug_set(drugs))
        return max(0.0, f1 - self.penalty * repeated / (len(preds) + len(golds_))) if preds else f1

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            part = family.part("combinations")
            if part is None:
                rewards.append(None)
                continue
            parsed = parse_completion(completion, spec.dataset)
            rewards.append(self.score(part.predicted(parsed), part.gold(row)) if parsed.ok else 0.0)
        return rewards
