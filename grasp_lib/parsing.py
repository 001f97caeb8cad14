"""One tolerant parser from completion text to a typed prediction plus diagnostics.

Rewards and metrics both call `parse`, so the training signal and the reported metric read a
completion the same way. A parse failure is an outcome (status "unparsable"), never an exception.

Status: "valid" (the whole completion is JSON of the task's schema), "repaired" (JSON was recovered:
code fences, a <think> block or prose around it, missing closing brackets, items of the wrong shape
dropped), "unparsable" (nothing usable). A last line "Confidence: N%" (the `confidence` prompt level)
is part of the schema, not prose: `stated_confidence` reads it and `parse` sets it aside.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from .tasks import FAMILIES

VALID, REPAIRED, UNPARSABLE = "valid", "repaired", "unparsable"
_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")
_DECODER = json.JSONDecoder()
# "confidence: 80%", "Confidence 0.8", a JSON key "confidence": 0.8 (BioRLHF V4's pattern)
_CONFIDENCE = re.compile(r"confiden\w*\W{0,4}(\d{1,3}(?:\.\d+)?)\s*(%?)", re.IGNORECASE)
_CONFIDENCE_LINE = re.compile(r"\s*confidence\s*:\s*\d{1,3}(?:\.\d+)?\s*%?\s*$", re.IGNORECASE)


def stated_confidence(text: str) -> float | None:
    """The confidence a completion states as a number, in [0, 1]: "Confidence: 80%" -> 0.8, a bare number
    above 1 read as a percentage, values over 100% capped at 1; None when it states none.

    >>> stated_confidence('{"Chemical": ["naloxone"]}\\nConfidence: 75%')
    0.75
    """
    if not isinstance(text, str):
        return None
    m = _CONFIDENCE.search(text)
    if not m:
        return None
    value = float(m.group(1))
    value = value / 100 if m.group(2) or value > 1 else value
    return min(1.0, value)


@dataclass(frozen=True)
class Parsed:
    """A typed prediction; which fields are filled depends on the task family (see tasks.OUTPUT_SCHEMAS)."""

    status: str
    mentions: tuple[tuple[str, str], ...] = ()  # ner, joint: (text, type) in answer order
    reason: str = ""
    think: str = ""
    relations: tuple[tuple[str, str, str], ...] = ()  # triples, joint: (head, relation, tail)
    combinations: tuple[tuple[tuple[str, ...], str], ...] = ()  # nary: (drugs in answer order, label)
    label: str | None = None  # re: the relation label of the marked pair
    answer: str | None = None  # qa: the short answer

    @property
    def ok(self) -> bool:
        return self.status != UNPARSABLE


def without_confidence(text: str) -> str:
    """The completion without a final "Confidence: N%" line (what the `confidence` prompt level adds)."""
    return _CONFIDENCE_LINE.sub("", text)


@lru_cache(maxsize=65536)  # GRPO scores each completion with several rewards: parse once
def parse(completion: str, labels: tuple[str, ...], family: str = "ner",
          relation_labels: tuple[str, ...] = ()) -> Parsed:
    """Parse a completion for a task family.

    `labels` are the entity types (ner, joint), relation labels (re, triples) or combination labels
    (nary); `relation_labels` are the relation types of the joint family. NER accepts
    {"Type": ["mention", ...]} or [{"text": ..., "type": ...}].

    >>> parse('{"Chemical": ["naloxone"], "Disease": []}', ("Chemical", "Disease")).mentions
    (('naloxone', 'Chemical'),)
    >>> parse('Sure! {"Chemical": ["naloxone"]', ("Chemical", "Disease")).status
    'repaired'
    """
    if not isinstance(completion, str):
        return Parsed(UNPARSABLE, reason=f"completion is {type(completion).__name__}, not str")
    think_match = _THINK.match(completion)
    think = completion[think_match.start():think_match.end()] if think_match else ""
    body = completion[think_match.end():] if think_match else completion
    body = without_confidence(body)  # the confidence level's last line, read by stated_confidence
    value, repairs = _load_json(body)
    if value is None:
        return Parsed(UNPARSABLE, reason=repairs or "no JSON object or list found", think=think)
    if family not in _CONVERTERS:
        return Parsed(UNPARSABLE, reason=f"unknown task family {family!r}", think=think)
    fields, problems = _CONVERTERS[family](value, labels, relation_labels)
    if fields is None:
        return Parsed(UNPARSABLE, reason=problems, think=think)
    reasons = "; ".join(r for r in (repairs, problems) if r)
    return Parsed(REPAIRED if reasons else VALID, reason=reasons, think=think, **fields)


def _load_json(body: str) -> tuple[object | None, str]:
    """(value, what was repaired) or (None, why not)."""
    stripped = body.strip()
    try:
        return json.loads(stripped), ""
    except ValueError:
        pass
    unfenced = _FENCE.sub("", stripped)
    starts = [i for i in (unfenced.find("{"), unfenced.find("[")) if i >= 0]
    if not starts:
        return None, "no JSON object or list found"
    start = min(starts)
    try:
        value, end = _DECODER.raw_decode(unfenced, start)
        return value, "text around the JSON"
    except ValueError:
        pass
    closed = _close_brackets(unfenced[start:])
    if closed is not None:
        try:
            return json.loads(closed), "missing closing brackets"
        except ValueError:
            pass
    return None, "invalid JSON"


def _close_brackets(fragment: str) -> str | None:
    """Append the closers a truncated JSON fragment lacks (an open string is closed first)."""
    stack, in_string, escaped = [], False, False
    for ch in fragment:
        if in_string:
            escaped = ch == "\\" and not escaped
            if ch == '"' and not escaped:
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
    if not stack and not in_string:
        return None
    tail = fragment.rstrip().rstrip(",")
    return tail + ('"' if in_string else "") + "".join(reversed(stack))


# The per-family converters (JSON value -> typed fields) live in the family records (tasks.FAMILIES).
_CONVERTERS = {name: family.convert for name, family in FAMILIES.items()}
