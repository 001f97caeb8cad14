"""Stage 2: GRPO with granular rewards (TRL GRPOTrainer), starting from the SFT model.

Reads runs/R/data/rl.jsonl, writes the merged policy to runs/R/models/grpo and the trainer log (each
reward's mean and spread per step, completion lengths) to runs/R/results/grpo_log.jsonl. Usable
in-process (`run(params, run_dir)`) or as
`accelerate launch -m grasp_lib.train.grpo --params params/quick.yaml --run-dir runs/quick`.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ..models import load_model, save_merged  # first: Unsloth must be imported before TRL
from ..examples import read_jsonl
from ..params import Params, check_section, load, write_run_info
from ..paths import resolve
from ..rewards import build_rewards
from .common import prompt_messages, save_log, shots_for, trainer_defaults


def rl_rows(rows: list[dict], params: Params, shots: list[dict]) -> list[dict]:
    """Prompt plus the columns the rewards read (TRL passes extra columns to every reward function)."""
    return [{"prompt": prompt_messages(r, params, shots)} | {k: v for k, v in r.items() if k != "id"}
            for r in rows]


def run(params: Params, run_dir: str | Path) -> dict:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    run_dir = resolve(run_dir)
    check_section(params.grpo, GRPOConfig, "grpo")
    write_run_info(params, run_dir, "grpo")

    # Data
    rows = read_jsonl(run_dir / "data" / "rl.jsonl")
    dataset = Dataset.from_list(rl_rows(rows, params, shots_for(params, run_dir)))

    # Model: the SFT policy when that stage ran, else the base model
    start = str(run_dir / "models" / "sft") if "sft" in params.stages else params.model
    model, tokenizer, peft_config = load_model(start, params.lora)

    # Rewards and trainer
    rewards = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    # completions with each reward go to checkpoints/grpo/completions/*.parquet (params can switch it off)
    logging = {"log_completions": True, "num_completions_to_print": 0}
    config = GRPOConfig(**(trainer_defaults(run_dir / "checkpoints" / "grpo", params.seed) | logging | params.grpo))
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    started = time.time()
    trainer.train()
    seconds = time.time() - started

    # Save
    save_merged(trainer.model, tokenizer, run_dir / "models" / "grpo")
    save_log(trainer.state.log_history, run_dir / "results" / "grpo_log.jsonl")
    return {"steps": trainer.state.global_step, "seconds": seconds, "prompts": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True)
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()
    print(run(load(args.params), args.run_dir))


if __name__ == "__main__":
    main()
