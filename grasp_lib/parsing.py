"""One tolerant parser from completion text to a typed prediction plus diagnostics.

Rewards and metrics both call `parse`, so the training signal and the reported metric read a
completion the same way. A parse failure is an outcome (status "unparsable"), never an exception.

Status: "valid" (the whole completion is JSON of the task's schema), "repaired" (JSON was recovered:
code fences, a <think> block or prose around it, missing closing brackets, items of the wrong shape
dropped), "unparsable" (nothing usable). A last line "Confidence: N%" (the `confidence` prompt level)
is part of the schema, not prose: `stated_confidence` reads it and `parse` sets it aside.

Bounded work on any input: time linear in the completion's length (no pattern backtracks over a run
of whitespace), no recursion deeper than MAX_DEPTH, and completions over MAX_CHARS are unparsable with
a reason starting "too long" (counted apart from other failures by that reason).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from .tasks import FAMILIES

VALID, REPAIRED, UNPARSABLE = "valid", "repaired", "unparsable"
TOO_LONG = "too long"  # the reason of a completion over MAX_CHARS (status unparsable)
MAX_CHARS = 200_000  # ~50x what 256 tokens can spell; a runaway generation beyond it is not read
MAX_DEPTH = 32  # JSON nesting; every task schema needs at most 3 levels
_CACHED_CHARS = 8192  # longer completions are parsed again rather than held in the cache
# match() at position 0 only; the lazy .*? stops at the first </think>
_THINK = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)
_DECODER = json.JSONDecoder()
# "confidence: 80%", "Confidence 0.8", a JSON key "confidence": 0.8 (BioRLHF V4's pattern). The letters
# after "confiden" are matched atomically ((?=(x))\1: no backtracking into them, as the next part can
# never match a letter), so "confidenconfiden..." costs one pass.
_CONFIDENCE = re.compile(r"confiden(?=([a-z_]{0,16}))\1\W{0,4}(?P<number>\d{1,3}(?:\.\d+)?)\s*(?P<percent>%?)",
                         re.IGNORECASE)
# the same as a last line; searched in the right-stripped text and anchored at its end (\Z)
_CONFIDENCE_LINE = re.compile(r"confidence\s*:\s*\d{1,3}(?:\.\d+)?\s*%?\Z", re.IGNORECASE)
# bracket structure: strings and other text dropped with regular expressions (C), then one loop over brackets
# a JSON string with its escapes; one that never closes runs to the end and leaves its quote (group 1),
# so no quote is tried twice
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(")[^"\\]*(?:\\.[^"\\]*)*\\?\Z', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_CLOSER = {"[": "]", "{": "}"}


def stated_confidence(text: str) -> float | None:
    """The confidence a completion states as a number, in [0, 1]: "Confidence: 80%" -> 0.8, a bare number
    above 1 read as a percentage, values over 100% capped at 1; None when it states none.

    >>> stated_confidence('{"Chemical": ["naloxone"]}\\nConfidence: 75%')
    0.75
    """
    if not isinstance(text, str):
        return None
    m = _CONFIDENCE.search(text[:MAX_CHARS])
    if not m:
        return None
    value = float(m.group("number"))
    value = value / 100 if m.group("percent") or value > 1 else value
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
    """The completion without a final "Confidence: N%" line (what the `confidence` prompt level adds).

    >>> without_confidence('{"Chemical": []}\\n  Confidence: 75% \\n')
    '{"Chemical": []}'
    """
    stripped = text.rstrip()
    m = _CONFIDENCE_LINE.search(stripped)
    return stripped[:m.start()].rstrip() if m else text


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
    >>> parse('[' * 10000, ("Chemical",)).reason
    'JSON nested deeper than 32 levels'
    """
    if not isinstance(completion, str):
        return Parsed(UNPARSABLE, reason=f"completion is {type(completion).__name__}, not str")
    if len(completion) > MAX_CHARS:
        return Parsed(UNPARSABLE, reason=f"{TOO_LONG}: {len(completion)} characters, more than {MAX_CHARS}")
    if len(completion) > _CACHED_CHARS:
        return _parse(completion, labels, family, relation_labels)
    return _parse_cached(completion, labels, family, relation_labels)


def _parse(completion: str, labels: tuple[str, ...], family: str, relation_labels: tuple[str, ...]) -> Parsed:
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


_parse_cached = lru_cache(maxsize=65536)(_parse)  # GRPO scores each completion with several rewards: parse once
parse.cache_clear = _parse_cached.cache_clear  # rewards.common.clear_caches empties it
parse.cache_info = _parse_cached.cache_info


def _load_json(body: str) -> tuple[object | None, str]:
    """(value, what was repaired) or (None, why not)."""
    stripped = body.strip()
    unfenced = _unfence(stripped)
    starts = [i for i in (unfenced.find("{"), unfenced.find("[")) if i >= 0]
    fragment = unfenced[min(starts):] if starts else ""
    # nesting checked before json recurses into it (fewer openers than MAX_DEPTH cannot nest deeper)
    scan = _scan(fragment) if fragment.count("[") + fragment.count("{") > MAX_DEPTH else None
    if scan and scan[2]:
        return None, f"JSON nested deeper than {MAX_DEPTH} levels"
    if not stripped.startswith(("[", "{")):  # a bracket start is decoded once, below
        value = _json_or_none(json.loads, stripped)
        if value is not None:
            return value[0], ""
    if not starts:
        return None, "no JSON object or list found"
    decoded = _json_or_none(_DECODER.raw_decode, fragment)
    if decoded is not None:
        value, end = decoded[0]
        alone = stripped.startswith(("[", "{")) and end == len(stripped)  # the completion is this JSON alone
        return value, "" if alone else "text around the JSON"
    closed = _close_brackets(fragment, scan)
    value = _json_or_none(json.loads, closed) if closed is not None else None
    if value is not None:
        return value[0], "missing closing brackets"
    return None, "invalid JSON"


def _json_or_none(decode, text: str) -> tuple[object] | None:
    """(value,) or None where `text` is not JSON (a 1-tuple, since null is a value)."""
    try:
        return (decode(text),)
    except (ValueError, RecursionError):  # RecursionError: a safety net, _scan caps the depth first
        return None


def _unfence(text: str) -> str:
    """`text` without a leading ``` (or ```json) and a trailing ``` fence (string operations: linear)."""
    if text.startswith("```"):
        text = text[3:]
        text = (text[4:] if text.startswith("json") else text).lstrip()
    if text.endswith("```"):
        text = text[:-3].rstrip()
    return text


def _scan(fragment: str) -> tuple[list[str] | None, bool, bool]:
    """(the closers still open, innermost last, or None at a closer that matches no opener; whether the
    fragment ends inside a string; whether the nesting exceeds MAX_DEPTH, where the scan stops).
    Strings are read with their escapes (a `\\"` does not end one)."""
    # the text between strings and each string's group 1 (None, or the quote of one that runs to the end);
    # split and join stay in C, a sub with a replacement template costs a Python call per string
    outside = "".join(filter(None, _STRING.split(fragment)))
    quote = outside.find('"')  # the quote of a string that runs to the end
    closers = []
    for bracket in _NOT_BRACKET.sub("", outside[:quote] if quote >= 0 else outside):
        if bracket in _CLOSER:
            closers.append(_CLOSER[bracket])
            if len(closers) > MAX_DEPTH:
                return closers, quote >= 0, True
        elif not closers or closers.pop() != bracket:
            return None, quote >= 0, False
    return closers, quote >= 0, False


def _close_brackets(fragment: str, scan: tuple[list[str] | None, bool, bool] | None = None) -> str | None:
    """Append the closers a truncated JSON fragment lacks (an open string is closed first); `scan`:
    _scan(fragment) when the caller has it.

    >>> json.loads(_close_brackets('{"Chemical": ["5\\\\"-AMP", "nalox'))
    {'Chemical': ['5"-AMP', 'nalox']}
    """
    closers, in_string, too_deep = scan or _scan(fragment)
    if closers is None or too_deep or (not closers and not in_string):
        return None
    tail = fragment.rstrip().rstrip(",")
    if in_string and (len(tail) - len(tail.rstrip("\\"))) % 2:
        tail = tail[:-1]  # a dangling backslash would escape the closing quote
    return tail + ('"' if in_string else "") + "".join(reversed(closers))


# The per-family converters (JSON value -> typed fields) live in the family records (tasks.FAMILIES).
_CONVERTERS = {name: family.convert for name, family in FAMILIES.items()}
