"""The fast generation engine against transformers' model.generate (greedy, fp32), on a tiny model."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
import torch

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

    from grasp_lib.train.grpo import fast_rollout_trainer

    model, tokenizer = tiny
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_steps=1,
                        max_completion_length=10, top_k=1, bf16=False, use_cpu=True, report_to="none",
                        save_strategy="no", gradient_checkpointing=False)
    dataset = Dataset.from_list([{"prompt": conv(t)} for t in TEXTS[:4]])
    kwargs = dict(model=model, reward_funcs=[lambda completions, **_: [0.0] * len(completions)], args=config,
                  train_dataset=dataset, processing_class=tokenizer)
    fast, plain = fast_rollout_trainer()(**kwargs), GRPOTrainer(**kwargs)
    prompt_ids, _, _ = fast._tokenize_prompts([conv(t) for t in TEXTS[:4] for _ in range(2)])
    fast_ids, _ = fast._generate_single_turn(prompt_ids, None, {}, 2)
    plain_ids, _ = plain._generate_single_turn(prompt_ids, None, {}, 2)
    assert fast_ids == plain_ids
    assert fast._fast_rollouts_apply(None, {})
