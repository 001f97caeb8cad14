"""What a reader read, converted and rejected: nothing is dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field


class CorpusFormatError(ValueError):
    """A line a reader cannot parse at all; the message names the file and line."""


@dataclass
class ReadReport:
    source: str
    read: int = 0  # annotations seen
    converted: int = 0  # annotations kept in the schema
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, reason)
    extra: dict = field(default_factory=dict)  # reader-specific counts (repaired items, alternatives, ...)

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
