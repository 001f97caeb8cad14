"""DrugComb (Tiktinsky et al. 2022) and SciER (LLM format) readers: sentence-level JSON lines.

DrugComb: `{doc_id, sentence, spans: [{span_id, text, start, end}], rels: [{class, spans, ...}],
paragraph, source}`; a relation is n-ary (args = drug entity ids, type = POS | COMB | NEG).
SciER: `{doc_id, sentence, ner: [[surface, type]], rel: [[subject, relation, object]], rel_plus}`
without offsets: each surface is located in the (space-tokenised) sentence at token boundaries, in
order; a surface that cannot be found is rejected, as is a relation whose argument was not converted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..schema import Document, Entity, Relation
from .report import CorpusFormatError, ReadReport, utf8_reader

DRUGCOMB_LABELS = ("POS", "COMB", "NEG")


def _json_lines(path: Path):
    with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark is read as one
        for lineno, raw in enumerate(handle, start=1):
            if raw.strip():
                try:
                    yield lineno, json.loads(raw)
                except ValueError as err:
                    raise CorpusFormatError(f"{path}:{lineno}: not a JSON line ({err})") from None


@utf8_reader
def read_drugcomb(path: str | Path) -> tuple[list[Document], ReadReport]:
    path = Path(path)
    report = ReadReport(source=str(path))
    docs = []
    for lineno, record in _json_lines(path):
        try:
            doc_id, text, spans, rels = record["doc_id"], record["sentence"], record["spans"], record["rels"]
        except KeyError as err:
            raise CorpusFormatError(f"{path}:{lineno}: missing key {err}") from None
        entities, ids = [], {}
        for span in spans:
            report.read += 1
            start, end = span["start"], span["end"]
            if text[start:end] != span["text"]:
                report.reject(str(path), lineno, f"span {span['text']!r} != sentence[{start}:{end}] {text[start:end]!r}")
                continue
            ids[span["span_id"]] = f"{doc_id}-{span['span_id']}"
            entities.append(Entity(ids[span["span_id"]], "drug", ((start, end),), span["text"]))
            report.converted += 1
        relations = []
        for rel in rels:
            report.read += 1
            if rel.get("class") not in DRUGCOMB_LABELS or not all(s in ids for s in rel.get("spans", [])) \
                    or len(rel.get("spans", [])) < 2:
                report.reject(str(path), lineno, f"relation {str(rel)[:60]!r}: unknown class, missing span "
                                                 f"or fewer than two drugs")
                continue
            relations.append(Relation(rel["class"], tuple(ids[s] for s in rel["spans"]),
                                      "context" if rel.get("is_context_needed") else None))
            report.converted += 1
        if len(entities) < len(spans):  # incomplete gold: leave the sentence out (its items are rejected)
            for _ in relations:
                report.converted -= 1
                report.reject(str(path), lineno, "relation of a sentence with a rejected span")
            report.extra["sentences_left_out"] = report.extra.get("sentences_left_out", 0) + 1
            report.converted -= len(entities)
            for entity in entities:
                report.reject(str(path), lineno, f"span {entity.text!r} of a sentence with a rejected span")
            continue
        entities.sort(key=lambda e: (e.start, e.end))
        docs.append(Document(doc_id, text, [(0, len(text))], entities, relations))
    report.check()
    return docs, report


def _locate(sentence: str, surface: str, taken: set[tuple[int, int]], cursor: int) -> tuple[int, int] | None:
    """First free token-bounded occurrence at or after cursor, else the first free one anywhere."""
    pattern = re.compile(r"(?<!\S)" + re.escape(surface) + r"(?!\S)")
    hits = [(m.start(), m.end()) for m in pattern.finditer(sentence) if (m.start(), m.end()) not in taken]
    after = [h for h in hits if h[0] >= cursor]
    return (after or hits or [None])[0]


@utf8_reader
def read_scier(path: str | Path) -> tuple[list[Document], ReadReport]:
    path = Path(path)
    report = ReadReport(source=str(path))
    docs = []
    relations_read = 0
    for lineno, record in _json_lines(path):
        try:
            text, ner, rels = record["sentence"], record["ner"], record["rel"]
        except KeyError as err:
            raise CorpusFormatError(f"{path}:{lineno}: missing key {err}") from None
        doc_id = f"{record.get('doc_id', path.stem)}-{lineno}"
        entities, by_surface, taken, cursor = [], {}, set(), 0
        for k, item in enumerate(ner):
            report.read += 1
            if not (isinstance(item, list) and len(item) == 2):
                raise CorpusFormatError(f"{path}:{lineno}: ner item {item!r} is not [surface, type]")
            surface, etype = item
            span = _locate(text, surface, taken, cursor)
            if span is None:
                report.reject(str(path), lineno, f"entity {surface!r} not found in the sentence")
                continue
            taken.add(span)
            cursor = span[1]
            entity = Entity(f"{doc_id}-T{k}", etype, (span,), surface)
            entities.append(entity)
            by_surface.setdefault(surface, entity.id)
            report.converted += 1
        relations = []
        for item in rels:
            report.read += 1
            relations_read += 1
            if not (isinstance(item, list) and len(item) == 3):
                raise CorpusFormatError(f"{path}:{lineno}: rel item {item!r} is not [subject, relation, object]")
            head, label, tail = item
            if head not in by_surface or tail not in by_surface:
                report.reject(str(path), lineno, f"relation {item!r}: argument not among the converted entities")
                continue
            relations.append(Relation(label, (by_surface[head], by_surface[tail])))
            report.converted += 1
        entities.sort(key=lambda e: (e.start, e.end))
        docs.append(Document(doc_id, text, [(0, len(text))], entities, relations))
    report.extra = {"relations_read": relations_read}
    report.check()
    return docs, report


@utf8_reader
def read_biorlhf(path: str | Path) -> tuple[list[Document], ReadReport]:
    """BioRLHF JSON arrays: SFT `{text: "### Instruction:...### Response:..."}`, QA test
    `{question, answer, type}` or DPO `{prompt, chosen, rejected}`. Each record is a Document whose text
    is the question, with Relation("answer", (), label=answer) (DPO: also Relation("rejected", ...))."""
    path = Path(path)
    report = ReadReport(source=str(path))
    try:
        records = json.loads(path.read_text(encoding="utf-8-sig"))  # json refuses a byte-order mark
    except ValueError as err:
        raise CorpusFormatError(f"{path}:{getattr(err, 'lineno', 0)}: not a JSON array ({err})") from None
    if not isinstance(records, list):
        raise CorpusFormatError(f"{path}:1: expected a JSON array")
    docs = []
    for k, record in enumerate(records):
        report.read += 1
        relations = []
        if "question" in record and "answer" in record:
            question, answer = record["question"], record["answer"]
        elif "prompt" in record and "chosen" in record:
            question, answer = _instruction(record["prompt"]), record["chosen"]
            relations.append(Relation("rejected", (), record.get("rejected")))
        elif "text" in record and "### Response:" in record["text"]:
            prompt, _, answer = record["text"].partition("### Response:")
            question = _instruction(prompt)
        else:
            report.reject(str(path), k + 1, f"record {k} has none of question/answer, prompt/chosen, text")
            continue
        answer = answer.strip()
        if not question or not answer:
            report.reject(str(path), k + 1, f"record {k}: empty question or answer")
            continue
        text = question
        docs.append(Document(f"{path.stem}-{k}", text, [(0, len(text))], [],
                             [Relation("answer", (), answer)] + relations))
        report.converted += 1
    report.check()
    return docs, report


def _instruction(prompt: str) -> str:
    prompt = prompt.replace("### Response:", "")
    return prompt.replace("### Instruction:", "").strip()
