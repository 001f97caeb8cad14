"""Stage 1: supervised fine-tuning on hierarchical task-aware prompts (TRL SFTTrainer, LoRA or full).

Reads runs/R/data/sft.jsonl, writes the merged model to runs/R/models/sft and the trainer log to
runs/R/results/sft_log.jsonl. Usable in-process (`run(params, run_dir)`) or as
`python -m grasp_lib.train.sft --params params/quick.yaml --run-dir runs/quick`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..models import load_model, save_merged  # first: Unsloth must be imported before TRL
from ..examples import read_jsonl
from ..params import Params, check_section, load, write_run_info
from ..paths import resolve
from .common import save_log, sft_rows, shots_for, trainer_defaults


def run(params: Params, run_dir: str | Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    run_dir = resolve(run_dir)
    check_section(params.sft, SFTConfig, "sft")
    if params.lora:
        check_section(params.lora, LoraConfig, "lora")
    write_run_info(params, run_dir, "sft")

    # Data
    rows = read_jsonl(run_dir / "data" / "sft.jsonl")
    dataset = Dataset.from_list(sft_rows(rows, params, shots_for(params, run_dir)))

    # Model
    model, tokenizer, peft_config = load_model(params.model, params.lora)

    # Training
    config = SFTConfig(**(trainer_defaults(run_dir / "checkpoints" / "sft", params.seed) | params.sft))
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    started = time.time()
    result = trainer.train()
    seconds = time.time() - started

    # Save
    save_merged(trainer.model, tokenizer, run_dir / "models" / "sft")
    save_log(trainer.state.log_history, run_dir / "results" / "sft_log.jsonl")
    return {"train_loss": result.training_loss, "steps": trainer.state.global_step, "seconds": seconds,
            "examples": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True)
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args()
    print(run(load(args.params), args.run_dir))


if __name__ == "__main__":
    main()
