"""Rows of each task family cut from a corpus document: (dataset name, document, unit) -> rows
(schema.Example.to_row). Only NER rows are cut into `unit`s; the others keep their natural unit."""

from __future__ import annotations

from ..schema import Document, Entity, Example, split_units


def entity_row(e: Entity, offset: int = 0) -> dict:
    return {"start": e.start - offset, "end": e.end - offset, "type": e.type, "text": e.text}


def ner_rows(name: str, doc: Document, unit: str) -> list[dict]:
    alternatives = getattr(doc, "alternatives", [])
    rows = []
    for unit_id, text, entities in split_units(doc, unit):
        shift = doc.text.find(text) if alternatives else 0
        row = Example(unit_id, "ner", name, text, sorted((entity_row(e) for e in entities),
                                                         key=lambda r: (r["start"], r["end"]))).to_row()
        row["alternatives"] = [entity_row(a, shift) for a in alternatives]
        rows.append(row)
    return rows


def re_rows(name: str, doc: Document, unit: str) -> list[dict]:
    """One row per pair: the passage (sentence) holding both arguments, the two arguments, the label."""
    by_id = {e.id: e for e in doc.entities}
    passages = doc.passages or [(0, len(doc.text))]
    rows = []
    for k, rel in enumerate(doc.relations):
        args = [by_id[a] for a in rel.args]
        s, e = next(p for p in passages if all(p[0] <= a.start and a.end <= p[1] for a in args))
        entities = sorted((entity_row(a, s) for a in args), key=lambda r: (r["start"], r["end"]))
        rows.append(Example(f"{doc.id}-p{k}", "re", name, doc.text[s:e], entities, label=rel.type).to_row())
    return rows


def _concept_text(doc: Document, concept: str) -> str | None:
    return next((e.text for e in doc.entities if concept in e.db_ids), None)


def triple_rows(name: str, doc: Document, unit: str) -> list[dict]:
    """Document-level triples (BC5CDR CID): concept ids shown as the text of their first mention."""
    relations = []
    for rel in doc.relations:
        head, tail = (_concept_text(doc, a) for a in rel.args)
        if head and tail:
            relations.append({"head": head, "relation": rel.type, "tail": tail})
    entities = [entity_row(e) for e in doc.entities]
    return [Example(doc.id, "triples", name, doc.text, entities, relations).to_row()]


def nary_rows(name: str, doc: Document, unit: str) -> list[dict]:
    by_id = {e.id: e for e in doc.entities}
    combos = [{"drugs": [by_id[a].text for a in rel.args], "label": rel.type} for rel in doc.relations]
    return [Example(doc.id, "nary", name, doc.text, [entity_row(e) for e in doc.entities],
                    combinations=combos).to_row()]


def joint_rows(name: str, doc: Document, unit: str) -> list[dict]:
    by_id = {e.id: e for e in doc.entities}
    relations = [{"head": by_id[r.args[0]].text, "relation": r.type, "tail": by_id[r.args[1]].text}
                 for r in doc.relations]
    return [Example(doc.id, "joint", name, doc.text, [entity_row(e) for e in doc.entities], relations).to_row()]


def qa_rows(name: str, doc: Document, unit: str) -> list[dict]:
    answer = next(r.label for r in doc.relations if r.type == "answer")
    return [Example(doc.id, "qa", name, doc.text, answer=answer).to_row()]
