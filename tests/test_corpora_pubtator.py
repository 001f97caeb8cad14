"""PubTator reader: a real-format fixture, corrupted input, and the full BC5CDR files against SOURCE.md."""

from collections import Counter

import pytest

from grasp_lib.corpora import CorpusFormatError, load, read_pubtator


def test_fixture_documents_entities_and_relations(fixtures):
    docs, report = read_pubtator(fixtures / "sample.PubTator.txt")
    assert [d.id for d in docs] == ["100001", "100002"]
    first = docs[0]
    assert [e.text for e in first.entities] == ["Naloxone", "clonidine", "hypotension", "Clonidine",
                                                "Naloxone", "NLX", "seizures"]
    assert all(first.text[e.start:e.end] == e.text for e in first.entities)
    assert first.relations[0].type == "CID" and first.relations[0].args == ("D003000", "D007022")
    assert first.passages == [(0, 48), (49, len(first.text))]
    assert docs[1].passages == [(0, 31)]  # empty abstract: title only
    assert (report.read, report.converted, report.n_rejected) == (9, 9, 0)


def test_offset_mismatch_is_rejected_and_reported(tmp_path, fixtures):
    lines = (fixtures / "sample.PubTator.txt").read_text().splitlines()
    lines[2] = lines[2].replace("\t0\t8\t", "\t1\t9\t")  # shift the first mention by one character
    corrupted = tmp_path / "shifted.txt"
    corrupted.write_text("\n".join(lines) + "\n")
    docs, report = read_pubtator(corrupted)
    assert report.read == 9 and report.converted == 8
    assert report.rejected[0][1] == 3 and "Naloxone" in report.rejected[0][2]
    assert len(docs[0].entities) == 6


@pytest.mark.parametrize("line, message", [
    ("100001\t0\t8", r"expected 4 \(relation\) or 6\+"),
    ("100001\tzero\t8\tNaloxone\tChemical\tD009270", "offsets must be integers"),
    ("999\t0\t8\tNaloxone\tChemical\tD009270", "outside its document"),
])
def test_corrupted_line_names_file_and_line(tmp_path, fixtures, line, message):
    lines = (fixtures / "sample.PubTator.txt").read_text().splitlines()
    lines[4] = line
    corrupted = tmp_path / "corrupted.txt"
    corrupted.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=rf"corrupted.txt:5: .*{message}"):
        read_pubtator(corrupted)


# Counts from ../shared/data/BC5CDR/SOURCE.md
BC5CDR = {"train": (500, 9385, 5203, 4182, 1038), "dev": (500, 9591, 5347, 4244, 1012),
          "test": (500, 9809, 5385, 4424, 1066)}


@pytest.mark.parametrize("split", sorted(BC5CDR))
def test_full_bc5cdr_counts_match_source_md(split):
    docs, report = load("bc5cdr", split)
    types = Counter(e.type for d in docs for e in d.entities)
    observed = (len(docs), report.converted, types["Chemical"], types["Disease"],
                sum(len(d.relations) for d in docs))
    assert observed == BC5CDR[split]
    assert report.read == report.converted + report.n_rejected


def test_unknown_dataset_lists_known_names():
    with pytest.raises(KeyError, match="known: .*bc5cdr"):
        load("bc5cdrx", "train")
