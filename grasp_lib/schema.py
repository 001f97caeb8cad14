"""The one document model, shaped like the BigBio KB schema, with character offsets into `text`.

An n-ary relation is a Relation with more than two args. Nothing here imports the rest of grasp_lib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entity:
    id: str
    type: str
    spans: tuple[tuple[int, int], ...]
    text: str
    db_ids: tuple[str, ...] = ()

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]


@dataclass(frozen=True)
class Relation:
    type: str
    args: tuple[str, ...]  # entity ids, or concept ids for document-level relations (BC5CDR CID)
    label: str | None = None


@dataclass
class Document:
    id: str
    text: str
    passages: list[tuple[int, int]] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)


@dataclass
class Example:
    """One training or evaluation item: a task (family) on a short text, with its gold structure.

    Every row carries every gold field (empty where the family does not use it), so rows of different
    tasks can share one table (a multi-task mixture) and every reward sees the same columns.
    """

    id: str
    task: str  # task family: ner | re | triples | nary | joint | qa
    dataset: str
    text: str
    entities: list[dict] = field(default_factory=list)  # [{"start", "end", "type", "text"}], by offset
    relations: list[dict] = field(default_factory=list)  # [{"head", "relation", "tail"}] (mention texts)
    label: str | None = None  # re: gold label of the marked pair
    combinations: list[dict] = field(default_factory=list)  # nary: [{"drugs": [...], "label"}]
    answer: str | None = None  # qa

    def to_row(self) -> dict:
        return {"id": self.id, "task": self.task, "dataset": self.dataset, "text": self.text,
                "entities": self.entities, "relations": self.relations, "label": self.label,
                "combinations": self.combinations, "answer": self.answer}


# A sentence ends at . ! ? followed by space and an upper-case letter, digit or bracket.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_ABBREVIATIONS = ("e.g.", "i.e.", "vs.", "Dr.", "Fig.", "al.", "approx.", "No.", "Inc.", "St.")


def sentence_spans(text: str, start: int, end: int, protected: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Split text[start:end] into sentences, never inside a protected (entity) span or after an abbreviation."""
    cuts = []
    for m in _BOUNDARY.finditer(text, start, end):
        before = text[max(start, m.start() - 8):m.start()]
        if before.endswith(_ABBREVIATIONS):
            continue
        if any(s < m.start() < e or s < m.end() < e for s, e in protected):
            continue
        cuts.append((m.start(), m.end()))
    spans, cursor = [], start
    for cut_start, cut_end in cuts:
        spans.append((cursor, cut_start))
        cursor = cut_end
    spans.append((cursor, end))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def split_units(doc: Document, unit: str) -> list[tuple[str, str, list[Entity]]]:
    """Cut a document into (unit id, text, entities with offsets into the unit text).

    unit "document" keeps it whole, "passage" cuts at passages (title, abstract), "sentence" at sentences.
    An entity that crosses a cut never happens: sentence cuts avoid entity spans.
    """
    if unit == "document":
        return [(doc.id, doc.text, list(doc.entities))]
    if unit not in ("passage", "sentence"):
        raise ValueError(f"unit must be 'document', 'passage' or 'sentence', got {unit!r}")
    passages = doc.passages or [(0, len(doc.text))]
    protected = [(e.start, e.end) for e in doc.entities]
    spans = passages if unit == "passage" else [
        s for p in passages for s in sentence_spans(doc.text, p[0], p[1], protected)]
    units = []
    for i, (s, e) in enumerate(spans):
        inside = [ent for ent in doc.entities if ent.start >= s and ent.end <= e]
        shifted = [Entity(ent.id, ent.type, tuple((a - s, b - s) for a, b in ent.spans), ent.text, ent.db_ids)
                   for ent in inside]
        units.append((f"{doc.id}-{unit[0]}{i}", doc.text[s:e], shifted))
    return units
