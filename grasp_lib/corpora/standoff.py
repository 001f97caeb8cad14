"""brat standoff reader (JNLPBA): a folder of `ID.txt` + `ID.ann` pairs.

`.ann` lines: `Tn<TAB>type start end[;start end...]<TAB>text`. Other annotation kinds (R, E, A, N, #)
are counted and rejected (JNLPBA has none). A text span that differs from the stated text is rejected.
"""

from __future__ import annotations

from pathlib import Path

from ..schema import Document, Entity
from .report import CorpusFormatError, ReadReport, utf8_reader


@utf8_reader
def read_standoff(folder: str | Path) -> tuple[list[Document], ReadReport]:
    folder = Path(folder)
    report = ReadReport(source=str(folder))
    docs = []
    texts = sorted(folder.glob("*.txt"))
    if not texts:
        raise CorpusFormatError(f"{folder}: no .txt files")
    for txt in texts:
        ann = txt.with_suffix(".ann")
        if not ann.exists():
            raise CorpusFormatError(f"{ann}: missing (every .txt needs its .ann)")
        text = txt.read_text(encoding="utf-8")
        if text.startswith("\ufeff"):  # brat tools differ on whether the offsets count it: named, not guessed
            raise CorpusFormatError(f"{txt}:1: starts with a UTF-8 byte-order mark (BOM); the .ann offsets may or "
                                    "may not count it: remove it from the .txt and check the offsets")
        entities = []
        with open(ann, encoding="utf-8") as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.rstrip("\n")
                if not line.strip():
                    continue
                report.read += 1
                if not line.startswith("T"):
                    report.reject(str(ann), lineno, f"annotation kind {line[:1]!r} not read (only T lines)")
                    continue
                fields = line.split("\t")
                if len(fields) != 3 or len(fields[1].split(" ", 1)) != 2:
                    raise CorpusFormatError(f"{ann}:{lineno}: expected 'Tn<TAB>type start end<TAB>text', "
                                            f"got {line[:80]!r}")
                etype, offsets = fields[1].split(" ", 1)
                try:
                    spans = tuple(tuple(int(x) for x in part.split()) for part in offsets.split(";"))
                except ValueError:
                    raise CorpusFormatError(f"{ann}:{lineno}: offsets must be integers, got {offsets!r}") from None
                if any(len(s) != 2 for s in spans):
                    raise CorpusFormatError(f"{ann}:{lineno}: each span needs 'start end', got {offsets!r}")
                found = " ".join(text[s:e] for s, e in spans)
                if found != fields[2]:
                    report.reject(str(ann), lineno, f"mention {fields[2]!r} != text {found!r}")
                    continue
                entities.append(Entity(f"{txt.stem}-{fields[0]}", etype, spans, fields[2]))
                report.converted += 1
        entities.sort(key=lambda e: (e.start, e.end))
        docs.append(Document(txt.stem, text, _passages(text), entities))
    report.check()
    return docs, report


def _passages(text: str) -> list[tuple[int, int]]:
    """Lines of the text (JNLPBA: title line, abstract line) as passages."""
    spans, cursor = [], 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((cursor, cursor + len(line)))
        cursor += len(line) + 1
    return spans
