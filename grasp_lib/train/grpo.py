"""Stage 2: GRPO with granular rewards (TRL GRPOTrainer), from the last earlier stage's model (DPO, confidence, SFT).

Reads runs/R/data/rl.jsonl, writes the merged policy to runs/R/models/grpo and the trainer log (each
reward's mean and spread per step, completion lengths) to runs/R/results/grpo_log.jsonl. Usable
in-process (`run(params, run_dir)`) or as
`accelerate launch -m grasp_lib.train.grpo --params params/quick.yaml --run-dir runs/quick`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import time
from pathlib import Path

from ..models import backend, cast_for_generation, load_model, resolve_precision, save_trained  # first: Unsloth must be imported before TRL
from ..run_files import read_jsonl
from ..params import Params, ParamsError, check_section, trainer_fields, write_run_info
from ..paths import resolve
from ..rewards import build_rewards
from .callbacks import stage_callbacks
from .common import (last_checkpoint, prompt_messages, save_log, shots_for, stage_main, start_model,
                     trainer_defaults)
from .prefix import SharedPrefixGRPO, with_shared_prefix


def rl_rows(rows: list[dict], params: Params, shots: list[dict]) -> list[dict]:
    """Prompt plus the columns the rewards read (TRL passes extra columns to every reward function)."""
    return [{"prompt": prompt_messages(r, params, shots)} | {k: v for k, v in r.items() if k != "id"}
            for r in rows]




def fast_rollouts() -> bool:
    """Rollouts through grasp_lib.infer's engine, except with GRASP_ROLLOUTS=plain and under Unsloth, whose
    patched GRPOTrainer generates its own way (inference mode switch, its cache format, vLLM with
    fast_inference); the engine is not proven equal to it there, so TRL's/Unsloth's generation runs."""
    return os.environ.get("GRASP_ROLLOUTS") != "plain" and backend() != "unsloth"


def accepted_kwargs_only(func, optional: set[str]):
    """`func` without the keyword arguments in `optional` that its signature lacks: trl 1.16's
    unwrap_model_for_generation takes gradient_checkpointing_kwargs, 1.15's (the version Unsloth pins) does not."""
    missing = optional - set(inspect.signature(func).parameters)

    @functools.wraps(func)
    def call(*args, **kwargs):
        return func(*args, **{k: v for k, v in kwargs.items() if k not in missing})

    return call


@functools.cache
def fast_rollout_trainer(grounded: tuple[str, ...] | None = None):
    """GRPOTrainer whose rollouts run through grasp_lib.infer.Engine (shared-prefix KV cache, identical prompts
    prefilled once, finished sequences leave the batch) on the current policy weights: fp32, or with TRL's `bf16`
    (params precision) a bf16 copy of them refreshed at every step (one copy, overwritten in place).

    Only TRL's plain-transformers generation step (`_generate_single_turn`) is replaced, and only where the
    engine reproduces it: no vLLM / continuous batching, no images or tools, no repetition penalty or other
    extra generation kwargs. Sampling is the same distribution (temperature, top-k, top-p, min-p in
    model.generate's order) from torch's seeded global generator; the returned ids end at the first EOS as
    TRL's own masking does, so rewards, advantages and the loss are untouched. `GRASP_ROLLOUTS=plain` in the
    environment selects TRL's path (for timing comparisons).

    `grounded` (the prompt levels, from `grpo.constrained_rollouts: true`): rollouts are sampled with grounded
    decoding (grasp_lib.constrained) from each row's task and text, i.e. from the policy's distribution
    masked to valid answers; TRL's loss still uses the unmasked log-probabilities (see the README).
    """
    import torch
    from trl import GRPOTrainer
    from trl.models import unwrap_model_for_generation as unwrap

    from ..infer import Engine, Sampling, grounded_answers

    unwrap_model_for_generation = accepted_kwargs_only(unwrap, {"gradient_checkpointing_kwargs"})

    class FastRolloutGRPOTrainer(GRPOTrainer):
        def _fast_rollouts_apply(self, images, multimodal_fields) -> bool:
            if self.use_vllm or getattr(self, "use_transformers_continuous_batching", False):
                return False  # TRL sets generation_config only without vLLM
            extra = set(self.args.generation_kwargs or {}) - {"max_new_tokens", "temperature", "top_p", "top_k",
                                                              "min_p", "do_sample", "cache_implementation"}
            return (not images and not multimodal_fields and not self.tools and not self._is_vlm
                    and self.generation_config.repetition_penalty in (None, 1.0) and not extra)

        def _generate_and_score_completions(self, inputs):
            self._rollout_rows = inputs  # the rows behind this step's prompts (grounded rollouts read them)
            return super()._generate_and_score_completions(inputs)

        def _rollout_answers(self, n: int):
            rows = getattr(self, "_rollout_rows", None)
            if rows is None or len(rows) != n:
                raise RuntimeError(f"grounded rollouts: {n} prompts but {len(rows or [])} rows in this step")
            return grounded_answers(rows, grounded)

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            if not self._fast_rollouts_apply(images, multimodal_fields):
                if grounded is not None:
                    raise ValueError("grpo.constrained_rollouts needs the engine's rollouts (no vLLM, tools, "
                                     "images or extra generation kwargs)")
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                     has_tool_images)
            config = self.generation_config
            sampling = Sampling(do_sample=bool(config.do_sample), temperature=config.temperature or 1.0,
                                top_k=config.top_k, top_p=config.top_p, min_p=config.min_p)
            answers = self._rollout_answers(len(prompt_ids)) if grounded is not None else None
            with (unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                              gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                                              generation_kwargs=self.generation_kwargs,
                                              gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs
                                              ) as unwrapped_model,
                  torch.no_grad()):
                policy = unwrapped_model
                if self.args.bf16:
                    self._bf16_policy = cast_for_generation(policy, "bf16", into=getattr(self, "_bf16_policy", None))
                    policy = self._bf16_policy.train(unwrapped_model.training)
                # a fresh engine per step: the policy weights changed, so the prefix is recomputed
                engine = Engine(policy, self._tokenizer, batch_size=max(1, len(prompt_ids)),
                                stop_ids=list(self.eos_token_ids), set_eval=False)
                ids = engine.generate_ids([list(p) for p in prompt_ids], config.max_new_tokens, sampling, seed=None,
                                          answers=answers)
            return [samples[0] for samples in ids], None

    return FastRolloutGRPOTrainer


def run(params: Params, run_dir: str | Path, callbacks: list | None = None) -> dict:
    """Train, save models/grpo and results/grpo_log.jsonl; resumes from the last checkpoint when one exists.
    `callbacks`: extra transformers TrainerCallbacks (tests use one to interrupt a run)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    run_dir = resolve(run_dir)
    grpo_fields = trainer_fields(params, "grpo")  # without grasp's own switches, checked there
    check_section(grpo_fields, GRPOConfig, "grpo")
    constrained = params.grpo.get("constrained_rollouts", False)
    write_run_info(params, run_dir, "grpo")

    # Data
    rows = read_jsonl(run_dir / "data" / "rl.jsonl")
    dataset = Dataset.from_list(rl_rows(rows, params, shots_for(params, run_dir)))

    # Trainer config, then the policy of the last earlier stage (dpo, confidence or sft), else the base model
    # (a config first: under DeepSpeed ZeRO-3 it makes the model load sharded)
    # completions with each reward go to checkpoints/grpo/completions/*.parquet (params can switch it off)
    logging = {"log_completions": True, "num_completions_to_print": 0}
    precision = resolve_precision(params.precision)
    defaults = trainer_defaults(run_dir / "checkpoints" / "grpo", params.seed, precision)
    config = GRPOConfig(**(defaults | logging | grpo_fields))
    start = start_model(params, run_dir, "grpo")
    model, tokenizer, peft_config = load_model(start, params.lora, unsloth=params.unsloth, seed=params.seed, vllm=True)

    # Rewards and trainer
    rewards = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    if constrained and not fast_rollouts():
        raise ParamsError("grpo.constrained_rollouts needs the engine's rollouts (not GRASP_ROLLOUTS=plain or Unsloth)")
    trainer_cls = fast_rollout_trainer(tuple(params.prompt.levels) if constrained else None) if fast_rollouts() \
        else GRPOTrainer
    trainer_cls = with_shared_prefix(trainer_cls, SharedPrefixGRPO, params.shared_prefix)
    trainer = trainer_cls(model=model, reward_funcs=rewards, args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config,
                          callbacks=stage_callbacks(run_dir, "grpo", callbacks))
    resumed = last_checkpoint(config.output_dir, params.resume)
    started = time.time()
    trainer.train(resume_from_checkpoint=resumed)
    seconds = time.time() - started

    # Save (every process: under ZeRO-3 saving gathers the shards)
    save_trained(trainer, tokenizer, run_dir / "models" / "grpo")
    if trainer.is_world_process_zero():  # multi-GPU (accelerate launch): one process writes
        save_log(trainer.state.log_history, run_dir / "results" / "grpo_log.jsonl")
    return {"steps": trainer.state.global_step, "seconds": seconds, "prompts": len(rows),
            "processes": config.world_size, "resumed_from": resumed}


def main() -> None:
    stage_main(__doc__, run)


if __name__ == "__main__":
    main()
