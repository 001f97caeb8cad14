"""Parameters: plain YAML validated against dataclasses (an unknown key is an error listing the valid ones).

The `lora`, `sft` (and `confidence_sft`), `dpo` and `grpo` sections use PEFT's LoraConfig and TRL's SFTConfig /
DPOConfig / GRPOConfig field names and go to those classes unchanged; `check_section` validates them where TRL
is imported anyway.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from .paths import REPO_ROOT, resolve


class ParamsError(ValueError):
    """A params file or override that does not fit the schema; the message names the key."""


@dataclass
class DataParams:
    dataset: str = "bc5cdr"
    unit: str = "sentence"  # sentence | passage | document
    train_split: str = "train"
    eval_split: str = "test"
    sft_size: int = 480  # training examples sampled for SFT
    rl_size: int = 64  # prompts for GRPO, disjoint from the SFT sample
    confidence_size: int = 0  # rows for the confidence stage, disjoint from both; 0 = no data/confidence.jsonl
    eval_size: int | None = 96  # seeded sample of the eval split; null = the whole split
    max_chars: int = 600  # longer units are left out of the samples (counted in the data report)
    data_dir: str | None = None
    # Multi-task mixture: {dataset: cap} = at most `cap` training examples per dataset (seeded, per dataset);
    # sft_size / rl_size are then totals drawn stratified by dataset from the capped pool (GRASP: 1000),
    # eval_size is per dataset. null = the single `dataset` above.
    mixture: dict | None = None
    # Taiyi-style two-stage SFT: stage A trains on this task family only, stage B on everything. null = one stage.
    curriculum: str | None = None


@dataclass
class PromptParams:
    levels: list[str] = field(default_factory=lambda: ["role", "task", "labels", "schema"])
    few_shot: int = 0  # number of training examples shown when the few_shot level is on


@dataclass
class RewardParams:
    funcs: list[str] = field(default_factory=lambda: ["format", "entity"])  # weights: grpo.reward_weights
    entity: dict = field(default_factory=lambda: {"overlap_weight": 0.5, "type_credit": 0.5})
    # keyword arguments of the other rewards (see grasp_lib/rewards), empty = their defaults
    relation: dict = field(default_factory=dict)
    nary: dict = field(default_factory=dict)
    length: dict = field(default_factory=dict)
    reasoning: dict = field(default_factory=dict)
    verifiers: dict = field(default_factory=dict)
    binary: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)  # correctness: granular (soft F1) | exact (strict, as calibration)
    symmetric_relations: list[str] = field(default_factory=list)  # relation types without direction
    polarity: dict = field(default_factory=dict)  # relation label -> "up" | "down" (pathway verifier)
    adaptive: bool = False  # task-adaptive weighting: normalise each reward per task (running mean/std)
    adaptive_settings: dict = field(default_factory=dict)  # rewards.TaskAdaptive keyword arguments


@dataclass
class EvalParams:
    batch_size: int = 16
    max_new_tokens: int = 96
    engine: str = "fast"  # fast (grasp_lib.infer.Engine: shared-prefix KV cache, per-sequence stop) | plain (model.generate)
    int8: bool = False  # fast engine only: int8 weights (dynamic quantization of the linear layers)
    prefix_cache: bool = True  # fast engine: compute the shared task prompt's key/value prefix once
    max_prompt_tokens: int | None = None  # longer prompts are cut (and counted); null = context - max_new_tokens
    constrained: bool = False  # grounded decoding: answers follow the task's JSON schema, mentions copied from the text
    int8_check: int = 96  # with int8: a seeded fp32 subsample of this many eval rows is scored too (delta in metrics)
    # K sampled completions per eval unit (Best-F1@K, Avg@K, F1 against temperature); 0 = off.
    samples_k: int = 0
    temperatures: list[float] = field(default_factory=lambda: [1.0])  # sampling temperatures when samples_k > 0
    sample_stages: list[str] | None = None  # stages to sample (base, sft, grpo); null = the last stage


@dataclass
class PreferenceParams:
    """How the DPO stage builds its preference pairs (no teacher): `samples` completions per prompt from the
    stage's start model, scored by the composite reward (rewards.funcs weighted by grpo.reward_weights);
    the best and the worst form a pair when their rewards differ by at least `margin`."""
    split: str = "rl"  # prompts from data/<split>.jsonl: rl (GRPO's prompts) | sft
    samples: int = 4
    temperature: float = 1.0
    max_new_tokens: int | None = None  # null = grpo.max_completion_length, else eval.max_new_tokens
    margin: float = 0.1  # chosen reward - rejected reward must be at least this (and always > 0)


@dataclass
class ConfidenceParams:
    """How the confidence stage measures the model's chance of being right (no teacher): on each row of
    data/confidence.jsonl the start model answers greedily and samples `samples` more answers at
    `temperature`, each scored exactly right or not. `target` "group" (default): the confidence is the
    share of right answers among all answers of the trained answer's kind (its number of items, capped at
    `max_items`, per dataset), which the model can see when it writes the line; "sample": the share of
    that row's own answers that are right (per input; a 135M model collapsed to the most common value,
    0%). `answer`: the answer the line follows in training, the model's greedy one (own) or the gold one.
    The `confidence_sft` section (trl.SFTConfig fields) trains the model to state it."""
    samples: int = 7
    temperature: float = 1.0
    max_new_tokens: int | None = None  # null = eval.max_new_tokens
    target: str = "group"  # group | sample
    max_items: int = 4  # answers with more items share one kind
    answer: str = "own"  # the answer the confidence line follows in training: own (greedy) | gold


@dataclass
class Params:
    name: str = "quick"
    seed: int = 42
    model: str = "smollm2-135m"  # smollm2-135m | tiny-random | a local path or hub id
    stages: list[str] = field(default_factory=lambda: ["sft", "grpo"])
    data: DataParams = field(default_factory=DataParams)
    prompt: PromptParams = field(default_factory=PromptParams)
    lora: dict | None = None  # peft.LoraConfig fields; null = full fine-tune
    # GPU path only (Unsloth on CUDA): load_in_4bit (where bitsandbytes is installed), max_seq_length,
    # use_gradient_checkpointing ("unsloth" = offloaded), fast_inference + gpu_memory_utilization (vLLM
    # generation, GRPO only). The transformers + PEFT path reads only load_in_4bit (bitsandbytes QLoRA on CUDA).
    unsloth: dict = field(default_factory=dict)
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
    eval: EvalParams = field(default_factory=EvalParams)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


KNOWN_STAGES = ("sft", "confidence", "dpo", "grpo")  # run in this order


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        sub = fields[name].type
        if isinstance(sub, str) and sub in _SECTIONS:
            value = _build(_SECTIONS[sub], value or {}, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


_SECTIONS = {"DataParams": DataParams, "PromptParams": PromptParams, "RewardParams": RewardParams,
             "EvalParams": EvalParams, "PreferenceParams": PreferenceParams, "ConfidenceParams": ConfidenceParams}


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
    value = yaml.safe_load(raw)
    if isinstance(value, str):  # YAML 1.1 reads '1e-4' as a string
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(raw: dict, overrides: dict) -> dict:
    merged = json.loads(json.dumps(raw))  # deep copy of plain YAML data
    for dotted, value in overrides.items():
        node = merged
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamsError(f"override {dotted!r}: {part!r} is not a section")
        node[last] = value
    return merged


def read_composed(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """A params file's YAML with its `base:` file (a path relative to this file, itself maybe based on
    another) merged underneath: mappings merge key by key at every depth, anything else (a list, a value,
    null) replaces the base's. Validation comes after, on the merged result."""
    path = path.resolve()
    if path in chain:
        raise ParamsError(f"{chain[-1]}: key base: files form a cycle: {' -> '.join(str(p) for p in chain + (path,))}")
    if chain and not path.is_file():
        raise ParamsError(f"{chain[-1]}: key base: {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of params, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ParamsError(f"{path}: key base: expected a file name such as quick.yaml, got {base!r}")
    return deep_merge(read_composed(path.parent / base, chain + (path,)), raw)


def deep_merge(base: dict, top: dict) -> dict:
    """`top` over `base`: nested mappings merge key by key, other values of `top` replace (hand-written:
    ten lines against a new dependency such as OmegaConf, whose merge also converts the values)."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = deep_merge(merged[key], value)
        merged[key] = value
    return merged


def load(path: str | Path, overrides: dict | None = None) -> Params:
    """Read a params YAML, apply dotted overrides, validate, return Params."""
    path = resolve(path)
    raw = read_composed(path)
    params = _build(Params, apply_overrides(raw, overrides or {}), str(path))
    if isinstance(params.stages, str):  # `-p stages=grpo`: one stage, not its letters
        params.stages = [params.stages]
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
    if params.confidence.target not in ("group", "sample"):
        raise ParamsError(f"{path}: confidence.target {params.confidence.target!r}: expected group or sample")
    if params.confidence.answer not in ("own", "gold"):
        raise ParamsError(f"{path}: confidence.answer {params.confidence.answer!r}: expected own or gold")
    weights = params.grpo.get("reward_weights")
    if weights is not None and len(weights) != len(params.rewards.funcs):
        raise ParamsError(f"{path}: grpo.reward_weights has {len(weights)} values for "
                          f"{len(params.rewards.funcs)} rewards.funcs {params.rewards.funcs}")
    return params


def check_section(values: dict, config_cls, where: str) -> None:
    """Raise if a section has keys that `config_cls` (a TRL/PEFT dataclass) does not know."""
    valid = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - valid)
    if unknown:
        hints = {k: difflib.get_close_matches(k, valid, n=3) for k in unknown}
        raise ParamsError(f"{where}: unknown key(s) {unknown} for {config_cls.__name__} (close matches: "
                          f"{hints}); valid keys: {sorted(valid)}")


LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "papermill", "unsloth",
             "nervaluate", "rapidfuzz", "matplotlib", "seaborn")


def versions() -> dict[str, str | None]:
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            found[lib] = None
    return found


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return None
    commit = out.stdout.strip() or None
    return f"{commit}-dirty" if commit and dirty.stdout.strip() else commit


def write_run_info(params: Params, run_dir: str | Path, stage: str = "run") -> Path:
    """Write resolved params, library versions and git commit into the run folder."""
    run_dir = resolve(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"params": params.to_dict(), "versions": versions(), "git_commit": git_commit(),
            "python": sys.version.split()[0], "platform": platform.platform()}
    target = run_dir / f"{stage}_info.json"
    target.write_text(json.dumps(info, indent=2))
    return target
