"""Evaluate one model on eval rows: batched greedy generation, then metrics from the predictions;
rescore a run's saved completions with the current scoring (no generation)."""

from __future__ import annotations

import logging
import random
import shutil
import time
from pathlib import Path

from . import run_files
from .infer import generate_result, grounded_answers
from .metrics import cross_check, decompose, score_predictions
from .models import generation_engine, load_model
from .params import Params
from .prompts import prompt_messages, shots_for

log = logging.getLogger(__name__)


def evaluate_model(model_name_or_dir: str, rows: list[dict], params: Params, run_dir: Path) -> tuple[dict, list[dict]]:
    """(metrics, per-row predictions) for one model; metrics include generation wall time."""
    model, tokenizer, _ = load_model(model_name_or_dir)
    shots = shots_for(params, run_dir)
    conversations = [prompt_messages(r, params, shots) for r in rows]
    started = time.time()
    result = _generate(model, tokenizer, conversations, rows, params, params.eval.int8)
    seconds = time.time() - started
    metrics, records = score_predictions(rows, [c[0] for c in result.texts])
    metrics["generation_seconds"] = seconds
    metrics["generation"] = result.summary()  # engine, truncated prompts, token counts
    if params.eval.int8 and params.eval.int8_check > 0:
        metrics["int8_check"] = int8_check(model, tokenizer, conversations, rows, result.texts, params)
    return metrics, records


def _generate(model, tokenizer, conversations, rows, params: Params, int8: bool):
    answers = grounded_answers(rows, params.prompt.levels) if params.eval.constrained else None
    return generate_result(model, tokenizer, conversations, batch_size=params.eval.batch_size,
                           max_new_tokens=params.eval.max_new_tokens, engine=generation_engine(params.eval.engine), int8=int8,
                           prefix_cache=params.eval.prefix_cache, max_prompt_tokens=params.eval.max_prompt_tokens,
                           answers=answers)


def int8_check(model, tokenizer, conversations, rows, int8_texts, params: Params) -> dict:
    """int8 against fp32 on a seeded subsample of the same rows (int8 fidelity depends on the model): strict
    F1 (or the mean headline of a mixture) of both, the delta in points, and a warning over 1 point."""
    pick = sorted(random.Random(params.seed).sample(range(len(rows)), min(params.eval.int8_check, len(rows))))
    sub_rows = [rows[i] for i in pick]
    fp32 = _generate(model, tokenizer, [conversations[i] for i in pick], sub_rows, params, False)
    scores = {name: _headline(score_predictions(sub_rows, [texts[0] for texts in done])[0])
              for name, done in (("int8", [int8_texts[i] for i in pick]), ("fp32", fp32.texts))}
    delta = 100 * (scores["int8"] - scores["fp32"])
    if abs(delta) > 1.0:
        log.warning("int8 changes the F1 by %+.2f points against fp32 on %d seeded eval rows: above the 1 point "
                    "this evaluation allows; use eval.int8: false for headline numbers", delta, len(pick))
    return {"rows": len(pick), "f1_int8": scores["int8"], "f1_fp32": scores["fp32"], "delta_points": delta,
            "within_1_point": abs(delta) <= 1.0}


def _headline(metrics: dict) -> float:
    if "strict" in metrics:
        return metrics["strict"]["micro"]["f1"]
    values = [d["headline"]["value"] for d in metrics.get("datasets", {}).values()]
    return sum(values) / len(values) if values else 0.0


def stage_models(params: Params, run_dir: Path) -> dict[str, str]:
    """Stage name -> model to evaluate: the base model, then each trained stage's saved model."""
    models = {"base": params.model}
    for stage in params.stages:
        models[stage] = str(run_files.model_dir(run_dir, stage))
    return models


def evaluate_run(params: Params, run_dir: Path) -> dict:
    """Evaluate every stage on data/eval.jsonl; write results/metrics.json and results/predictions.jsonl."""
    rows = run_files.read_jsonl(run_files.data_path(run_dir, "eval"))
    all_metrics, all_records = {}, []
    for stage, model in stage_models(params, run_dir).items():
        metrics, records = evaluate_model(model, rows, params, run_dir)
        all_metrics[stage] = metrics
        all_records += [{"stage": stage} | record for record in records]
    run_files.check_records(rows, all_records)  # every stage answered every eval row once, before writing
    write_results(run_dir, all_metrics, all_records)
    return all_metrics


def write_results(run_dir: Path, metrics: dict, records: list[dict]) -> None:
    """results/metrics.json (the previous one kept as metrics.prev.json) and results/predictions.jsonl of a
    run (what notebooks 05 and 06 read), each replaced whole."""
    run_files.write_metrics(metrics, run_dir)
    run_files.write_jsonl(records, run_files.predictions_path(run_dir))


def saved_completions(run_dir: Path) -> dict[str, tuple[list[dict], list[str]]]:
    """{stage: (eval rows, completions)} from a run's results/predictions.jsonl, joined by (dataset, id)."""
    rows, records = run_files.load_run(run_dir)
    by_stage: dict[str, list[dict]] = {}
    for record in records:
        by_stage.setdefault(record["stage"], []).append(record)
    return {stage: (run_files.join(rows, recs), [r["completion"] for r in recs]) for stage, recs in by_stage.items()}


def rescore_run(run_dir: Path) -> dict:
    """Recompute results/metrics.json from the saved completions in results/predictions.jsonl, without
    generating (after a change to the parser, matcher or metrics). Generation timings are kept. The first
    rescore of metrics written before scoring v2 keeps them as results/metrics_before_v2.json (what
    `decomposition` compares with)."""
    run_dir = Path(run_dir)
    old_path = run_files.metrics_path(run_dir)
    old = run_files.read_json(old_path) if old_path.exists() else {}
    all_metrics, all_records = {}, []
    for stage, (rows, completions) in saved_completions(run_dir).items():  # checked: each eval row once
        metrics, records = score_predictions(rows, completions)
        kept = {k: v for k, v in old.get(stage, {}).items() if k in ("generation_seconds", "generation")}
        all_metrics[stage] = metrics | kept
        all_records += [{"stage": stage} | r for r in records]
    if old and not any(isinstance(m, dict) and "scoring" in m for m in old.values()):  # only once scored
        before = old_path.with_name("metrics_before_v2.json")
        if not before.exists():
            shutil.copyfile(old_path, before)
    write_results(run_dir, all_metrics, all_records)
    return all_metrics


def decomposition(run_dir: Path, scheme: str = "strict") -> list[dict]:
    """Per stage, the entity micro-F1 (nervaluate `scheme`) from the figure before scoring v2 to the strict
    reading, one change at a time (metrics.DECOMPOSITION), from the saved completions: the first row is
    the figure the old code wrote (results/metrics_before_v2.json, when the run has one), `delta` each
    step's change. Also the all-occurrences and set readings."""
    run_dir = Path(run_dir)
    before_path = run_files.metrics_path(run_dir).with_name("metrics_before_v2.json")
    old = run_files.read_json(before_path) if before_path.exists() else {}
    table = []
    for stage, (rows, completions) in saved_completions(run_dir).items():
        steps = decompose(rows, completions, scheme)
        old_f1 = old.get(stage, {}).get(scheme, {}).get("micro", {}).get("f1")
        if old_f1 is not None:
            steps = [{"step": "before v2 (as saved)", "scheme": scheme, "f1": old_f1, "delta": None}] + steps
            steps[1]["delta"] = steps[1]["f1"] - old_f1
        table += [{"stage": stage} | step for step in steps]
    return table


def cross_checks(run_dir: Path) -> list[dict]:
    """Per stage: the strict entity F1 and nervaluate's on the same shown spans, the set F1 and a plain
    (example, string, type) set F1, from the saved completions (metrics.cross_check)."""
    return [{"stage": stage} | cross_check(rows, completions)
            for stage, (rows, completions) in saved_completions(Path(run_dir)).items()]


def f1_table(metrics: dict) -> list[dict]:
    """One row per stage: entity micro-F1 under the strict and lenient readings, partial, every occurrence
    and (string, type) sets, and strict F1 per type; for a multi-dataset run the entity columns are pooled
    over its entity-headline datasets and each dataset adds its headline F1 column. Metrics written before
    scoring v2 (no lenient reading) give the columns they have."""
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


DATASET_COLUMNS = {  # family -> extra columns of dataset_table: name -> path into the dataset's result
    "ner": {"strict_f1": ("strict", "micro", "f1"), "lenient_f1": ("lenient", "strict", "micro", "f1"),
            "partial_f1": ("partial", "micro", "f1"), "set_f1": ("set", "micro", "f1")},
    "re": {"micro_f1": ("micro", "f1"), "accuracy": ("accuracy",)},
    "triples": {"triple_f1": ("strict", "f1")},
    "nary": {f"{v}_{c}": (f"{v}_{c}", "f1") for v in ("pos", "any", "labelled") for c in ("exact", "partial")},
    "joint": {"entity_f1": ("entities", "strict", "micro", "f1"),
              "entity_lenient_f1": ("entities", "lenient", "strict", "micro", "f1"),
              "relation_f1": ("relations", "strict", "f1")},
    "qa": {"exact_match": ("exact_match",), "token_f1": ("token_f1",)},
}


def dataset_table(metrics: dict) -> list[dict]:
    """Long table for multi-dataset runs: one row per (stage, dataset) with the dataset's usual numbers."""
    table = []
    for stage, m in metrics.items():
        for name, d in m.get("datasets", {}).items():
            row = {"stage": stage, "dataset": name, "family": d["family"], "n": d["n"],
                   "headline": d["headline"]["name"], "value": d["headline"]["value"],
                   "parse_unparsable": d["parse_status"].get("unparsable", 0)}
            row |= {k: _pick(d, *path) for k, path in DATASET_COLUMNS[d["family"]].items()}
            table.append(row)
    return table

