"""PubTator reader (BC5CDR, NCBI-disease).

Format: `PMID|t|title`, `PMID|a|abstract`, then one tab-separated line per mention
(`PMID start end text type ids [parts]`) or relation (`PMID REL arg1 arg2`); a blank line ends a document.
Offsets index `title + " " + abstract`. A line that fits none of these raises CorpusFormatError with
file and line; a mention whose text differs from text[start:end], is empty or whose offsets fall outside
the text is rejected and reported. A title line of a new PMID starts a new document even where the blank
line before it is missing (counted in report.extra["without_blank_line"]); documents are never merged.
A PMID whose title line comes twice is an error naming both lines (not two documents under one id: every
row of a repeated id would be joined to the last one's gold). A byte that is not UTF-8 raises
CorpusFormatError with file, line and byte offset; a UTF-8 byte-order mark at the start is read as one.

Two options for NCBI-disease's known quirks (both off by default): `repair_quotes` accepts a mention
whose text equals text[start:end] with `"` replaced by spaces (the entity keeps the document's text;
counted in report.extra["repaired"]), and `skip_duplicates` rejects every mention of a document whose
PMID was already read (the document itself is left out).
"""

from __future__ import annotations

from pathlib import Path

from ..schema import Document, Entity, Relation
from .report import CorpusFormatError, ReadReport, utf8_reader


@utf8_reader
def read_pubtator(path: str | Path, repair_quotes: bool = False,
                  skip_duplicates: bool = False) -> tuple[list[Document], ReadReport]:
    path = Path(path)
    report = ReadReport(source=str(path))
    docs: list[Document] = []
    state: dict = {}
    options = {"repair_quotes": repair_quotes, "skip_duplicates": skip_duplicates, "seen": {}}
    with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is not part of line 1's PMID
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line.strip():
                _finish(state, docs)
                continue
            if state and _title_of_another_document(line, state):  # the blank line before it is missing
                _finish(state, docs)
                report.extra["without_blank_line"] = report.extra.get("without_blank_line", 0) + 1
            _read_line(line, lineno, path, state, report, options)
    _finish(state, docs)
    report.check()
    return docs, report


def _title_of_another_document(line: str, state: dict) -> bool:
    """A title line of a new PMID starts a new document even without the blank line (never merged)."""
    pmid, sep, rest = line.partition("|")
    return bool(sep) and rest.startswith("t|") and pmid != state["id"]


def _read_line(line: str, lineno: int, path: Path, state: dict, report: ReadReport, options: dict | None = None) -> None:
    options = options or {}
    if "|t|" in line[:20] or "|a|" in line[:20]:
        pmid, kind, content = line.split("|", 2)
        if kind == "t":
            if state and state["id"] == pmid:
                raise CorpusFormatError(f"{path}:{lineno}: a second title line for {pmid} inside its document")
            _start(state, pmid, content)
            _note_title(pmid, lineno, path, state, options)
        elif not state or state["id"] != pmid:
            raise CorpusFormatError(f"{path}:{lineno}: abstract line for {pmid} without its title line")
        else:
            state["abstract"] = content
        return
    fields = line.split("\t")
    if not state or fields[0] != state["id"]:
        raise CorpusFormatError(f"{path}:{lineno}: annotation for {fields[0]!r} outside its document")
    if len(fields) == 4:
        if state.get("duplicate"):
            return
        state["relations"].append(Relation(type=fields[1], args=(fields[2], fields[3])))
    elif len(fields) >= 6:
        report.read += 1
        if state.get("duplicate"):
            report.reject(str(path), lineno, f"document {state['id']} repeated: its mentions are left out")
            report.extra["duplicate_documents"] = sorted(set(report.extra.get("duplicate_documents", [])) | {state["id"]})
            return
        _add_mention(fields, lineno, path, state, report, options.get("repair_quotes", False))
    else:
        raise CorpusFormatError(f"{path}:{lineno}: expected 4 (relation) or 6+ (mention) tab-separated "
                                f"fields, got {len(fields)}: {line[:80]!r}")


def _note_title(pmid: str, lineno: int, path: Path, state: dict, options: dict) -> None:
    """A PMID seen before: left out with skip_duplicates (NCBI-disease's known repeat), else an error."""
    seen = options.setdefault("seen", {})
    if pmid in seen and not options.get("skip_duplicates"):
        raise CorpusFormatError(f"{path}:{lineno}: document {pmid} repeated (its first title line is line "
                                f"{seen[pmid]}): ids must be unique within a split")
    state["duplicate"] = pmid in seen
    seen.setdefault(pmid, lineno)


def _start(state: dict, pmid: str, title: str) -> None:
    state.clear()
    state.update(id=pmid, title=title, abstract="", mentions=[], relations=[], duplicate=False)


def _add_mention(fields: list[str], lineno: int, path: Path, state: dict, report: ReadReport,
                 repair_quotes: bool = False) -> None:
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise CorpusFormatError(f"{path}:{lineno}: offsets must be integers, got {fields[1]!r} {fields[2]!r}")
    text = state["title"] + " " + state["abstract"]
    if not 0 <= start < end <= len(text) or not fields[3]:
        report.reject(str(path), lineno, f"mention {fields[3]!r} at {start}-{end}: expected text and offsets "
                                         f"0 <= start < end <= {len(text)} (the document's length)")
        return
    if repair_quotes and text[start:end] != fields[3] and text[start:end].replace('"', " ") == fields[3]:
        fields = fields[:3] + [text[start:end]] + fields[4:]
        report.extra["repaired"] = report.extra.get("repaired", 0) + 1
    if text[start:end] != fields[3]:
        report.reject(str(path), lineno, f"mention {fields[3]!r} != text[{start}:{end}] {text[start:end]!r}")
        return
    ids = tuple(i for i in fields[5].split("|") if i and i != "-1")
    entity_id = f"{state['id']}-T{len(state['mentions'])}"
    state["mentions"].append(Entity(entity_id, fields[4], ((start, end),), fields[3], ids))
    report.converted += 1


def _finish(state: dict, docs: list[Document]) -> None:
    if not state:
        return
    if state.get("duplicate"):
        state.clear()
        return
    title_end = len(state["title"])
    text = state["title"] + " " + state["abstract"]
    passages = [(0, title_end), (title_end + 1, len(text))] if state["abstract"] else [(0, title_end)]
    docs.append(Document(state["id"], text, passages, state["mentions"], state["relations"]))
    state.clear()
