"""Shared-prefix training: every distinct token prefix of a batch is computed once, with the same loss and
gradients as TRL's padded batch.

The rows of a training batch repeat long prefixes: every SFT row starts with the task's system prompt,
the G completions of a GRPO group repeat the whole prompt, a DPO pair repeats its prompt. Here the rows
of a batch are packed into a token trie (train/packing.py) and run through the model once, with each
token's position its depth in the trie and an attention mask that lets a token see exactly its
ancestors (tree attention: Prefix Grouper, Liu et al. 2025, arXiv 2506.05433, generalised from one shared
prompt to any shared prefix). A token's hidden state
depends only on the tokens before it, so a row's log-probabilities equal those of its padded forward,
and the gradient that the rows send into a shared token sums there, as the padded batch's does.
Logits are computed only at the positions whose next token a loss reads (TRL's fused head on CPU scores
every position, prompt included).

Why not `prefix_grouper` itself (PyPI 0.0.1.post1): its transformers adapter hands 2-D padding masks to
the attention function and leaves causality to it, which only FlashAttention-2 does; with SDPA on CPU it
fails on the mask shape, and `eager` is not in its registry. It also shares one prefix level only.

Where it applies: TRL calls `model(..., labels=labels, fused_lm_head=True)` (SFT's compute_loss, GRPO's
`_get_per_token_logps_and_entropies`, DPO's loss) and reads per-token fields of the output. The trainer
mixins below (and GraspGRPOTrainer's `shared_prefix` flag) hand TRL a `SharedPrefixForward` in place of
the model, which answers those calls from the packed forward and passes every other call to the model
unchanged. It falls back to the model (with a
warning) for what it does not reproduce: multimodal or extra inputs, holes in a row's attention mask,
attention implementations that ignore a 4-D mask (FlashAttention, Unsloth's kernels).
"""

from __future__ import annotations

import warnings

import torch

from .packing import attention_mask_4d, pack_rows

PLAIN_INPUTS = {"input_ids", "attention_mask", "use_cache"}


def model_config(model):
    while hasattr(model, "module"):  # DDP / accelerate wrappers
        model = model.module
    return getattr(model, "config", None)


def why_not_shared(model) -> str | None:
    """None when the packed forward reproduces `model`'s own; else the reason it does not apply."""
    from ..models import backend

    if backend() == "unsloth":
        return "Unsloth's kernels (GPU path)"
    implementation = getattr(model_config(model), "_attn_implementation", None)
    if implementation not in ("sdpa", "eager"):
        return f"attention implementation {implementation!r} (a 4-D mask needs sdpa or eager)"
    return None


def row_pairs(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """(rows, predicting, targets): each row's real tokens, and for every label that is not -100 (in
    row-major order) the (row, index in that row) of the token that predicts it and the label. None when a
    row's real tokens are not contiguous or a label has no real token before it."""
    rows, predicting, targets = [], [], []
    mask = attention_mask.bool()
    for r in range(input_ids.size(0)):
        columns = mask[r].nonzero().flatten()
        if len(columns) and int(columns[-1] - columns[0]) + 1 != len(columns):
            return None
        rows.append(input_ids[r, columns].tolist())
        first = int(columns[0]) if len(columns) else 0
        scored = (labels[r, 1:] != -100).nonzero().flatten()  # column j predicts the label at j + 1
        if len(scored) and (int(scored[0]) < first or int(scored[-1]) >= first + len(columns)):
            return None
        predicting += [(r, int(j) - first) for j in scored]
        targets.append(labels[r, 1 + scored])
    return rows, predicting, torch.cat(targets)


def per_token_fields(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-token fields of TRL's FusedCausalLMOutput, from logits [N, V] at the scored positions."""
    log_softmax = logits.float().log_softmax(-1)
    probs = log_softmax.exp()
    fields = {"log_probs": log_softmax.gather(-1, targets[:, None]).squeeze(-1),
              "entropy": -(probs * log_softmax).sum(-1)}
    with torch.no_grad():
        fields |= {"log_sum_sq_probs": (2 * log_softmax).logsumexp(-1), "mean_logits": logits.float().mean(-1),
                   "is_top1": logits.argmax(-1) == targets}
    return fields


class SharedPrefixForward:
    """Stands in for a model where TRL asks for per-token log-probabilities (`fused_lm_head=True`): runs
    the rows' token trie once and returns TRL's FusedCausalLMOutput. Any other call goes to the model."""

    def __init__(self, model, temperature: float = 1.0):
        self.model, self.temperature = model, temperature
        self.implementation = model_config(model)._attn_implementation

    def __getattr__(self, name):  # anything else TRL reads from the model
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        fused, labels = kwargs.get("fused_lm_head"), kwargs.get("labels")
        extra = {k for k, v in kwargs.items() if v is not None} - PLAIN_INPUTS - {"fused_lm_head", "labels"}
        pairs = None
        if fused and not args and not extra and labels is not None and kwargs.get("attention_mask") is not None:
            pairs = row_pairs(kwargs["input_ids"], kwargs["attention_mask"], labels)
        if pairs is None:
            if fused:
                warnings.warn(f"shared prefix: TRL's own forward for this call (inputs {sorted(kwargs)})")
            return self.model(*args, **kwargs)
        return self._fused(kwargs["input_ids"], labels, *pairs)

    def _fused(self, input_ids, labels, rows, predicting, targets):
        from trl.trainer.utils import FusedCausalLMOutput

        device = input_ids.device
        packed = pack_rows(rows)
        flat = torch.tensor([packed.nodes[r][i] for r, i in predicting], dtype=torch.long)
        width = packed.input_ids.size(1)
        keep, which = torch.unique(flat % width, return_inverse=True)  # columns whose logits a loss reads
        out = self.model(input_ids=packed.input_ids.to(device), position_ids=packed.position_ids.to(device),
                         attention_mask=attention_mask_4d(packed.allowed, self.implementation).to(device),
                         logits_to_keep=keep.to(device), use_cache=False)
        logits = out.logits[(flat // width).to(device), which.to(device)] / self.temperature
        fields = per_token_fields(logits, targets.to(device))
        label_mask = labels[:, 1:] != -100
        shaped = {name: torch.zeros(label_mask.shape, dtype=value.dtype, device=device).masked_scatter(label_mask, value)
                  for name, value in fields.items()}
        loss = -fields["log_probs"].sum() / label_mask.sum().clamp(min=1)
        return FusedCausalLMOutput(loss=loss, label_mask=label_mask, **shaped)


def shared_forward(model, temperature: float = 1.0):
    """`model` wrapped for the packed forward where it applies, else `model` itself (with a warning)."""
    reason = why_not_shared(model)
    if reason:
        warnings.warn(f"shared prefix off: {reason}")
        return model
    return SharedPrefixForward(model, temperature)


# -- trainer mixins: put them before the TRL trainer class, e.g. type("T", (SharedPrefixSFT, SFTTrainer), {})

class SharedPrefixSFT:
    """SFTTrainer (and the confidence stage's) with the packed forward. With rows of several tasks (several
    system prompts), batches hold one task each where they can (`PromptGroupedSampler`), so they share it."""

    def __init__(self, *args, train_dataset=None, **kwargs):
        self._prompt_keys = system_prompts(train_dataset)
        super().__init__(*args, train_dataset=train_dataset, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return super().compute_loss(shared_forward(model), inputs, return_outputs, num_items_in_batch)

    def _get_train_sampler(self, *args, **kwargs):
        keys = self._prompt_keys
        if keys is None or len(set(keys)) < 2 or len(keys) != len(self.train_dataset):
            return super()._get_train_sampler(*args, **kwargs)
        return PromptGroupedSampler(keys, self.args.train_batch_size, self.args.data_seed or self.args.seed)


class SharedPrefixDPO:
    """DPOTrainer with the packed forward for the policy and a separate reference model (with LoRA the
    reference is the policy with its adapter off, which TRL calls as self.model: left to TRL)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        reference = self.ref_model
        if reference is not None:
            self.ref_model = shared_forward(reference)
        try:
            return super().compute_loss(shared_forward(model), inputs, return_outputs, num_items_in_batch)
        finally:
            self.ref_model = reference


def with_shared_prefix(trainer_cls, mixin, on: bool = True):
    """`trainer_cls` with `mixin` in front (params.shared_prefix), else `trainer_cls` unchanged."""
    return type(f"SharedPrefix{trainer_cls.__name__}", (mixin, trainer_cls), {}) if on else trainer_cls


def system_prompts(dataset) -> list[str] | None:
    """Each row's system message (conversational prompt-completion rows), else None."""
    if dataset is None or "prompt" not in getattr(dataset, "column_names", []):
        return None
    prompts = dataset["prompt"]
    if not all(isinstance(p, list) and p and p[0].get("role") == "system" for p in prompts):
        return None
    return [p[0]["content"] for p in prompts]


class PromptGroupedSampler(torch.utils.data.Sampler):
    """Seeded order in which every batch of `batch_size` holds rows of one system prompt, except the last
    few that gather each prompt's leftover rows: each prompt's rows shuffled and cut into batches, the
    batches shuffled (a new draw each epoch, the same draws for the same seed)."""

    def __init__(self, keys: list[str], batch_size: int, seed: int):
        self.keys, self.batch_size = keys, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        full, leftovers = [], []
        for key in dict.fromkeys(self.keys):  # first-seen order: deterministic
            rows = [i for i, k in enumerate(self.keys) if k == key]
            rows = [rows[i] for i in torch.randperm(len(rows), generator=self.generator).tolist()]
            cut = len(rows) - len(rows) % self.batch_size
            full += [rows[i:i + self.batch_size] for i in range(0, cut, self.batch_size)]
            leftovers += rows[cut:]
        order = torch.randperm(len(full), generator=self.generator).tolist()
        yield from (i for b in order for i in full[b])
        yield from leftovers
