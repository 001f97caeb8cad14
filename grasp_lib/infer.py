"""Batched generation: length-sorted batches, left padding, KV cache, K samples per prompt.

Two engines behind one call, `generate` (or `generate_result` for the details):

- `plain`: transformers' `model.generate` on left-padded, length-sorted batches (the reference).
- `fast` (default): `Engine`, a decode loop over the same model forward that
  (1) computes the key/value prefix shared by every prompt of the call (the hierarchical system prompt,
  identical for every example of a task) once and reuses it in every batch, (2) prefills identical prompts
  once when K samples are drawn per prompt, (3) drops each sequence from the batch as soon as it emits an
  end-of-turn token, so the batch shrinks instead of decoding padding, and (4) optionally decodes on int8
  weights (PyTorch dynamic quantization, one scale per output channel, of the decoder's linear layers but
  the MLP down projections; the LM head stays fp32; the prompt is prefilled in fp32).
  In fp32 and greedy it reproduces `model.generate` token for token: same inputs, same positions, same
  mask; the prefix only moves the padding between the shared prefix and the rest of the prompt, where
  the attention mask hides it.

Both engines can decode grounded (`answers=`, see `grasp_lib.constrained`): each answer follows its task
family's JSON schema and every mention is a verbatim span of the input; the fast engine masks the logits
inside its decode loop, the plain one through a logits processor with the same masks.

Prompts longer than `max_prompt_tokens` are cut in the middle (the head, which holds the task prompt, and
the chat template's closing tokens are kept); every cut is counted in the `GenerationResult` and logged.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from .models import cast_for_generation
from .progress import bar as reported_bar  # tqdm, plus events for the runner's terminal

log = logging.getLogger(__name__)

ENGINES = ("fast", "plain")


@dataclass
class GenerationResult:
    """Completions plus what happened on the way (truncation is reported here, never silent)."""

    texts: list[list[str]]  # per conversation, `num_samples` completions, in input order
    token_ids: list[list[list[int]]]  # the same as token ids (end-of-turn token included when emitted)
    engine: str = "fast"
    int8: bool = False
    precision: str = "fp32"  # the weights generation ran on: fp32 | bf16 (int8: fp32 prefill, int8 decode)
    truncated: list[int] = field(default_factory=list)  # input indices whose prompt was cut
    max_prompt_tokens: int | None = None
    prompt_tokens: int = 0  # after truncation, summed over conversations
    prefix_tokens: int = 0  # shared prefix computed once (fast engine)
    new_tokens: int = 0  # generated, summed over all completions
    unfinished: int = 0  # completions that hit max_new_tokens without an end-of-turn token
    seconds: float = 0.0
    constrained: bool = False  # grounded decoding (answers follow the schema, mentions copied from the input)

    def summary(self) -> dict:
        return {"engine": self.engine, "int8": self.int8, "precision": self.precision, "constrained": self.constrained,
                "conversations": len(self.texts),
                "truncated_prompts": len(self.truncated), "max_prompt_tokens": self.max_prompt_tokens,
                "prompt_tokens": self.prompt_tokens, "prefix_tokens": self.prefix_tokens,
                "new_tokens": self.new_tokens, "unfinished": self.unfinished, "seconds": self.seconds}


# ---------------------------------------------------------------- devices and the model call


def model_device(model) -> torch.device:
    """Where the model's weights are: every tensor of the engine and its generator go there."""
    device = getattr(model, "device", None)
    if device is None:
        device = next(model.parameters()).device
    return torch.device(device)


def make_generator(seed: int | None, device) -> torch.Generator | None:
    """A seeded sampling generator on `device` (torch.multinomial wants it where the probabilities are);
    None: torch's global generator (the trainer's seeded state)."""
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)


def model_forward(model, *, cache: Cache, **inputs):
    """`model(...)` with a key/value cache. The keyword is `past_key_values`: transformers 5.17 (the GPU pin
    set) knows only that one (it drops `cache=` into **kwargs and would silently run without a cache);
    5.24 accepts it as the deprecated alias of `cache` (until 5.40) and warns, which is silenced here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
        return model(past_key_values=cache, **inputs)


# ---------------------------------------------------------------- prompts


def stop_token_ids(model, tokenizer) -> list[int]:
    """End-of-turn ids: the model's generation_config.eos_token_id (what model.generate stops on)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]


def template_tail(tokenizer) -> int:
    """Number of tokens the chat template puts after the last user message (kept when truncating)."""
    marker = "\u2063TAIL\u2063"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False,
                                             add_generation_prompt=True)
    tail = rendered.split(marker, 1)[1] if marker in rendered else ""
    return len(tokenizer(tail, add_special_tokens=False)["input_ids"])


def truncate_ids(ids: list[int], limit: int, tail: int) -> list[int]:
    """`ids` cut to `limit` tokens: the head and the last `tail` tokens are kept, the middle goes."""
    if len(ids) <= limit:
        return ids
    tail = min(tail, limit - 1)
    return ids[:limit - tail] + (ids[len(ids) - tail:] if tail else [])


def encode_conversations(tokenizer, conversations: list[list[dict]], max_prompt_tokens: int | None
                         ) -> tuple[list[list[int]], list[int]]:
    """Chat-template token ids per conversation, and the indices that had to be truncated."""
    prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    truncated = []
    if max_prompt_tokens is not None:
        tail = template_tail(tokenizer)
        for i, ids in enumerate(encoded):
            if len(ids) > max_prompt_tokens:
                encoded[i] = truncate_ids(ids, max_prompt_tokens, tail)
                truncated.append(i)
    return encoded, truncated


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Length of the longest token prefix that every sequence shares."""
    if not sequences:
        return 0
    first, n = sequences[0], min(len(s) for s in sequences)
    for s in sequences[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


# ---------------------------------------------------------------- sampling


@dataclass
class Sampling:
    """Next-token choice; the warpers run in model.generate's order (temperature, top-k, top-p, min-p)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    def pick(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not self.do_sample:
            return logits.argmax(dim=-1)
        scores = logits.float()
        if self.temperature and self.temperature != 1.0:
            scores = scores / self.temperature
        if self.top_k:
            k = min(int(self.top_k), scores.shape[-1])
            kth = torch.topk(scores, k, dim=-1).values[..., -1, None]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            sorted_scores, sorted_idx = torch.sort(scores, descending=False)
            cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - self.top_p)
            remove[..., -1:] = False  # keep at least one token
            scores = scores.masked_fill(remove.scatter(1, sorted_idx, remove), float("-inf"))
        if self.min_p is not None and self.min_p > 0:
            probs = scores.softmax(dim=-1)
            threshold = self.min_p * probs.max(dim=-1, keepdim=True).values
            scores = scores.masked_fill(probs < threshold, float("-inf"))
        probs = scores.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# ---------------------------------------------------------------- the fast engine


# Linear layers (name suffixes) kept in fp32 by quantize_int8: the MLP's down projection reads the activations
# with the largest outliers (SmolLM2-135M: max |x| / mean |x| up to 27000 in layer 11; bench/int8.py)
INT8_FP32_LAYERS: tuple[str, ...] = ("down_proj",)


def quantize_int8(model, head: bool = False, skip: tuple[str, ...] | None = None):
    """A copy of `model` whose decoder linear layers run with int8 weights (dynamic quantization: one weight
    scale per output channel, activations quantized per tensor at run time). The LM head stays fp32 unless
    `head=True`; layers whose name ends with one of `skip` (default INT8_FP32_LAYERS) stay fp32 too."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    skip = INT8_FP32_LAYERS if skip is None else tuple(skip)
    model = copy.deepcopy(model).eval()
    head_module = model.get_output_embeddings()
    names = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
             and (head or module is not head_module) and not name.endswith(skip)}
    with warnings.catch_warnings():  # torch.ao's deprecation notices; the eager API still works in torch 2.13
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        return quantize_dynamic(model, {n: per_channel_dynamic_qconfig for n in names}, dtype=torch.qint8)


class KVCacheLayer(DynamicLayer):
    """One layer's keys and values in a preallocated [batch, heads, capacity, dim] buffer: `update` writes
    in place after the first `length` positions instead of concatenating."""

    def __init__(self):
        super().__init__()
        self.key_buffer = self.value_buffer = None
        self.length = 0

    def allocate(self, like: torch.Tensor, batch: int, capacity: int) -> None:
        shape = (batch, like.shape[1], capacity, like.shape[3])
        self.key_buffer, self.value_buffer = like.new_zeros(shape), like.new_zeros(shape)
        self.is_initialized = True
        self.device = like.device

    def _views(self) -> None:
        self.keys, self.values = self.key_buffer[:, :, :self.length], self.value_buffer[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        n = key_states.shape[-2]
        self.key_buffer[:, :, self.length:self.length + n] = key_states
        self.value_buffer[:, :, self.length:self.length + n] = value_states
        self.length += n
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
        self._views()


class KVCache(Cache):
    """The fast engine's key/value cache (after nanochat's KVCache): per layer a buffer laid out as
    [shared prefix | left padding | prompt | new tokens], filled chunk by chunk at prefill, written in place
    while decoding, rows dropped as they finish. A transformers `Cache`, so the model's own attention
    reads and writes it."""

    def __init__(self, n_layers: int, batch: int, capacity: int):
        super().__init__(layers=[KVCacheLayer() for _ in range(n_layers)])
        self.batch, self.capacity = batch, capacity

    def fill(self, rows: torch.Tensor, chunk: Cache, n_prefix: int, start: int) -> None:
        """Copy a prefilled chunk (prefix + its prompts) into `rows`; its prompts end where the widest ends."""
        for layer, source in zip(self.layers, chunk.layers):
            k, v = source.keys, source.values
            if layer.key_buffer is None:
                layer.allocate(k, self.batch, self.capacity)
            layer.key_buffer[rows, :, :n_prefix] = k[:, :, :n_prefix]
            layer.value_buffer[rows, :, :n_prefix] = v[:, :, :n_prefix]
            layer.key_buffer[rows, :, start:start + k.shape[2] - n_prefix] = k[:, :, n_prefix:]
            layer.value_buffer[rows, :, start:start + v.shape[2] - n_prefix] = v[:, :, n_prefix:]

    def set_length(self, length: int) -> None:
        for layer in self.layers:
            layer.length = length
            layer._views()


@dataclass
class _Batch:
    """The rows of one decode batch after prefill: next-token logits, attention mask, last positions."""

    logits: torch.Tensor
    mask: torch.Tensor
    last_pos: torch.Tensor
    cache: KVCache


class Engine:
    """Greedy or sampled decoding with a shared-prefix KV cache and per-sequence stopping.

    `model` is used as is (its current weights: GRPO calls this with the policy of the current step);
    `precision="bf16"` decodes on a bf16 copy cast once here (the model itself when it already is bf16), with a
    bf16 key/value cache; the logits are compared in fp32 (`Sampling.pick`, grounded masks). `int8=True` works
    on a quantized copy made once here. Every tensor and the sampling generator live on the model's device.
    Use `generate_ids` for token ids and `generate` for chat conversations.
    """

    def __init__(self, model, tokenizer, *, int8: bool = False, batch_size: int = 32, prefix_cache: bool = True,
                 stop_ids: list[int] | None = None, set_eval: bool = True, prefill_chunk: int = 8,
                 precision: str = "fp32"):
        if int8 and precision != "fp32":
            raise ValueError("int8 decodes after an fp32 prefill: use precision='fp32' with int8=True")
        self.tokenizer = tokenizer
        self.set_eval = set_eval  # False: decode in the model's current mode (GRPO keeps TRL's behaviour)
        self.prefill_chunk = prefill_chunk  # prompts prefilled together (length-sorted: little padding)
        self.int8, self.precision = int8, precision
        model = cast_for_generation(model, precision)
        self.model = model  # prefill (the prompt) always runs on these weights
        # int8: decoding runs on a quantized copy; the prompt's keys and values come from the fp32 model, because
        # the prompt holds the attention-sink tokens whose huge activations break per-tensor int8 (bench/int8.py)
        self.decoder = quantize_int8(model) if int8 else model
        self.device = model_device(self.model)
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.stop_ids = stop_ids if stop_ids is not None else stop_token_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else 0)
        self._grounding = None

    def grounding(self):
        """The grounded-decoding masks for this tokenizer (built on first use: about a second)."""
        if self._grounding is None:
            from .constrained import Grounding

            self._grounding = Grounding(self.tokenizer, self.stop_ids)
        return self._grounding

    # -- forward with a cache
    def _forward(self, input_ids, attention_mask, position_ids, cache, model=None):
        out = model_forward(model or self.model, input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :]

    def _prefix_kv(self, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if not prefix:
            return None
        cache = DynamicCache()
        ids = torch.tensor([prefix], device=self.device)
        model_forward(self.model, input_ids=ids, attention_mask=torch.ones_like(ids),
                      position_ids=torch.arange(len(prefix), device=self.device)[None], cache=cache,
                      use_cache=True, logits_to_keep=1)
        if cache.get_seq_length() != len(prefix):
            raise RuntimeError(f"{type(self.model).__name__}.forward did not fill the key/value cache it was given "
                               "(a patched forward?): use engine='plain'")
        return [(layer.keys, layer.values) for layer in cache.layers]

    @torch.inference_mode()
    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling | None = None,
                     num_samples: int = 1, seed: int | None = 0, progress: bool = False,
                     stats: dict | None = None, answers: list | None = None) -> list[list[list[int]]]:
        """New token ids per prompt: `num_samples` lists each, ending with the stop token when one was emitted.

        Identical prompts in a batch (K samples, or GRPO's repeated prompts) are prefilled once.
        `seed=None` samples from torch's global generator (the trainer's seeded state).
        `answers`: per prompt a `constrained.Answer` (grounded decoding) or None (free).
        """
        sampling = sampling or Sampling()
        if any(len(p) == 0 for p in prompts):
            raise ValueError("empty prompt: a prompt needs at least one token")
        outputs: list[list[list[int]]] = [[[] for _ in range(num_samples)] for _ in prompts]
        if stats is not None:
            stats.setdefault("prefix_tokens", 0)
            stats.setdefault("unfinished", 0)
        if not prompts or max_new_tokens <= 0:
            return outputs
        was_training = self.model.training
        if self.set_eval:
            self.model.eval()
        generator = make_generator(seed, self.device)
        # The shared prefix, computed once; every prompt keeps at least one token of its own.
        n_prefix = 0
        if self.prefix_cache:
            n_prefix = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
        prefix_kv = self._prefix_kv(prompts[0][:n_prefix]) if n_prefix > 0 else None
        suffixes = [p[n_prefix:] for p in prompts]
        # Length-sorted batches of (prompt, sample) rows; rows of one prompt stay adjacent.
        rows = sorted(((i, k) for i in range(len(prompts)) for k in range(num_samples)),
                      key=lambda r: (-len(suffixes[r[0]]), r[0], r[1]))
        batches = [rows[j:j + self.batch_size] for j in range(0, len(rows), self.batch_size)]
        unfinished = 0
        try:
            for batch in reported_bar(batches, "generate", disable=not progress):
                state = self._prefill([suffixes[i] for i, _ in batch], n_prefix, prefix_kv, max_new_tokens)
                grounded = [answers[i] for i, _ in batch] if answers is not None else None
                tokens = self._decode_loop(state, max_new_tokens, sampling, generator, grounded)
                for (i, k), t in zip(batch, tokens):
                    outputs[i][k] = t
                unfinished += sum(1 for t in tokens if not t or t[-1] not in self.stop_ids)
        finally:
            if was_training and self.set_eval:
                self.model.train()
        if stats is not None:
            stats["prefix_tokens"] = max(stats["prefix_tokens"], n_prefix)
            stats["unfinished"] += unfinished
        return outputs

    def _prefill(self, suffixes: list[list[int]], n_prefix: int, prefix_kv, max_new_tokens: int) -> _Batch:
        """Prefill each distinct prompt once, in length-sorted chunks (little padding), into one preallocated
        cache; rows of the same prompt then share its cache and logits."""
        unique: dict[tuple, int] = {}
        row_of = torch.tensor([unique.setdefault(tuple(s), len(unique)) for s in suffixes], device=self.device)
        distinct = [list(s) for s in unique]
        n, width = len(distinct), max(len(s) for s in distinct)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((n, n_prefix + width), dtype=torch.long, device=self.device)
        mask[:, :n_prefix] = 1
        for b, s in enumerate(distinct):
            ids[b, width - len(s):] = torch.tensor(s, device=self.device)
            mask[b, n_prefix + width - len(s):] = 1
        # positions as model.generate derives them from the mask: real tokens count 0, 1, 2, ...
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, n_prefix:]
        cache = KVCache(len(self._layers()), n, n_prefix + width + max_new_tokens)
        logits = None
        by_length = sorted(range(n), key=lambda b: -len(distinct[b]))
        for c in range(0, n, self.prefill_chunk):
            members = by_length[c:c + self.prefill_chunk]
            rows, w = torch.tensor(members, device=self.device), len(distinct[members[0]])
            chunk = DynamicCache()
            if prefix_kv is not None:
                chunk = DynamicCache(ddp_cache_data=[(k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1))
                                                     for k, v in prefix_kv])
            out = self._forward(ids[rows, width - w:],
                                torch.cat([mask[rows, :n_prefix], mask[rows, n_prefix + width - w:]], dim=1),
                                positions[rows, width - w:], chunk)
            if logits is None:
                logits = out.new_empty((n, out.shape[-1]))
            logits[rows] = out
            cache.fill(rows, chunk, n_prefix, n_prefix + width - w)
        cache.set_length(n_prefix + width)
        if n < len(suffixes):
            cache.batch_select_indices(row_of)
        return _Batch(logits[row_of], mask[row_of], positions[row_of, -1], cache)

    def _decode_loop(self, state: _Batch, max_new_tokens: int, sampling: Sampling, generator,
                     answers: list | None) -> list[list[int]]:
        """Pick, append, forward one token at a time; rows that emit a stop token leave the batch.
        `answers` (one per row, or None): grounded decoding masks the logits before each pick."""
        n = state.logits.shape[0]
        tokens: list[list[int]] = [[] for _ in range(n)]
        alive = torch.arange(n, device=self.device)
        stop = torch.tensor(self.stop_ids, dtype=torch.long, device=self.device)
        grounding = self.grounding() if answers is not None else None
        rows = [grounding.start(a) for a in answers] if grounding else None
        logits, mask, last_pos, cache = state.logits, state.mask, state.last_pos, state.cache
        for step in range(max_new_tokens):
            if grounding:
                chosen = grounded_pick(grounding, rows, logits, max_new_tokens - step, sampling, generator)
            else:
                chosen = sampling.pick(logits, generator)
            for r, t in zip(alive.tolist(), chosen.tolist()):
                tokens[r].append(t)
            if step == max_new_tokens - 1:
                break
            keep = ~torch.isin(chosen, stop)
            if not keep.all():  # finished rows leave the batch
                if not keep.any():
                    break
                idx = keep.nonzero().squeeze(1)
                cache.batch_select_indices(idx)
                alive, chosen, mask, last_pos = alive[idx], chosen[idx], mask[idx], last_pos[idx]
                rows = [rows[k] for k in idx.tolist()] if rows else rows
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last_pos = last_pos + 1
            logits = self._forward(chosen[:, None], mask, last_pos[:, None], cache, self.decoder)
        return tokens

    def _layers(self):
        config = self.model.config.get_text_config(decoder=True) if hasattr(self.model.config, "get_text_config") \
            else self.model.config
        return range(config.num_hidden_layers)

    def generate(self, conversations: list[list[dict]], max_new_tokens: int = 96, sampling: Sampling | None = None,
                 num_samples: int = 1, seed: int = 0, progress: bool = False,
                 max_prompt_tokens: int | None = None, answers: list | None = None) -> GenerationResult:
        """Conversations grouped by system message (one task prompt each), each group with its own prefix."""
        started = time.time()
        encoded, truncated = encode_conversations(self.tokenizer, conversations, max_prompt_tokens)
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(conversations):
            system = c[0]["content"] if c and c[0].get("role") == "system" else ""
            groups.setdefault(system, []).append(i)
        ids: list[list[list[int]]] = [[] for _ in encoded]
        stats: dict = {}
        for members in groups.values():
            out = self.generate_ids([encoded[i] for i in members], max_new_tokens, sampling, num_samples, seed,
                                    progress, stats, [answers[i] for i in members] if answers else None)
            for i, o in zip(members, out):
                ids[i] = o
        result = _result(self.tokenizer, ids, "fast", self.int8, encoded, truncated, max_prompt_tokens,
                         stats.get("prefix_tokens", 0), stats.get("unfinished", 0), started)
        result.constrained, result.precision = answers is not None, self.precision
        return result


def grounded_pick(grounding, rows, logits: torch.Tensor, remaining: int, sampling: Sampling, generator) -> torch.Tensor:
    """Next tokens under grounded decoding: the schema's mask, the sampling rule, then the token budget."""
    allowed = grounding.masks(rows, remaining, logits.shape[-1]).to(logits.device)
    masked = logits.float().masked_fill(~allowed, float("-inf"))
    chosen = sampling.pick(masked, generator)
    grounding.settle(rows, masked, chosen, remaining, lambda one: sampling.pick(one, generator))
    grounding.advance(rows, chosen.tolist())
    return chosen


# ---------------------------------------------------------------- the reference engine


class GroundedProcessor(LogitsProcessor):
    """Grounded decoding inside model.generate (the reference path): the same masks and token budget as
    the fast engine. Rows are (prompt, sample) in model.generate's order; rows that stopped are skipped.
    Greedy picks equal the fast engine's; when sampling, near the token limit every allowed token is
    checked against the budget up front (slow, but the reference cannot see the sample)."""

    def __init__(self, grounding, answers: list, prompt_width: int, max_new_tokens: int, do_sample: bool):
        self.grounding, self.prompt_width, self.max_new_tokens = grounding, prompt_width, max_new_tokens
        self.rows = [grounding.start(a) for a in answers]
        self.do_sample = do_sample

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_width
        if step > 0:
            self.grounding.advance(self.rows, input_ids[:, -1].tolist())
        live = [k for k, row in enumerate(self.rows) if not row.done]
        if not live:
            return scores
        remaining = self.max_new_tokens - step
        rows = [self.rows[k] for k in live]
        allowed = self.grounding.masks(rows, remaining, scores.shape[-1]).to(scores.device)
        masked = scores[live].masked_fill(~allowed, float("-inf"))
        if self.do_sample:
            for k, row in enumerate(rows):
                for t in masked[k].isfinite().nonzero().squeeze(1).tolist():
                    if not self.grounding.fits(row, t, remaining):
                        masked[k, t] = float("-inf")
        else:  # greedy: the fast engine's choice, as the only finite score
            chosen = masked.argmax(-1)
            self.grounding.settle(rows, masked, chosen, remaining, lambda one: one.argmax(-1))
            masked = torch.full_like(masked, float("-inf")).scatter_(1, chosen[:, None], 0.0)
        scores = scores.clone()
        scores[live] = masked
        return scores


def _plain_generate(model, tokenizer, encoded, batch_size, max_new_tokens, do_sample, temperature, num_samples,
                    seed, progress, answers=None) -> list[list[list[int]]]:
    """transformers' model.generate on length-sorted, left-padded batches (the reference). The tokenizer's
    padding side and the model's training mode are restored afterwards."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
    outputs: list[list[list[int]]] = [[] for _ in encoded]
    stops = stop_token_ids(model, tokenizer)
    padding_side, was_training = tokenizer.padding_side, model.training
    grounding = None
    if answers is not None:
        from .constrained import Grounding

        grounding = Grounding(tokenizer, stops)
    torch.manual_seed(seed)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        tokenizer.padding_side = "left"
        model.eval()
        for batch in reported_bar(batches, "generate", disable=not progress):
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt").to(
                model_device(model))
            processors = [GroundedProcessor(grounding, [answers[i] for i in batch for _ in range(num_samples)],
                                            inputs["input_ids"].shape[1], max_new_tokens, do_sample)] \
                if grounding else None
            with torch.inference_mode():
                generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample,
                                           temperature=temperature if do_sample else None,
                                           top_p=None, top_k=None,
                                           num_return_sequences=num_samples,
                                           pad_token_id=tokenizer.pad_token_id, logits_processor=processors)
            new_tokens = generated[:, inputs["input_ids"].shape[1]:].tolist()
            for k, i in enumerate(batch):
                outputs[i] = [_cut_at_stop(t, stops) for t in new_tokens[k * num_samples:(k + 1) * num_samples]]
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return outputs


def _cut_at_stop(ids: list[int], stops: list[int]) -> list[int]:
    for j, t in enumerate(ids):
        if t in stops:
            return ids[:j + 1]
    return ids


def _result(tokenizer, ids, engine, int8, encoded, truncated, max_prompt_tokens, prefix_tokens, unfinished, started):
    texts = [tokenizer.batch_decode(samples, skip_special_tokens=True) if samples else [] for samples in ids]
    result = GenerationResult(texts=texts, token_ids=ids, engine=engine, int8=int8, truncated=truncated,
                              max_prompt_tokens=max_prompt_tokens, prompt_tokens=sum(len(e) for e in encoded),
                              prefix_tokens=prefix_tokens, new_tokens=sum(len(t) for s in ids for t in s),
                              unfinished=unfinished, seconds=time.time() - started)
    if truncated:
        log.warning("generate: %d of %d prompts were longer than max_prompt_tokens=%d and were cut in the middle",
                    len(truncated), len(encoded), max_prompt_tokens)
    return result


# ---------------------------------------------------------------- entry points


def generate_result(model, tokenizer, conversations: list[list[dict]], batch_size: int = 16, max_new_tokens: int = 96,
                    do_sample: bool = False, temperature: float = 1.0, num_samples: int = 1, seed: int = 0,
                    progress: bool = True, *, engine: str = "fast", int8: bool = False, prefix_cache: bool = True,
                    max_prompt_tokens: int | None = None, answers: list | None = None,
                    precision: str = "fp32") -> GenerationResult:
    """Completions for chat conversations plus counts (truncated prompts, tokens, time); see `generate`.
    `answers`: one `constrained.Answer` per conversation for grounded decoding (see `grounded_answers`).
    `precision`: fp32 | bf16, the weights generation runs on (bf16: a copy cast once, see `Engine`)."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} unknown; valid: {list(ENGINES)}")
    if engine == "plain" and int8:
        raise ValueError("int8 needs engine='fast'")
    if max_prompt_tokens is None:
        limit = getattr(model.config, "max_position_embeddings", None)
        max_prompt_tokens = limit - max_new_tokens if limit else None
    if engine == "fast":
        fast = Engine(model, tokenizer, int8=int8, batch_size=batch_size, prefix_cache=prefix_cache,
                      precision=precision)
        return fast.generate(conversations, max_new_tokens, Sampling(do_sample, temperature), num_samples, seed,
                             progress, max_prompt_tokens, answers)
    started = time.time()
    encoded, truncated = encode_conversations(tokenizer, conversations, max_prompt_tokens)
    ids = _plain_generate(cast_for_generation(model, precision), tokenizer, encoded, batch_size, max_new_tokens,
                          do_sample, temperature, num_samples, seed, progress, answers) if encoded else []
    stops = stop_token_ids(model, tokenizer)
    unfinished = sum(1 for s in ids for t in s if not t or t[-1] not in stops)
    result = _result(tokenizer, ids, "plain", False, encoded, truncated, max_prompt_tokens, 0, unfinished, started)
    result.constrained, result.precision = answers is not None, precision
    return result


def grounded_answers(rows: list[dict], levels) -> list:
    """The answer schema of each data row (its task and input text) for grounded decoding."""
    from .constrained import answer_schema
    from .tasks import get_task

    return [answer_schema(get_task(r["dataset"]), r["text"], levels) for r in rows]


def generate(model, tokenizer, conversations: list[list[dict]], batch_size: int = 16, max_new_tokens: int = 96,
             do_sample: bool = False, temperature: float = 1.0, num_samples: int = 1, seed: int = 0,
             progress: bool = True, **options) -> list[list[str]]:
    """Completions for chat conversations: one list of `num_samples` strings per conversation, in input order.

    Options (keyword): engine='fast'|'plain', precision='fp32'|'bf16', int8=False, prefix_cache=True, max_prompt_tokens=None
    (None: the model's context minus max_new_tokens), answers=None (grounded decoding: one
    `constrained.Answer` per conversation). Truncated prompts are logged; call
    `generate_result` to get their indices.
    """
    return generate_result(model, tokenizer, conversations, batch_size, max_new_tokens, do_sample, temperature,
                           num_samples, seed, progress, **options).texts
