"""Optional stage between SFT and GRPO: DPO on preference pairs built from the model's own samples.

No teacher and no human labels: for each prompt of data/<preference.split>.jsonl the start model (that of
the last earlier stage: confidence or SFT, else the base model) samples `preference.samples` completions;
the composite reward (rewards.funcs weighted by grpo.reward_weights, the GRPO objective) ranks them, and
the best and the worst completion form a (chosen, rejected) pair when their rewards differ by at least
`preference.margin`. TRL's DPOTrainer (the `dpo` section holds trl.DPOConfig fields) trains on the pairs.
Writes runs/R/models/dpo, results/dpo_pairs.jsonl and results/dpo_log.jsonl. Usable in-process
(`run(params, run_dir)`) or as `accelerate launch -m grasp_lib.train.dpo --params P --run-dir R`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..models import generation_engine, load_model, resolve_precision, save_trained  # first: Unsloth must be imported before TRL
from ..run_files import (checkpoints_dir, data_path, log_path, model_dir, read_jsonl, result_path,
                         write_jsonl, write_run_info)
from ..params import Params
from ..preflight import check_section, trainer_defaults
from ..paths import resolve
from ..prompts import prompt_messages, shots_for
from ..rewards import build_rewards, composite_rewards
from .callbacks import stage_callbacks
from .common import is_main_process, last_checkpoint, on_main_process, stage_main, start_model
from .prefix import SharedPrefixDPO, with_shared_prefix


def build_pairs(groups: list[dict], margin: float) -> list[dict]:
    """Preference pairs from groups {"prompt", "completions", "rewards"}: the best completion (first on
    ties) is chosen, the worst (last on ties) rejected, kept only when chosen reward - rejected reward is
    positive and at least `margin`. Extra keys of a group are kept on its pair."""
    pairs = []
    for group in groups:
        completions, rewards = group["completions"], group["rewards"]
        if len(completions) != len(rewards):
            raise ValueError(f"{len(completions)} completions but {len(rewards)} rewards")
        if len(rewards) < 2:
            continue
        best = max(range(len(rewards)), key=lambda i: (rewards[i], -i))
        worst = min(range(len(rewards)), key=lambda i: (rewards[i], -i))
        gap = rewards[best] - rewards[worst]
        if gap > 0 and gap >= margin:
            extra = {k: v for k, v in group.items() if k not in ("completions", "rewards")}
            pairs.append(extra | {"chosen": completions[best], "rejected": completions[worst],
                                  "chosen_reward": rewards[best], "rejected_reward": rewards[worst]})
    return pairs


def sample_pairs(model, tokenizer, params: Params, run_dir: Path) -> tuple[list[dict], dict]:
    """(pairs, counts): sample, score with the composite reward, pair best against worst."""
    from ..infer import generate

    pref = params.preference
    rows = read_jsonl(data_path(run_dir, pref.split))
    shots = shots_for(params, run_dir)
    conversations = [prompt_messages(r, params, shots) for r in rows]
    max_new = pref.max_new_tokens or params.grpo.get("max_completion_length") or params.eval.max_new_tokens
    samples = generate(model, tokenizer, conversations, batch_size=params.eval.batch_size, max_new_tokens=max_new,
                       do_sample=True, temperature=pref.temperature, num_samples=pref.samples, seed=params.seed,
                       progress=False, engine=generation_engine(params.eval.engine),
                       precision=resolve_precision(params.precision))
    funcs = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    weights = params.grpo.get("reward_weights")
    flat_rows = [r for r in rows for _ in range(pref.samples)]
    flat = composite_rewards(funcs, weights, [c for group in samples for c in group], flat_rows)
    groups = [{"id": r.get("id"), "dataset": r["dataset"], "prompt": conv, "completions": group,
               "rewards": flat[i * pref.samples:(i + 1) * pref.samples]}
              for i, (r, conv, group) in enumerate(zip(rows, conversations, samples))]
    pairs = build_pairs(groups, pref.margin)
    counts = {"prompts": len(rows), "samples": len(flat), "pairs": len(pairs),
              "mean_reward": sum(flat) / max(len(flat), 1),
              "mean_margin": sum(p["chosen_reward"] - p["rejected_reward"] for p in pairs) / max(len(pairs), 1)}
    return pairs, counts


def run(params: Params, run_dir: str | Path, callbacks: list | None = None) -> dict:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    run_dir = resolve(run_dir)
    check_section(params.dpo, DPOConfig, "dpo")
    write_run_info(params.to_dict(), run_dir, "dpo")
    # the trainer config first: under DeepSpeed ZeRO-3 it makes the model load sharded
    precision = resolve_precision(params.precision)
    config = DPOConfig(**(trainer_defaults(checkpoints_dir(run_dir, "dpo"), params.seed, precision) | params.dpo))
    model, tokenizer, peft_config = load_model(start_model(params, run_dir, "dpo"), params.lora,
                                               unsloth=params.unsloth, seed=params.seed)

    # Pairs (written for inspection; resampled on a rerun, which the seed makes reproducible), sampled on
    # rank 0 and sent to every process of a multi-GPU run
    started = time.time()
    pairs, counts = on_main_process(sample_pairs, model, tokenizer, params, run_dir)
    counts["sampling_seconds"] = time.time() - started
    if is_main_process():
        write_jsonl(pairs, result_path(run_dir, "dpo_pairs.jsonl"))
    if not pairs:
        raise ValueError(f"no preference pairs: every prompt's {params.preference.samples} samples scored within "
                         f"margin {params.preference.margin} of each other ({counts}); lower preference.margin "
                         f"or raise preference.samples / temperature")
    dataset = Dataset.from_list([{"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}],
                                  "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs])

    # Training: without LoRA, TRL copies the start model as the frozen reference; with LoRA the reference
    # is the same model with the adapter switched off
    model.train()
    trainer_cls = with_shared_prefix(DPOTrainer, SharedPrefixDPO, params.shared_prefix)
    trainer = trainer_cls(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=stage_callbacks(run_dir, "dpo", callbacks))
    resumed = last_checkpoint(config.output_dir, params.resume)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resumed)
    seconds = time.time() - started

    save_trained(trainer, tokenizer, model_dir(run_dir, "dpo"))  # every process (ZeRO-3 gathers)
    if trainer.is_world_process_zero():  # multi-GPU (accelerate launch): one process writes
        write_jsonl(trainer.state.log_history, log_path(run_dir, "dpo"))
    return counts | {"train_loss": result.training_loss, "steps": trainer.state.global_step, "seconds": seconds,
                     "processes": config.world_size, "resumed_from": resumed}


def main() -> None:
    stage_main(__doc__, run)


if __name__ == "__main__":
    main()
