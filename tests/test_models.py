"""Model loading and batched generation on the tiny from-scratch model (CPU)."""

import pytest

from grasp_lib import models
from grasp_lib.infer import generate

pytestmark = pytest.mark.pins  # also under the GPU pin set (make test-gpu-pins)


def test_backend_without_cuda_is_transformers_peft():
    assert models.backend() == "transformers+peft"


def test_tiny_random_loads_and_generates_in_input_order():
    model, tokenizer, peft_config = models.load_model("tiny-random", {"r": 4, "lora_alpha": 8,
                                                                      "target_modules": "all-linear"})
    assert peft_config is not None and peft_config.r == 4
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    conversations = [[{"role": "user", "content": "short"}],
                     [{"role": "user", "content": "a much longer input " * 10}]]
    greedy = generate(model, tokenizer, conversations, batch_size=2, max_new_tokens=5, progress=False)
    alone = generate(model, tokenizer, conversations[:1], batch_size=1, max_new_tokens=5, progress=False)
    assert [len(g) for g in greedy] == [1, 1]
    assert greedy[0] == alone[0]  # left padding in a mixed-length batch does not change greedy output
    sampled = generate(model, tokenizer, conversations, batch_size=2, max_new_tokens=5, do_sample=True,
                       num_samples=3, progress=False)
    assert [len(s) for s in sampled] == [3, 3]


def test_unsloth_options_4bit_only_with_bitsandbytes(monkeypatch):
    real = models.importlib.util.find_spec
    for present in (True, False):
        monkeypatch.setattr(models.importlib.util, "find_spec",
                            lambda name, present=present: object() if present else
                            (None if name in ("bitsandbytes", "vllm") else real(name)))
        load, peft = models.unsloth_options({"load_in_4bit": True, "max_seq_length": 2048, "fast_inference": True},
                                            vllm=True)
        assert load["load_in_4bit"] is present and load["max_seq_length"] == 2048
        assert load.get("fast_inference", False) is present
        assert peft == {"use_gradient_checkpointing": "unsloth"}
    assert models.unsloth_options()[0] == {"max_seq_length": 1024, "load_in_4bit": False, "dtype": None,
                                           "use_exact_model_name": True}
    with pytest.raises(ValueError, match="load_in_8bit"):
        models.unsloth_options({"load_in_8bit": True})
