"""Error analysis of saved entity predictions: what kind of mistake each non-correct mention is.

Every predicted and gold mention of an example falls in exactly one category (nervaluate's, plus
hallucinations):
- correct: same span and type as a gold mention;
- wrong_type: the exact span of a gold mention with another type;
- boundary: overlaps a gold mention without the same boundaries (type same or not, see `same_type`);
- spurious: located in the text but overlapping no unmatched gold mention (a false positive);
- hallucinated: not found in the text at all (span None: it can match nothing);
- missed: a gold mention that no prediction touches (a false negative).
Pairs are made one to one with the shared greedy matcher: exact matches first, then by overlap.
Parse failures are listed apart, with the parser's reason.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .matching import Span, greedy_match, overlap
from .run_files import load_run
from .tasks import family_of

CATEGORIES = ("correct", "wrong_type", "boundary", "spurious", "hallucinated", "missed")


def classify(predicted: list[dict], gold: list[dict]) -> list[dict]:
    """One entry per predicted and per gold mention: {category, pred, gold, same_type}.

    `predicted`: [{text, type, start, end}] (start None = not found in the text); `gold`: [{start, end, type, text}]."""
    located = [(i, Span(p["start"], p["end"], p["type"])) for i, p in enumerate(predicted)
               if p.get("start") is not None]
    golds = [Span(g["start"], g["end"], g["type"]) for g in gold]
    out, used_p, used_g = [], set(), set()
    strict = [[1.0 if (s.start, s.end, s.type) == (g.start, g.end, g.type) else 0.0 for g in golds] for _, s in located]
    for pi, gj, _ in greedy_match(strict):
        used_p.add(pi), used_g.add(gj)
        out.append({"category": "correct", "pred": predicted[located[pi][0]], "gold": gold[gj], "same_type": True})
    rest_p = [k for k in range(len(located)) if k not in used_p]
    rest_g = [j for j in range(len(golds)) if j not in used_g]
    scores = [[overlap(located[k][1], golds[j]) for j in rest_g] for k in rest_p]
    for a, b, _ in greedy_match(scores):
        k, j = rest_p[a], rest_g[b]
        used_p.add(k), used_g.add(j)
        s, g = located[k][1], golds[j]
        category = "wrong_type" if (s.start, s.end) == (g.start, g.end) else "boundary"
        out.append({"category": category, "pred": predicted[located[k][0]], "gold": gold[j],
                    "same_type": s.type == g.type})
    out += [{"category": "spurious", "pred": predicted[located[k][0]], "gold": None, "same_type": False}
            for k in range(len(located)) if k not in used_p]
    out += [{"category": "hallucinated", "pred": p, "gold": None, "same_type": False}
            for p in predicted if p.get("start") is None]
    out += [{"category": "missed", "pred": None, "gold": gold[j], "same_type": False}
            for j in range(len(golds)) if j not in used_g]
    return out


def analyse(rows: list[dict], records: list[dict]) -> list[dict]:
    """One flat entry per mention-level outcome over every record (NER rows only), with stage, id, text."""
    by_key = {(r.get("dataset", ""), str(r["id"])): r for r in rows}
    by_id = {str(r["id"]): r for r in rows}  # records written before they carried the dataset
    entries = []
    for rec in records:
        row = by_key.get((rec["dataset"], str(rec["id"]))) if "dataset" in rec else by_id.get(str(rec["id"]))
        if row is None or "entities" not in row or family_of(row["dataset"]).part("entities") is None:
            continue
        for e in classify(rec.get("predicted") or [], row["entities"]):
            p, g = e["pred"] or {}, e["gold"] or {}
            entries.append({"stage": rec.get("stage", ""), "dataset": row.get("dataset", ""), "id": str(rec["id"]),
                            "category": e["category"], "pred_text": p.get("text"), "pred_type": p.get("type"),
                            "gold_text": g.get("text"), "gold_type": g.get("type"), "same_type": e["same_type"],
                            "text": row["text"]})
    return entries


def by_type(entries: list[dict]) -> list[dict]:
    """Strict true positives, false positives and false negatives per stage and entity type, and the
    category counts behind them (a false positive is filed under its predicted type, a false negative
    under its gold type; a wrong-type or boundary pair is one of each)."""
    counts: dict[tuple, Counter] = {}
    for e in entries:
        if e["category"] != "missed":
            c = counts.setdefault((e["stage"], e["pred_type"]), Counter())
            c["tp" if e["category"] == "correct" else "fp"] += 1
            if e["category"] != "correct":
                c[f"fp_{e['category']}"] += 1
        if e["category"] not in ("spurious", "hallucinated") and e["category"] != "correct":
            c = counts.setdefault((e["stage"], e["gold_type"]), Counter())
            c["fn"] += 1
            c[f"fn_{e['category']}"] += 1
    columns = ["tp", "fp", "fn"] + [f"fp_{c}" for c in CATEGORIES[1:5]] + [f"fn_{c}" for c in ("wrong_type",
                                                                                                  "boundary", "missed")]
    order = {s: i for i, s in enumerate(dict.fromkeys(e["stage"] for e in entries))}
    return [{"stage": stage, "type": label} | {k: c.get(k, 0) for k in columns}
            for (stage, label), c in sorted(counts.items(), key=lambda x: (order[x[0][0]], str(x[0][1])))]


def summary(entries: list[dict], records: list[dict]) -> list[dict]:
    """Per stage: count of each category, plus parse failures (completions the parser could not read)."""
    stages = list(dict.fromkeys([r.get("stage", "") for r in records]))
    out = []
    for stage in stages:
        c = Counter(e["category"] for e in entries if e["stage"] == stage)
        failures = sum(1 for r in records if r.get("stage", "") == stage and r.get("status") == "unparsable")
        out.append({"stage": stage} | {k: c.get(k, 0) for k in CATEGORIES} | {"parse_failures": failures})
    return out


def examples(entries: list[dict], category: str, stage: str | None = None, n: int = 5, width: int = 90) -> list[dict]:
    """The first `n` mentions of a category (for a stage), with the sentence cut to `width` characters."""
    picked = [e for e in entries if e["category"] == category and (stage is None or e["stage"] == stage)][:n]
    return [{k: e[k] for k in ("stage", "id", "pred_text", "pred_type", "gold_text", "gold_type")}
            | {"text": e["text"][:width] + ("…" if len(e["text"]) > width else "")} for e in picked]


def parse_failures(records: list[dict], stage: str | None = None, n: int = 5, width: int = 90) -> list[dict]:
    """The first `n` unparsable completions with the parser's reason."""
    bad = [r for r in records if r.get("status") == "unparsable" and (stage is None or r.get("stage") == stage)][:n]
    return [{"stage": r.get("stage", ""), "id": str(r["id"]), "reason": r.get("reason", ""),
             "completion": r["completion"][:width] + ("…" if len(r["completion"]) > width else "")} for r in bad]


def run_errors(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(entries, records) from a run's data/eval.jsonl and results/predictions.jsonl."""
    rows, records = load_run(run_dir)
    return analyse(rows, records), records
