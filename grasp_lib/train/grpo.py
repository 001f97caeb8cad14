"""Stage 2: GRPO with granular rewards (TRL GRPOTrainer), from the last earlier stage's model (DPO, confidence, SFT).

Reads runs/R/data/rl.jsonl, writes the merged policy to runs/R/models/grpo and the trainer log (each
reward's mean and spread per step, completion lengths) to runs/R/results/grpo_log.jsonl. Usable
in-process (`run(params, run_dir)`) or as
`accelerate launch -m grasp_lib.train.grpo --params params/quick.yaml --run-dir runs/quick`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from ..models import backend, load_model, resolve_precision, save_trained  # first: Unsloth must be imported before TRL
from ..run_files import checkpoints_dir, data_path, log_path, model_dir, read_jsonl, write_jsonl, write_run_info
from ..params import Params, ParamsError
from ..preflight import check_section, trainer_defaults, trainer_fields
from ..paths import resolve
from ..prompts import prompt_messages, shots_for
from ..rewards import build_rewards
from .callbacks import stage_callbacks
from .common import last_checkpoint, stage_main, start_model


def rl_rows(rows: list[dict], params: Params, shots: list[dict]) -> list[dict]:
    """Prompt plus the columns the rewards read (TRL passes extra columns to every reward function)."""
    return [{"prompt": prompt_messages(r, params, shots)} | {k: v for k, v in r.items() if k != "id"}
            for r in rows]


def fast_rollouts() -> bool:
    """Rollouts through grasp_lib.infer's engine, except with GRASP_ROLLOUTS=plain and under Unsloth, whose
    patched GRPOTrainer generates its own way (inference mode switch, its cache format, vLLM with
    fast_inference); the engine is not proven equal to it there, so TRL's/Unsloth's generation runs."""
    return os.environ.get("GRASP_ROLLOUTS") != "plain" and backend() != "unsloth"


def run(params: Params, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Train, save models/grpo and results/grpo_log.jsonl; resumes from the last checkpoint when one exists.
    `callbacks`: extra transformers TrainerCallbacks (tests use one to interrupt a run)."""
    from datasets import Dataset
    from trl import GRPOConfig

    from .grpo_trainer import GraspGRPOTrainer

    run_dir = resolve(run_dir)
    grpo_fields = trainer_fields(params, "grpo")  # without grasp's own switches, checked there
    check_section(grpo_fields, GRPOConfig, "grpo")
    constrained = params.grpo.get("constrained_rollouts", False)
    write_run_info(params.to_dict(), run_dir, "grpo")

    # Data
    rows = read_jsonl(data_path(run_dir, "rl"))
    dataset = Dataset.from_list(rl_rows(rows, params, shots_for(params, run_dir)))

    # Trainer config, then the policy of the last earlier stage (dpo, confidence or sft), else the base model
    # (a config first: under DeepSpeed ZeRO-3 it makes the model load sharded)
    # completions with each reward go to checkpoints/grpo/completions/*.parquet (params can switch it off)
    logging = {"log_completions": True, "num_completions_to_print": 0}
    precision = resolve_precision(params.precision)
    defaults = trainer_defaults(checkpoints_dir(run_dir, "grpo"), params.seed, precision)
    config = GRPOConfig(**(defaults | logging | grpo_fields))
    start = start_model(params, run_dir, "grpo")
    model, tokenizer, peft_config = load_model(start, params.lora, unsloth=params.unsloth, seed=params.seed, vllm=True)

    # Rewards and trainer
    rewards = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    if constrained and not fast_rollouts():
        raise ParamsError("grpo.constrained_rollouts needs the engine's rollouts (not GRASP_ROLLOUTS=plain or Unsloth)")
    trainer = GraspGRPOTrainer(model=model, reward_funcs=rewards, args=config, train_dataset=dataset,
                               processing_class=tokenizer, peft_config=peft_config,
                               callbacks=stage_callbacks(run_dir, "grpo", callbacks),
                               shared_prefix=params.shared_prefix, fast_rollouts=fast_rollouts(),
                               grounded_levels=tuple(params.prompt.levels) if constrained else None)
    resumed = last_checkpoint(config.output_dir, params.resume)
    started = time.time()
    trainer.train(resume_from_checkpoint=resumed)
    seconds = time.time() - started

    # Save (every process: under ZeRO-3 saving gathers the shards)
    save_trained(trainer, tokenizer, model_dir(run_dir, "grpo"))
    if trainer.is_world_process_zero():  # multi-GPU (accelerate launch): one process writes
        write_jsonl(trainer.state.log_history, log_path(run_dir, "grpo"))
    return {"steps": trainer.state.global_step, "seconds": seconds, "prompts": len(rows),
            "processes": config.world_size, "resumed_from": resumed}


def main() -> None:
    stage_main(__doc__, run)


if __name__ == "__main__":
    main()
