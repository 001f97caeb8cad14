"""The grpo stage's trainer: TRL's GRPOTrainer, configured by three constructor flags.

- `shared_prefix`: log-probabilities (policy, reference, old policy) from the packed forward
  (train/prefix.py): the system prompt once per step, each prompt once per group.
- `fast_rollouts`: rollouts through grasp_lib.infer's engine (shared-prefix KV cache, identical prompts
  prefilled once, finished sequences leave the batch) on the current policy weights. Only TRL's
  plain-transformers generation step (`_generate_single_turn`) is replaced, and only where the engine
  reproduces it: no vLLM / continuous batching, no images or tools, no repetition penalty or other extra
  generation kwargs. Sampling is the same distribution (temperature, top-k, top-p, min-p in
  model.generate's order) from torch's seeded global generator; the returned ids end at the first EOS as
  TRL's own masking does, so rewards, advantages and the loss are untouched.
- `grounded_levels` (the prompt levels, from `grpo.constrained_rollouts: true`; needs fast rollouts):
  rollouts sampled with grounded decoding from each row's task and text, i.e. from the policy's
  distribution masked to valid answers; TRL's loss still uses the unmasked log-probabilities.
"""

from __future__ import annotations

import functools
import inspect

from ..models import backend, cast_for_generation  # noqa: F401  (first: Unsloth must be imported before TRL)

import torch  # noqa: E402
from trl import GRPOTrainer  # noqa: E402
from trl.models import unwrap_model_for_generation as _unwrap  # noqa: E402

from ..infer import Engine, Sampling, grounded_answers  # noqa: E402
from .prefix import shared_forward  # noqa: E402

ENGINE_GENERATION_KWARGS = {"max_new_tokens", "temperature", "top_p", "top_k", "min_p", "do_sample",
                            "cache_implementation"}


def accepted_kwargs_only(func, optional: set[str]):
    """`func` without the keyword arguments in `optional` that its signature lacks: trl 1.16's
    unwrap_model_for_generation takes gradient_checkpointing_kwargs, 1.15's (the version Unsloth pins) does not."""
    missing = optional - set(inspect.signature(func).parameters)

    @functools.wraps(func)
    def call(*args, **kwargs):
        return func(*args, **{k: v for k, v in kwargs.items() if k not in missing})

    return call


unwrap_model_for_generation = accepted_kwargs_only(_unwrap, {"gradient_checkpointing_kwargs"})


class GraspGRPOTrainer(GRPOTrainer):
    def __init__(self, *args, shared_prefix: bool = False, fast_rollouts: bool = False,
                 grounded_levels: tuple[str, ...] | None = None, **kwargs):
        if grounded_levels is not None and not fast_rollouts:
            raise ValueError("grounded rollouts need the engine's rollouts (fast_rollouts)")
        self.shared_prefix, self.fast_rollouts, self.grounded_levels = shared_prefix, fast_rollouts, grounded_levels
        self.step_answers = None  # the answer grammars of this step's prompts (grounded rollouts)
        super().__init__(*args, **kwargs)

    def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
        if self.shared_prefix:
            model = shared_forward(model, self.temperature)
        return super()._get_per_token_logps_and_entropies(model, *args, **kwargs)

    def answers_for(self, rows: list[dict]):
        """The answer grammar of each row's prompt, or None without grounded rollouts."""
        return None if self.grounded_levels is None else grounded_answers(rows, self.grounded_levels)

    def _generate_and_score_completions(self, inputs):
        # TRL hands the generation step token ids only: the grammars come from the rows, seen here
        self.step_answers = self.answers_for(inputs)
        return super()._generate_and_score_completions(inputs)

    def _engine_applies(self, images, multimodal_fields) -> bool:
        if self.use_vllm or getattr(self, "use_transformers_continuous_batching", False):
            return False  # TRL sets generation_config only without vLLM: read it after this
        extra = set(self.args.generation_kwargs or {}) - ENGINE_GENERATION_KWARGS
        return (not images and not multimodal_fields and not self.tools and not self._is_vlm
                and self.generation_config.repetition_penalty in (None, 1.0) and not extra)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.fast_rollouts or not self._engine_applies(images, multimodal_fields):
            if self.grounded_levels is not None:
                raise ValueError("grpo.constrained_rollouts needs the engine's rollouts (no vLLM, tools, "
                                 "images or extra generation kwargs)")
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        answers = self.step_answers if self.grounded_levels is not None else None
        if self.grounded_levels is not None and len(answers or []) != len(prompt_ids):
            raise RuntimeError(f"grounded rollouts: {len(prompt_ids)} prompts but {len(answers or [])} rows "
                               "in this step")
        return [samples[0] for samples in self._engine_ids(prompt_ids, answers)], None

    def _engine_ids(self, prompt_ids, answers) -> list[list[list[int]]]:
        config = self.generation_config
        sampling = Sampling(do_sample=bool(config.do_sample), temperature=config.temperature or 1.0,
                            top_k=config.top_k, top_p=config.top_p, min_p=config.min_p)
        with (unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                          gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                                          generation_kwargs=self.generation_kwargs,
                                          gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs
                                          ) as unwrapped_model,
              torch.no_grad()):
            policy = unwrapped_model
            if self.args.bf16:  # params precision bf16: one bf16 copy of the policy, refreshed at every step
                self._bf16_policy = cast_for_generation(policy, "bf16", into=getattr(self, "_bf16_policy", None))
                policy = self._bf16_policy.train(unwrapped_model.training)
            # a fresh engine per step: the policy weights changed, so the prefix is recomputed
            engine = Engine(policy, self._tokenizer, batch_size=max(1, len(prompt_ids)),
                            stop_ids=list(self.eos_token_ids), set_eval=False)
            return engine.generate_ids([list(p) for p in prompt_ids], config.max_new_tokens, sampling, seed=None,
                                       answers=answers)
