"""Preflight: every check of a params file that needs the heavy libraries, before any notebook runs.

`params.load` checks the project's own sections (cheap; every notebook calls it). `preflight` (imports TRL,
seconds; the runner calls it once before notebook 01) checks the rest, each failure a ParamsError naming
the params file and the key: the `sft`, `confidence_sft`, `dpo`, `grpo` and `lora` sections use TRL's
SFTConfig / DPOConfig / GRPOConfig and PEFT's LoraConfig field names and are built into those classes
(with `trainer_defaults`) so their own checks fire; reward settings are checked against the reward
registry's constructors and the rewards built; dataset names, splits and the data root are looked up; the
model name is resolved (built-in, local folder or cache; a local folder verified whole).

The stages build their configs from the same `trainer_defaults` and check their sections with the same
`check_section` / `trainer_fields`, so what passes here is what trains.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import warnings
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from .params import DataParams, Params, ParamsError, RewardParams, reject_unknown, validation_problems
from .paths import REPO_ROOT, data_root, resolve

BUILTIN_MODELS = ("smollm2-135m", "tiny-random")  # built by grasp_lib.models on first use
TRAINER_SECTIONS = {"sft": "SFTConfig", "confidence_sft": "SFTConfig", "dpo": "DPOConfig", "grpo": "GRPOConfig"}
# grasp's own keys inside a trainer section (true/false switches), removed before the config class is built
GRASP_SECTION_KEYS = {"grpo": ("constrained_rollouts",)}
# Ranges the config classes do not check themselves (0 generations divides by zero deep inside TRL)
TRAINER_RANGES = {
    "learning_rate": {"gt": 0}, "num_train_epochs": {"gt": 0}, "max_steps": {"ge": -1},
    "per_device_train_batch_size": {"ge": 1}, "per_device_eval_batch_size": {"ge": 1},
    "gradient_accumulation_steps": {"ge": 1}, "num_generations": {"ge": 2}, "max_completion_length": {"ge": 1},
    "max_prompt_length": {"ge": 1}, "max_length": {"ge": 1}, "save_steps": {"gt": 0}, "logging_steps": {"gt": 0},
    "warmup_steps": {"ge": 0}, "warmup_ratio": {"ge": 0, "le": 1}, "weight_decay": {"ge": 0},
    "max_grad_norm": {"ge": 0}, "temperature": {"gt": 0}, "top_p": {"gt": 0, "le": 1}, "beta": {"ge": 0},
    "epsilon": {"ge": 0}, "epsilon_high": {"ge": 0}, "save_total_limit": {"ge": 1},
    "r": {"ge": 1}, "lora_alpha": {"gt": 0}, "lora_dropout": {"ge": 0, "lt": 1},
}


def trainer_defaults(output_dir: Path, seed: int, precision: str = "fp32") -> dict:
    """Training policy: the settings every stage's TRL config starts from, params' section on top (the
    stages and preflight's checks build the same config). `precision` (resolved: fp32 | bf16) sets TRL's
    `bf16` (accelerate's autocast, fp32 master weights; on the CPU too, with `use_cpu`). Gradient
    checkpointing is off: it only costs time at this size."""
    import torch

    cuda = torch.cuda.is_available()
    return {"output_dir": str(output_dir), "seed": seed, "data_seed": seed, "bf16": precision == "bf16",
            "use_cpu": not cuda, "gradient_checkpointing": False, "report_to": "none",
            "save_strategy": "no",  # params: save_strategy: steps, save_steps: N -> resumable checkpoints
            "logging_nan_inf_filter": False,  # a nan/inf step loss is logged as such (train/callbacks stops on it)
            "logging_steps": 1, "dataloader_num_workers": 0, "disable_tqdm": False}


def preflight(params: Params, source: str | Path = "") -> None:
    """Every check that needs the heavy libraries, before any notebook runs (ParamsError naming `source`,
    the params file, and the key): trainer and LoRA sections built into their TRL/PEFT classes, rewards
    built, datasets, splits and the data root looked up, the model name resolved. Cached per process."""
    try:
        resolve_model(params.model)  # first: it imports grasp_lib.models, which must precede TRL (Unsloth)
        for name, cls_name in TRAINER_SECTIONS.items():
            _check_trainer_section(name, cls_name, _frozen(trainer_fields(params, name)), params.seed)
        if params.lora:
            _check_trainer_section("lora", "LoraConfig", _frozen(params.lora), params.seed)
        _check_rewards(params)
        _check_data(params.data)
        unknown_levels = sorted(set(params.prompt.levels) - set(_prompt_levels()))
        if unknown_levels:
            raise ParamsError(f"prompt.levels: unknown level(s) {unknown_levels}; valid: {list(_prompt_levels())}")
    except ParamsError as err:
        raise ParamsError(f"{source}: {err}" if source else str(err)) from None


def trainer_fields(params: Params, section: str) -> dict:
    """A trainer section without grasp's own keys (GRASP_SECTION_KEYS), which must be true or false."""
    values, own = getattr(params, section), GRASP_SECTION_KEYS.get(section, ())
    for key in own:
        if not isinstance(values.get(key, False), bool):
            raise ParamsError(f"{section}.{key}: expected true or false, got {values[key]!r}")
    return {k: v for k, v in values.items() if k not in own}


def _frozen(values: dict) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def _config_class(cls_name: str):
    if cls_name == "LoraConfig":
        from peft import LoraConfig

        return LoraConfig
    import trl

    return getattr(trl, cls_name)


@functools.lru_cache(maxsize=64)  # the same section is checked once per process (TRL's import is the cost)
def _check_trainer_section(name: str, cls_name: str, frozen: str, seed: int) -> None:
    values, cls = json.loads(frozen), _config_class(cls_name)
    check_section(values, cls, name)
    check_values(values, cls, name)
    try:
        with warnings.catch_warnings():  # deprecation notes belong to the stage that trains, not to this check
            warnings.simplefilter("ignore")
            _build_config(cls, cls_name, values, name, seed)
    except Exception as err:  # the config class's own checks: any exception type, message kept
        raise ParamsError(f"{name}: {cls_name} rejects these settings {values}: {type(err).__name__}: {err}") from None


def _build_config(cls, cls_name: str, values: dict, name: str, seed: int):
    """The config a stage builds (models.load_model's LoraConfig; the stages' trainer_defaults | section)."""
    if cls_name == "LoraConfig":
        return cls(task_type="CAUSAL_LM", **values)
    return cls(**(trainer_defaults(REPO_ROOT / "runs" / "_preflight" / name, seed) | values))


def check_section(values: dict, config_cls, where: str) -> None:
    """Raise if a section has keys that `config_cls` (a TRL/PEFT dataclass) does not know."""
    reject_unknown(values, [f.name for f in dataclasses.fields(config_cls)], where, f" for {config_cls.__name__}")


def check_values(values: dict, config_cls, where: str) -> None:
    """Each value against the config field's type (strict: '1e-4' is text, not a number) and TRAINER_RANGES."""
    problems = []
    for key, value in values.items():
        checks = [_field_adapter(config_cls, key)] + ([_range_adapter(key)] if _is_number(value) else [])
        for adapter in filter(None, checks):
            try:
                adapter.validate_python(value)
            except ValidationError as err:
                problems += validation_problems(err, f"{where}.{key}")
                break
    if problems:
        raise ParamsError("; ".join(problems))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@functools.lru_cache(maxsize=1024)
def _field_adapter(config_cls, key: str) -> TypeAdapter | None:
    import typing

    try:
        hint = typing.get_type_hints(config_cls)[key]
        return TypeAdapter(hint, config=ConfigDict(strict=True))
    except Exception:  # a type pydantic cannot check: the config class's own checks remain
        return None


@functools.lru_cache(maxsize=64)
def _range_adapter(key: str) -> TypeAdapter | None:
    bounds = TRAINER_RANGES.get(key)
    return TypeAdapter(Annotated[float, Field(**bounds)]) if bounds else None


def _check_rewards(params: Params) -> None:
    from .rewards import build_rewards

    _check_reward_settings(params.rewards)
    try:
        build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    except (KeyError, TypeError, ValueError) as err:
        raise ParamsError(f"rewards: {err.args[0] if err.args else err}") from None


def _check_reward_settings(rewards: RewardParams) -> None:
    """Each reward setting against its constructor's annotation (rewards.SETTINGS: the registry's own
    table), strictly: `bool("false")` is True and a string weight fails only mid-training, so both are
    refused here. Unknown keys: build_rewards says."""
    import typing

    from .rewards import SETTINGS

    problems = []
    for key, cls in SETTINGS.items():
        hints = typing.get_type_hints(cls.__init__)
        for name, value in (getattr(rewards, key) or {}).items():
            if name in hints:
                try:
                    TypeAdapter(hints[name], config=ConfigDict(strict=True)).validate_python(value)
                except ValidationError as err:
                    problems += validation_problems(err, f"rewards.{key}.{name}")
    if problems:
        raise ParamsError("; ".join(problems))


def _check_data(data: DataParams) -> None:
    """Dataset names and splits exist in the corpus registry; the data root exists."""
    from . import corpora
    from .tasks import FAMILIES

    for name in data.mixture or {data.dataset: None}:
        key = "data.mixture" if data.mixture else "data.dataset"
        if name not in corpora.REGISTRY:
            raise ParamsError(f"{key}: unknown dataset {name!r}; known: {sorted(corpora.REGISTRY)}")
        if data.train_split not in corpora.REGISTRY[name]:
            raise ParamsError(f"data.train_split = {data.train_split!r}: dataset {name!r} has splits "
                              f"{sorted(corpora.REGISTRY[name])}")
    if data.curriculum is not None and data.curriculum not in FAMILIES:
        raise ParamsError(f"data.curriculum = {data.curriculum!r}: expected a task family {sorted(FAMILIES)}")
    try:
        data_root(data.data_dir)
    except FileNotFoundError as err:
        raise ParamsError(str(err)) from None


def _prompt_levels() -> tuple[str, ...]:
    from .prompts import LEVELS

    return LEVELS


def resolve_model(name: str) -> str:
    """Where `name` loads from: "built-in", a local folder, the Hugging Face cache, or "hub" (only when the
    hub is reachable, HF_HUB_OFFLINE unset); otherwise a ParamsError naming the model."""
    if name in BUILTIN_MODELS:
        return "built-in"
    local = resolve(name)
    if local.is_dir():
        _verify_model(name, local)
        return str(local)
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid hub id (HFValidationError): it can only be a missing folder
        cached = False
    if isinstance(cached, str):
        _verify_model(name, Path(cached).parent)
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").upper() not in {"1", "ON", "YES", "TRUE"} and cached is None:
        return "hub"
    raise ParamsError(f"model = {name!r}: expected a built-in name {list(BUILTIN_MODELS)}, a local folder "
                      f"(no {local}) or a model in the Hugging Face cache ({constants.HF_HUB_CACHE}); the hub "
                      f"is offline here (HF_HUB_OFFLINE=1)")


def _verify_model(name: str, folder: Path) -> None:
    """A local model folder complete (config.json parses, safetensors whole, every tensor present), as
    models.load_model checks it again later; here before any notebook, naming the file."""
    from .models import BrokenModel, verify_model_dir

    try:
        verify_model_dir(folder)
    except BrokenModel as err:
        raise ParamsError(f"model = {name!r}: {err}") from None
