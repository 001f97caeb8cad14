"""Helpers every reward uses: completion text, the parsed answer and the gold spans of one row."""

from __future__ import annotations

from ..matching import Span, align
from ..parsing import Parsed, parse
from ..tasks import get_task


def completion_text(completion) -> str:
    """TRL passes plain strings, or (conversational prompts) a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def parse_completion(completion, dataset: str) -> Parsed:
    return parse(completion_text(completion), *get_task(dataset).parse_args())


def gold_spans(entities: list[dict]) -> list[Span]:
    return [Span(e["start"], e["end"], e["type"]) for e in entities]


def predicted_spans(parsed: Parsed, text: str) -> list[Span | None]:
    return align(text, parsed.mentions)
