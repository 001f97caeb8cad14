"""Corpus metrics from completions, with the parser and the per-family scoring that the rewards use.

Each example is parsed once and scored by its task family (tasks.FAMILIES): per-label counts under every
view the family reports, summed over the dataset, then P/R/F1. Entities (ner, joint) come under three
readings, each with nervaluate's four schemes (strict: exact span and type; exact: exact span; partial:
overlapping span, a partial match counts 0.5; type: overlapping span, same type):
- top level, `strict` reading: the predicted string verbatim (case-sensitive) in the text, each listed
  string standing for one occurrence (the headline: what the output schema asks and the rewards train);
- `lenient`: case/whitespace-insensitive or fuzzy occurrences count too;
- `all_occurrences`: every verbatim occurrence of a predicted (string, type) is labelled (the usual
  conversion of generative output to spans);
plus `set`: the F1 of (string, type) sets per example (generative-IE papers report it).
Matching is optimal and one to one everywhere; per-type P, R, F1 are in [0, 1] (see tasks.tally).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from nervaluate import Evaluator

from .matching import Placed, Span, match_placed, scheme_credit
from .parsing import parse
from .tasks import (ENTITIES, FAMILIES, SCHEMES, EntityView, add_counts, example_f1, family_of, get_task, label_block,
                    prf, tally)

SCORING = {"version": 2, "alignment": "verbatim", "occurrences": "listed", "matching": "optimal"}


def parsed_row(row: dict, completion: str):
    """(task spec, family, parsed answer) of a completion on an eval row."""
    spec = get_task(row["dataset"])
    return spec, family_of(spec), parse(completion, *spec.parse_args())


def example_counts(row: dict, parsed, spec, family, views: dict | None = None) -> dict:
    """{part name: {view: counts}} of one example under every view its parts report (or `views`:
    {part name: [views]})."""
    return {p.name: {v: p.counts(parsed, row, spec, v) for v in (views or {}).get(p.name, p.views)}
            for p in family.parts}


def headline_value(family, totals: dict) -> float:
    return prf(**totals[family.headline.part][family.headline.view]["ALL"])["f1"]


def _record(row: dict, completion: str, parsed, family) -> dict:
    return {"id": row["id"], "dataset": row["dataset"], "completion": completion, "status": parsed.status,
            "reason": parsed.reason, "predicted": []} | family.record(parsed, row)


def score_predictions(rows: list[dict], completions: list[str]) -> tuple[dict, list[dict]]:
    """Metrics for completions on eval rows, plus one record per row (parsed answer, shown spans, status).

    One dataset whose headline is entity F1: that dataset's result at the top level ({scheme: ...},
    lenient, all_occurrences, set, parse_status, n). Otherwise metrics["datasets"][name] holds each
    dataset's result in its usual form (tasks.TaskSpec.metric), and the top level keeps the entity
    readings pooled over the entity-headline datasets (types as `dataset:type`) when there are any."""
    records, status = [], Counter()
    totals: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))  # dataset -> part -> view -> counts
    pooled: dict = defaultdict(dict)  # entity view -> counts, labels prefixed with the dataset
    sizes, parse_status = Counter(), defaultdict(Counter)
    for row, completion in zip(rows, completions):
        spec, family, parsed = parsed_row(row, completion)
        for part, by_view in example_counts(row, parsed, spec, family).items():
            for view, counts in by_view.items():
                add_counts(totals[row["dataset"]][part][view], counts)
                if family.headline.part == "entities":
                    add_counts(pooled[view], counts, prefix=f"{row['dataset']}:")
        sizes[row["dataset"]] += 1
        parse_status[row["dataset"]][parsed.status] += 1
        status[parsed.status] += 1
        records.append(_record(row, completion, parsed, family))
    datasets = {name: _dataset_result(name, totals[name], parse_status[name], sizes[name]) for name in totals}
    metrics: dict = {}
    single = len(datasets) == 1 and family_of(next(iter(datasets))).headline.part == "entities"
    if single:
        metrics = {k: v for k, v in next(iter(datasets.values())).items()
                   if k not in ("family", "metric", "headline", "parse_status", "n")}
    elif rows:
        metrics = {"datasets": datasets}
        pooled_names = [n for n in datasets if family_of(n).headline.part == "entities"]
        if pooled_names:
            labels = [f"{n}:{label}" for n in pooled_names for label in get_task(n).label_names]
            metrics |= ENTITIES.report(pooled, None, labels) | {"pooled_ner_datasets": pooled_names}
    return metrics | {"parse_status": dict(status), "n": len(rows), "scoring": SCORING}, records


def _dataset_result(name: str, totals: dict, parse_status: Counter, n: int) -> dict:
    spec = get_task(name)
    family = family_of(spec)
    return family.report(totals, spec) | {
        "family": family.name, "metric": spec.metric, "parse_status": dict(parse_status), "n": n,
        "headline": {"name": family.headline.title, "value": headline_value(family, totals)}}


# ---------------------------------------------------------------- tables of metrics.json


def f1_table(metrics: dict) -> list[dict]:
    """One row per stage: entity micro-F1 under the strict and lenient readings, partial, every occurrence
    and (string, type) sets, and strict F1 per type; for a multi-dataset run the entity columns are pooled
    over its entity-headline datasets and each dataset adds its headline F1 column. A metrics file without
    some reading gives the columns it has."""
    table = []
    for stage, m in metrics.items():
        row = {"stage": stage, "n": m["n"]}
        if "strict" in m:
            row |= {"strict_f1": m["strict"]["micro"]["f1"]}
            row |= {"lenient_f1": m["lenient"]["strict"]["micro"]["f1"]} if "lenient" in m else {}
            row |= {"partial_f1": m["partial"]["micro"]["f1"]}
            if "all_occurrences" in m:
                row |= {"all_occurrences_f1": m["all_occurrences"]["strict"]["micro"]["f1"],
                        "set_f1": m["set"]["micro"]["f1"]}
            if "datasets" not in m:
                row |= {f"strict_f1_{label}": v["f1"] for label, v in m["strict"]["per_type"].items()}
        row |= {name: d["headline"]["value"] for name, d in m.get("datasets", {}).items()}
        row |= {f"parse_{k}": v for k, v in m["parse_status"].items()}
        table.append(row)
    return table


def _pick(d: dict, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def dataset_table(metrics: dict) -> list[dict]:
    """Long table for multi-dataset runs: one row per (stage, dataset) with the dataset's usual numbers."""
    table = []
    for stage, m in metrics.items():
        for name, d in m.get("datasets", {}).items():
            row = {"stage": stage, "dataset": name, "family": d["family"], "n": d["n"],
                   "headline": d["headline"]["name"], "value": d["headline"]["value"],
                   "parse_unparsable": d["parse_status"].get("unparsable", 0)}
            row |= {k: _pick(d, *path) for k, path in FAMILIES[d["family"]].columns.items()}
            table.append(row)
    return table


def readings_table(metrics: dict) -> list[dict]:
    """Entity micro-F1 per stage and reading (strict, lenient, all occurrences) under nervaluate's four
    schemes, with the (string, type) set F1 beside; stages without an entity headline are left out."""
    readings = {"strict": (), "lenient": ("lenient",), "all occurrences": ("all_occurrences",)}
    return [{"stage": stage, "reading": name} | {s: _pick(m, *path, s, "micro", "f1") for s in SCHEMES}
            | {"set F1": m["set"]["micro"]["f1"]}
            for stage, m in metrics.items() if "strict" in m for name, path in readings.items()]


def macro_table(metrics: dict) -> list[dict]:
    """Entity macro-F1 over types per stage under each scheme (strict reading)."""
    return [{"stage": stage} | {s: m[s]["macro_f1"] for s in SCHEMES} for stage, m in metrics.items() if "strict" in m]


def text_table(rows: list[dict], columns: list[str], indent: str = "  ") -> str:
    """`rows` as right-aligned plain-text columns (floats to 4 decimals, a missing value as -), for the
    command line."""
    widths = [max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns]
    lines = [indent + "  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += [indent + "  ".join(_cell(r.get(c)).rjust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def ner_scores(pred_spans: list[list[Span | None]], gold_spans: list[list[Span]], labels: list[str]) -> dict:
    """{scheme: {"micro", "per_type", "macro_f1"}} of given predicted spans (None: not in the text) against
    gold spans, matched one to one per example: the span-level core, cross-checked against nervaluate."""
    totals: dict = {s: {} for s in SCHEMES}
    for preds, golds in zip(pred_spans, gold_spans):
        items = [Placed(p.type, ((p.start, p.end),)) if p else Placed("UNLOCATED", ()) for p in preds]
        for scheme in SCHEMES:
            pairs, _ = match_placed(items, golds, lambda p, g, s=scheme: scheme_credit(s, p, g), prefer_same_type=True)
            add_counts(totals[scheme], tally([i.type for i in items], [g.type for g in golds], pairs))
    return {s: label_block(totals[s], labels) for s in SCHEMES}


def _nervaluate_strict(true: list[list[dict]], pred: list[list[dict]]) -> float:
    tags = sorted({e["label"] for doc in true + pred for e in doc})
    return Evaluator(true, pred, tags=tags, loader="dict").evaluate()["overall"]["strict"].f1 if tags else 0.0


def cross_check(rows: list[dict], completions: list[str]) -> dict:
    """The strict reading and the set F1 recomputed independently, for the entity-headline rows.

    nervaluate's strict F1 on the span each mention is shown at (a mention not in the text: a span outside
    it, a false positive) against the gold spans, given the predictions twice: in answer order
    (`nervaluate_listed`; nervaluate lets an overlapping prediction listed first use up a gold entity, so
    its score depends on the order) and with the predictions that equal a gold entity first
    (`nervaluate_strict`, which must equal `strict`); and the plain set F1 of (example, string, type)
    triples (`plain_set`, which must equal `set`)."""
    true, listed, ordered, pred_set, gold_set, ours = [], [], [], set(), set(), {}
    for n, (row, completion) in enumerate(zip(rows, completions)):
        spec, family, parsed = parsed_row(row, completion)
        if family.headline.part != "entities":
            continue
        for view in (EntityView(), EntityView("set")):
            add_counts(ours.setdefault(view.scheme, {}), ENTITIES.counts(parsed, row, spec, view))
        tag = f"{row['dataset']}:"
        true.append([{"label": tag + e["type"], "start": e["start"], "end": e["end"] - 1} for e in row["entities"]])
        shown = ENTITIES.shown_spans(parsed, row)
        listed.append([{"label": tag + t, "start": s.start if s else -2 - k, "end": s.end - 1 if s else -2 - k}
                       for k, ((_, t), s) in enumerate(zip(parsed.mentions, shown))])
        ordered.append(sorted(listed[-1], key=lambda e: e not in true[-1]))
        pred_set |= {(n, m, t) for m, t in parsed.mentions}
        gold_set |= {(n, e["text"], e["type"]) for e in row["entities"]}
    both = len(pred_set & gold_set)
    return {"strict": prf(**ours["strict"]["ALL"])["f1"] if ours else 0.0,
            "nervaluate_strict": _nervaluate_strict(true, ordered),
            "nervaluate_listed": _nervaluate_strict(true, listed),
            "set": prf(**ours["set"]["ALL"])["f1"] if ours else 0.0,
            "plain_set": 2 * both / (len(pred_set) + len(gold_set)) if pred_set or gold_set else 0.0}


__all__ = ["SCORING", "score_predictions", "f1_table", "dataset_table", "ner_scores", "example_counts", "example_f1", "prf",
           "parsed_row", "headline_value", "cross_check"]
