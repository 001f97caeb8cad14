"""Stage 1: supervised fine-tuning on hierarchical task-aware prompts (TRL SFTTrainer, LoRA or full).

Reads runs/R/data/sft.jsonl, writes the merged model to runs/R/models/sft and the trainer log to
runs/R/results/sft_log.jsonl. Usable in-process (`run(params, run_dir)`) or as
`python -m grasp_lib.train.sft --params params/quick.yaml --run-dir runs/quick`.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..models import load_model, resolve_precision, save_trained  # first: Unsloth must be imported before TRL
from ..examples import curriculum_stages
from ..run_files import checkpoints_dir, data_path, log_path, model_dir, read_jsonl, write_jsonl, write_run_info
from ..params import Params
from ..preflight import check_section, trainer_defaults
from ..paths import resolve
from ..prompts import sft_rows, shots_for
from .callbacks import stage_callbacks
from .common import last_checkpoint, stage_main
from .prefix import SharedPrefixSFT, with_shared_prefix


def run(params: Params, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Train, save models/sft and results/sft_log.jsonl; resumes from the last checkpoint when one exists.
    `callbacks`: extra transformers TrainerCallbacks (tests use one to interrupt a run)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    run_dir = resolve(run_dir)
    check_section(params.sft, SFTConfig, "sft")
    if params.lora:
        check_section(params.lora, LoraConfig, "lora")
    write_run_info(params.to_dict(), run_dir, "sft")

    # Data: one stage, or the Taiyi curriculum's stage A (data.curriculum's family) then stage B (all)
    rows = read_jsonl(data_path(run_dir, "sft"))
    shots = shots_for(params, run_dir)
    stages = curriculum_stages(rows)

    # Trainer configs, then the model (a config first: under DeepSpeed ZeRO-3 it makes the model load sharded)
    checkpoints = checkpoints_dir(run_dir, "sft")
    output_dirs = {stage: checkpoints if stage == "all" else checkpoints / f"stage-{stage}" for stage, _ in stages}
    precision = resolve_precision(params.precision)
    configs = {stage: SFTConfig(**(trainer_defaults(d, params.seed, precision) | params.sft))
               for stage, d in output_dirs.items()}
    model, tokenizer, peft_config = load_model(params.model, params.lora, unsloth=params.unsloth, seed=params.seed)

    # Training: one trainer pass per stage, each continuing from the previous stage's weights (and
    # adapter); the sft section (epochs, max_steps, schedule) applies to each stage.
    log, losses, resumed_from, offset, seconds = [], {}, {}, 0, 0.0
    trainer_cls = with_shared_prefix(SFTTrainer, SharedPrefixSFT, params.shared_prefix)
    for stage, stage_rows in stages:
        dataset = Dataset.from_list(sft_rows(stage_rows, params, shots))
        config = configs[stage]
        trainer = trainer_cls(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                              peft_config=peft_config,
                              callbacks=stage_callbacks(run_dir, "sft" if stage == "all" else f"sft-{stage}", callbacks))
        resumed_from[stage] = last_checkpoint(config.output_dir, params.resume)
        started = time.time()
        result = trainer.train(resume_from_checkpoint=resumed_from[stage])
        seconds += time.time() - started
        model, peft_config = trainer.model, None  # the next stage trains the same (PEFT) model on
        losses[stage] = result.training_loss
        log += [entry | {"step": entry.get("step", 0) + offset}
                | ({} if stage == "all" else {"curriculum_stage": stage}) for entry in trainer.state.log_history]
        offset += trainer.state.global_step

    # Save (every process: under ZeRO-3 saving gathers the shards)
    save_trained(trainer, tokenizer, model_dir(run_dir, "sft"))
    if trainer.is_world_process_zero():  # multi-GPU (accelerate launch): one process writes
        write_jsonl(log, log_path(run_dir, "sft"))
    summary = {"train_loss": result.training_loss, "steps": offset, "seconds": seconds, "examples": len(rows),
               "processes": trainer.args.world_size}
    if len(stages) > 1:
        summary |= {"stages": {s: {"examples": len(r), "train_loss": losses[s]} for s, r in stages}}
    return summary | {"resumed_from": resumed_from if len(stages) > 1 else resumed_from["all"]}


def main() -> None:
    stage_main(__doc__, run)


if __name__ == "__main__":
    main()
