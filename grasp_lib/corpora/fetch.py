"""Fetch the corpora onto a fresh machine: download, verify SHA-256 against checksums.sha256, idempotent.

`python -m grasp_lib data fetch [names] [--base-url URL] [--data-dir DIR]`; `python -m grasp_lib data verify
[names]` re-checks the files in place (corpora.load also checks each file it reads and warns on a mismatch).
Default source: each corpus's public repository at the commit its SOURCE.md names, via
raw.githubusercontent.com/<repo>/<commit>/<path> (DDI-2013: the corpus zip, unpacked). With
--base-url, files are taken from a mirror laid out like the data root (`<base>/<folder>/<file>`),
e.g. another machine's ../shared/data served over HTTP.
A file already present with the right checksum is skipped (so a second run, or one resumed after an
interruption, downloads only what is missing); a download lands in `<file>.part` and is renamed only
after its checksum matched; a mismatch raises ChecksumError naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

CHECKSUMS = Path(__file__).with_name("checksums.sha256")
RAW = "https://raw.githubusercontent.com"

# corpus folder -> (repo, commit, {local prefix: remote prefix}) ; the longest matching prefix wins
SOURCES = {
    "BC5CDR": ("cryptoradon/biomedRelExt", "3f113ff1aefd03b7ecf053a6bc33cc6a75532f20",
               {"": "CDR_Data/CDR.Corpus.v010516/"}),
    "NCBI-disease": ("spyysalo/ncbi-disease", "5a266c6fc76fb2b5184cfa397ff0a5ecdb133aec",
                     {"NCBIdevelopset_corpus.txt": "original-data/devel/NCBIdevelopset_corpus.txt",
                      "NCBItestset_corpus.txt": "original-data/test/NCBItestset_corpus.txt"}),
    "BC2GM": ("spyysalo/bc2gm-corpus", "018161681145daf751af037cb890f3a54f62a74d", {"": ""}),
    "JNLPBA": ("spyysalo/jnlpba", "4455122de861c6e448e2e8c7f19ef8f49dbc32b2", {"": ""}),
    "ChemProt": ("allenai/scibert", "06793f77d7278898159ed50da30d173cdc8fdea9",
                 {"": "data/text_classification/chemprot/"}),
    "DDI-2013": ("isegura/DDICorpus", "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3", {"": "DDICorpus-2013.zip"}),
    "GAD": ("BioMedBERT/biomedbert", "9e5e1019d79d07c7aecc4eb49106203af1012663", {"": "datasets/RE/GAD/"}),
    "EU-ADR": ("BioMedBERT/biomedbert", "9e5e1019d79d07c7aecc4eb49106203af1012663", {"": "datasets/RE/euadr/"}),
    "DrugComb": ("allenai/drug-combo-extraction", "219717e8c2f7139584c605e211acbd86b26c93dd", {"": "data/"}),
    "SciER": ("edzq/SciER", "db347813de379eb200e0813bbfee350d67e7c701", {"LLM/": "SciER/LLM/"}),
    "BioRLHF": ("jang1563/BioRLHF", "1cc781e951c9714530ea58da01982654306b8a78", {"": "data/"}),
}
# files whose blob lives at another commit of the same repository (see SOURCE.md)
COMMIT_OVERRIDES = {
    "BC5CDR/CDR_TrainingSet.PubTator.txt": "e42e94570138158963ae4696298bf09232071740",
    "NCBI-disease/NCBItrainset_corpus.txt": ("95a4ae5cca3a34f7715fdc792fc69f851c7b32df",
                                              "original-data/train/NCBItrainset_corpus.txt"),
}
# registry name -> corpus folder
FOLDERS = {"bc5cdr": "BC5CDR", "bc5cdr-cid": "BC5CDR", "ncbi-disease": "NCBI-disease", "bc2gm": "BC2GM",
           "jnlpba": "JNLPBA", "chemprot": "ChemProt", "ddi": "DDI-2013", "ddi-ner": "DDI-2013", "gad": "GAD",
           "euadr": "EU-ADR", "drugcomb": "DrugComb", "scier": "SciER", "biorlhf": "BioRLHF"}


class ChecksumError(RuntimeError):
    """A downloaded file whose SHA-256 differs from the project's checksum; the message names the file."""


class FetchError(RuntimeError):
    """A file that could not be downloaded; the message names the file and the URL."""


class ChecksumWarning(UserWarning):
    """A corpus file read although its SHA-256 differs from the project's checksum (changed or truncated)."""


def checksums() -> dict[str, str]:
    """relative path -> sha256, from checksums.sha256 (`sha256sum` format, paths relative to the data root)."""
    return dict(_table(str(CHECKSUMS), CHECKSUMS.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _table(path: str, _mtime_ns: int) -> tuple[tuple[str, str], ...]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split(None, 1)
            rows.append((rel.strip().removeprefix("./"), digest))
    return tuple(rows)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def upstream_url(relative: str) -> str:
    """The public URL of one data-root file (raw.githubusercontent.com at the SOURCE.md commit)."""
    folder, _, inner = relative.partition("/")
    repo, commit, prefixes = SOURCES[folder]
    override = COMMIT_OVERRIDES.get(relative)
    if isinstance(override, tuple):
        return f"{RAW}/{repo}/{override[0]}/{override[1]}"
    commit = override or commit
    local = max((p for p in prefixes if inner.startswith(p)), key=len)
    remote = prefixes[local]
    target = remote if remote.endswith(".zip") or (local and not local.endswith("/")) else remote + inner[len(local):]
    return f"{RAW}/{repo}/{commit}/{target}"


def _download(url: str, relative: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(f"{relative}: cannot download {url} ({err}); the sources are listed in each "
                         f"corpus's SOURCE.md") from None


def _verify_write(data: bytes, target: Path, relative: str, expected: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ChecksumError(f"{relative}: checksum mismatch (expected {expected}, got {digest})")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_bytes(data)
    part.replace(target)


def _folders(names: list[str] | None) -> list[str]:
    """Corpus folders of registry names or folder names; all when empty."""
    folders = sorted({FOLDERS.get(n, n) for n in names}) if names else sorted(SOURCES)
    unknown = [f for f in folders if f not in SOURCES]
    if unknown:
        raise KeyError(f"unknown dataset(s) {unknown}; known: {sorted(FOLDERS)}")
    return folders


def fetch(names: list[str] | None, data_dir: str | Path, base_url: str | None = None, log=print) -> dict:
    """Fetch the named datasets (registry names or corpus folders; all when empty) into data_dir.
    Returns {"downloaded": n, "present": n, "files": n}."""
    data_dir = Path(data_dir)
    folders = _folders(names)
    table = checksums()
    counts = {"downloaded": 0, "present": 0, "files": 0}
    for folder in folders:
        wanted = {rel: digest for rel, digest in table.items() if rel.startswith(folder + "/")}
        missing = {}
        for rel, digest in wanted.items():
            counts["files"] += 1
            target = data_dir / rel
            if target.exists() and sha256(target) == digest:
                counts["present"] += 1
            else:
                missing[rel] = digest
        if not missing:
            continue
        log(f"{folder}: {len(missing)} of {len(wanted)} files to fetch")
        if base_url is None and SOURCES[folder][2].get("") == "DDICorpus-2013.zip":
            _fetch_zip(folder, missing, data_dir)
        else:
            for rel, digest in sorted(missing.items()):
                url = f"{base_url.rstrip('/')}/{urllib.request.quote(rel)}" if base_url else upstream_url(rel)
                _verify_write(_download(url, rel), data_dir / rel, rel, digest)
        counts["downloaded"] += len(missing)
    return counts


def _fetch_zip(folder: str, missing: dict[str, str], data_dir: Path) -> None:
    """DDI-2013: the corpus zip from its repository, unpacked; each member checked against its checksum."""
    url = upstream_url(next(iter(missing)))
    archive = zipfile.ZipFile(io.BytesIO(_download(url, folder + "/DDICorpus-2013.zip")))
    members = {name.split("DDICorpus/", 1)[-1]: name for name in archive.namelist() if not name.endswith("/")}
    for rel, digest in missing.items():
        inner = rel.split("DDICorpus/", 1)[-1]
        if inner not in members:
            if rel.endswith("/README"):
                _verify_write(_download(upstream_url(rel).replace("DDICorpus-2013.zip", "README"), rel), data_dir / rel,
                              rel, digest)
                continue
            raise FetchError(f"{rel}: not in {url}")
        _verify_write(archive.read(members[inner]), data_dir / rel, rel, digest)


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime): a file is hashed once unless it changes


def file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256(path)
    return _DIGESTS[key]


def check_files(data_dir: str | Path, relative: str) -> dict:
    """Re-check in place the files checksums.sha256 lists at or under `relative` (a data-root file or
    folder): {"sha256": {path: digest}, "changed": [paths], "missing": [paths]}."""
    prefix = relative.rstrip("/") + "/"
    result = {"sha256": {}, "changed": [], "missing": []}
    listed = sorted((rel, digest) for rel, digest in checksums().items() if rel == relative or rel.startswith(prefix))
    for rel, expected in listed:
        path = Path(data_dir) / rel
        if not path.is_file():
            result["missing"].append(rel)
            continue
        result["sha256"][rel] = file_digest(path)
        if result["sha256"][rel] != expected:
            result["changed"].append(rel)
    return result


def verify(names: list[str] | None, data_dir: str | Path) -> dict[str, dict]:
    """`data verify`: check_files for each corpus folder of the named datasets (all when empty)."""
    return {folder: check_files(data_dir, folder) for folder in _folders(names)}


def missing_data(data_dir: str | Path) -> bool:
    """True when some corpus folder is absent under data_dir (what `make run` checks)."""
    return any(not (Path(data_dir) / folder).is_dir() for folder in SOURCES)


def remove_partial(data_dir: str | Path) -> int:
    """Delete leftover `*.part` files from an interrupted fetch; returns how many."""
    parts = list(Path(data_dir).rglob("*.part"))
    for part in parts:
        part.unlink()
    return len(parts)


__all__ = ["fetch", "verify", "check_files", "checksums", "upstream_url", "ChecksumError", "ChecksumWarning",
           "FetchError", "missing_data"]
