"""From corpora to examples: cut documents into units, sample seeded splits, write JSONL rows.

Rows carry the gold entities with offsets into the row's text; prompts and targets are built from
them later (prompt levels are a params choice, the data is not).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from . import corpora
from .params import DataParams
from .schema import Example, split_units
from .tasks import get_task


def build_examples(name: str, split: str, unit: str, data_dir: str | None = None) -> tuple[list[Example], dict]:
    """All units of a split as Examples, plus the reader's report (read / converted / rejected)."""
    docs, report = corpora.load(name, split, data_dir)
    task = get_task(name).family
    examples = []
    for doc in docs:
        for unit_id, text, entities in split_units(doc, unit):
            rows = [{"start": e.start, "end": e.end, "type": e.type, "text": e.text} for e in entities]
            examples.append(Example(unit_id, task, name, text, sorted(rows, key=lambda r: (r["start"], r["end"]))))
    return examples, report.as_dict() | {"documents": len(docs), "units": len(examples)}


def sample_splits(data: DataParams, seed: int) -> tuple[dict[str, list[Example]], dict]:
    """sft / rl (disjoint, from the train split) and eval (from the eval split), seeded."""
    train, train_report = build_examples(data.dataset, data.train_split, data.unit, data.data_dir)
    evaluation, eval_report = build_examples(data.dataset, data.eval_split, data.unit, data.data_dir)
    rng = random.Random(seed)
    usable = [e for e in train if len(e.text) <= data.max_chars]
    needed = data.sft_size + data.rl_size
    if needed > len(usable):
        raise ValueError(f"data.sft_size + data.rl_size = {needed} > {len(usable)} usable {data.dataset} "
                         f"{data.train_split} units (max_chars {data.max_chars})")
    picked = rng.sample(usable, needed)
    eval_usable = [e for e in evaluation if len(e.text) <= data.max_chars]
    eval_rows = eval_usable if data.eval_size is None else random.Random(seed + 1).sample(
        eval_usable, min(data.eval_size, len(eval_usable)))
    report = {"train": train_report, "eval": eval_report,
              "too_long": {"train": len(train) - len(usable), "eval": len(evaluation) - len(eval_usable)}}
    return {"sft": picked[:data.sft_size], "rl": picked[data.sft_size:], "eval": eval_rows}, report


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as err:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({err})") from None
    return rows


def split_table(splits: dict[str, list[Example]]) -> list[dict]:
    """Counts per split and entity type, for notebook 01."""
    table = []
    for split, examples in splits.items():
        types = Counter(e["type"] for ex in examples for e in ex.entities)
        table.append({"split": split, "examples": len(examples),
                      "without_entities": sum(1 for ex in examples if not ex.entities),
                      "mentions": sum(types.values()), **dict(sorted(types.items()))})
    return table


def prepare(params, run_dir: str | Path) -> tuple[dict[str, list[Example]], dict]:
    """Sample the splits and write runs/R/data/{sft,rl,eval}.jsonl plus data/report.json."""
    run_dir = Path(run_dir)
    splits, report = sample_splits(params.data, params.seed)
    for name, examples in splits.items():
        write_jsonl([e.to_row() for e in examples], run_dir / "data" / f"{name}.jsonl")
    (run_dir / "data" / "report.json").write_text(json.dumps(report, indent=2))
    return splits, report
