"""Parameters: plain YAML, every value validated before any notebook runs; the schema and its loading only.

`load` (cheap; every notebook calls it) reads a params file (with `base:` composition and dotted
overrides) and checks it, raising ParamsError with the file, the dotted key, the value and what was
expected: the project's own sections are pydantic dataclasses (types, ranges and choices from the
annotations; pydantic rather than hand-written checks because its errors already say what was expected),
plus the checks across sections. An unknown key lists the valid ones. What needs TRL, PEFT, the corpora,
the rewards or the model is checked by grasp_lib.preflight.

A new key is one annotated line in its section; a new section is a class and one line in `Params`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import json
import math
import re
from dataclasses import field
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from .paths import resolve


class ParamsError(ValueError):
    """A params file or override that does not fit the schema; the message names the key."""


# Strict: YAML already gives typed values, so a string where a number belongs is a mistake, not a number;
# inf and nan pass every range check (`gt=0` included), so they are refused as values of their own
section = _pydantic_dataclass(config=ConfigDict(strict=True, allow_inf_nan=False))
MAX_INT = 2**63 - 1  # torch and numpy hold integers in int64; a larger one fails deep inside them
MAX_SEED = 2**32 - 1  # numpy's seed (transformers.set_seed) must fit 32 bits
Size = Annotated[int, Field(ge=0)]  # a count where 0 means "none"
Positive = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
# a list of names; `-p stages=grpo` (one name, no comma) means a list of one, not its letters
Names = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


@section
class DataParams:
    dataset: str = "bc5cdr"
    unit: Literal["sentence", "passage", "document"] = "sentence"
    train_split: str = "train"
    eval_split: str = "test"
    sft_size: Size = 480  # training examples sampled for SFT
    rl_size: Size = 64  # prompts for GRPO, disjoint from the SFT sample
    confidence_size: Size = 0  # rows for the confidence stage, disjoint from both; 0 = no data/confidence.jsonl
    eval_size: Optional[Positive] = 96  # seeded sample of the eval split; null = the whole split
    max_chars: Positive = 600  # longer units are left out of the samples (counted in the data report)
    data_dir: Optional[str] = None  # the corpora root (relative paths: from the repository root); must exist
    # Multi-task mixture: {dataset: cap} = at most `cap` training examples per dataset (seeded, per dataset);
    # sft_size / rl_size are then totals drawn stratified by dataset from the capped pool (GRASP: 1000),
    # eval_size is per dataset. null = the single `dataset` above.
    mixture: Optional[dict[str, Optional[Positive]]] = None
    # Taiyi-style two-stage SFT: stage A trains on this task family only, stage B on everything. null = one stage.
    curriculum: Optional[str] = None


@section
class PromptParams:
    levels: Names = field(default_factory=lambda: ["role", "task", "labels", "schema"])
    few_shot: Size = 0  # number of training examples shown when the few_shot level is on


@section
class RewardParams:
    funcs: Names = field(default_factory=lambda: ["format", "entity"])  # weights: grpo.reward_weights
    # One dict of keyword arguments per reward that takes settings, empty = its defaults: exactly the keys
    # of grasp_lib.rewards.SETTINGS (tests/test_params.py holds the two together; preflight checks the values)
    entity: dict = field(default_factory=lambda: {"overlap_weight": 0.5, "type_credit": 0.5})
    relation: dict = field(default_factory=dict)
    nary: dict = field(default_factory=dict)
    grounding: dict = field(default_factory=dict)  # alignment: verbatim | normalised | lenient
    length: dict = field(default_factory=dict)
    reasoning: dict = field(default_factory=dict)
    pathway: dict = field(default_factory=dict)
    consistency: dict = field(default_factory=dict)
    verifiers: dict = field(default_factory=dict)
    binary: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)  # correctness: granular (soft F1) | exact (strict, as calibration)
    adaptive_settings: dict = field(default_factory=dict)  # rewards.TaskAdaptive keyword arguments
    # settings that are not one reward's
    symmetric_relations: Names = field(default_factory=list)  # relation types without direction
    polarity: dict[str, Literal["up", "down"]] = field(default_factory=dict)  # relation label -> direction (pathway verifier)
    adaptive: bool = False  # task-adaptive weighting: normalise each reward per task (running mean/std)


@section
class EvalParams:
    batch_size: Positive = 16
    max_new_tokens: Positive = 96
    engine: Literal["fast", "plain"] = "fast"  # fast (grasp_lib.infer.Engine: shared-prefix KV cache, per-sequence stop) | plain (model.generate)
    int8: bool = False  # fast engine only: int8 weights (dynamic quantization of the linear layers)
    prefix_cache: bool = True  # fast engine: compute the shared task prompt's key/value prefix once
    max_prompt_tokens: Optional[Positive] = None  # longer prompts are cut (and counted); null = context - max_new_tokens
    constrained: bool = False  # grounded decoding: answers follow the task's JSON schema, mentions copied from the text
    # reduced precision (bf16 or int8): a seeded fp32 subsample of this many eval rows is scored too (metrics
    # fidelity_check: both F1s and the delta, a warning over 1 point); 0 = off
    fidelity_check: Size = 96
    # the evaluation's own precision (auto | fp32 | bf16); null = the run's `precision`
    precision: Optional[Literal["auto", "fp32", "bf16"]] = None
    # K sampled completions per eval unit (Best-F1@K, Avg@K, F1 against temperature); 0 = off.
    samples_k: Size = 0
    temperatures: Annotated[list[PositiveFloat], Field(min_length=1)] = field(default_factory=lambda: [1.0])  # when samples_k > 0
    sample_stages: Optional[Names] = None  # stages to sample (base, sft, grpo); null = the last stage


@section
class PreferenceParams:
    """How the DPO stage builds its preference pairs (no teacher): `samples` completions per prompt from the
    stage's start model, scored by the composite reward (rewards.funcs weighted by grpo.reward_weights);
    the best and the worst form a pair when their rewards differ by at least `margin`."""
    split: Literal["rl", "sft"] = "rl"  # prompts from data/<split>.jsonl: rl (GRPO's prompts) | sft
    samples: Annotated[int, Field(ge=2)] = 4  # a pair needs two
    temperature: PositiveFloat = 1.0
    max_new_tokens: Optional[Positive] = None  # null = grpo.max_completion_length, else eval.max_new_tokens
    margin: NonNegativeFloat = 0.1  # chosen reward - rejected reward must be at least this (and always > 0)


@section
class ConfidenceParams:
    """How the confidence stage measures the model's chance of being right (no teacher): on each row of
    data/confidence.jsonl the start model answers greedily and samples `samples` more answers at
    `temperature`, each scored exactly right or not. `target` "group" (default): the confidence is the
    share of right answers among all answers of the trained answer's kind (its number of items, capped at
    `max_items`, per dataset), which the model can see when it writes the line; "sample": the share of
    that row's own answers that are right (per input; a 135M model collapsed to the most common value,
    0%). `answer`: the answer the line follows in training, the model's greedy one (own) or the gold one.
    The `confidence_sft` section (trl.SFTConfig fields) trains the model to state it."""
    samples: Positive = 7
    temperature: PositiveFloat = 1.0
    max_new_tokens: Optional[Positive] = None  # null = eval.max_new_tokens
    target: Literal["group", "sample"] = "group"
    max_items: Positive = 4  # answers with more items share one kind
    answer: Literal["own", "gold"] = "own"  # the answer the confidence line follows in training: own (greedy) | gold


@section
class UnslothParams:
    """The `unsloth` section's keys and types (models.unsloth_options reads them). Params keeps the section
    as the dict the file wrote, checked against this class: a key left out keeps models' own default (the
    stage's max_seq_length, for one), which a filled-in dataclass would override."""
    load_in_4bit: bool = False  # where bitsandbytes is installed (the PEFT path reads it too: QLoRA on CUDA)
    max_seq_length: Positive = 1024
    use_gradient_checkpointing: Union[bool, Literal["unsloth"]] = "unsloth"  # "unsloth" = offloaded
    fast_inference: bool = False  # vLLM generation, GRPO only
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.6


@section
class Params:
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = "quick"  # the run folder runs/<name>
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42
    model: Annotated[str, Field(min_length=1)] = "smollm2-135m"  # smollm2-135m | tiny-random | a local path or hub id
    stages: Names = field(default_factory=lambda: ["sft", "grpo"])
    # auto: bf16 where the hardware runs it natively (CUDA with bf16; a CPU with AMX or avx512_bf16), else fp32.
    # Training: autocast bf16 with fp32 master weights and optimizer state; generation: weights cast once.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    data: DataParams = field(default_factory=DataParams)
    prompt: PromptParams = field(default_factory=PromptParams)
    lora: Optional[dict] = None  # peft.LoraConfig fields; null = full fine-tune
    # GPU path only (Unsloth on CUDA): load_in_4bit (where bitsandbytes is installed), max_seq_length,
    # use_gradient_checkpointing ("unsloth" = offloaded), fast_inference + gpu_memory_utilization (vLLM
    # generation, GRPO only). The transformers + PEFT path reads only load_in_4bit (bitsandbytes QLoRA on CUDA).
    unsloth: dict = field(default_factory=dict)  # checked against UnslothParams
    sft: dict = field(default_factory=dict)  # trl.SFTConfig fields
    grpo: dict = field(default_factory=dict)  # trl.GRPOConfig fields
    dpo: dict = field(default_factory=dict)  # trl.DPOConfig fields (stage "dpo", between sft and grpo)
    preference: PreferenceParams = field(default_factory=PreferenceParams)  # DPO pairs
    confidence: ConfidenceParams = field(default_factory=ConfidenceParams)  # stage "confidence", after sft
    confidence_sft: dict = field(default_factory=dict)  # trl.SFTConfig fields of the confidence stage
    rewards: RewardParams = field(default_factory=RewardParams)
    # Rerunning a stage continues from its last checkpoint in runs/R/checkpoints/<stage> when one exists
    # (checkpoints: `save_strategy: steps` and `save_steps: N` in the stage's section); false = start over.
    resume: bool = True
    # Training computes each distinct token prefix of a batch once (system prompt, GRPO prompt, DPO pair's
    # prompt), with the same loss and gradients (grasp_lib/train/prefix.py); false = TRL's padded forward.
    shared_prefix: bool = True
    eval: EvalParams = field(default_factory=EvalParams)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


KNOWN_STAGES = ("sft", "confidence", "dpo", "grpo")  # run in this order


# ---------------------------------------------------------------- load: the project's own sections
def load(path: str | Path, overrides: dict | None = None) -> Params:
    """Read a params YAML, apply dotted overrides, validate, return Params."""
    path = resolve(path)
    chain = composed_chain(path)
    try:
        params = _validate(apply_overrides(_merge_chain(chain), overrides or {}), path)
    except ParamsError as err:
        raise _blame_bases(err, chain, path) from None
    _check_across_sections(params, path)
    return params


def _validate(raw: dict, path: Path) -> Params:
    """Params from merged YAML: values that no section's type holds (inf, nan, an integer past int64, in
    any section, the TRL/PEFT dicts too) first, then the sections, then the `unsloth` dict's types."""
    problems = _unrepresentable(raw)
    if problems:
        raise _error(path, problems)
    params = _build(Params, raw, path)
    _build(UnslothParams, params.unsloth, path, "unsloth")
    return params


def _unrepresentable(value: object, key: str = "") -> list[str]:
    """'sft.learning_rate = inf: expected a finite number', one per such value at any depth."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _unrepresentable(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unrepresentable(v, f"{key}[{i}]")]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key} = {value!r}: expected a finite number"]
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT - 1 <= value <= MAX_INT:
        return [f"{key} = {_short(value)}: expected an integer that fits 64 bits (at most {MAX_INT})"]
    return []


def _error(path: Path, problems: list[str]) -> ParamsError:
    err = ParamsError(f"{path}: " + "; ".join(problems))
    err.problems = problems  # _blame_bases matches them against a base file's own
    return err


def _blame_bases(err: ParamsError, chain: list[tuple[Path, dict]], path: Path) -> ParamsError:
    """`err` with each problem named against the `base:` file that brought it in (the deepest base whose
    own composition shows the same problem), not against the child file that merely inherits it."""
    left, blamed = list(getattr(err, "problems", [])), []
    for depth, (file, _) in enumerate(chain[:-1], start=1):
        try:
            _validate(_merge_chain(chain[:depth]), file)
        except ParamsError as base_err:
            own = [p for p in left if p in getattr(base_err, "problems", [])]
            blamed += [f"{file}: {'; '.join(own)}"] * bool(own)
            left = [p for p in left if p not in own]
    if not blamed:
        return err
    return ParamsError("; ".join(blamed + ([f"{path}: {'; '.join(left)}"] if left else [])))


class _Refused(Exception):
    """What _ParamsLoader refuses, with the line (1-based) it is on."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


class _ParamsLoader(yaml.SafeLoader):
    """yaml.SafeLoader refusing what silently changes or multiplies a params file: a key twice in one
    mapping (the last one would win) and aliases (`*name` copies its anchor's value; nested ones grew a
    507-byte file past 1.7 GB). Refusing aliases outright, before anything is built: `base:` files are
    the way to share values."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(event.start_mark.line + 1, f"YAML alias *{event.anchor}: anchors and aliases are "
                           "not allowed in params files (each alias copies its anchor, nested ones grow "
                           "exponentially); write the values out, or share them through a `base:` file")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        lines: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, collections.abc.Hashable) and key in lines:
                raise _Refused(line, f"key {key!r} appears twice in one mapping (lines {lines[key]} and {line}): "
                                     "the second would silently replace the first; keep one")
            if isinstance(key, collections.abc.Hashable):
                lines[key] = line
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict:
    """The file's mapping; a YAML syntax error, a repeated key or an alias names the file and line.
    A UTF-8 byte-order mark at the start is read as such (utf-8-sig)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            raw = yaml.load(handle, Loader=_ParamsLoader)
    except _Refused as err:
        raise ParamsError(f"{path}:{err.line}: {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}{line}: YAML syntax error: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: YAML error: {err}") from None
    except UnicodeDecodeError as err:
        raise ParamsError(f"{path}: not UTF-8 text: byte {err.object[err.start]:#04x} at byte offset "
                          f"{err.start}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw or {}


def _sections(cls) -> dict[str, type]:
    """Fields of `cls` that are sections themselves (their default is a dataclass)."""
    return {f.name: f.default_factory for f in dataclasses.fields(cls)
            if isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory)}


def _build(cls, values: object, path: Path, prefix: str = ""):
    """`cls(**values)`, sections first; every unknown key and invalid value found is raised at once."""
    where = f"{path}: {prefix}" if prefix else str(path)
    if not isinstance(values, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(values).__name__} {_short(values)}")
    reject_unknown(values, [f.name for f in dataclasses.fields(cls)], where)
    nested, kwargs, problems = _sections(cls), {}, []
    for name, value in values.items():
        if name not in nested:
            kwargs[name] = value
            continue
        try:
            kwargs[name] = _build(nested[name], value or {}, path, f"{prefix}.{name}" if prefix else name)
        except ParamsError as err:  # reported with the rest; the section's defaults stand in meanwhile
            problems += getattr(err, "problems", None) or [str(err).removeprefix(f"{path}: ")]
    try:
        built = cls(**kwargs)
    except ValidationError as err:
        problems += validation_problems(err, prefix)
    if problems:
        raise _error(path, problems)
    return built


def reject_unknown(values: dict, valid, where: str, owner: str = "") -> None:
    unknown = sorted(set(values) - set(valid), key=str)
    if unknown:
        hints = {k: difflib.get_close_matches(str(k), valid, n=3) for k in unknown}
        raise ParamsError(f"{where}: unknown key(s) {unknown}{owner} (close matches: {hints}); "
                          f"valid keys: {sorted(valid)}")


def validation_problems(err: ValidationError, prefix: str = "") -> list[str]:
    """'data.sft_size = -5: expected greater than or equal to 0', one per invalid value."""
    problems = []
    for e in err.errors():
        key = ".".join([prefix] * bool(prefix) + [str(p) for p in e["loc"]])
        expected = e["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
        problems.append(f"{key} = {_short(e['input'])}: expected {expected}{_yaml_hint(e['input'])}")
    return problems


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml_hint(value: object) -> str:
    """YAML 1.1 reads `1e-4` as a string; say so where that is the likely mistake."""
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+[eE][+-]?\d+", value.strip()):
        return " (YAML reads a number without a decimal point, like 1e-4, as text: write 1.0e-4)"
    return ""


def _check_across_sections(params: Params, path: Path) -> None:
    bad = [s for s in params.stages if s not in KNOWN_STAGES]
    if bad:
        raise ParamsError(f"{path}: stages {bad} unknown; valid: {list(KNOWN_STAGES)}")
    if params.stages != sorted(params.stages, key=KNOWN_STAGES.index):
        raise ParamsError(f"{path}: stages {params.stages} out of order; they run as {list(KNOWN_STAGES)}")
    if "confidence" in params.stages and (params.data.confidence_size <= 0
                                          or "confidence" not in params.prompt.levels):
        raise ParamsError(f"{path}: stage confidence needs data.confidence_size > 0 (got "
                          f"{params.data.confidence_size}) and the confidence prompt level (prompt.levels: "
                          f"{params.prompt.levels})")
    weights = params.grpo.get("reward_weights")
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(params.rewards.funcs)):
        raise ParamsError(f"{path}: grpo.reward_weights = {_short(weights)}: expected one weight for each of "
                          f"the {len(params.rewards.funcs)} rewards.funcs {params.rewards.funcs}")
    if params.data.data_dir is not None and not resolve(params.data.data_dir).is_dir():
        raise ParamsError(f"{path}: data.data_dir = {params.data.data_dir!r}: expected an existing folder "
                          f"(the corpora root); {resolve(params.data.data_dir)} does not exist")


def parse_override(text: str) -> tuple[str, object]:
    """'sft.learning_rate=1e-4' -> ('sft.learning_rate', 1e-4); 'stages=sft,grpo' -> list."""
    if "=" not in text:
        raise ParamsError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    value = _scalar(raw) if raw else None
    if isinstance(value, str) and "," in value:
        value = [_scalar(v) for v in value.split(",")]
    return key.strip(), value


def _scalar(raw: str):
    try:
        value = yaml.load(raw, Loader=_ParamsLoader)
    except _Refused as err:
        raise ParamsError(f"override value {raw!r}: {err}") from None
    except yaml.YAMLError:  # e.g. "a: b" or "[1": the text as given
        return raw
    if isinstance(value, str):  # YAML 1.1 reads '1e-4' as a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(raw: dict, overrides: dict) -> dict:
    merged = json.loads(json.dumps(raw, default=str))  # deep copy of plain YAML data
    for dotted, value in overrides.items():
        node = merged
        *parents, last = dotted.split(".")
        for part in parents:
            if node.get(part) is None:  # `-p lora.r=8` where the file says `lora: null`
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ParamsError(f"override {dotted!r}: {part!r} is not a section")
        node[last] = value
    return merged


def read_composed(path: Path) -> dict:
    """A params file's YAML with its `base:` file (a path relative to this file, itself maybe based on
    another) merged underneath: mappings merge key by key at every depth, anything else (a list, a value,
    null) replaces the base's. Validation comes after, on the merged result."""
    return _merge_chain(composed_chain(path))


def composed_chain(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[Path, dict]]:
    """[(file, its YAML without `base:`)], the deepest base first and `path` last."""
    path = path.resolve()
    if path in chain:
        raise ParamsError(f"{chain[-1]}: key base: files form a cycle: {' -> '.join(str(p) for p in chain + (path,))}")
    if chain and not path.is_file():
        raise ParamsError(f"{chain[-1]}: key base: {path} does not exist")
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return [(path, raw)]
    if not isinstance(base, str):
        raise ParamsError(f"{path}: key base: expected a file name such as quick.yaml, got {base!r}")
    return composed_chain(path.parent / base, chain + (path,)) + [(path, raw)]


def _merge_chain(chain: list[tuple[Path, dict]]) -> dict:
    merged: dict = {}
    for _, raw in chain:
        merged = deep_merge(merged, raw)
    return merged


def deep_merge(base: dict, top: dict) -> dict:
    """`top` over `base`: nested mappings merge key by key, other values of `top` replace (hand-written:
    ten lines against a new dependency such as OmegaConf, whose merge also converts the values)."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = deep_merge(merged[key], value)
        merged[key] = value
    return merged
