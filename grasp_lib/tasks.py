"""The task registry: per dataset its task family, labels (one-line definition each) and output schema."""

from __future__ import annotations

from dataclasses import dataclass, field

# Task families: one-line definition (prompt level 2) and output schema (level 4). The parser
# (parsing._CONVERTERS) reads exactly these shapes.
FAMILIES = {
    "ner": "find every mention of the entity types below, copied exactly from the text.",
    "re": "classify the relation between the two marked entities.",
    "triples": "list every relation stated in the text as [head, relation, tail].",
    "nary": "list every combination of drugs given together, with its label.",
    "joint": "find the entities, then the relations between them.",
    "qa": "answer the question briefly.",
}

OUTPUT_SCHEMAS = {
    # Entities grouped by type: a compact JSON object (few tokens) that still carries text and type.
    "ner": "JSON mapping each type to its mentions in text order",
    "re": 'JSON {"relation": "<one label>"}',
    "triples": 'JSON list of [head, relation, tail] triples, [] if none',
    "nary": 'JSON list of {"drugs": [...], "label": "<label>"}, [] if none',
    "joint": 'JSON {"entities": {type: [mentions]}, "relations": [[head, relation, tail]]}',
    "qa": 'JSON {"answer": "<short answer>"}',
}


@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    family: str
    domain: str
    labels: dict[str, str]  # label -> one-line definition (entity types; relation labels for re/triples/nary)
    relation_labels: dict[str, str] = field(default_factory=dict)  # joint family: relation types

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    def parse_args(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """The arguments of parsing.parse for this task, after the completion."""
        return tuple(self.labels), self.family, tuple(self.relation_labels)


TASKS = {
    "bc5cdr": TaskSpec(
        dataset="bc5cdr", family="ner", domain="PubMed abstracts (BC5CDR)",
        labels={
            "Chemical": "drug or chemical, abbreviations too",
            "Disease": "disease, disorder, symptom or adverse effect",
        },
    ),
}


def get_task(dataset: str) -> TaskSpec:
    if dataset not in TASKS:
        raise KeyError(f"no task registered for dataset {dataset!r}; known: {sorted(TASKS)}")
    return TASKS[dataset]
