"""Entity-level metrics, computed from predictions with the same parser and matcher as the rewards.

Four schemes side by side, as nervaluate (SemEval-2013) defines them:
strict (exact span and type), exact (exact span, any type), partial (overlapping span, any type; a
partial match counts 0.5) and type (overlapping span, same type). Micro P/R/F1 overall and per type,
plus macro F1 over types.
"""

from __future__ import annotations

from collections import defaultdict

from .matching import Span, align, greedy_match, overlap
from .parsing import parse
from .tasks import get_task

SCHEMES = ("strict", "exact", "partial", "type")


def _credit(scheme: str, pred: Span | None, gold: Span) -> float:
    if pred is None:
        return 0.0
    same_span = (pred.start, pred.end) == (gold.start, gold.end)
    if scheme == "strict":
        return 1.0 if same_span and pred.type == gold.type else 0.0
    if scheme == "exact":
        return 1.0 if same_span else 0.0
    overlaps = overlap(pred, gold) > 0
    if scheme == "partial":
        return 1.0 if same_span else (0.5 if overlaps else 0.0)
    return 1.0 if overlaps and pred.type == gold.type else 0.0  # "type"


def example_counts(preds: list[Span | None], golds: list[Span], scheme: str) -> dict[str, dict[str, float]]:
    """Per type (and "ALL"): matched credit, number predicted, number gold, for one example."""
    scores = [[_credit(scheme, p, g) for g in golds] for p in preds]
    counts: dict[str, dict[str, float]] = defaultdict(lambda: {"tp": 0.0, "pred": 0, "gold": 0})
    for p in preds:
        label = p.type if p is not None else "UNLOCATED"
        counts[label]["pred"] += 1
        counts["ALL"]["pred"] += 1
    for g in golds:
        counts[g.type]["gold"] += 1
        counts["ALL"]["gold"] += 1
    for _, j, s in greedy_match(scores):
        counts[golds[j].type]["tp"] += s  # credit goes to the gold type (type-agnostic schemes too)
        counts["ALL"]["tp"] += s
    return counts


def prf(tp: float, pred: float, gold: float) -> dict[str, float]:
    precision = tp / pred if pred else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "pred": pred, "gold": gold}


def ner_scores(pred_spans: list[list[Span | None]], gold_spans: list[list[Span]], labels: list[str]) -> dict:
    """{scheme: {"micro": prf, "macro_f1": float, "per_type": {label: prf}}} over a corpus."""
    result = {}
    for scheme in SCHEMES:
        totals: dict[str, dict[str, float]] = defaultdict(lambda: {"tp": 0.0, "pred": 0, "gold": 0})
        for preds, golds in zip(pred_spans, gold_spans):
            for label, c in example_counts(preds, golds, scheme).items():
                for key in c:
                    totals[label][key] += c[key]
        per_type = {label: prf(**totals[label]) for label in labels}
        result[scheme] = {"micro": prf(**totals["ALL"]), "per_type": per_type,
                          "macro_f1": sum(t["f1"] for t in per_type.values()) / len(labels)}
    return result


def score_predictions(rows: list[dict], completions: list[str]) -> tuple[dict, list[dict]]:
    """Metrics for completions on eval rows, plus one record per row (parsed answer, spans, status)."""
    pred_spans, gold_spans, records = [], [], []
    status_counts: dict[str, int] = defaultdict(int)
    for row, completion in zip(rows, completions):
        parsed = parse(completion, *get_task(row["dataset"]).parse_args())
        spans = align(row["text"], parsed.mentions)
        golds = [Span(e["start"], e["end"], e["type"]) for e in row["entities"]]
        pred_spans.append(spans)
        gold_spans.append(golds)
        status_counts[parsed.status] += 1
        records.append({"id": row["id"], "completion": completion, "status": parsed.status,
                        "reason": parsed.reason,
                        "predicted": [{"text": m, "type": t, "start": s.start if s else None,
                                       "end": s.end if s else None} for (m, t), s in zip(parsed.mentions, spans)]})
    labels = get_task(rows[0]["dataset"]).label_names if rows else []
    metrics = ner_scores(pred_spans, gold_spans, labels)
    metrics["parse_status"] = dict(status_counts)
    metrics["n"] = len(rows)
    return metrics, records
