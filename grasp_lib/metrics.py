"""Entity-level metrics, computed from predictions with the same parser and matcher as the rewards.

Four schemes side by side, as nervaluate (SemEval-2013) defines them:
strict (exact span and type), exact (exact span, any type), partial (overlapping span, any type; a
partial match counts 0.5) and type (overlapping span, same type). Micro P/R/F1 overall and per type,
plus macro F1 over types.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from .matching import Span, align, greedy_match, overlap
from .parsing import parse
from .tasks import get_task

SCHEMES = ("strict", "exact", "partial", "type")
UNLOCATED = -1  # offset of a predicted mention that is not in the text (see scored_spans)


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


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def re_scores(preds: list[str | None], golds: list[str], labels: list[str], negative: str | None = None) -> dict:
    """Pairwise relation classification: micro P/R/F1 over the positive classes (every label but
    `negative`), per label, macro F1 and accuracy. An unparsable prediction (None) is never a true
    positive and never a predicted positive: it costs recall only (it is not forced to a default class)."""
    positive = [label for label in labels if label != negative]
    totals = {label: {"tp": 0.0, "pred": 0, "gold": 0} for label in positive}
    for pred, gold in zip(preds, golds):
        if pred in totals:
            totals[pred]["pred"] += 1
        if gold in totals:
            totals[gold]["gold"] += 1
            if pred == gold:
                totals[gold]["tp"] += 1
    per_label = {label: prf(**c) for label, c in totals.items()}
    micro = prf(*(sum(c[k] for c in totals.values()) for k in ("tp", "pred", "gold")))
    return {"micro": micro, "per_label": per_label,
            "macro_f1": sum(v["f1"] for v in per_label.values()) / len(per_label) if per_label else 0.0,
            "accuracy": sum(p == g for p, g in zip(preds, golds)) / len(golds) if golds else 0.0}


def _multiset_tp(pred: list, gold: list) -> int:
    remaining = Counter(gold)
    tp = 0
    for item in pred:
        if remaining[item] > 0:
            remaining[item] -= 1
            tp += 1
    return tp


def triple_scores(preds: list[list[tuple[str, str, str]]], golds: list[list[tuple[str, str, str]]]) -> dict:
    """Relation triples: micro P/R/F1 over exact (head, relation, tail), texts compared case- and
    whitespace-insensitively, repeats matched one to one; also a relation-type-agnostic variant."""
    result = {}
    for scheme, key in (("strict", lambda t: (_norm(t[0]), t[1], _norm(t[2]))),
                        ("boundaries", lambda t: (_norm(t[0]), _norm(t[2])))):
        tp = pred = gold = 0
        for p, g in zip(preds, golds):
            p, g = [key(t) for t in p], [key(t) for t in g]
            tp, pred, gold = tp + _multiset_tp(p, g), pred + len(p), gold + len(g)
        result[scheme] = prf(tp, pred, gold)
    return result


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _combo_credit(mode: str, pred: frozenset, gold: frozenset) -> float:
    if mode == "exact":
        return 1.0 if pred == gold else 0.0
    return _jaccard(pred, gold) if len(pred & gold) >= 2 else 0.0  # partial


def nary_scores(preds: list[list[tuple[tuple[str, ...], str]]], golds: list[list[tuple[tuple[str, ...], str]]],
                positive: str = "POS") -> dict:
    """Drug-combination F1 as Tiktinsky et al. (2022) and RexDrug report it: views `pos` (only
    combinations labelled `positive`, on both sides) and `any` (every combination, label ignored);
    credit `exact` (same drug set) or `partial` (Jaccard overlap when at least two drugs are shared).
    Precision = summed best credit of each predicted combination / predicted; recall likewise over gold."""
    result = {}
    for view in ("pos", "any"):
        for mode in ("exact", "partial"):
            p_credit = r_credit = n_pred = n_gold = 0.0
            for pred, gold in zip(preds, golds):
                keep = (lambda c: c[1] == positive) if view == "pos" else (lambda c: True)
                p = [frozenset(_norm(d) for d in drugs) for drugs, lab in pred if keep((drugs, lab))]
                g = [frozenset(_norm(d) for d in drugs) for drugs, lab in gold if keep((drugs, lab))]
                p_credit += sum(max((_combo_credit(mode, a, b) for b in g), default=0.0) for a in p)
                r_credit += sum(max((_combo_credit(mode, a, b) for a in p), default=0.0) for b in g)
                n_pred, n_gold = n_pred + len(p), n_gold + len(g)
            precision = p_credit / n_pred if n_pred else 0.0
            recall = r_credit / n_gold if n_gold else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            result[f"{view}_{mode}"] = {"precision": precision, "recall": recall, "f1": f1,
                                        "pred": n_pred, "gold": n_gold}
    return result


def qa_scores(preds: list[str | None], golds: list[str]) -> dict:
    """Short answers: exact match and token F1 (SQuAD-style), after lower-casing and collapsing spaces."""
    exact = f1_sum = 0.0
    for pred, gold in zip(preds, golds):
        p, g = _norm(pred or "").split(), _norm(gold).split()
        exact += float(p == g)
        common = _multiset_tp(p, g)
        if common:
            precision, recall = common / len(p), common / len(g)
            f1_sum += 2 * precision * recall / (precision + recall)
    n = len(golds)
    return {"exact_match": exact / n if n else 0.0, "token_f1": f1_sum / n if n else 0.0}


def _snap_alternatives(spans: list[Span | None], row: dict) -> list[Span | None]:
    """BC2GM: a predicted span equal to an ALTGENE boundary of a gold mention counts as that mention."""
    alternatives = row.get("alternatives") or []
    if not alternatives:
        return spans
    golds = [Span(e["start"], e["end"], e["type"]) for e in row["entities"]]
    snap = {}
    for alt in alternatives:
        a = Span(alt["start"], alt["end"], alt["type"])
        for g in golds:
            if overlap(a, g) > 0:
                snap.setdefault((a.start, a.end), g)
    gold_keys = {(g.start, g.end) for g in golds}
    out = []
    for s in spans:
        if s is not None and (s.start, s.end) not in gold_keys and (s.start, s.end) in snap:
            g = snap[(s.start, s.end)]
            s = Span(g.start, g.end, s.type)
        out.append(s)
    return out


HEADLINES = {  # family -> (metric name, path into the family's result) for the per-dataset table
    "ner": ("strict micro-F1", ("strict", "micro", "f1")),
    "re": ("micro-F1 (positive classes)", ("micro", "f1")),
    "triples": ("triple micro-F1", ("strict", "f1")),
    "nary": ("F1 pos exact", ("pos_exact", "f1")),
    "joint": ("relation micro-F1", ("relations", "strict", "f1")),
    "qa": ("token F1", ("token_f1",)),
}


def scored_spans(spans: list[Span | None], mentions) -> list[Span]:
    """Spans to score: a mention not found in the text keeps its predicted type on an empty span before the
    text, so it matches no gold span yet counts as a false positive of that type (in per-type precision
    too, not only in the micro total)."""
    return [s if s is not None else Span(UNLOCATED, UNLOCATED, t) for s, (_, t) in zip(spans, mentions)]


def _dataset_scores(name: str, rows: list[dict], parsed: list, spans: list) -> dict:
    spec = get_task(name)
    family = spec.family
    if family == "ner":
        result = ner_scores(spans, [[Span(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in rows],
                            spec.label_names)
    elif family == "re":
        result = re_scores([p.label for p in parsed], [r["label"] for r in rows], spec.label_names, spec.negative)
    elif family == "triples":
        result = triple_scores([list(p.relations) for p in parsed],
                               [[(t["head"], t["relation"], t["tail"]) for t in r["relations"]] for r in rows])
    elif family == "nary":
        result = nary_scores([list(p.combinations) for p in parsed],
                             [[(tuple(c["drugs"]), c["label"]) for c in r["combinations"]] for r in rows])
    elif family == "joint":
        result = {"entities": ner_scores(spans, [[Span(e["start"], e["end"], e["type"]) for e in r["entities"]]
                                                 for r in rows], spec.label_names),
                  "relations": triple_scores([list(p.relations) for p in parsed],
                                             [[(t["head"], t["relation"], t["tail"]) for t in r["relations"]]
                                              for r in rows])}
    else:
        result = qa_scores([p.answer for p in parsed], [r["answer"] for r in rows])
    status = Counter(p.status for p in parsed)
    name_, path = HEADLINES[family]
    value = result
    for key in path:
        value = value[key]
    return result | {"family": family, "metric": spec.metric, "headline": {"name": name_, "value": value},
                     "parse_status": dict(status), "n": len(rows)}


def score_predictions(rows: list[dict], completions: list[str]) -> tuple[dict, list[dict]]:
    """Metrics for completions on eval rows, plus one record per row (parsed answer, spans, status).

    One NER dataset: the NER result at the top level ({scheme: ...}, parse_status, n), as before.
    Several datasets (or a non-NER one): metrics["datasets"][name] holds each dataset's result in its
    usual form (see tasks.TaskSpec.metric); the top level keeps NER keys pooled over the NER datasets
    (entity mentions of every NER dataset counted together, types as `dataset:type`) when there are any."""
    records, by_dataset = [], defaultdict(lambda: ([], [], []))
    status_counts: dict[str, int] = defaultdict(int)
    for row, completion in zip(rows, completions):
        spec = get_task(row["dataset"])
        parsed = parse(completion, *spec.parse_args())
        spans = _snap_alternatives(align(row["text"], parsed.mentions), row) if parsed.mentions else []
        group = by_dataset[row["dataset"]]
        group[0].append(row), group[1].append(parsed), group[2].append(scored_spans(spans, parsed.mentions))
        status_counts[parsed.status] += 1
        record = {"id": row["id"], "dataset": row["dataset"], "completion": completion, "status": parsed.status,
                  "reason": parsed.reason,
                  "predicted": [{"text": m, "type": t, "start": s.start if s else None,
                                 "end": s.end if s else None} for (m, t), s in zip(parsed.mentions, spans)]}
        if spec.family != "ner":
            record |= {"relations": [list(t) for t in parsed.relations], "label": parsed.label,
                       "combinations": [[list(d), lab] for d, lab in parsed.combinations], "answer": parsed.answer}
        records.append(record)
    datasets = {name: _dataset_scores(name, *group) for name, group in by_dataset.items()}
    if len(datasets) == 1 and get_task(next(iter(datasets))).family == "ner":
        metrics = {k: v for k, v in next(iter(datasets.values())).items()
                   if k not in ("family", "metric", "headline", "parse_status", "n")}
    elif not rows:
        metrics = {}
    else:
        metrics = {"datasets": datasets}
        ner_names = [n for n in datasets if get_task(n).family == "ner"]
        if ner_names:
            pred_spans, gold_spans, labels = [], [], []
            for n in ner_names:
                group_rows, _, group_spans = by_dataset[n]
                labels += [f"{n}:{label}" for label in get_task(n).label_names]
                pred_spans += [[Span(s.start, s.end, f"{n}:{s.type}") if s else None for s in sp] for sp in group_spans]
                gold_spans += [[Span(e["start"], e["end"], f"{n}:{e['type']}") for e in r["entities"]] for r in group_rows]
            metrics |= ner_scores(pred_spans, gold_spans, labels) | {"pooled_ner_datasets": ner_names}
    metrics["parse_status"] = dict(status_counts)
    metrics["n"] = len(rows)
    return metrics, records
