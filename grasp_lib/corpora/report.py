"""What a reader read, converted and rejected: nothing is dropped silently."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path


class CorpusFormatError(ValueError):
    """A line a reader cannot parse at all; the message names the file and line."""


@dataclass
class ReadReport:
    source: str
    read: int = 0  # annotations seen
    converted: int = 0  # annotations kept in the schema
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, reason)
    extra: dict = field(default_factory=dict)  # reader-specific counts (repaired items, alternatives, ...)
    files: dict = field(default_factory=dict)  # data-root path -> sha256 of the files read (corpora.load)

    def reject(self, path: str, line: int, reason: str) -> None:
        self.rejected.append((path, line, reason))

    @property
    def n_rejected(self) -> int:
        return len(self.rejected)

    def check(self) -> None:
        """Every annotation read was either converted or rejected."""
        if self.read != self.converted + self.n_rejected:
            raise AssertionError(f"{self.source}: read {self.read} != converted {self.converted} "
                                 f"+ rejected {self.n_rejected}")

    def as_dict(self) -> dict:
        return {"source": self.source, "read": self.read, "converted": self.converted,
                "rejected": self.n_rejected, **self.extra}


def utf8_reader(reader):
    """Decorate a reader `f(path, ...)`: a byte that is not UTF-8 raises CorpusFormatError naming the file,
    line and byte offset (Python's UnicodeDecodeError names neither file nor line)."""

    @functools.wraps(reader)
    def read(path, *args, **kwargs):
        try:
            return reader(path, *args, **kwargs)
        except UnicodeDecodeError:
            raise CorpusFormatError(not_utf8(Path(path))) from None

    return read


def not_utf8(path: Path) -> str:
    """'file:line: not UTF-8 ...' for the first byte under `path` (a file or a folder) that does not decode."""
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        data = file.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            return (f"{file}:{line}: not UTF-8 text: byte {data[err.start]:#04x} at byte offset {err.start} "
                    f"({err.reason}); the corpora are read as UTF-8")
    return f"{path}: not UTF-8 text"
