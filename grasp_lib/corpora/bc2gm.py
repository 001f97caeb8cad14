"""BioCreative II gene mention reader (BC2GM): `*.in` sentences plus `GENE.eval` (and `ALTGENE.eval`).

`ID sentence` per line in `.in`; `ID|start end|mention` per line in `.eval`, where offsets count
non-whitespace characters only and the end is inclusive. ALTGENE lines are alternative acceptable
boundaries (the official evaluation counts a prediction matching either as a true positive); they are
kept on the document (`BC2GMDocument.alternatives`) and never mixed into the gold entities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..schema import Document, Entity
from .report import CorpusFormatError, ReadReport, utf8_reader


@dataclass
class BC2GMDocument(Document):
    alternatives: list[Entity] = field(default_factory=list)  # ALTGENE boundaries, offsets into text


@utf8_reader
def read_bc2gm(sentences: str | Path, alternatives: bool = True) -> tuple[list[BC2GMDocument], ReadReport]:
    """Read `X.in` and the GENE.eval (and ALTGENE.eval) next to it. The report counts GENE mentions;
    ALTGENE lines are counted separately in `report.extra`."""
    sentences = Path(sentences)
    report = ReadReport(source=str(sentences))
    docs: dict[str, BC2GMDocument] = {}
    with open(sentences, encoding="utf-8-sig") as handle:  # a byte-order mark is not part of an id
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            sid, sep, text = line.partition(" ")
            if not sep or not sid:
                raise CorpusFormatError(f"{sentences}:{lineno}: expected 'SENTENCE_ID text', got {line[:80]!r}")
            if sid in docs:
                raise CorpusFormatError(f"{sentences}:{lineno}: sentence id {sid} repeated")
            docs[sid] = BC2GMDocument(sid, text, [(0, len(text))])
    maps = {sid: [i for i, ch in enumerate(d.text) if not ch.isspace()] for sid, d in docs.items()}
    for entity, lineno in _eval_lines(sentences.parent / "GENE.eval", docs, maps, report, counted=True):
        docs[entity.id.split("-")[0]].entities.append(entity)
    if alternatives and (sentences.parent / "ALTGENE.eval").exists():
        alt_report = ReadReport(source=str(sentences.parent / "ALTGENE.eval"))
        for entity, _ in _eval_lines(sentences.parent / "ALTGENE.eval", docs, maps, alt_report, counted=True):
            docs[entity.id.split("-")[0]].alternatives.append(entity)
        alt_report.check()
        report.extra = {"altgene_read": alt_report.read, "altgene_converted": alt_report.converted,
                        "altgene_rejected": alt_report.n_rejected}
    for doc in docs.values():
        doc.entities.sort(key=lambda e: (e.start, e.end))
    report.check()
    return list(docs.values()), report


def _eval_lines(path: Path, docs: dict, maps: dict, report: ReadReport, counted: bool):
    with open(path, encoding="utf-8-sig") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("|", 2)
            if len(parts) != 3 or len(parts[1].split()) != 2:
                raise CorpusFormatError(f"{path}:{lineno}: expected 'ID|start end|mention', got {line[:80]!r}")
            sid, offsets, mention = parts
            try:
                first, last = (int(x) for x in offsets.split())
            except ValueError:
                raise CorpusFormatError(f"{path}:{lineno}: offsets must be integers, got {offsets!r}") from None
            if sid not in docs:
                raise CorpusFormatError(f"{path}:{lineno}: sentence {sid} is not in the .in file")
            report.read += 1
            index = maps[sid]
            if not 0 <= first <= last < len(index):
                report.reject(str(path), lineno, f"offsets {first}-{last} outside sentence {sid}")
                continue
            start, end = index[first], index[last] + 1
            text = docs[sid].text[start:end]
            if "".join(text.split()) != "".join(mention.split()):
                report.reject(str(path), lineno, f"mention {mention!r} != text[{start}:{end}] {text!r}")
                continue
            report.converted += 1
            yield Entity(f"{sid}-{lineno}", "GENE", ((start, end),), text), lineno
