from grasp_lib.corpora import load, read_pubtator
from grasp_lib.schema import split_units


def test_sentences_of_fixture(fixtures):
    docs, _ = read_pubtator(fixtures / "sample.PubTator.txt")
    units = split_units(docs[0], "sentence")
    texts = [u[1] for u in units]
    # "e.g." is not a sentence end; the title is its own passage
    assert texts == ["Naloxone reverses clonidine-induced hypotension.", "Clonidine lowered blood pressure in rats.",
                     "Naloxone (NLX) restored it, e.g. within minutes.", "No seizures were seen."]
    assert [len(u[2]) for u in units] == [3, 1, 2, 1]


def test_every_unit_keeps_every_entity_with_valid_offsets():
    docs, report = load("bc5cdr", "test")
    for unit in ("document", "passage", "sentence"):
        units = [u for d in docs for u in split_units(d, unit)]
        assert sum(len(u[2]) for u in units) == report.converted
        for _, text, entities in units:
            assert all(text[e.start:e.end] == e.text for e in entities)
