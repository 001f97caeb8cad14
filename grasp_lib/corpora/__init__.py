"""Corpus readers and the registry `load(name, split)`.

Each reader returns (documents, ReadReport). Files are read in place from the data root
(see grasp_lib.paths.data_root); nothing is copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

from ..paths import data_root
from ..schema import Document
from .pubtator import read_pubtator
from .report import CorpusFormatError, ReadReport

# name -> split -> (reader, path relative to the data root)
REGISTRY = {
    "bc5cdr": {
        "train": (read_pubtator, "BC5CDR/CDR_TrainingSet.PubTator.txt"),
        "dev": (read_pubtator, "BC5CDR/CDR_DevelopmentSet.PubTator.txt"),
        "test": (read_pubtator, "BC5CDR/CDR_TestSet.PubTator.txt"),
    },
}


def load(name: str, split: str, data_dir: str | Path | None = None) -> tuple[list[Document], ReadReport]:
    """Read one split of a registered corpus; an unknown name or split lists the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(REGISTRY)}")
    if split not in REGISTRY[name]:
        raise KeyError(f"dataset {name!r} has no split {split!r}; known: {sorted(REGISTRY[name])}")
    reader, relative = REGISTRY[name][split]
    path = data_root(str(data_dir) if data_dir else None) / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: set data_dir in params or GRASP_DATA_DIR to the corpora root")
    return reader(path)


__all__ = ["REGISTRY", "load", "read_pubtator", "ReadReport", "CorpusFormatError"]
