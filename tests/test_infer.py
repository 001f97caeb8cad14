"""The fast generation engine against transformers' model.generate (greedy, fp32), on a tiny model."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grasp_lib import infer
from grasp_lib.models import load_model

pytestmark = pytest.mark.pins  # also under the GPU pin set (make test-gpu-pins)

SYSTEM_A = "You are a biomedical text-mining expert. Find every chemical and disease mention. JSON only."
SYSTEM_B = "You extract gene mentions from PubMed sentences. Answer with JSON."
TEXTS = ["Aspirin.", "Cisplatin induced nephrotoxicity in rats treated for ten days with a high dose.",
         "", "Lithium", "The patient developed severe hepatitis after isoniazid and rifampicin therapy was started "
         "for latent tuberculosis; liver enzymes returned to normal within weeks.", "Naloxone reversed it.",
         "Heparin-induced thrombocytopenia", "No entities here at all, just words."]


def conv(text: str, system: str = SYSTEM_A) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Text: {text}"}]


@pytest.fixture(scope="module")
def tiny():
    """A tiny Llama with large random weights, so that greedy outputs differ between prompts; one frequent
    generated token is made an extra end-of-turn id, so that sequences stop at different steps."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tokenizer, _ = load_model("tiny-random")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, initializer_range=0.25, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = [config.eos_token_id]
    probe = infer.generate_result(model, tokenizer, [conv(t) for t in TEXTS], max_new_tokens=12, engine="plain",
                                  progress=False)
    later = Counter(t for s in probe.token_ids for ids in s for t in set(ids[2:]))
    extra = next(t for t, n in later.most_common() if n < len(TEXTS))  # stops some sequences, not all
    model.generation_config.eos_token_id = [config.eos_token_id, extra]
    return model, tokenizer


def _ids(model, tokenizer, conversations, **kw):
    return infer.generate_result(model, tokenizer, conversations, progress=False, **kw)


@pytest.mark.parametrize("prefix_cache", [True, False])
@pytest.mark.parametrize("batch_size", [3, 16])
def test_fast_equals_plain_generate_token_for_token(tiny, prefix_cache, batch_size):
    model, tokenizer = tiny
    conversations = [conv(t) for t in TEXTS]
    plain = _ids(model, tokenizer, conversations, engine="plain", batch_size=batch_size, max_new_tokens=16)
    fast = _ids(model, tokenizer, conversations, engine="fast", batch_size=batch_size, max_new_tokens=16,
                prefix_cache=prefix_cache)
    assert fast.token_ids == plain.token_ids
    assert fast.texts == plain.texts
    # the case is not degenerate: outputs differ, some stop early and some run to the limit
    assert len({tuple(s[0]) for s in plain.token_ids}) > 2
    lengths = {len(s[0]) for s in plain.token_ids}
    assert min(lengths) < 16 and max(lengths) == 16
    assert 0 < fast.unfinished < len(TEXTS) and fast.unfinished == plain.unfinished
    assert (fast.prefix_tokens > 10) == prefix_cache


def test_two_task_prompts_get_their_own_prefix(tiny):
    model, tokenizer = tiny
    conversations = [conv(t, SYSTEM_A if i % 2 else SYSTEM_B) for i, t in enumerate(TEXTS)]
    plain = _ids(model, tokenizer, conversations, engine="plain", batch_size=4, max_new_tokens=10)
    fast = _ids(model, tokenizer, conversations, engine="fast", batch_size=4, max_new_tokens=10)
    assert fast.token_ids == plain.token_ids
    assert fast.prefix_tokens > 10  # the common prefix of each group, not of the mixture


def test_k_greedy_samples_match_plain(tiny):
    model, tokenizer = tiny
    conversations = [conv(t) for t in TEXTS[:4]]
    plain = _ids(model, tokenizer, conversations, engine="plain", batch_size=4, max_new_tokens=8)
    fast = _ids(model, tokenizer, conversations, engine="fast", batch_size=5, max_new_tokens=8, num_samples=3)
    assert fast.token_ids == [s * 3 for s in plain.token_ids]  # model.generate refuses K > 1 when greedy
    assert all(len(s) == 3 for s in fast.texts)


def test_generate_keeps_the_old_call(tiny):
    model, tokenizer = tiny
    out = infer.generate(model, tokenizer, [conv(t) for t in TEXTS[:3]], 2, 6, False, 1.0, 1, 0, False)
    assert len(out) == 3 and all(isinstance(s[0], str) and len(s) == 1 for s in out)
    assert infer.generate(model, tokenizer, [], progress=False) == []
    assert infer.generate(model, tokenizer, [], progress=False, engine="plain") == []


def test_empty_inputs(tiny):
    model, tokenizer = tiny
    result = _ids(model, tokenizer, [conv("")], max_new_tokens=5)  # empty text: still a chat prompt
    assert len(result.token_ids[0][0]) >= 1
    engine = infer.Engine(model, tokenizer)
    with pytest.raises(ValueError, match="empty prompt"):
        engine.generate_ids([[1, 2, 3], []], 4)
    assert engine.generate_ids([], 4) == []
    with pytest.raises(ValueError, match="engine"):
        _ids(model, tokenizer, [conv("x")], engine="turbo")


def test_long_inputs_are_truncated_and_reported(tiny, caplog):
    model, tokenizer = tiny
    long_text = "word " * 400
    conversations = [conv(long_text), conv("short"), conv(long_text + "again")]
    with caplog.at_level(logging.WARNING, logger="grasp_lib.infer"):
        result = _ids(model, tokenizer, conversations, max_new_tokens=4, max_prompt_tokens=64)
    assert result.truncated == [0, 2]
    assert "2 of 3 prompts" in caplog.text
    assert result.summary()["truncated_prompts"] == 2
    encoded, truncated = infer.encode_conversations(tokenizer, conversations, 64)
    assert truncated == [0, 2] and max(len(e) for e in encoded) == 64
    # the cut is in the middle: the chat template's assistant header survives, so the model still answers
    header = tokenizer("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert encoded[0][-len(header):] == header
    # plain and fast see the same truncated prompts
    plain = _ids(model, tokenizer, conversations, engine="plain", max_new_tokens=4, max_prompt_tokens=64)
    assert plain.truncated == [0, 2] and plain.token_ids == result.token_ids
    # the default limit is the model's context minus the new tokens
    default = _ids(model, tokenizer, [conv("word " * 600)], max_new_tokens=4)
    assert default.truncated == [0] and default.max_prompt_tokens == 512 - 4


def test_truncate_ids_keeps_head_and_tail():
    assert infer.truncate_ids(list(range(10)), 6, 2) == [0, 1, 2, 3, 8, 9]
    assert infer.truncate_ids(list(range(5)), 6, 2) == [0, 1, 2, 3, 4]
    assert infer.common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert infer.common_prefix_length([[5], [1]]) == 0


def test_int8_path(tiny):
    model, tokenizer = tiny
    weight = model.model.layers[0].mlp.up_proj.weight.clone()
    conversations = [conv(t) for t in TEXTS]
    result = _ids(model, tokenizer, conversations, max_new_tokens=8, int8=True)
    assert result.int8 and len(result.texts) == len(TEXTS)
    assert all(len(s[0]) >= 1 for s in result.token_ids)
    # the caller's model is left in fp32 and untouched
    assert isinstance(model.model.layers[0].mlp.up_proj, torch.nn.Linear)
    assert torch.equal(model.model.layers[0].mlp.up_proj.weight, weight)
    with pytest.raises(ValueError, match="int8"):
        _ids(model, tokenizer, conversations, engine="plain", int8=True)
    # the prompt is prefilled on the fp32 weights (its attention-sink activations break per-tensor int8);
    # only decoding runs on the int8 copy, whose MLP down projections stay fp32 (their inputs' outliers)
    engine, fp32 = infer.Engine(model, tokenizer, int8=True), infer.Engine(model, tokenizer)
    encoded, _ = infer.encode_conversations(tokenizer, conversations[:3], None)
    prefill = dict(n_prefix=0, prefix_kv=None, max_new_tokens=4)
    assert torch.equal(engine._prefill(encoded, **prefill).logits, fp32._prefill(encoded, **prefill).logits)
    layer = engine.decoder.model.layers[0].mlp
    assert isinstance(layer.down_proj, torch.nn.Linear) and not isinstance(layer.up_proj, torch.nn.Linear)


def test_sampling(tiny):
    model, tokenizer = tiny
    conversations = [conv(t) for t in TEXTS[:4]]
    greedy = _ids(model, tokenizer, conversations, max_new_tokens=8).token_ids
    engine = infer.Engine(model, tokenizer, batch_size=8)
    encoded, _ = infer.encode_conversations(tokenizer, conversations, None)
    top1 = engine.generate_ids(encoded, 8, infer.Sampling(do_sample=True, top_k=1))
    assert top1 == greedy
    hot = infer.Sampling(do_sample=True, temperature=1.5)
    a = engine.generate_ids(encoded, 8, hot, num_samples=4, seed=3)
    b = engine.generate_ids(encoded, 8, hot, num_samples=4, seed=3)
    assert a == b
    assert len({tuple(x) for s in a for x in s}) > 4  # samples differ
    # top-p keeps the smallest set reaching p: with p tiny only the argmax survives
    assert engine.generate_ids(encoded, 8, infer.Sampling(do_sample=True, top_p=1e-6)) == greedy


def test_grpo_rollouts_match_trl_generation(tiny, tmp_path):
    """The GRPO hook returns what TRL's own generate path returns (top_k=1 makes sampling deterministic)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from grasp_lib.train.grpo_trainer import GraspGRPOTrainer

    model, tokenizer = tiny
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_steps=1,
                        max_completion_length=10, top_k=1, bf16=False, use_cpu=True, report_to="none",
                        save_strategy="no", gradient_checkpointing=False)
    dataset = Dataset.from_list([{"prompt": conv(t)} for t in TEXTS[:4]])
    kwargs = dict(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=config,
                  train_dataset=dataset, processing_class=tokenizer)
    fast, plain = GraspGRPOTrainer(**kwargs, fast_rollouts=True), GRPOTrainer(**kwargs)
    prompt_ids, _, _ = fast._tokenize_prompts([conv(t) for t in TEXTS[:4] for _ in range(2)])
    fast_ids, _ = fast._generate_single_turn(prompt_ids, None, {}, 2)
    plain_ids, _ = plain._generate_single_turn(prompt_ids, None, {}, 2)
    assert fast_ids == plain_ids
    assert fast._engine_applies(None, {})


# ---------------------------------------------------------------- grounded decoding

WORDS = ["Aspirin", "aspirin", "induced", "naïve", "漢字", "hepatitis", '"quoted"', "a", "-", "rats", "ß", "😀"]


def _rows(texts, dataset="bc5cdr"):
    return [{"dataset": dataset, "text": t} for t in texts]


def _grounded_ok(model, tokenizer, token_ids, rows) -> bool:
    """Every completion (its final stop token left out: the fixture's second stop id is an ordinary word)
    parses as valid JSON of its task, and every mention, head and tail is a non-empty span of its text."""
    from grasp_lib.parsing import parse
    from grasp_lib.tasks import get_task

    stops = infer.stop_token_ids(model, tokenizer)
    for row, samples in zip(rows, token_ids):
        spec = get_task(row["dataset"])
        for ids in samples:
            text = tokenizer.decode(ids[:-1] if ids and ids[-1] in stops else ids, skip_special_tokens=True)
            parsed = parse(text, *spec.parse_args())
            items = [m for m, _ in parsed.mentions] + [x for h, _, t in parsed.relations for x in (h, t)]
            if parsed.status != "valid" or not all(x and x in row["text"] for x in items):
                return False
    return True


@pytest.mark.parametrize("dataset", ["bc5cdr", "bc5cdr-cid"])
def test_grounded_fast_equals_grounded_plain_and_is_valid(tiny, dataset):
    model, tokenizer = tiny
    rows = _rows(TEXTS, dataset)
    conversations = [conv(t) for t in TEXTS]
    fast = _ids(model, tokenizer, conversations, engine="fast", batch_size=3, max_new_tokens=24,
                answers=infer.grounded_answers(rows, []))
    plain = _ids(model, tokenizer, conversations, engine="plain", batch_size=3, max_new_tokens=24,
                 answers=infer.grounded_answers(rows, []))
    assert fast.token_ids == plain.token_ids
    assert fast.constrained and fast.summary()["constrained"]
    assert _grounded_ok(model, tokenizer, fast.token_ids, rows)
    free = _ids(model, tokenizer, conversations, engine="fast", batch_size=3, max_new_tokens=24)
    assert not _grounded_ok(model, tokenizer, free.token_ids, rows)  # the random model alone writes no valid answer


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=10), min_size=1, max_size=3),
       max_new=st.sampled_from([8, 20, 40]), sample=st.booleans())
def test_grounded_output_is_always_valid_and_copied(tiny, words, max_new, sample):
    """Random weights, random sentences (unicode, repeated words), greedy or sampled, short or long limits."""
    model, tokenizer = tiny
    texts = [" ".join(w) for w in words]
    rows = _rows(texts)
    result = _ids(model, tokenizer, [conv(t) for t in texts], max_new_tokens=max_new, do_sample=sample,
                  temperature=1.5, num_samples=2, answers=infer.grounded_answers(rows, []))
    assert _grounded_ok(model, tokenizer, result.token_ids, rows), result.texts


def test_grounded_rollouts_in_grpo(tiny, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig

    from grasp_lib.train.grpo_trainer import GraspGRPOTrainer

    model, tokenizer = tiny
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_steps=1,
                        max_completion_length=16, bf16=False, use_cpu=True, report_to="none",
                        save_strategy="no", gradient_checkpointing=False)
    rows = [{"prompt": conv(t), "dataset": "bc5cdr", "text": t} for t in TEXTS[:4]]
    trainer = GraspGRPOTrainer(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
                               args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                               fast_rollouts=True, grounded_levels=())
    inputs = [r for r in rows[:2] for _ in range(2)]
    trainer.step_answers = trainer.answers_for(inputs)
    prompt_ids, _, _ = trainer._tokenize_prompts([r["prompt"] for r in inputs])
    ids, _ = trainer._generate_single_turn(prompt_ids, None, {}, 2)
    assert _grounded_ok(model, tokenizer, [[i] for i in ids], _rows([r["text"] for r in inputs]))
    trainer.step_answers = trainer.answers_for(inputs[:1])
    with pytest.raises(RuntimeError, match="rows"):
        trainer._generate_single_turn(prompt_ids, None, {}, 2)


# ---------------------------------------------------------------- the refactor: state, devices, the cache keyword


def test_plain_generate_restores_padding_side_and_training_mode(tiny):
    model, tokenizer = tiny
    tokenizer.padding_side = "right"
    model.train()
    try:
        _ids(model, tokenizer, [conv(t) for t in TEXTS[:2]], engine="plain", max_new_tokens=3)
        assert tokenizer.padding_side == "right" and model.training
    finally:
        tokenizer.padding_side = "left"
        model.eval()


def test_the_cache_goes_in_as_past_key_values_and_is_filled(tiny):
    """transformers 5.17 (GPU pins) ignores `cache=`; 5.24 accepts `past_key_values` (deprecated alias)."""
    import warnings

    model, tokenizer = tiny
    seen = []
    original = model.forward

    def recording(*args, **kwargs):
        seen.append(set(kwargs))
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        patch.setattr(model, "forward", recording)
        _ids(model, tokenizer, [conv(t) for t in TEXTS[:3]], max_new_tokens=4)
    assert seen and all("past_key_values" in k and "cache" not in k for k in seen)
    engine = infer.Engine(model, tokenizer)
    with pytest.MonkeyPatch.context() as patch:  # a forward that ignores the cache (5.17 given `cache=`)
        patch.setattr(infer, "model_forward", lambda m, cache, **kw: m(**kw))
        with pytest.raises(RuntimeError, match="did not fill"):
            engine._prefix_kv([1, 2, 3])


def test_engine_tensors_live_on_the_models_device(tiny):
    """A copy of the tiny model on the `meta` device: prefix, prefill and cache must all be meta tensors
    (a CPU tensor anywhere in the computation raises); the generator is made on the model's device."""
    import copy

    from transformers import LlamaForCausalLM

    model, tokenizer = tiny
    config = copy.deepcopy(model.config)  # a fresh model: the trainer tests wrap the shared one's forward
    config._attn_implementation = "eager"  # sdpa's mask shortcut reads a value, which meta tensors lack
    with torch.device("meta"):
        meta = LlamaForCausalLM(config).eval()
    engine = infer.Engine(meta, tokenizer)
    assert engine.device.type == "meta"
    encoded, _ = infer.encode_conversations(tokenizer, [conv(t) for t in TEXTS[:3]], None)
    n_prefix = infer.common_prefix_length(encoded)
    prefix_kv = engine._prefix_kv(encoded[0][:n_prefix])
    state = engine._prefill([e[n_prefix:] for e in encoded], n_prefix=n_prefix, prefix_kv=prefix_kv,
                           max_new_tokens=4)
    tensors = [state.logits, state.mask, state.last_pos] + [t for layer in state.cache.layers
                                                           for t in (layer.key_buffer, layer.value_buffer)]
    assert all(t.device.type == "meta" for t in tensors)
    made = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "Generator", lambda device=None: made.append(device) or torch.random.default_generator)
        infer.make_generator(3, engine.device)
    assert made == [engine.device]


def test_plain_path_moves_inputs_to_the_models_device(tiny):
    model, tokenizer = tiny
    seen = {}

    class OnMeta(torch.nn.Module):
        device = torch.device("meta")
        config, generation_config, training = model.config, model.generation_config, False

        def generate(self, input_ids, attention_mask, **kwargs):
            seen["devices"] = {input_ids.device.type, attention_mask.device.type}
            return torch.zeros((input_ids.shape[0], input_ids.shape[1] + 1), dtype=torch.long)

    _ids(OnMeta(), tokenizer, [conv("x")], engine="plain", max_new_tokens=1)
    assert seen["devices"] == {"meta"}


def test_rollout_override_checks_vllm_before_reading_generation_config():
    """TRL sets generation_config only without vLLM: use_vllm must be read first (it raised AttributeError)."""
    from types import SimpleNamespace

    from grasp_lib.train.grpo_trainer import GraspGRPOTrainer

    with_vllm = SimpleNamespace(use_vllm=True)  # no generation_config, as TRL leaves it with vLLM
    assert GraspGRPOTrainer._engine_applies(with_vllm, None, {}) is False
