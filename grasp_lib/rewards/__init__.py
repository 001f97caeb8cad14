"""Rewards with TRL's signature `f(completions, **columns) -> list[float | None]`.

Names are stable: they are the logging keys (`rewards/<name>/mean`). `build_rewards` turns the
params' `reward_funcs` names and settings into callables; `reward_weights` goes to GRPOConfig as is.
"""

from __future__ import annotations

from .ner import EntityReward, format_reward

REWARDS = {
    "format": lambda settings: format_reward,
    "entity": lambda settings: EntityReward(**settings.get("entity", {})),
}


def build_rewards(names: list[str], settings: dict | None = None) -> list:
    settings = settings or {}
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise KeyError(f"unknown reward(s) {unknown}; known: {sorted(REWARDS)}")
    return [REWARDS[name](settings) for name in names]


__all__ = ["REWARDS", "build_rewards", "format_reward", "EntityReward"]
