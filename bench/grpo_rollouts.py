"""GRPO step wall time with TRL's own generation and with the fast-engine rollouts (same params, same seed).

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/grpo_rollouts.py --model runs/quick/models/sft --steps 4

Uses params/quick.yaml's grpo section (max_steps replaced by --steps) on BC5CDR training sentences.
Prints the mean step time of steps 2.. for each path (step 1 includes warm-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grasp_lib.models import load_model  # noqa: E402  (models first: it may import Unsloth)
from grasp_lib.examples import build_examples  # noqa: E402
from grasp_lib.params import load  # noqa: E402
from grasp_lib.rewards import build_rewards  # noqa: E402
from grasp_lib.preflight import trainer_defaults  # noqa: E402
from grasp_lib.train.grpo import rl_rows  # noqa: E402
from grasp_lib.train.grpo_trainer import GraspGRPOTrainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "quick" / "models" / "sft"))
    parser.add_argument("--params", default=str(ROOT / "params" / "quick.yaml"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--paths", default="plain,fast")
    args = parser.parse_args()

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig

    params = load(args.params)
    examples, _ = build_examples("bc5cdr", "train", "sentence", params.data.data_dir)
    usable = [e.to_row() for e in examples if len(e.text) <= params.data.max_chars]
    rows = random.Random(params.seed).sample(usable, 64)
    dataset = Dataset.from_list(rl_rows(rows, params, []))

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.last = [], None

        def on_step_begin(self, *a, **k):
            self.last = time.time()

        def on_step_end(self, *a, **k):
            self.times.append(time.time() - self.last)

    for name in args.paths.split(","):
        model, tokenizer, peft_config = load_model(args.model, params.lora)
        rewards = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
        config = GRPOConfig(**(trainer_defaults(Path("/tmp") / "grpo_bench", params.seed) | params.grpo
                               | {"max_steps": args.steps, "disable_tqdm": True, "logging_steps": 1}))
        clock = Clock()
        trainer = GraspGRPOTrainer(model=model, reward_funcs=rewards, args=config, train_dataset=dataset,
                                   processing_class=tokenizer, peft_config=peft_config, callbacks=[clock],
                                   fast_rollouts=name != "plain")
        trainer.train()
        logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
        later = clock.times[1:] or clock.times
        print(f"grpo {name:5s}: step times {[round(t, 1) for t in clock.times]} s, mean of steps 2..: "
              f"{sum(later) / len(later):.1f} s, completion length "
              f"{sum(h['completions/mean_length'] for h in logs) / max(1, len(logs)):.1f}, "
              f"reward {sum(h.get('reward', 0) for h in logs) / max(1, len(logs)):.3f}", flush=True)


if __name__ == "__main__":
    main()
