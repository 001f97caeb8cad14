"""Scoring arithmetic: string normalisation, per-example counts, and the one F1 of the workspace.

Counts of one example, per label and "ALL": tp_p (credit earned by predictions), tp_r (credit earned by
gold items), pred, gold. Metrics sum them over a corpus, stats resample them, rewards take one
example's: all three end in `f1`.
"""

from __future__ import annotations

import string
from collections import defaultdict

# ---------------------------------------------------------------- normalisation (one per kind of string)


def norm(s: str) -> str:
    """Case- and whitespace-insensitive form of a string compared as text, not as a span of the source
    (relation arguments, drug names)."""
    return " ".join(s.casefold().split())


_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = {"a", "an", "the"}


def answer_tokens(s: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, split on whitespace."""
    return [w for w in s.casefold().translate(_PUNCT).split() if w not in _ARTICLES]


# ---------------------------------------------------------------- F1


def f1(tp_p: float, tp_r: float, pred: float, gold: float) -> float:
    """F1 of precision tp_p / pred and recall tp_r / gold; 0 where either is undefined or both are 0."""
    precision = tp_p / pred if pred else 0.0
    recall = tp_r / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def prf(tp_p: float, tp_r: float, pred: float, gold: float) -> dict:
    """Precision, recall and `f1`; `tp` is tp_r (the credit of gold items, equal to tp_p over all labels
    and for type-respecting schemes)."""
    return {"precision": tp_p / pred if pred else 0.0, "recall": tp_r / gold if gold else 0.0,
            "f1": f1(tp_p, tp_r, pred, gold), "tp": tp_r, "tp_p": tp_p, "tp_r": tp_r, "pred": pred, "gold": gold}


def token_f1(pred: str, gold: str) -> float:
    """SQuAD token F1 of two answers after `answer_tokens` (1 when both are empty).

    >>> token_f1("the COX-2 enzyme.", "COX-2 enzyme"), token_f1("COX-2", "COX-2 enzyme"), token_f1("no", "yes")
    (1.0, 0.6666666666666666, 0.0)
    """
    p, g = answer_tokens(pred), answer_tokens(gold)
    return soft_f1(sum(min(p.count(w), g.count(w)) for w in set(p)), len(p), len(g))


# ---------------------------------------------------------------- counts of one example, and their sums


def _zero() -> dict:
    return {"tp_p": 0.0, "tp_r": 0.0, "pred": 0, "gold": 0}


def tally(pred_labels: list[str], gold_labels: list[str], pairs) -> dict[str, dict]:
    """Counts per label and "ALL". A pair's credit counts under the prediction's label for precision and
    under the gold item's label for recall, so per-label P and R stay in [0, 1] when the two differ
    (type-agnostic schemes), and each sums over the labels to the "ALL" credit."""
    counts: dict[str, dict] = defaultdict(_zero)
    counts["ALL"]  # noqa: B018  (present even for an example with nothing predicted or gold)
    for label in pred_labels:
        counts[label]["pred"] += 1
        counts["ALL"]["pred"] += 1
    for label in gold_labels:
        counts[label]["gold"] += 1
        counts["ALL"]["gold"] += 1
    for i, j, credit in pairs:
        counts[pred_labels[i]]["tp_p"] += credit
        counts[gold_labels[j]]["tp_r"] += credit
        counts["ALL"]["tp_p"] += credit
        counts["ALL"]["tp_r"] += credit
    return dict(counts)


def scored(value: float) -> dict[str, dict]:
    """Counts of a per-example score (QA answers, accuracy): one predicted, one gold, credit `value`."""
    return {"ALL": {"tp_p": value, "tp_r": value, "pred": 1, "gold": 1}}


def add_counts(total: dict, counts: dict, prefix: str = "") -> dict:
    """Sum `counts` into `total` (labels prefixed, "ALL" kept), in place; returns `total`."""
    for label, c in counts.items():
        t = total.setdefault(label if label == "ALL" else prefix + label, _zero())
        for k in t:
            t[k] += c[k]
    return total


def example_f1(counts: dict) -> float:
    """F1 of one example's "ALL" counts; 1 when nothing is predicted and nothing is gold (a right empty
    answer): the per-example score the rewards train."""
    c = counts["ALL"]
    return 1.0 if not c["pred"] and not c["gold"] else f1(c["tp_p"], c["tp_r"], c["pred"], c["gold"])


def soft_f1(credit: float, pred: int, gold: int) -> float:
    """`example_f1` of an example whose `pred` predicted and `gold` gold items earned `credit` matched."""
    return example_f1({"ALL": {"tp_p": credit, "tp_r": credit, "pred": pred, "gold": gold}})


def label_block(totals: dict, labels: list[str]) -> dict:
    """{"micro", "per_type", "macro_f1"} from summed counts: micro over every label, macro over `labels`."""
    per_type = {label: prf(**totals.get(label, _zero())) for label in labels}
    return {"micro": prf(**totals.get("ALL", _zero())), "per_type": per_type,
            "macro_f1": sum(t["f1"] for t in per_type.values()) / len(labels) if labels else 0.0}
