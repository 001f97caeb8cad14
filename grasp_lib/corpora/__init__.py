"""Corpus readers and the registry `load(name, split)`.

Each reader returns (documents, ReadReport). Files are read in place from the data root
(see grasp_lib.paths.data_root); nothing is copied into the repository.
"""

from __future__ import annotations

import unicodedata
import warnings
from functools import partial
from pathlib import Path

from ..paths import data_root
from ..schema import Document
from . import fetch
from .bc2gm import BC2GMDocument, read_bc2gm
from .ddi import read_ddi
from .jsonl_re import read_biobert_tsv, read_chemprot, strip_markers
from .nary import read_biorlhf, read_drugcomb, read_scier
from .pubtator import read_pubtator
from .report import CorpusFormatError, ReadReport
from .standoff import read_standoff

# NCBI-disease's training file repeats PMID 8528200 and has one mention with its quotes replaced by spaces
read_ncbi = partial(read_pubtator, repair_quotes=True, skip_duplicates=True)
_DDI = "DDI-2013/DDICorpus"


def _folds(name: str) -> dict:
    """BioBERT RE folds 1-10: split "train"/"test" is fold 1, "fold<k>_train"/"fold<k>_test" any fold."""
    splits = {"train": (read_biobert_tsv, f"{name}/1/train.tsv"), "test": (read_biobert_tsv, f"{name}/1/test.tsv")}
    for k in range(1, 11):
        splits[f"fold{k}_train"] = (read_biobert_tsv, f"{name}/{k}/train.tsv")
        splits[f"fold{k}_test"] = (read_biobert_tsv, f"{name}/{k}/test.tsv")
    return splits

# name -> split -> (reader, path relative to the data root)
REGISTRY = {
    "bc5cdr": {
        "train": (read_pubtator, "BC5CDR/CDR_TrainingSet.PubTator.txt"),
        "dev": (read_pubtator, "BC5CDR/CDR_DevelopmentSet.PubTator.txt"),
        "test": (read_pubtator, "BC5CDR/CDR_TestSet.PubTator.txt"),
    },
    "ncbi-disease": {
        "train": (read_ncbi, "NCBI-disease/NCBItrainset_corpus.txt"),
        "dev": (read_ncbi, "NCBI-disease/NCBIdevelopset_corpus.txt"),
        "test": (read_ncbi, "NCBI-disease/NCBItestset_corpus.txt"),
    },
    "bc2gm": {  # the standard (MTL / BioBERT / BLURB) split; train_full = the official 15,000 sentences
        "train": (read_bc2gm, "BC2GM/devel-split/train/train.in"),
        "dev": (read_bc2gm, "BC2GM/devel-split/devel/devel.in"),
        "test": (read_bc2gm, "BC2GM/original-data/test/test.in"),
        "train_full": (read_bc2gm, "BC2GM/original-data/train/train.in"),
    },
    "jnlpba": {
        "train": (read_standoff, "JNLPBA/standoff/train"),
        "test": (read_standoff, "JNLPBA/standoff/test"),
    },
    "chemprot": {
        "train": (read_chemprot, "ChemProt/train.txt"),
        "dev": (read_chemprot, "ChemProt/dev.txt"),
        "test": (read_chemprot, "ChemProt/test.txt"),
    },
    "ddi": {  # relation extraction: test = the DDI Extraction task test set
        "train": (read_ddi, f"{_DDI}/Train"),
        "test": (read_ddi, f"{_DDI}/Test/Test for DDI Extraction task"),
    },
    "ddi-ner": {  # drug NER: test = the DrugNER task test set
        "train": (read_ddi, f"{_DDI}/Train"),
        "test": (read_ddi, f"{_DDI}/Test/Test for DrugNER task"),
    },
    "gad": _folds("GAD"),
    "euadr": _folds("EU-ADR"),
    "drugcomb": {
        "train": (read_drugcomb, "DrugComb/final_train_set.jsonl"),
        "test": (read_drugcomb, "DrugComb/final_test_set.jsonl"),
    },
    "scier": {
        "train": (read_scier, "SciER/LLM/train.jsonl"),
        "dev": (read_scier, "SciER/LLM/dev.jsonl"),
        "test": (read_scier, "SciER/LLM/test.jsonl"),
        "test_ood": (read_scier, "SciER/LLM/test_ood.jsonl"),
    },
    "biorlhf": {
        "train": (read_biorlhf, "BioRLHF/kmp_sft_final.json"),
        "test": (read_biorlhf, "BioRLHF/kmp_test_set.json"),
        "dpo": (read_biorlhf, "BioRLHF/kmp_dpo_preferences.json"),
    },
}
REGISTRY["bc5cdr-cid"] = REGISTRY["bc5cdr"]  # the same documents, read for their CID relations


def load(name: str, split: str, data_dir: str | Path | None = None) -> tuple[list[Document], ReadReport]:
    """Read one split of a registered corpus; an unknown name or split lists the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(REGISTRY)}")
    if split not in REGISTRY[name]:
        raise KeyError(f"dataset {name!r} has no split {split!r}; known: {sorted(REGISTRY[name])}")
    reader, relative = REGISTRY[name][split]
    root = data_root(str(data_dir) if data_dir else None)
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: set data_dir in params or GRASP_DATA_DIR to the corpora root")
    docs, report = reader(path)
    if not docs:
        raise CorpusFormatError(f"{path}: no documents read ({report.read} annotations): the file is empty or "
                                f"not in the format of {name} {split}")
    unique_ids(docs, path)
    count_invisible(docs, report)
    _check_checksums(name, split, root, relative, docs, report)
    return docs, report


def unique_ids(docs: list[Document], path: Path) -> None:
    """Document ids unique within a split: a repeat is an error naming both documents (by position), not
    renamed apart: predictions are joined to gold by id, and a repeated document is a damaged file."""
    first: dict[str, int] = {}
    for n, doc in enumerate(docs, start=1):
        if doc.id in first:
            raise CorpusFormatError(f"{path}: documents {first[doc.id]} and {n} (in file order) have the same id "
                                    f"{doc.id!r}: ids must be unique within a split")
        first[doc.id] = n


def count_invisible(docs: list[Document], report: ReadReport) -> None:
    """report.extra["invisible_in_mentions"]: mentions holding a zero-width or other invisible format
    character (Unicode category Cf: U+200B, U+200D, U+FEFF, soft hyphen...), kept as the corpus has them but
    counted, since a model never writes them and exact matching then fails (a few ids as examples)."""
    found = [e.id for doc in docs for e in doc.entities if any(unicodedata.category(ch) == "Cf" for ch in e.text)]
    if found:
        report.extra["invisible_in_mentions"] = len(found)
        report.extra["invisible_examples"] = found[:5]


def _check_checksums(name: str, split: str, root: Path, relative: str, docs: list, report: ReadReport) -> None:
    """Record the sha256 of the files read in report.files; warn (with counts) where one differs from
    checksums.sha256 or is missing: changed or truncated since fetch."""
    found = fetch.check_files(root, relative)
    report.files = found["sha256"]
    if found["changed"] or found["missing"]:
        bad = found["changed"] + found["missing"]
        warnings.warn(fetch.ChecksumWarning(
            f"{name} {split}: {len(found['changed'])} file(s) differ from grasp_lib/corpora/checksums.sha256 and "
            f"{len(found['missing'])} listed file(s) are missing under {root} (changed or truncated since they "
            f"were fetched), e.g. {bad[:3]}; read anyway: {len(docs)} documents, {report.read} annotations "
            f"({report.converted} converted, {report.n_rejected} rejected). `python -m grasp_lib data verify` "
            f"re-checks every file; `data fetch` restores them"), stacklevel=2)


def input_checksums(names_splits: list[tuple[str, str]], data_dir: str | Path | None = None) -> dict:
    """What a run reads, for its run folder (data/inputs.json): the data root and, per data-root file of
    the given (dataset, split) pairs, its sha256 and whether it matches checksums.sha256."""
    root = data_root(str(data_dir) if data_dir else None)
    files, changed, missing = {}, [], []
    for name, split in names_splits:
        found = fetch.check_files(root, REGISTRY[name][split][1])
        files |= found["sha256"]
        changed += found["changed"]
        missing += found["missing"]
    return {"data_root": str(root), "sha256": dict(sorted(files.items())), "changed": sorted(set(changed)),
            "missing": sorted(set(missing))}


def counts_table(data_dir: str | Path | None = None, folds: bool = False) -> list[dict]:
    """Read / converted / rejected for every registered dataset split (notebook 01, bench)."""
    rows = []
    for name, splits in REGISTRY.items():
        for split in splits:
            if split.startswith("fold") and not folds:
                continue
            docs, report = load(name, split, data_dir)
            rows.append({"dataset": name, "split": split, "documents": len(docs), "read": report.read,
                         "converted": report.converted, "rejected": report.n_rejected})
    return rows


__all__ = ["counts_table", "REGISTRY", "load", "input_checksums", "read_pubtator", "read_ncbi", "read_bc2gm", "read_standoff", "read_chemprot",
           "read_biobert_tsv", "read_ddi", "read_drugcomb", "read_scier", "read_biorlhf", "strip_markers",
           "BC2GMDocument", "ReadReport", "CorpusFormatError"]
