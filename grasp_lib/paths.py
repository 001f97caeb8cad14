"""Where things live: the repository root, the data root and the run folders.

Paths are resolved from the repository root, never from the current directory, so a notebook
run from `notebooks/` (JupyterLab) and one run by papermill from the root see the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path; relative paths are taken from the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def data_root(data_dir: str | None = None) -> Path:
    """The corpora root: params `data_dir`, env GRASP_DATA_DIR, ../shared/data, else ~/.cache/grasp/data."""
    candidates = [data_dir, os.environ.get("GRASP_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).expanduser().is_dir():
            return Path(candidate).expanduser().resolve()
    return Path.home() / ".cache" / "grasp" / "data"


def cache_dir() -> Path:
    """Model cache (converted GGUF weights, tiny test models): env GRASP_CACHE or ~/.cache/grasp."""
    return Path(os.environ.get("GRASP_CACHE", Path.home() / ".cache" / "grasp")).expanduser()
