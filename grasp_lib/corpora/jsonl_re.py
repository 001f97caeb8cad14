"""Sentence-level relation readers in JSON lines / TSV form.

- `read_chemprot`: SciBERT ChemProt JSONL, `{"text", "label", "metadata"}`, the two arguments wrapped
  in `<< >>` (first in the sentence) and `[[ ]]` (second); markers are positional, not typed.
- `read_biobert_tsv`: BioBERT GAD / EU-ADR folds, `sentence<TAB>label` (train) or
  `index<TAB>sentence<TAB>label` with a header (test); `@GENE$` and `@DISEASE$` are the masked arguments.
Each instance becomes one Document (one sentence) with its two argument entities and one Relation
(type = label, args = (first, second)).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..schema import Document, Entity, Relation
from .report import CorpusFormatError, ReadReport, utf8_reader

_MARKERS = (("<< ", " >>", "E1"), ("[[ ", " ]]", "E2"))


def strip_markers(marked: str) -> tuple[str, list[tuple[str, int, int]]] | None:
    """Plain text and [(role, start, end)] for the two marked arguments, or None if markers are missing."""
    cuts = []  # (position in marked text, length removed, role, is_open)
    for opener, closer, role in _MARKERS:
        start = marked.find(opener)
        end = marked.find(closer, start + len(opener)) if start >= 0 else -1
        if start < 0 or end < 0:
            return None
        cuts += [(start, len(opener), role, True), (end, len(closer), role, False)]
    cuts.sort()
    plain, cursor, bounds = [], 0, {}
    removed = 0
    for position, length, role, is_open in cuts:
        if position < cursor:
            return None  # markers inside markers
        plain.append(marked[cursor:position])
        bounds.setdefault(role, [0, 0])[0 if is_open else 1] = position - removed
        removed += length
        cursor = position + length
    plain.append(marked[cursor:])
    (_, s1, e1), (_, s2, e2) = args = [(role, bounds[role][0], bounds[role][1]) for _, _, role in _MARKERS]
    if s1 < e2 and s2 < e1:
        return None  # overlapping or nested arguments
    return "".join(plain), args


@utf8_reader
def read_chemprot(path: str | Path) -> tuple[list[Document], ReadReport]:
    path = Path(path)
    report = ReadReport(source=str(path))
    docs = []
    with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark is read as one
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                marked, label = record["text"], record["label"]
            except (ValueError, KeyError, TypeError) as err:
                raise CorpusFormatError(f"{path}:{lineno}: not a ChemProt JSON line ({err})") from None
            report.read += 1
            stripped = strip_markers(marked)
            if stripped is None:
                report.reject(str(path), lineno, "argument markers << >> / [[ ]] missing or overlapping")
                continue
            text, args = stripped
            doc_id = f"{path.stem}-{lineno}"
            entities = [Entity(f"{doc_id}-{role}", "Argument", ((s, e),), text[s:e]) for role, s, e in args]
            if any(not e.text.strip() or e.text != e.text.strip() for e in entities):
                report.reject(str(path), lineno, "empty or untrimmed argument")
                continue
            entities.sort(key=lambda e: e.start)
            docs.append(Document(doc_id, text, [(0, len(text))], entities,
                                 [Relation(label, tuple(e.id for e in entities))]))
            report.converted += 1
    report.check()
    return docs, report


_MASKS = re.compile(r"@GENE\$|@DISEASE\$")
BINARY_LABELS = {"1": "association", "0": "none"}


@utf8_reader
def read_biobert_tsv(path: str | Path) -> tuple[list[Document], ReadReport]:
    path = Path(path)
    report = ReadReport(source=str(path))
    docs = []
    with open(path, encoding="utf-8-sig") as handle:  # a byte-order mark is read as one
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if lineno == 1 and fields == ["index", "sentence", "label"]:
                continue
            if len(fields) == 3:
                fields = fields[1:]
            if len(fields) != 2 or fields[1] not in BINARY_LABELS:
                raise CorpusFormatError(f"{path}:{lineno}: expected 'sentence<TAB>0|1' (or with an index "
                                        f"column), got {line[:80]!r}")
            report.read += 1
            text, label = fields
            masks = [(m.group(), m.start(), m.end()) for m in _MASKS.finditer(text)]
            if sorted(m[0] for m in masks) != ["@DISEASE$", "@GENE$"]:
                report.reject(str(path), lineno, f"expected one @GENE$ and one @DISEASE$, found {[m[0] for m in masks]}")
                continue
            doc_id = f"{path.parent.name}-{path.stem}-{lineno}"
            entities = [Entity(f"{doc_id}-{m[0].strip('@$')}", m[0].strip("@$"), ((m[1], m[2]),), m[0])
                        for m in masks]
            docs.append(Document(doc_id, text, [(0, len(text))], entities,
                                 [Relation(BINARY_LABELS[label], tuple(e.id for e in entities))]))
            report.converted += 1
    report.check()
    return docs, report
