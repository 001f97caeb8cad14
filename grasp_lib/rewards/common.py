"""Helpers every reward uses: completion text, the parsed answer, the gold row of each completion, caches.

A reward reads the gold columns TRL passes (schema.Example.to_row) by name and scores each completion
with its task family's parts (tasks.FAMILIES): the same items, normalisation and one-to-one matching as
the metrics, plus the reward's own partial credit. Rewards are called by TRL once per reward function on
the same batch, so the expensive steps are cached by their (hashable) inputs: `parse` (parsing.py) and
the occurrences of a string in a text (matching.candidates). `clear_caches()` empties them (the
benchmark calls it so that it measures cold work, as a new GRPO batch sees it).
"""

from __future__ import annotations

from typing import NamedTuple

from ..matching import candidates
from ..parsing import Parsed, parse
from ..tasks import Family, TaskSpec, family_of, get_task

COLUMNS = ("text", "entities", "relations", "label", "combinations", "answer", "alternatives")


def completion_text(completion) -> str:
    """TRL passes plain strings, or (conversational prompts) a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def parse_completion(completion, dataset: str) -> Parsed:
    return parse(completion_text(completion), *get_task(dataset).parse_args())


class Gold(NamedTuple):
    """One completion's gold row (the columns TRL passed), its task and its family."""
    row: dict
    spec: TaskSpec
    family: Family


def golds(n: int, dataset, columns: dict) -> list[Gold]:
    """The gold row, task and family of each of `n` completions, from the dataset and gold columns."""
    present = {k: columns[k] for k in COLUMNS if columns.get(k) is not None}
    out = []
    for i in range(n):
        spec = get_task(dataset[i])
        out.append(Gold({k: v[i] for k, v in present.items()} | {"dataset": dataset[i]}, spec, family_of(spec)))
    return out


def answer_strings(parsed: Parsed, family: Family, in_text_only: bool = True) -> list[str]:
    """The strings an answer claims are in the source (mentions, relation arguments, drugs); with
    in_text_only False also its label and its free-text answer."""
    strings: list[str] = []
    for part in family.parts:
        items = part.predicted(parsed)
        strings += part.strings(items) if part.in_text else ([] if in_text_only else list(items))
    return strings


def grounded(text: str, mention: str, alignment: str = "lenient") -> bool:
    """Whether `mention` occurs in `text` under `alignment` (matching.candidates, cached)."""
    return bool(candidates(text, mention, alignment))


def clear_caches() -> None:
    parse.cache_clear()
    candidates.cache_clear()
