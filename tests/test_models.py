"""Model loading and batched generation on the tiny from-scratch model (CPU)."""

from grasp_lib import models
from grasp_lib.infer import generate


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
