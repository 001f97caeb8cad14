"""Hierarchical task-aware prompts, built from levels that params can switch off one by one.

Levels: (1) role and domain, (2) task-family definition, (3) label inventory with definitions,
(4) output schema, (5) few-shot examples, (6) reasoning template, (7) a stated confidence after the
answer (trained by the `confidence` stage). The levels form the system message,
shared by every example of a dataset (so its key/value prefix can be computed once); the text to
annotate is the user message. Targets are JSON, never BIO tag strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .run_files import data_path, read_jsonl
from .tasks import TaskSpec, family_of, get_task, grouped_mentions, target_json

LEVELS = ("role", "task", "labels", "schema", "few_shot", "reasoning", "confidence")
CONFIDENCE_LINE = "Confidence: {percent}%"  # what the confidence level asks for; parsing.stated_confidence reads it


def ner_target(entities: list[dict], labels: list[str]) -> str:
    """Gold NER answer: mentions grouped by type, in text order, repeats kept (one per occurrence)."""
    return json.dumps(grouped_mentions(entities, labels), ensure_ascii=False)


MARKERS = (("<< ", " >>"), ("[[ ", " ]]"))  # pairwise RE: first argument in the text, then the second


def build_target(row: dict, spec: TaskSpec) -> str:
    """Gold answer of a row in its family's output schema: exactly the JSON that parsing.parse reads."""
    return target_json(row, spec)


_BREAKS = re.compile(r'[;.!?\n"“”]')


def _evidence(text: str, start: int, end: int, words: int = 2) -> str:
    """The mention with up to `words` words either side, cut at sentence or clause breaks and quote marks
    (so the reasoning reward's quote and line patterns see one grounded phrase)."""
    left = _BREAKS.split(text[:start])[-1].split()[-words:] if start else []
    right = _BREAKS.split(text[end:])[0].split()[:words]
    return " ".join(left + [text[start:end]] + right)


def _q(s: str) -> str:
    return '"' + s.replace('"', "'") + '"'


def reasoning_target(row: dict, spec: TaskSpec) -> str:
    """MimicSFT target: a <think> plan derived from the gold structure alone (no teacher model), then the
    gold JSON answer. The plan follows the reasoning level's instruction and what rewards.reasoning scores:
    one line per answer item, quoting the item and (for NER) its evidence words from the text, naming the
    label. parsing.parse drops the leading <think> block, so the answer parses back to the gold structure.

    >>> row = {"text": "Naloxone reversed hypotension.", "entities": [
    ...     {"start": 0, "end": 8, "text": "Naloxone", "type": "Chemical"}]}
    >>> from .tasks import get_task
    >>> print(reasoning_target(row, get_task("bc5cdr")))
    <think>
    "Naloxone" in "Naloxone reversed hypotension" -> Chemical
    </think>
    {"Chemical": ["Naloxone"], "Disease": []}
    """
    text = row.get("text") or ""
    lines = [line for part in family_of(spec).parts for line in _PLAN[part.name](row, text)]
    if not lines:
        lines.append("No " + " or ".join(spec.label_names) + " in the text.")
    return "<think>\n" + "\n".join(lines) + "\n</think>\n" + build_target(row, spec)


def _entity_plan(row: dict, text: str) -> list[str]:
    lines, seen = [], set()
    for e in sorted(row.get("entities") or [], key=lambda e: (e["start"], e["end"])):
        if (e["text"], e["type"]) in seen:
            continue
        seen.add((e["text"], e["type"]))
        evidence = _evidence(text, e["start"], e["end"]) if text[e["start"]:e["end"]] == e["text"] else ""
        lines.append(f"{_q(e['text'])} in {_q(evidence)} -> {e['type']}" if evidence and evidence != e["text"]
                     else f"{_q(e['text'])} -> {e['type']}")
    return lines


def _label_plan(row: dict, text: str) -> list[str]:
    first, second = sorted(row["entities"], key=lambda e: (e["start"], e["end"]))
    return [f"{_q(first['text'])} and {_q(second['text'])} -> {row['label']}"]


_PLAN = {  # one <think> line per answer item, for each part of a family's answer
    "entities": _entity_plan,
    "relations": lambda row, text: [f"{_q(r['head'])} {r['relation']} {_q(r['tail'])}"
                                    for r in row.get("relations") or []],
    "label": _label_plan,
    "combinations": lambda row, text: [" + ".join(_q(d) for d in c["drugs"]) + f" -> {c['label']}"
                                       for c in row.get("combinations") or []],
    "answer": lambda row, text: [f"Answer: {row['answer']}"],
}


def mark_entities(text: str, entities: list[dict]) -> str:
    """The text with the pair's arguments wrapped: << first >> and [[ second ]] (by start offset)."""
    if len(entities) != 2:
        raise ValueError(f"pairwise RE needs exactly two entities, got {len(entities)}")
    first, second = sorted(entities, key=lambda e: (e["start"], e["end"]))
    inserts = [(first["start"], 1, MARKERS[0][0]), (first["end"], 0, MARKERS[0][1]),
               (second["start"], 1, MARKERS[1][0]), (second["end"], 0, MARKERS[1][1])]
    out, cursor = [], 0
    for position, _, marker in sorted(inserts, key=lambda x: (x[0], x[1])):
        out += [text[cursor:position], marker]
        cursor = position
    return "".join(out + [text[cursor:]])


def input_text(row: dict, spec: TaskSpec) -> str:
    """What the model reads: the row's text, with the two arguments marked for pairwise RE."""
    return mark_entities(row["text"], row["entities"]) if family_of(spec).marks_pair else row["text"]


def system_prompt(spec: TaskSpec, levels: list[str], shots: list[dict] | None = None) -> str:
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown prompt levels {sorted(unknown)}; valid: {list(LEVELS)}")
    # Terse on purpose: on CPU every prompt token is paid for in every SFT step and every rollout.
    family, parts = family_of(spec), []
    if "role" in levels:
        parts.append(f"You are a biomedical text-mining expert. Domain: {spec.domain}.")
    if "task" in levels:
        marked = " The pair is marked << >> and [[ ]]." if family.marks_pair else ""
        parts.append(f"Task ({family.name.upper()}): {family.definition}{marked}")
    if "labels" in levels and family.label_heading:
        parts.append(f"{family.label_heading}: " + "; ".join(f"{k} = {v}" for k, v in spec.labels.items()) + ".")
        if spec.relation_labels:
            parts.append("Relations: " + "; ".join(f"{k} = {v}" for k, v in spec.relation_labels.items()) + ".")
    if "schema" in levels:
        only = "" if "confidence" in levels else " JSON only."  # the confidence line follows the JSON
        parts.append(f"Output: {family.output_schema}, e.g. {json.dumps(family.example(spec))}.{only}")
    if "few_shot" in levels and shots:
        own = [s for s in shots if s.get("dataset", spec.dataset) == spec.dataset]
        if own:
            parts.append("Examples:\n" + "\n".join(
                f"Text: {input_text(s, spec)}\nAnswer: {build_target(s, spec)}" for s in own))
    if "reasoning" in levels:
        parts.append(f"First think inside <think>...</think>: {family.reasoning_hint}, then give the JSON answer.")
    if "confidence" in levels:
        parts.append("After the JSON, one last line: " + CONFIDENCE_LINE.format(percent="N")
                     + ", the chance (0-100) that your answer is exactly right.")
    return "\n".join(parts)


def build_messages(spec: TaskSpec, text: str, levels: list[str], shots: list[dict] | None = None) -> list[dict]:
    """Chat messages for one example; the system message holds the shared hierarchical prefix."""
    messages = [{"role": "user", "content": f"Text: {text}"}]
    system = system_prompt(spec, levels, shots)
    return [{"role": "system", "content": system}] + messages if system else messages


def row_messages(row: dict, spec: TaskSpec, levels: list[str], shots: list[dict] | None = None) -> list[dict]:
    """Chat messages for a data row (entity-marked input for pairwise RE)."""
    return build_messages(spec, input_text(row, spec), levels, shots)


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


def shots_for(params, run_dir: str | Path) -> list[dict]:
    """Few-shot examples: the first `prompt.few_shot` rows of the run's data/sft.jsonl (fixed by the data seed)."""
    if "few_shot" not in params.prompt.levels or not params.prompt.few_shot:
        return []
    return read_jsonl(data_path(run_dir, "sft"))[:params.prompt.few_shot]


def prompt_messages(row: dict, params, shots: list[dict]) -> list[dict]:
    """Chat messages for a data row with the params' prompt levels (training, evaluation and sampling)."""
    return row_messages(row, get_task(row["dataset"]), params.prompt.levels, shots)


def sft_rows(rows: list[dict], params, shots: list[dict]) -> list[dict]:
    """Conversational prompt-completion rows: TRL puts the loss on the completion only. With the
    `reasoning` prompt level the completion is MimicSFT's gold-derived <think> plan, then the answer."""
    target = reasoning_target if "reasoning" in params.prompt.levels else build_target  # MimicSFT
    return [{"prompt": prompt_messages(r, params, shots),
             "completion": [{"role": "assistant", "content": target(r, get_task(r["dataset"]))}]}
            for r in rows]


def first_rows(rows: list[dict]) -> dict[str, dict]:
    """The first row of each dataset, in order of appearance (one example per dataset of a mixture)."""
    first: dict[str, dict] = {}
    for row in rows:
        first.setdefault(row["dataset"], row)
    return first


def levels_by_dataset(first: dict[str, dict], levels: list[str], tokenizer, shots: list[dict]) -> list[dict]:
    """Prompt tokens as the levels are added one at a time (level_table), one column per dataset."""
    tables = {name: level_table(get_task(name), input_text(row, get_task(name)), levels, tokenizer, shots)
              for name, row in first.items()}
    steps = [r["levels"] for r in next(iter(tables.values()), [])]
    return [{"levels": step} | {name: table[k]["tokens"] for name, table in tables.items()}
            for k, step in enumerate(steps)]


def sft_examples_text(first: dict[str, dict], params, shots: list[dict], tokenizer) -> str:
    """Each dataset's training example as SFT sees it: the prompt through the chat template, then the target."""
    parts = []
    for (name, row), example in zip(first.items(), sft_rows(list(first.values()), params, shots)):
        parts += [f"===== {name} ({get_task(name).family}): prompt",
                  tokenizer.apply_chat_template(example["prompt"], tokenize=False, add_generation_prompt=True),
                  f"===== {name}: target", example["completion"][0]["content"] + "\n"]
    return "\n".join(parts)

