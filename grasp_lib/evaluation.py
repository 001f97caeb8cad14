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
from .metrics import cross_check, score_predictions
from .models import generation_engine, load_model, resolve_precision
from .params import Params
from .prompts import prompt_messages, shots_for

log = logging.getLogger(__name__)


def evaluate_model(model_name_or_dir: str, rows: list[dict], params: Params, run_dir: Path) -> tuple[dict, list[dict]]:
    """(metrics, per-row predictions) for one model; metrics include generation wall time."""
    model, tokenizer, _ = load_model(model_name_or_dir)
    shots = shots_for(params, run_dir)
    conversations = [prompt_messages(r, params, shots) for r in rows]
    started = time.time()
    reduced = generation_precision(params)
    result = _generate(model, tokenizer, conversations, rows, params, reduced)
    seconds = time.time() - started
    metrics, records = score_predictions(rows, [c[0] for c in result.texts])
    metrics["generation_seconds"] = seconds
    metrics["generation"] = result.summary()  # engine, precision, truncated prompts, token counts
    if reduced != "fp32" and params.eval.fidelity_check > 0:
        metrics["fidelity_check"] = fidelity_check(model, tokenizer, conversations, rows, result.texts, params)
    return metrics, records


def generation_precision(params: Params) -> str:
    """What evaluation and sampling generate in: int8 (eval.int8: fp32 prefill, int8 decode), else
    eval.precision or the run's precision, resolved (fp32 | bf16)."""
    return "int8" if params.eval.int8 else resolve_precision(params.eval.precision or params.precision)


def generation_options(params: Params, precision: str) -> dict:
    """generate_result's engine keywords for a generation precision (fp32 | bf16 | int8)."""
    return {"engine": generation_engine(params.eval.engine), "int8": precision == "int8",
            "precision": "fp32" if precision == "int8" else precision, "prefix_cache": params.eval.prefix_cache,
            "max_prompt_tokens": params.eval.max_prompt_tokens}


def _generate(model, tokenizer, conversations, rows, params: Params, precision: str):
    answers = grounded_answers(rows, params.prompt.levels) if params.eval.constrained else None
    return generate_result(model, tokenizer, conversations, batch_size=params.eval.batch_size,
                           max_new_tokens=params.eval.max_new_tokens, answers=answers,
                           **generation_options(params, precision))


def fidelity_check(model, tokenizer, conversations, rows, reduced_texts, params: Params) -> dict:
    """A reduced-precision evaluation (bf16 or int8) against fp32 on a seeded subsample of the same rows
    (fidelity depends on the model): strict F1 (or the mean headline of a mixture) of both, the delta in
    points, and a warning over 1 point."""
    precision = generation_precision(params)
    pick = sorted(random.Random(params.seed).sample(range(len(rows)), min(params.eval.fidelity_check, len(rows))))
    sub_rows = [rows[i] for i in pick]
    fp32 = _generate(model, tokenizer, [conversations[i] for i in pick], sub_rows, params, "fp32")
    scores = {name: _headline(score_predictions(sub_rows, [texts[0] for texts in done])[0])
              for name, done in ((precision, [reduced_texts[i] for i in pick]), ("fp32", fp32.texts))}
    delta = 100 * (scores[precision] - scores["fp32"])
    if abs(delta) > 1.0:
        log.warning("%s changes the F1 by %+.2f points against fp32 on %d seeded eval rows: above the 1 point "
                    "this evaluation allows; use precision: fp32 (and eval.int8: false) for headline numbers",
                    precision, delta, len(pick))
    return {"precision": precision, "rows": len(pick), "f1": scores[precision], "f1_fp32": scores["fp32"],
            "delta_points": delta, "within_1_point": abs(delta) <= 1.0}


def _headline(metrics: dict) -> float:
    if "strict" in metrics:
        return metrics["strict"]["micro"]["f1"]
    values = [d["headline"]["value"] for d in metrics.get("datasets", {}).values()]
    return sum(values) / len(values) if values else 0.0


def evaluate_run(params: Params, run_dir: Path) -> dict:
    """Evaluate every stage on data/eval.jsonl; write results/metrics.json and results/predictions.jsonl."""
    rows = run_files.read_jsonl(run_files.data_path(run_dir, "eval"))
    all_metrics, all_records = {}, []
    for stage, model in run_files.stage_models(run_dir, params.model, params.stages).items():
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
    generating (after a change to the parser, matcher or metrics). Generation timings are kept."""
    run_dir = Path(run_dir)
    old_path = run_files.metrics_path(run_dir)
    old = run_files.read_json(old_path) if old_path.exists() else {}
    all_metrics, all_records = {}, []
    for stage, (rows, completions) in saved_completions(run_dir).items():  # checked: each eval row once
        metrics, records = score_predictions(rows, completions)
        kept = {k: v for k, v in old.get(stage, {}).items() if k in ("generation_seconds", "generation")}
        all_metrics[stage] = metrics | kept
        all_records += [{"stage": stage} | r for r in records]
    write_results(run_dir, all_metrics, all_records)
    return all_metrics


def cross_checks(run_dir: Path) -> list[dict]:
    """Per stage: the strict entity F1 and nervaluate's on the same shown spans, the set F1 and a plain
    (example, string, type) set F1, from the saved completions (metrics.cross_check)."""
    return [{"stage": stage} | cross_check(rows, completions)
            for stage, (rows, completions) in saved_completions(Path(run_dir)).items()]
