"""From corpora to examples: cut documents into rows of each task family, sample seeded splits, write JSONL.

Rows carry every gold field (schema.Example.to_row) plus `alternatives` (BC2GM's ALTGENE boundaries,
empty elsewhere); prompts and targets are built from them later (prompt levels are a params choice,
the data is not). One dataset (`data.dataset`) or a multi-task mixture (`data.mixture`), optionally with
a two-stage SFT curriculum (`data.curriculum`).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from . import corpora
from .params import DataParams
from .run_files import data_path, report_path, write_json, write_jsonl
from .schema import Document, Example
from .tasks import family_of


class DataRow(dict):
    """A data row (plain dict, JSON as is) whose fields also read as attributes (row.text)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def dataset_rows(name: str, split: str, unit: str = "sentence", data_dir: str | None = None) -> tuple[list[dict], dict]:
    """All rows of one dataset split in its task family, plus the reader's report."""
    rows, report, _ = _split_rows(name, split, unit, data_dir)
    return rows, report


def _split_rows(name: str, split: str, unit: str, data_dir: str | None) -> tuple[list[dict], dict, list[Document]]:
    """(rows, report, documents) of one split; unit ids unique (corpora.load holds document ids unique;
    this holds the ids the units are cut into, which predictions are joined by)."""
    docs, report = corpora.load(name, split, data_dir)
    rows_of = family_of(name).rows
    rows = [DataRow(r) for doc in docs for r in rows_of(name, doc, unit)]
    first: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        row.setdefault("alternatives", [])
        if first.setdefault(row["id"], n) != n:
            raise ValueError(f"{name} {split}: units {first[row['id']]} and {n} have the same id {row['id']!r}")
    return rows, report.as_dict() | {"dataset": name, "split": split, "documents": len(docs), "rows": len(rows)}, docs


def shared_documents(docs: list[Document], others: list[Document]) -> list[str]:
    """Ids of `docs` whose text (whitespace aside) is also a document of `others`: a test document that
    is also a training one inflates the scores (counted in the data report, not an error: some corpora
    repeat short texts on purpose)."""
    seen = {" ".join(d.text.split()) for d in others}
    return [d.id for d in docs if " ".join(d.text.split()) in seen]


def build_examples(name: str, split: str, unit: str, data_dir: str | None = None) -> tuple[list[Example], dict]:
    """All units of a split as Examples (rows without the alternatives column), plus the reader's report."""
    rows, report = dataset_rows(name, split, unit, data_dir)
    fields = ("id", "task", "dataset", "text", "entities", "relations", "label", "combinations", "answer")
    return [Example(**{k: r[k] for k in fields}) for r in rows], report | {"units": len(rows)}


def allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split `total` over datasets in proportion to their sizes (largest remainder), never above a size."""
    available = sum(sizes.values())
    if total > available:
        raise ValueError(f"asked for {total} examples, only {available} available: {sizes}")
    shares = {k: total * v / available if available else 0 for k, v in sizes.items()}
    counts = {k: int(s) for k, s in shares.items()}
    for k in sorted(sizes, key=lambda k: (counts[k] - shares[k], k))[:total - sum(counts.values())]:
        counts[k] += 1
    return counts


def _eval_split(name: str, data: DataParams) -> str:
    return data.eval_split if data.eval_split in corpora.REGISTRY[name] else "test"


def sample_splits(data: DataParams, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """sft / rl (and confidence when data.confidence_size > 0; disjoint, from the train splits) and eval
    (from the eval splits), seeded.

    One dataset: sft_size + rl_size rows sampled from it. A mixture {dataset: cap}: per dataset at most
    `cap` rows (seeded by dataset name), then sft_size and rl_size drawn stratified by dataset from that
    pool; eval_size rows per dataset."""
    mixture = data.mixture or {data.dataset: None}
    pools, report = {}, {"train": {}, "eval": {}, "too_long": {"train": {}, "eval": {}}, "capped": {}}
    eval_rows = []
    for name in mixture:
        rows, rep, train_docs = _split_rows(name, data.train_split, data.unit, data.data_dir)
        usable = [r for r in rows if len(r["text"]) <= data.max_chars]
        rng = random.Random(f"{seed}-{name}")
        cap = mixture[name]
        pools[name] = rng.sample(usable, min(cap, len(usable))) if cap is not None else rng.sample(usable, len(usable))
        evaluation, eval_rep, eval_docs = _split_rows(name, _eval_split(name, data), data.unit, data.data_dir)
        shared = shared_documents(eval_docs, train_docs)
        eval_rep |= {"documents_in_train_split": len(shared), "documents_in_train_split_examples": shared[:5]}
        eval_usable = [r for r in evaluation if len(r["text"]) <= data.max_chars]
        picked = eval_usable if data.eval_size is None else random.Random(f"{seed + 1}-{name}").sample(
            eval_usable, min(data.eval_size, len(eval_usable)))
        if not picked:  # an empty eval split stops here, not after training
            raise ValueError(f"the eval split {_eval_split(name, data)!r} of {name} has no usable rows: "
                             f"{len(evaluation)} rows, {len(evaluation) - len(eval_usable)} of them longer than "
                             f"data.max_chars={data.max_chars}")
        eval_rows += picked
        report["train"][name], report["eval"][name] = rep, eval_rep
        report["too_long"]["train"][name] = len(rows) - len(usable)
        report["too_long"]["eval"][name] = len(evaluation) - len(eval_usable)
        report["capped"][name] = len(pools[name])
    needed = data.sft_size + data.rl_size + data.confidence_size
    available = sum(len(p) for p in pools.values())
    if needed > available:
        raise ValueError(f"data.sft_size + data.rl_size + data.confidence_size = {needed} > {available} usable "
                         f"{data.train_split} rows of {list(mixture)} (max_chars {data.max_chars}, "
                         f"caps {data.mixture})")
    sft_counts = allocate(data.sft_size, {k: len(p) for k, p in pools.items()})
    rl_counts = allocate(data.rl_size, {k: len(p) - sft_counts[k] for k, p in pools.items()})
    # after the sft and rl rows of each pool, so adding a confidence split leaves those two unchanged
    confidence_counts = allocate(data.confidence_size, {k: len(p) - sft_counts[k] - rl_counts[k]
                                                        for k, p in pools.items()})
    sft, rl, confidence = [], [], []
    for name, pool in pools.items():
        first_rl, first_confidence = sft_counts[name], sft_counts[name] + rl_counts[name]
        sft += pool[:first_rl]
        rl += pool[first_rl:first_confidence]
        confidence += pool[first_confidence:first_confidence + confidence_counts[name]]
    rng = random.Random(seed)
    rng.shuffle(sft)
    rng.shuffle(rl)
    rng.shuffle(confidence)
    if data.curriculum:
        sft = curriculum_order(sft, data.curriculum)
    if not data.mixture:  # single dataset: keep the report shape notebook 01 shows
        name = data.dataset
        report = {"train": report["train"][name], "eval": report["eval"][name],
                  "too_long": {"train": report["too_long"]["train"][name], "eval": report["too_long"]["eval"][name]}}
    splits = {"sft": sft, "rl": rl, "eval": eval_rows}
    return splits | ({"confidence": confidence} if data.confidence_size else {}), report


def curriculum_order(rows: list[dict], family: str) -> list[dict]:
    """Taiyi-style two stages: every row gets `stage` A (rows of `family`) first, then B (all rows, shuffled
    as given). Stage A rows are repeated in stage B, so stage B sees every family."""
    stage_a = [DataRow(r, stage="A") for r in rows if r["task"] == family]
    if not stage_a:
        raise ValueError(f"data.curriculum = {family!r}: no SFT rows of that task family "
                         f"(families present: {sorted({r['task'] for r in rows})})")
    return stage_a + [DataRow(r, stage="B") for r in rows]


def curriculum_stages(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """[(stage, rows)] in training order; one stage ("all") when the rows carry no `stage`."""
    stages = [s for s in ("A", "B") if any(r.get("stage") == s for r in rows)]
    if not stages:
        return [("all", rows)]
    return [(s, [r for r in rows if r.get("stage") == s]) for s in stages]


def _get(row, key):
    return row[key] if isinstance(row, dict) else getattr(row, key)


def split_table(splits: dict[str, list]) -> list[dict]:
    """Counts per split and entity type, for notebook 01 (rows or Examples)."""
    table = []
    for split, examples in splits.items():
        types = Counter(e["type"] for ex in examples for e in _get(ex, "entities"))
        table.append({"split": split, "examples": len(examples),
                      "without_entities": sum(1 for ex in examples if not _get(ex, "entities")),
                      "mentions": sum(types.values()), **dict(sorted(types.items()))})
    return table


def mixture_table(splits: dict[str, list[dict]]) -> list[dict]:
    """The mixture's composition: rows per dataset (and family) in each split, for notebook 01."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for split, rows in splits.items():
        for row in rows:
            key = (row["dataset"], row["task"])
            counts.setdefault(key, {s: 0 for s in splits})[split] += 1
            if row.get("stage"):
                stage = f"sft_stage_{row['stage']}"
                counts[key][stage] = counts[key].get(stage, 0) + 1
    return [{"dataset": d, "family": f, **c} for (d, f), c in sorted(counts.items())]


def counts_table(reports: dict) -> list[dict]:
    """Read / converted / rejected per dataset and split from a data report (mixture or single), and the
    units left out as too long for the prompt budget."""
    table = []
    for side in ("train", "eval"):
        entries = reports[side]
        entries = entries if "read" not in entries else {entries.get("dataset", "?"): entries}
        too_long = reports["too_long"][side]
        for name, rep in entries.items():
            table.append({"dataset": name, "split": rep.get("split", side), "documents": rep.get("documents"),
                          "rows": rep.get("rows", rep.get("units")), "read": rep["read"],
                          "converted": rep["converted"], "rejected": rep["rejected"],
                          "too_long": too_long[name] if isinstance(too_long, dict) else too_long})
    return table


def prepare(params, run_dir: str | Path) -> tuple[dict[str, list[dict]], dict]:
    """Sample the splits and write runs/R/data/{sft,rl,eval[,confidence]}.jsonl plus data/report.json."""
    run_dir = Path(run_dir)
    splits, report = sample_splits(params.data, params.seed)
    for name, rows in splits.items():
        write_jsonl(rows, data_path(run_dir, name))
    write_json(report, report_path(run_dir))
    return splits, report
