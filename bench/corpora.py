"""Load every registered dataset split in full; print counts, wall time and peak RSS.

Goal: at most 60 s and 4 GB together on 2 cores. Last line: `corpora: <seconds> s, <MB> MB, <N> documents`.
Run: `flock /tmp/grasp-cpu.lock .venv/bin/python bench/corpora.py`
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grasp_lib.corpora import REGISTRY, load  # noqa: E402


def main() -> None:
    started = time.time()
    documents, seen = 0, set()
    print(f"{'dataset':<14}{'split':<14}{'docs':>8}{'read':>9}{'converted':>11}{'rejected':>10}")
    for name, splits in REGISTRY.items():
        for split, (reader, relative) in splits.items():
            key = (getattr(reader, "func", reader), str(getattr(reader, "keywords", "")), relative)
            if key in seen:  # aliases (bc5cdr-cid, ddi-ner train, fold 1 = train/test) read once
                continue
            seen.add(key)
            docs, report = load(name, split)
            report.check()
            documents += len(docs)
            print(f"{name:<14}{split:<14}{len(docs):>8}{report.read:>9}{report.converted:>11}{report.n_rejected:>10}")
    seconds = time.time() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpora: {seconds:.1f} s, {peak_mb:.0f} MB, {documents} documents")


if __name__ == "__main__":
    main()
