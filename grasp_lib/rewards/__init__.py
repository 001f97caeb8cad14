"""Rewards with TRL's signature `f(completions, **columns) -> list[float | None]`.

Names are stable: they are the logging keys (`rewards/<name>/mean`, `rewards/<name>/std`).
Every reward scores an answer with its task family's parts (tasks.FAMILIES): the metrics' items,
normalisation and one-to-one matching, with the reward's partial credit on top (never another matching).
`build_rewards` turns the params' `rewards.funcs` names and settings (one dict per reward, keyed by
its name, plus `adaptive` / `adaptive_settings`) into callables; `grpo.reward_weights` goes to
GRPOConfig as is. Every reward reads the gold columns of schema.Example.to_row by name and returns
None for rows whose task family it does not score. All are in [0, 1] (adaptive wrapping aside).
Relation types without direction are a property of the task (tasks.TaskSpec.symmetric), shared by the
metric and every reward, not a reward setting.

| name        | families                     | what it scores                                        |
|-------------|------------------------------|-------------------------------------------------------|
| format      | all                          | valid JSON of the schema 1, repaired 0.5, else 0      |
| entity      | ner, joint                   | soft F1 of entities (overlap and type partial credit) |
| relation    | re, triples, joint           | soft F1 of triples (head, tail, type credit) / label  |
| nary        | nary                         | Jaccard x label soft F1, duplicate/contradiction cost |
| grounding   | ner, triples, nary, joint    | share of predicted strings found in the text          |
| length      | all                          | within the gold structure's budget, no repetition     |
| reasoning   | all                          | <think> quotes the text, names labels, supports answer|
| factual, pathway, consistency, uncertainty | see verifiers.py | BioRLHF V1-V4            |
| verifiers   | where any of V1-V4 applies   | weighted V1-V4, weights renormalised per example      |
| binary      | all                          | 1 only for an exactly correct structure (ablation)    |
"""

from __future__ import annotations

import inspect
import math

from .adaptive import TaskAdaptive
from .binary import BinaryReward
from .grounding import GroundingReward, grounding_reward
from .length import LengthReward
from .nary import NaryReward
from .ner import EntityReward, format_reward
from .reasoning import ReasoningReward
from .relation import RelationReward
from .verifiers import (ConsistencyReward, PathwayReward, UncertaintyReward, VerifierReward,
                        factual_reward)


# The settings the rewards read: params' `rewards.<key>` -> the class its keyword arguments go to. REWARDS
# is built from this table, and params' RewardParams names the same keys (a test holds them together), so
# a setting the schema accepts is one a reward reads, and the reverse.
SETTINGS = {"entity": EntityReward, "relation": RelationReward, "nary": NaryReward, "grounding": GroundingReward,
            "length": LengthReward, "reasoning": ReasoningReward, "pathway": PathwayReward,
            "consistency": ConsistencyReward, "uncertainty": UncertaintyReward, "verifiers": VerifierReward,
            "binary": BinaryReward, "adaptive_settings": TaskAdaptive}
SHARED = ("polarity",)  # settings of several rewards: given to each whose constructor takes them


def _builder(name: str):
    """settings -> SETTINGS[name] built from `settings[name]`, plus the SHARED settings it takes."""
    cls = SETTINGS[name]
    takes = [key for key in SHARED if key in inspect.signature(cls).parameters]

    def build(settings: dict):
        own = dict(settings.get(name) or {})
        own.update({key: settings[key] for key in takes if key not in own and settings.get(key) is not None})
        return cls(**own)

    return build


REWARDS = {"format": lambda settings: format_reward, "factual": lambda settings: factual_reward,
           **{name: _builder(name) for name in SETTINGS if name != "adaptive_settings"}}  # that one wraps the others


def build_rewards(names: list[str], settings: dict | None = None) -> list:
    """Reward callables for `names`; `settings` maps a reward name to its keyword arguments, and may hold
    `polarity` (shared by the rewards that use it), `adaptive` (wrap every reward in TaskAdaptive) and
    `adaptive_settings` (TaskAdaptive's keyword arguments)."""
    settings = settings or {}
    if settings.get("symmetric_relations"):
        raise ValueError("rewards.symmetric_relations is no longer a reward setting: relation types without "
                         "direction are declared per task (tasks.TaskSpec.symmetric), so that the metric and "
                         f"every reward read them alike; got {settings['symmetric_relations']}")
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise KeyError(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    funcs = [REWARDS[name](settings) for name in names]
    if settings.get("adaptive"):
        funcs = [TaskAdaptive(f, **(settings.get("adaptive_settings") or {})) for f in funcs]
    return funcs


def composite_rewards(funcs: list, weights: list[float] | None, completions: list[str], rows: list[dict]) -> list[float]:
    """Weighted sum of the rewards per completion, as GRPO combines them: a reward that does not apply to
    a row (None) is left out of the sum; `weights` None = all 1."""
    weights = weights or [1.0] * len(funcs)
    columns = {key: [row.get(key) for row in rows] for key in {k for row in rows for k in row} - {"id"}}
    totals = [0.0] * len(completions)
    for func, weight in zip(funcs, weights):
        for i, value in enumerate(func(completions, **columns)):
            if value is not None and not math.isnan(value):
                totals[i] += weight * value
    return totals


__all__ = ["REWARDS", "build_rewards", "composite_rewards", "format_reward", "EntityReward", "RelationReward",
           "NaryReward",
           "GroundingReward", "grounding_reward", "LengthReward", "ReasoningReward", "factual_reward", "PathwayReward",
           "ConsistencyReward", "UncertaintyReward", "VerifierReward", "BinaryReward", "TaskAdaptive"]
