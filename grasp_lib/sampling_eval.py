"""K sampled completions per evaluation unit at several temperatures, for Best-F1@K, Avg@K and F1 against
temperature (grasp_lib.stats reads them back; figures (d) and (e) plot them).

Writes runs/R/results/samples_<stage>.jsonl: one line per (unit, temperature, sample) with stage, id, dataset,
temperature, sample index and the completion text. Off unless params eval.samples_k > 0.
"""

from __future__ import annotations

from pathlib import Path

from .evaluation import generation_options, generation_precision
from .infer import generate_result
from .models import load_model
from .params import Params
from .prompts import prompt_messages, shots_for
from .run_files import data_path, read_jsonl, samples_path, stage_models, write_jsonl


def sample_stage(params: Params, run_dir: Path, stage: str) -> Path:
    """Sample eval.samples_k completions per eval unit at each of eval.temperatures with `stage`'s model."""
    run_dir = Path(run_dir)
    models = stage_models(run_dir, params.model, params.stages)
    if stage not in models:
        raise KeyError(f"stage {stage!r} not in this run; stages: {list(models)}")
    rows = read_jsonl(data_path(run_dir, "eval"))
    model, tokenizer, _ = load_model(models[stage])
    conversations = [prompt_messages(r, params, shots_for(params, run_dir)) for r in rows]
    out = []
    for t in params.eval.temperatures:
        result = generate_result(model, tokenizer, conversations, batch_size=params.eval.batch_size,
                                 max_new_tokens=params.eval.max_new_tokens, do_sample=True, temperature=float(t),
                                 num_samples=params.eval.samples_k, seed=params.seed,
                                 **generation_options(params, generation_precision(params)))
        out += [{"stage": stage, "id": row["id"], "dataset": row.get("dataset", ""), "temperature": float(t),
                 "sample": k, "completion": text}
                for row, texts in zip(rows, result.texts) for k, text in enumerate(texts)]
    return write_jsonl(out, samples_path(run_dir, stage))


def sample_run(params: Params, run_dir: Path) -> list[Path]:
    """Samples for eval.sample_stages (default: the last stage); nothing when eval.samples_k is 0."""
    if params.eval.samples_k <= 0:
        return []
    stages = params.eval.sample_stages or [list(stage_models(run_dir, params.model, params.stages))[-1]]
    return [sample_stage(params, run_dir, stage) for stage in stages]
