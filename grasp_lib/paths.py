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


def data_root(data_dir: str | None = None, must_exist: bool = True) -> Path:
    """The corpora root: params `data_dir` (relative: from the repository root), env GRASP_DATA_DIR,
    ../shared/data, else ~/.cache/grasp/data. A data_dir or GRASP_DATA_DIR that names a missing folder is
    an error (FileNotFoundError naming it), never a silent fall back to another root; `must_exist=False`
    (a fetch target) returns it to be created."""
    chosen = [("params data.data_dir", resolve(data_dir) if data_dir else None),
              ("GRASP_DATA_DIR", Path(os.environ["GRASP_DATA_DIR"]).expanduser()
               if os.environ.get("GRASP_DATA_DIR") else None)]
    for source, candidate in chosen:
        if candidate is not None:
            if must_exist and not candidate.is_dir():
                raise FileNotFoundError(f"{source} = {str(candidate)!r}: no such folder (it should be the "
                                        f"corpora root; `python -m grasp_lib data fetch --data-dir DIR` fills one)")
            return candidate.resolve()
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared.resolve() if shared.is_dir() else Path.home() / ".cache" / "grasp" / "data"


def cache_dir() -> Path:
    """Model cache (converted GGUF weights, tiny test models): env GRASP_CACHE or ~/.cache/grasp."""
    return Path(os.environ.get("GRASP_CACHE", Path.home() / ".cache" / "grasp")).expanduser()
