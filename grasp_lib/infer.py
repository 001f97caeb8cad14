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
  the attention mask hides it. The engine works on token ids (`Engine.run`: ids and a `GenerationStats`);
  the chat layer above it (`generate_conversations`) encodes conversations, groups them by system message
  and builds the `GenerationResult`.

Both engines can decode grounded (`answers=`, see `grasp_lib.constrained`): each answer follows its task
family's JSON schema and every mention is a verbatim span of the input; one `constrained.GroundedBatch` per
batch masks the logits, asked by the fast engine's decode loop and by the plain one's logits processor.

Prompts longer than `max_prompt_tokens` are cut in the middle (the head, which holds the task prompt, and
the chat template's closing tokens are kept); every cut is counted in the `GenerationResult` and logged.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from .constrained import GroundedBatch, Grounding, grounded_answers  # noqa: F401  (grounded_answers: API)
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


@dataclass
class GenerationStats:
    """What one generation call did, summed over its prompts (the prefix: the longest one shared)."""

    prompt_tokens: int = 0
    prefix_tokens: int = 0  # shared prefix computed once (fast engine)
    new_tokens: int = 0  # generated, summed over all completions, end-of-turn tokens included
    unfinished: int = 0  # completions that hit max_new_tokens without an end-of-turn token
    seconds: float = 0.0

    def __add__(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                               prefix_tokens=max(self.prefix_tokens, other.prefix_tokens),
                               new_tokens=self.new_tokens + other.new_tokens,
                               unfinished=self.unfinished + other.unfinished, seconds=self.seconds + other.seconds)


@dataclass
class Generation:
    """Token ids per prompt (`num_samples` lists each) and the call's statistics."""

    ids: list[list[list[int]]]
    stats: GenerationStats


def count_unfinished(ids: list[list[list[int]]], stop_ids: list[int]) -> int:
    return sum(1 for samples in ids for t in samples if not t or t[-1] not in stop_ids)


def generation_weights(model, *, precision: str, int8: bool) -> tuple:
    """(prefill weights, decode weights): the model cast once for `precision`; with int8 the decoder is a
    quantized copy, but the prompt's keys and values still come from the fp32 model, because the prompt holds
    the attention-sink tokens whose huge activations break per-tensor int8 (bench/int8.py)."""
    if int8 and precision != "fp32":
        raise ValueError("int8 decodes after an fp32 prefill: use precision='fp32' with int8=True")
    model = cast_for_generation(model, precision)
    return model, (quantize_int8(model) if int8 else model)


class Engine:
    """Greedy or sampled decoding on token ids with a shared-prefix KV cache and per-sequence stopping.

    `model` is used as is (its current weights: GRPO calls this with the policy of the current step);
    `precision="bf16"` decodes on a bf16 copy cast once here (the model itself when it already is bf16), with a
    bf16 key/value cache; the logits are compared in fp32 (`Sampling.pick`, grounded masks). `int8=True` works
    on a quantized copy made once here. Every tensor and the sampling generator live on the model's device.
    `run` and `generate_ids` take token ids; `generate` is the chat layer (`generate_conversations`).
    """

    def __init__(self, model, tokenizer, *, int8: bool = False, batch_size: int = 32, prefix_cache: bool = True,
                 stop_ids: list[int] | None = None, set_eval: bool = True, prefill_chunk: int = 8,
                 precision: str = "fp32"):
        self.model, self.decoder = generation_weights(model, precision=precision, int8=int8)
        self.tokenizer = tokenizer  # pad id, stop ids and grounded masks; prompts arrive as ids
        self.int8, self.precision = int8, precision
        self.set_eval = set_eval  # False: decode in the model's current mode (GRPO keeps TRL's behaviour)
        self.prefill_chunk = prefill_chunk  # prompts prefilled together (length-sorted: little padding)
        self.device = model_device(self.model)
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.stop_ids = stop_ids if stop_ids is not None else stop_token_ids(self.model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else 0)
        self._grounding = None

    def grounding(self) -> Grounding:
        """The grounded-decoding masks for this tokenizer (built on first use: about a second)."""
        if self._grounding is None:
            self._grounding = Grounding(self.tokenizer, self.stop_ids)
        return self._grounding

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling | None = None, *,
                     num_samples: int = 1, seed: int | None = 0, progress: bool = False,
                     answers: list | None = None) -> list[list[list[int]]]:
        """New token ids per prompt (see `run`, which also returns the statistics)."""
        return self.run(prompts, max_new_tokens=max_new_tokens, sampling=sampling, num_samples=num_samples,
                        seed=seed, progress=progress, answers=answers).ids

    @torch.inference_mode()
    def run(self, prompts: list[list[int]], *, max_new_tokens: int, sampling: Sampling | None = None,
            num_samples: int = 1, seed: int | None = 0, progress: bool = False,
            answers: list | None = None) -> Generation:
        """New token ids per prompt: `num_samples` lists each, ending with the stop token when one was emitted.

        Identical prompts in a batch (K samples, or GRPO's repeated prompts) are prefilled once.
        `seed=None` samples from torch's global generator (the trainer's seeded state).
        `answers`: per prompt a `constrained.Answer` (grounded decoding) or None (free).
        """
        if any(len(p) == 0 for p in prompts):
            raise ValueError("empty prompt: a prompt needs at least one token")
        started = time.time()
        outputs: list[list[list[int]]] = [[[] for _ in range(num_samples)] for _ in prompts]
        stats = GenerationStats(prompt_tokens=sum(len(p) for p in prompts))
        if not prompts or max_new_tokens <= 0:
            return Generation(outputs, stats)
        generator = make_generator(seed, self.device)
        with self._decoding_mode():
            stats.prefix_tokens, prefix_kv = self._shared_prefix(prompts)
            suffixes = [p[stats.prefix_tokens:] for p in prompts]
            for batch in reported_bar(self._batches(suffixes, num_samples), "generate", disable=not progress):
                state = self._prefill([suffixes[i] for i, _ in batch], n_prefix=stats.prefix_tokens,
                                      prefix_kv=prefix_kv, max_new_tokens=max_new_tokens)
                grounded = None if answers is None else GroundedBatch(
                    self.grounding(), [answers[i] for i, _ in batch], max_new_tokens=max_new_tokens)
                tokens = self._decode_loop(state, max_new_tokens=max_new_tokens, sampling=sampling or Sampling(),
                                           generator=generator, grounded=grounded)
                for (i, k), t in zip(batch, tokens):
                    outputs[i][k] = t
        stats.new_tokens = sum(len(t) for samples in outputs for t in samples)
        stats.unfinished = count_unfinished(outputs, self.stop_ids)
        stats.seconds = time.time() - started
        return Generation(outputs, stats)

    def generate(self, conversations: list[list[dict]], max_new_tokens: int = 96, sampling: Sampling | None = None,
                 num_samples: int = 1, seed: int = 0, progress: bool = False,
                 max_prompt_tokens: int | None = None, answers: list | None = None) -> GenerationResult:
        """Chat conversations in, completions out (see `generate_conversations`)."""
        return generate_conversations(self, conversations, max_new_tokens=max_new_tokens, sampling=sampling,
                                      num_samples=num_samples, seed=seed, progress=progress,
                                      max_prompt_tokens=max_prompt_tokens, answers=answers)

    @contextmanager
    def _decoding_mode(self):
        was_training = self.model.training
        if self.set_eval:
            self.model.eval()
        try:
            yield
        finally:
            if was_training and self.set_eval:
                self.model.train()

    def _batches(self, suffixes: list[list[int]], num_samples: int) -> list[list[tuple[int, int]]]:
        """Length-sorted batches of (prompt, sample) rows; rows of one prompt stay adjacent."""
        rows = sorted(((i, k) for i in range(len(suffixes)) for k in range(num_samples)),
                      key=lambda r: (-len(suffixes[r[0]]), r[0], r[1]))
        return [rows[j:j + self.batch_size] for j in range(0, len(rows), self.batch_size)]

    # -- the shared prefix, prefill and decoding

    def _forward(self, input_ids, attention_mask, position_ids, cache, model=None):
        out = model_forward(model or self.model, input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :]

    def _shared_prefix(self, prompts: list[list[int]]) -> tuple[int, list | None]:
        """The prefix every prompt shares (its length, its keys and values), computed once; every prompt
        keeps at least one token of its own."""
        if not self.prefix_cache:
            return 0, None
        n = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
        return (n, self._prefix_kv(prompts[0][:n])) if n > 0 else (0, None)

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

    def _prefill(self, suffixes: list[list[int]], *, n_prefix: int, prefix_kv, max_new_tokens: int) -> _Batch:
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

    def _decode_loop(self, state: _Batch, *, max_new_tokens: int, sampling: Sampling, generator,
                     grounded: GroundedBatch | None) -> list[list[int]]:
        """Pick, append, forward one token at a time; rows that emit a stop token leave the batch (and are done
        in `grounded`, which masks the logits of the rows left before each pick)."""
        n = state.logits.shape[0]
        tokens: list[list[int]] = [[] for _ in range(n)]
        alive = torch.arange(n, device=self.device)
        stop = torch.tensor(self.stop_ids, dtype=torch.long, device=self.device)
        logits, mask, last_pos, cache = state.logits, state.mask, state.last_pos, state.cache
        for step in range(max_new_tokens):
            if grounded:
                chosen = grounded.pick(logits, step=step, pick=lambda x: sampling.pick(x, generator))
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
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last_pos = last_pos + 1
            logits = self._forward(chosen[:, None], mask, last_pos[:, None], cache, self.decoder)
        return tokens

    def _layers(self):
        config = self.model.config.get_text_config(decoder=True) if hasattr(self.model.config, "get_text_config") \
            else self.model.config
        return range(config.num_hidden_layers)


# ---------------------------------------------------------------- the chat layer


@dataclass
class ChatPrompts:
    """Chat conversations as token ids (after truncation), with the indices that were cut."""

    ids: list[list[int]]
    truncated: list[int]
    max_prompt_tokens: int | None


def encode_prompts(tokenizer, conversations: list[list[dict]], max_prompt_tokens: int | None) -> ChatPrompts:
    """`encode_conversations`, with every cut logged (truncation is never silent)."""
    ids, truncated = encode_conversations(tokenizer, conversations, max_prompt_tokens)
    if truncated:
        log.warning("generate: %d of %d prompts were longer than max_prompt_tokens=%d and were cut in the middle",
                    len(truncated), len(ids), max_prompt_tokens)
    return ChatPrompts(ids, truncated, max_prompt_tokens)


def system_groups(conversations: list[list[dict]]) -> list[list[int]]:
    """Conversation indices grouped by system message: one task prompt, so one shared prefix, per group."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(conversations):
        system = c[0]["content"] if c and c[0].get("role") == "system" else ""
        groups.setdefault(system, []).append(i)
    return list(groups.values())


def generate_conversations(engine: Engine, conversations: list[list[dict]], *, max_new_tokens: int = 96,
                           sampling: Sampling | None = None, num_samples: int = 1, seed: int = 0,
                           progress: bool = False, max_prompt_tokens: int | None = None,
                           answers: list | None = None) -> GenerationResult:
    """Chat conversations through `engine`: encoded, grouped by system message (each group with its own
    prefix), decoded on ids, and decoded back to text in input order."""
    started = time.time()
    prompts = encode_prompts(engine.tokenizer, conversations, max_prompt_tokens)
    ids: list[list[list[int]]] = [[] for _ in prompts.ids]
    stats = GenerationStats()
    for members in system_groups(conversations):
        out = engine.run([prompts.ids[i] for i in members], max_new_tokens=max_new_tokens, sampling=sampling,
                         num_samples=num_samples, seed=seed, progress=progress,
                         answers=[answers[i] for i in members] if answers else None)
        for i, o in zip(members, out.ids):
            ids[i] = o
        stats = stats + out.stats
    return chat_result(engine.tokenizer, ids=ids, prompts=prompts, stats=stats, started=started, engine="fast",
                       int8=engine.int8, precision=engine.precision, constrained=answers is not None)


def chat_result(tokenizer, *, ids: list[list[list[int]]], prompts: ChatPrompts, stats: GenerationStats,
                started: float, engine: str, int8: bool, precision: str, constrained: bool) -> GenerationResult:
    """The GenerationResult of a chat call: token ids decoded to text, counts over all conversations."""
    texts = [tokenizer.batch_decode(samples, skip_special_tokens=True) if samples else [] for samples in ids]
    return GenerationResult(texts=texts, token_ids=ids, engine=engine, int8=int8, precision=precision,
                            truncated=prompts.truncated, max_prompt_tokens=prompts.max_prompt_tokens,
                            prompt_tokens=sum(len(p) for p in prompts.ids), prefix_tokens=stats.prefix_tokens,
                            new_tokens=sum(len(t) for s in ids for t in s), unfinished=stats.unfinished,
                            seconds=time.time() - started, constrained=constrained)


# ---------------------------------------------------------------- the reference engine


class GroundedProcessor(LogitsProcessor):
    """Grounded decoding inside model.generate (the reference path): `constrained.GroundedBatch`, the object
    the fast engine asks, fed the tokens model.generate chose. Rows are (prompt, sample) in its order. Greedy
    picks equal the fast engine's."""

    def __init__(self, grounded: GroundedBatch, *, prompt_width: int, sample: bool):
        self.grounded, self.prompt_width, self.sample = grounded, prompt_width, sample

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        step = input_ids.shape[1] - self.prompt_width
        if step > 0:
            self.grounded.feed(input_ids[:, -1].tolist())
        return self.grounded.restrict(scores, step=step, sample=self.sample)


def plain_generate(model, tokenizer, prompts: list[list[int]], *, batch_size: int, max_new_tokens: int,
                   sampling: Sampling, num_samples: int, seed: int, progress: bool,
                   answers: list | None = None) -> list[list[list[int]]]:
    """transformers' model.generate on length-sorted, left-padded batches (the reference; `sampling`: its
    do_sample and temperature). The tokenizer's padding side and the model's training mode are restored."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    outputs: list[list[list[int]]] = [[] for _ in prompts]
    stops = stop_token_ids(model, tokenizer)
    padding_side, was_training = tokenizer.padding_side, model.training
    grounding = Grounding(tokenizer, stops) if answers is not None else None
    torch.manual_seed(seed)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        tokenizer.padding_side = "left"
        model.eval()
        for batch in reported_bar(batches, "generate", disable=not progress):
            inputs = tokenizer.pad({"input_ids": [prompts[i] for i in batch]}, return_tensors="pt").to(
                model_device(model))
            width = inputs["input_ids"].shape[1]
            processors = None if grounding is None else [GroundedProcessor(
                GroundedBatch(grounding, [answers[i] for i in batch for _ in range(num_samples)],
                              max_new_tokens=max_new_tokens), prompt_width=width, sample=sampling.do_sample)]
            with torch.inference_mode():
                generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=sampling.do_sample,
                                           temperature=sampling.temperature if sampling.do_sample else None,
                                           top_p=None, top_k=None,
                                           num_return_sequences=num_samples,
                                           pad_token_id=tokenizer.pad_token_id, logits_processor=processors)
            new_tokens = generated[:, width:].tolist()
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
    sampling = Sampling(do_sample, temperature)
    if engine == "fast":
        fast = Engine(model, tokenizer, int8=int8, batch_size=batch_size, prefix_cache=prefix_cache,
                      precision=precision)
        return generate_conversations(fast, conversations, max_new_tokens=max_new_tokens, sampling=sampling,
                                      num_samples=num_samples, seed=seed, progress=progress,
                                      max_prompt_tokens=max_prompt_tokens, answers=answers)
    started = time.time()
    prompts = encode_prompts(tokenizer, conversations, max_prompt_tokens)
    ids = plain_generate(cast_for_generation(model, precision), tokenizer, prompts.ids, batch_size=batch_size,
                         max_new_tokens=max_new_tokens, sampling=sampling, num_samples=num_samples, seed=seed,
                         progress=progress, answers=answers) if prompts.ids else []
    stats = GenerationStats(unfinished=count_unfinished(ids, stop_token_ids(model, tokenizer)))
    return chat_result(tokenizer, ids=ids, prompts=prompts, stats=stats, started=started, engine="plain",
                       int8=False, precision=precision, constrained=answers is not None)


def generate(model, tokenizer, conversations: list[list[dict]], batch_size: int = 16, max_new_tokens: int = 96,
             do_sample: bool = False, temperature: float = 1.0, num_samples: int = 1, seed: int = 0,
             progress: bool = True, **options) -> list[list[str]]:
    """Completions for chat conversations: one list of `num_samples` strings per conversation, in input order.

    Options (keyword): engine='fast'|'plain', precision='fp32'|'bf16', int8=False, prefix_cache=True, max_prompt_tokens=None
    (None: the model's context minus max_new_tokens), answers=None (grounded decoding: one
    `constrained.Answer` per conversation, see `grounded_answers`). Truncated prompts are logged; call
    `generate_result` to get their indices.
    """
    return generate_result(model, tokenizer, conversations, batch_size, max_new_tokens, do_sample, temperature,
                           num_samples, seed, progress, **options).texts
