"""The granular `nary` reward: drug combinations scored by drug-set overlap and label (RexDrug-style)."""

from __future__ import annotations

from .common import gold_combinations, matched_f1, norm, parse_completion


def drug_set(drugs) -> frozenset[str]:
    return frozenset(n for n in (norm(d) for d in drugs) if n)


class NaryReward:
    """Soft F1 over drug combinations with a penalty for duplicate or contradictory ones, in [0, 1].

    A predicted combination against a gold one earns Jaccard(drug sets) (drug names compared case- and
    whitespace-insensitively) times 1 for the right label or `label_credit` for a wrong one, and only
    when the sets share at least `min_shared` drugs (RexDrug's partial match; an exact set always
    counts). With M the sum of one-to-one matched credits and R the number of predicted combinations
    whose drug set was already predicted (a duplicate with the same label, a contradiction with another
    one), the reward is max(0, (2M - penalty * R) / (|pred| + |gold|)): soft F1 minus the penalty.
    An empty answer for a text without combinations scores 1. With the default penalty 0.5, hedging
    (the same drugs under two labels) never beats committing to one label. Unparsable answers score 0;
    None for rows that are not "nary".

    Worked example, gold {a, b, c}: POS; answer [{a, b}: POS, {a, b}: NEG] (defaults): credits 2/3
    (Jaccard) and 2/3 * 0.5, matched once: M = 2/3; the second item contradicts the first (R = 1):
    (4/3 - 0.5) / 3 = 0.2778.

    >>> gold = [(("a", "b", "c"), "POS")]
    >>> round(NaryReward().score([(("a", "b"), "POS"), (("B", "a"), "NEG")], gold), 4)
    0.2778
    """

    __name__ = "nary"

    def __init__(self, label_credit: float = 0.5, min_shared: int = 2, penalty: float = 0.5):
        self.label_credit = label_credit
        self.min_shared = min_shared
        self.penalty = penalty

    def combination_credit(self, pred: tuple[frozenset, str], gold: tuple[frozenset, str]) -> float:
        (p, p_label), (g, g_label) = pred, gold
        shared = len(p & g)
        if not shared or (p != g and shared < self.min_shared):
            return 0.0
        return shared / len(p | g) * (1.0 if p_label == g_label else self.label_credit)

    def score(self, preds, golds) -> float:
        """Reward of predicted against gold combinations, each (drugs, label)."""
        p = [(drug_set(d), lab) for d, lab in preds]
        g = [(drug_set(d), lab) for d, lab in golds]
        f1 = matched_f1(p, g, self.combination_credit, key=lambda c: (sorted(c[0]), c[1]))
        seen, repeated = set(), 0
        for drugs, _ in p:
            repeated += drugs in seen
            seen.add(drugs)
        return max(0.0, f1 - self.penalty * repeated / (len(p) + len(g))) if p else f1

    def __call__(self, completions, dataset, task, combinations=None, **kwargs) -> list[float | None]:
        combinations = combinations if combinations is not None else [None] * len(completions)
        rewards: list[float | None] = []
        for completion, name, family, gold in zip(completions, dataset, task, combinations):
            if family != "nary":
                rewards.append(None)
                continue
            parsed = parse_completion(completion, name)
            rewards.append(self.score(parsed.combinations, gold_combinations(gold)) if parsed.ok else 0.0)
        return rewards
