"""Optional stage after SFT: teach the model to state how likely its own answer is to be exactly right.

No teacher and no hand-set numbers (the verbalised-probability recipe of Lin et al. 2022, "Teaching models
to express their uncertainty in words": the target is the model's own measured accuracy). On each row of
data/confidence.jsonl, which SFT never saw, the start model (the SFT model when that stage ran) answers
greedily and samples `confidence.samples` more answers at `confidence.temperature`; stats.confidence_targets
scores each exactly right or not (stats.exactly_right: parsed, strict per-example F1 1; the event the
reliability diagram measures). The confidence of a row (`confidence.target`) is the share of right answers among all answers
of the same kind as its greedy answer ("group": same number of items, which the model sees when it writes
the line) or among the row's own answers ("sample"). The model is then fine-tuned (TRL SFTTrainer, the
`confidence_sft` section) on an answer followed by the line "Confidence: N%", which the prompt's
`confidence` level asks for: its own greedy answer (`confidence.answer: own`), or the gold answer with the
confidence measured for answers of that kind (`gold`, which does not teach the model its own mistakes). A later GRPO
stage can train it further with the `uncertainty` reward (Brier score, `rewards.uncertainty.correctness:
exact`).

Writes runs/R/models/confidence, results/confidence_targets.jsonl and results/confidence_log.jsonl. Usable
in-process (`run(params, run_dir)`) or as `python -m grasp_lib.train.confidence --params P --run-dir R`.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..models import generation_engine, load_model, resolve_precision, save_trained  # first: Unsloth must be imported before TRL
from ..run_files import (checkpoints_dir, data_path, log_path, model_dir, read_jsonl, result_path,
                         write_jsonl, write_run_info)
from ..params import Params
from ..preflight import check_section, trainer_defaults
from ..parsing import without_confidence
from ..paths import resolve
from ..prompts import CONFIDENCE_LINE, prompt_messages, shots_for
from ..stats import confidence_targets
from .callbacks import stage_callbacks
from .common import is_main_process, last_checkpoint, on_main_process, stage_main, start_model
from .prefix import SharedPrefixSFT, with_shared_prefix


def confidence_target(answer: str, percent: int) -> str:
    """The model's own answer (any confidence line it already wrote dropped) and then its confidence line.

    >>> print(confidence_target('{"Chemical": [], "Disease": []}', 88))
    {"Chemical": [], "Disease": []}
    Confidence: 88%
    """
    answer = without_confidence(answer).strip()  # an empty (or blank) answer: the line alone
    return "\n".join(part for part in (answer, CONFIDENCE_LINE.format(percent=percent)) if part)


def measure(model, tokenizer, params: Params, rows: list[dict], conversations: list[list[dict]]) -> list[dict]:
    """One record per row (in row order; `conversations` are the rows' prompts): the greedy answer, whether
    it and each sample are exactly right, the confidence (percent, by `confidence.target`) and the target."""
    from ..infer import generate

    settings = params.confidence
    common = {"batch_size": params.eval.batch_size, "engine": generation_engine(params.eval.engine),
              "precision": resolve_precision(params.precision),
              "max_new_tokens": settings.max_new_tokens or params.eval.max_new_tokens}
    greedy = generate(model, tokenizer, conversations, **common)
    sampled = generate(model, tokenizer, conversations, do_sample=True, temperature=settings.temperature,
                       num_samples=settings.samples, seed=params.seed, **common)
    return confidence_records(rows, [g[0] for g in greedy], sampled, settings.target, settings.max_items,
                              settings.answer)


def confidence_records(rows: list[dict], greedy: list[str], sampled: list[list[str]], target: str,
                       max_items: int = 4, answer: str = "own") -> list[dict]:
    """stats.confidence_targets, each with its training target: the shown answer, then its confidence line."""
    return [{k: v for k, v in rec.items() if k != "shown"} | {"target": confidence_target(rec["shown"], rec["percent"])}
            for rec in confidence_targets(rows, greedy, sampled, target, max_items, answer)]


def run(params: Params, run_dir: str | Path, callbacks: list | None = None) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    run_dir = resolve(run_dir)
    check_section(params.confidence_sft, SFTConfig, "confidence_sft")
    write_run_info(params.to_dict(), run_dir, "confidence")
    # the trainer config first: under DeepSpeed ZeRO-3 it makes the model load sharded
    defaults = trainer_defaults(checkpoints_dir(run_dir, "confidence"), params.seed, resolve_precision(params.precision))
    config = SFTConfig(**(defaults | params.confidence_sft))
    model, tokenizer, peft_config = load_model(start_model(params, run_dir, "confidence"), params.lora,
                                               unsloth=params.unsloth, seed=params.seed)

    # Targets (written for inspection; remeasured on a rerun, which the seed makes reproducible)
    rows = read_jsonl(data_path(run_dir, "confidence"))
    shots = shots_for(params, run_dir)
    conversations = [prompt_messages(r, params, shots) for r in rows]
    started = time.time()
    records = on_main_process(measure, model, tokenizer, params, rows, conversations)  # rank 0, sent to all
    sampling_seconds = time.time() - started
    if is_main_process():
        write_jsonl(records, result_path(run_dir, "confidence_targets.jsonl"))
    # The loss covers the whole completion: with the loss on the confidence line alone the model learned to
    # open with it and skip the answer (87 of 96 test answers unparsable in confidence_quick)
    dataset = Dataset.from_list([
        {"prompt": conversation, "completion": [{"role": "assistant", "content": rec["target"]}]}
        for conversation, rec in zip(conversations, records)])

    # Training
    model.train()
    trainer_cls = with_shared_prefix(SFTTrainer, SharedPrefixSFT, params.shared_prefix)
    trainer = trainer_cls(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=stage_callbacks(run_dir, "confidence", callbacks))
    resumed = last_checkpoint(config.output_dir, params.resume)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resumed)
    seconds = time.time() - started

    save_trained(trainer, tokenizer, model_dir(run_dir, "confidence"))  # every process (ZeRO-3 gathers)
    if trainer.is_world_process_zero():  # multi-GPU (accelerate launch): one process writes
        write_jsonl(trainer.state.log_history, log_path(run_dir, "confidence"))
    percents = [r["percent"] for r in records]
    return {"rows": len(records), "answers_per_row": 1 + params.confidence.samples,
            "greedy_right": sum(r["greedy_right"] for r in records), "mean_percent": sum(percents) / len(percents),
            "sampling_seconds": sampling_seconds, "train_loss": result.training_loss,
            "steps": trainer.state.global_step, "seconds": seconds, "resumed_from": resumed}


def main() -> None:
    stage_main(__doc__, run)


if __name__ == "__main__":
    main()
