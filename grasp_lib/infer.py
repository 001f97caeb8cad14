"""Batched generation: length-sorted batches, left padding, KV cache, K samples per prompt."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def generate(model, tokenizer, conversations: list[list[dict]], batch_size: int = 16, max_new_tokens: int = 96,
             do_sample: bool = False, temperature: float = 1.0, num_samples: int = 1, seed: int = 0,
             progress: bool = True) -> list[list[str]]:
    """Completions for chat conversations: one list of `num_samples` strings per conversation, in input order."""
    prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
    outputs: list[list[str]] = [[] for _ in prompts]
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    model.eval()
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="generate", disable=not progress):
        inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample,
                                       temperature=temperature if do_sample else None,
                                       top_p=None, top_k=None,
                                       num_return_sequences=num_samples,
                                       pad_token_id=tokenizer.pad_token_id)
        new_tokens = generated[:, inputs["input_ids"].shape[1]:]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for k, i in enumerate(batch):
            outputs[i] = texts[k * num_samples:(k + 1) * num_samples]
    return outputs
