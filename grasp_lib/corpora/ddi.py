"""DDI corpus 2013 reader: one XML file per document, under a split folder (DrugBank/, MedLine/).

`<sentence id text>` holds `<entity id charOffset="s-e[;s-e]" type text>` (inclusive offsets into the
sentence, `;` for discontinuous spans; a few stated texts differ from the span only in whitespace:
those keep the span's text and are counted in report.extra["repaired_whitespace"]) and `<pair id e1 e2 ddi="true|false" [type]>`. A Document is one
XML document; its text is the sentences joined by a space (one passage per sentence). Pairs become
Relations of type mechanism | effect | advise | int | none. A pair with ddi="true" and no type (one
in Train, a known quirk) is rejected and reported, as is an entity whose text differs from its span.
Parsed with expat so that every rejection names its file and line.
"""

from __future__ import annotations

import xml.parsers.expat
from pathlib import Path

from ..schema import Document, Entity, Relation
from .report import CorpusFormatError, ReadReport, utf8_reader

DDI_TYPES = ("mechanism", "effect", "advise", "int")


@utf8_reader
def read_ddi(folder: str | Path) -> tuple[list[Document], ReadReport]:
    folder = Path(folder)
    files = sorted(folder.rglob("*.xml"))
    if not files:
        raise CorpusFormatError(f"{folder}: no .xml files")
    report = ReadReport(source=str(folder))
    docs = [_read_file(path, report) for path in files]
    report.check()
    return docs, report


def _read_file(path: Path, report: ReadReport) -> Document:
    parser = xml.parsers.expat.ParserCreate()
    state = {"doc": None, "text": "", "passages": [], "entities": [], "relations": [], "sentence": None,
             "known": set()}

    def start(tag, attrs):
        line = parser.CurrentLineNumber
        if tag == "document":
            state["doc"] = attrs.get("id")
        elif tag == "sentence":
            base = len(state["text"]) + (1 if state["text"] else 0)
            state["text"] += (" " if state["text"] else "") + attrs["text"]
            state["passages"].append((base, base + len(attrs["text"])))
            state["sentence"] = (base, attrs["text"])
        elif tag == "entity":
            _entity(attrs, line, path, state, report)
        elif tag == "pair":
            _pair(attrs, line, path, state, report)

    parser.StartElementHandler = start
    try:
        parser.ParseFile(open(path, "rb"))
    except xml.parsers.expat.ExpatError as err:
        raise CorpusFormatError(f"{path}:{err.lineno}: malformed XML ({xml.parsers.expat.errors.messages[err.code]})") from None
    except KeyError as err:
        raise CorpusFormatError(f"{path}:{parser.CurrentLineNumber}: missing attribute {err}") from None
    if state["doc"] is None:
        raise CorpusFormatError(f"{path}:1: no <document> element")
    return Document(state["doc"], state["text"], state["passages"], state["entities"], state["relations"])


def _entity(attrs: dict, line: int, path: Path, state: dict, report: ReadReport) -> None:
    report.read += 1
    report.extra["entities_read"] = report.extra.get("entities_read", 0) + 1
    base, sentence = state["sentence"]
    try:
        spans = tuple((int(a), int(b) + 1) for a, b in (p.split("-") for p in attrs["charOffset"].split(";")))
    except ValueError:
        raise CorpusFormatError(f"{path}:{line}: bad charOffset {attrs['charOffset']!r}") from None
    found = " ".join(sentence[s:e] for s, e in spans)
    if found != attrs["text"] and "".join(found.split()) == "".join(attrs["text"].split()):
        report.extra["repaired_whitespace"] = report.extra.get("repaired_whitespace", 0) + 1
        attrs = attrs | {"text": found}  # offsets right, stated text had its whitespace normalised
    if found != attrs["text"]:
        report.reject(str(path), line, f"entity {attrs['text']!r} != sentence text {found!r}")
        return
    state["entities"].append(Entity(attrs["id"], attrs["type"], tuple((s + base, e + base) for s, e in spans),
                                    attrs["text"]))
    state["known"].add(attrs["id"])
    report.converted += 1


def _pair(attrs: dict, line: int, path: Path, state: dict, report: ReadReport) -> None:
    report.read += 1
    report.extra["pairs_read"] = report.extra.get("pairs_read", 0) + 1
    if attrs["e1"] not in state["known"] or attrs["e2"] not in state["known"]:
        report.reject(str(path), line, f"pair {attrs['id']} refers to an entity that was not converted")
        return
    if attrs["ddi"] == "false":
        label = "none"
    elif attrs.get("type") in DDI_TYPES:
        label = attrs["type"]
    else:
        report.reject(str(path), line, f"pair {attrs['id']}: ddi={attrs['ddi']!r} with type {attrs.get('type')!r}")
        return
    state["relations"].append(Relation(label, (attrs["e1"], attrs["e2"])))
    report.converted += 1
