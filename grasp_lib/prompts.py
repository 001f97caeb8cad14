"""Hierarchical task-aware prompts, built from levels that params can switch off one by one.

Levels: (1) role and domain, (2) task-family definition, (3) label inventory with definitions,
(4) output schema, (5) few-shot examples, (6) reasoning template. Levels 1-5 form the system message,
shared by every example of a dataset (so its key/value prefix can be computed once); the text to
annotate is the user message. Targets are JSON, never BIO tag strings.
"""

from __future__ import annotations

import json

from .tasks import FAMILIES, OUTPUT_SCHEMAS, TaskSpec

LEVELS = ("role", "task", "labels", "schema", "few_shot", "reasoning")


def ner_target(entities: list[dict], labels: list[str]) -> str:
    """Gold NER answer: mentions grouped by type, in text order, repeats kept (one per occurrence)."""
    grouped: dict[str, list[str]] = {label: [] for label in labels}
    for ent in sorted(entities, key=lambda e: (e["start"], e["end"])):
        grouped.setdefault(ent["type"], []).append(ent["text"])
    return json.dumps(grouped, ensure_ascii=False)


def system_prompt(spec: TaskSpec, levels: list[str], shots: list[dict] | None = None) -> str:
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown prompt levels {sorted(unknown)}; valid: {list(LEVELS)}")
    # Terse on purpose: on CPU every prompt token is paid for in every SFT step and every rollout.
    parts = []
    if "role" in levels:
        parts.append(f"You are a biomedical text-mining expert. Domain: {spec.domain}.")
    if "task" in levels:
        parts.append(f"Task ({spec.family.upper()}): {FAMILIES[spec.family]}")
    if "labels" in levels:
        parts.append("Types: " + "; ".join(f"{k} = {v}" for k, v in spec.labels.items()) + ".")
    if "schema" in levels:
        example = json.dumps({label: [] for label in spec.label_names})
        parts.append(f"Output: {OUTPUT_SCHEMAS[spec.family]}, e.g. {example}. JSON only.")
    if "few_shot" in levels and shots:
        parts.append("Examples:\n" + "\n".join(
            f"Text: {s['text']}\nAnswer: {ner_target(s['entities'], spec.label_names)}" for s in shots))
    if "reasoning" in levels:
        parts.append("First think inside <think>...</think>: list candidate mentions with the words that "
                     "show their type, then give the JSON answer.")
    return "\n".join(parts)


def build_messages(spec: TaskSpec, text: str, levels: list[str], shots: list[dict] | None = None) -> list[dict]:
    """Chat messages for one example; the system message holds the shared hierarchical prefix."""
    messages = [{"role": "user", "content": f"Text: {text}"}]
    system = system_prompt(spec, levels, shots)
    return [{"role": "system", "content": system}] + messages if system else messages


def level_table(spec: TaskSpec, text: str, levels: list[str], tokenizer, shots: list[dict] | None = None) -> list[dict]:
    """The prompt built with levels added one at a time, with its token count (chat template included)."""
    rows = []
    for k in range(len(levels) + 1):
        used = list(levels[:k])
        messages = build_messages(spec, text, used, shots)
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        rows.append({"levels": "+".join(used) or "(none)", "added": used[-1] if used else "-",
                     "tokens": len(tokenizer(rendered, add_special_tokens=False)["input_ids"]), "prompt": rendered})
    return rows
