"""Every reader on a hand-written fixture in its corpus's real format, and on corrupted copies."""

import json
import shutil

import pytest

from grasp_lib.corpora import (CorpusFormatError, load, read_bc2gm, read_biobert_tsv, read_biorlhf, read_chemprot,
                               read_ddi, read_drugcomb, read_ncbi, read_scier, read_standoff, strip_markers)


def test_bc2gm_offsets_ignore_whitespace_and_keep_alternatives(fixtures):
    docs, report = read_bc2gm(fixtures / "bc2gm" / "sample.in")
    assert [e.text for e in docs[0].entities] == ["alkaline phosphatases", "5-nucleotidase"]
    assert all(d.text[e.start:e.end] == e.text for d in docs for e in d.entities)
    assert [a.text for a in docs[1].alternatives] == ["p53"]
    assert (report.read, report.converted, report.n_rejected) == (4, 4, 0)
    assert report.extra["altgene_read"] == 2


def test_bc2gm_shifted_offset_is_rejected_with_line(tmp_path, fixtures):
    shutil.copytree(fixtures / "bc2gm", tmp_path / "bc2gm")
    path = tmp_path / "bc2gm" / "GENE.eval"
    lines = path.read_text().splitlines()
    sid, offsets, mention = lines[3].split("|")
    a, b = offsets.split()
    lines[3] = f"{sid}|{int(a) - 1} {int(b) - 1}|{mention}"
    path.write_text("\n".join(lines) + "\n")
    docs, report = read_bc2gm(tmp_path / "bc2gm" / "sample.in")
    assert (report.read, report.converted) == (4, 3)
    assert report.rejected[0][0].endswith("GENE.eval") and report.rejected[0][1] == 4


def test_standoff_entities_match_text(fixtures):
    docs, report = read_standoff(fixtures / "jnlpba")
    assert [e.type for e in docs[0].entities] == ["DNA", "cell_type", "protein", "DNA", "cell_line"]
    assert docs[0].passages == [(0, 33), (34, len(docs[0].text))]
    assert report.converted == 5


def test_chemprot_markers_are_stripped_positionally(fixtures):
    docs, report = read_chemprot(fixtures / "chemprot.jsonl")
    assert "<<" not in docs[0].text and "[[" not in docs[0].text
    assert [e.text for e in docs[0].entities] == ["Ang II", "valsartan"]
    assert [e.text for e in docs[2].entities] == ["MAO-B", "selegiline"]  # [[ ]] first in the text
    assert docs[2].text.endswith("(p < 0.05 >> baseline).")  # a literal >> after the markers stays
    assert docs[1].relations[0].type == "INHIBITOR" and report.converted == 3


@pytest.mark.parametrize("marked, expected", [
    ("<< a >> b [[ c ]]", ("a b c", [("E1", 0, 1), ("E2", 4, 5)])),
    ("[[ c ]] b << a >>", ("c b a", [("E1", 4, 5), ("E2", 0, 1)])),
    ("no markers", None),
    ("<< a [[ b >> c ]]", None),  # overlapping markers
])
def test_strip_markers_table(marked, expected):
    assert strip_markers(marked) == expected


def test_biobert_tsv_train_and_test_forms(fixtures):
    train, _ = read_biobert_tsv(fixtures / "gad_train.tsv")
    test, report = read_biobert_tsv(fixtures / "gad_test.tsv")
    assert [d.relations[0].type for d in train] == ["association", "none"]
    assert [e.type for e in train[1].entities] == ["DISEASE", "GENE"]  # text order
    assert len(test) == 1 and report.read == 1  # the header is not an item


def test_ddi_discontinuous_entities_pairs_and_typeless_true(fixtures):
    docs, report = read_ddi(fixtures / "ddi")
    doc = docs[0]
    assert len(doc.passages) == 2
    beta = next(e for e in doc.entities if e.text == "Beta- blockers")
    assert len(beta.spans) == 2
    assert " ".join(doc.text[s:e] for s, e in beta.spans) == "Beta- blockers"
    assert [r.type for r in doc.relations] == ["effect", "none", "advise"]
    assert report.rejected[0][1] == 14 and "type None" in report.rejected[0][2]
    assert (report.read, report.converted, report.n_rejected) == (9, 8, 1)


def test_drugcomb_nary_relations(fixtures):
    docs, report = read_drugcomb(fixtures / "drugcomb.jsonl")
    assert [len(r.args) for r in docs[1].relations] == [3, 2]
    assert [r.type for r in docs[1].relations] == ["COMB", "NEG"]
    assert docs[2].relations == [] and report.converted == 10


def test_drugcomb_bad_span_leaves_the_sentence_out(tmp_path, fixtures):
    lines = (fixtures / "drugcomb.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["spans"][1]["start"] += 3
    lines[0] = json.dumps(record)
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    docs, report = read_drugcomb(tmp_path / "d.jsonl")
    assert [d.id for d in docs] == ["a2", "a3"]
    assert report.n_rejected == 3 and report.read == report.converted + report.n_rejected  # 2 spans + 1 relation


def test_scier_surfaces_located_in_order(fixtures):
    docs, report = read_scier(fixtures / "scier.jsonl")
    second = docs[1]
    assert [e.start for e in second.entities] == [0, 10, 18]  # the repeated CNN gets its second occurrence
    assert all(second.text[e.start:e.end] == e.text for e in second.entities)
    assert [r.type for r in docs[0].relations] == ["Part-Of", "Used-For"]
    assert report.extra["relations_read"] == 3


def test_scier_missing_surface_and_dangling_relation_are_rejected(tmp_path, fixtures):
    lines = (fixtures / "scier.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["ner"][1] = ["object tracking", "Task"]
    lines[0] = json.dumps(record)
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    docs, report = read_scier(tmp_path / "s.jsonl")
    reasons = [r[2] for r in report.rejected]
    assert any("object tracking" in r for r in reasons) and any("Used-For" in r for r in reasons)
    assert report.read == report.converted + report.n_rejected == 9


@pytest.mark.parametrize("name, question, answer", [
    ("biorlhf_sft.json", "How many DEGs in heart under HU?", "112 DEGs."),
    ("biorlhf_test.json", "What is the KMP x HU interaction in soleus?", "8,484 DEGs"),
    ("biorlhf_dpo.json", "Is KMP protective in heart?", "Yes, under combined stress."),
])
def test_biorlhf_three_record_kinds(fixtures, name, question, answer):
    docs, _ = read_biorlhf(fixtures / name)
    assert docs[0].text == question
    assert docs[0].relations[0].type == "answer" and docs[0].relations[0].label == answer


def test_ncbi_quirks_duplicate_pmid_and_quotes(fixtures):
    docs, report = read_ncbi(fixtures / "ncbi_quirks.PubTator.txt")
    assert [d.id for d in docs] == ["1001", "1002"]
    assert docs[0].entities[0].text == '"febrile seizures plus"'  # the document's text, quotes restored
    assert report.extra == {"repaired": 1, "duplicate_documents": ["1002"]}
    assert (report.read, report.converted, report.n_rejected) == (4, 3, 1)


@pytest.mark.parametrize("reader, name, edit, message", [
    (read_chemprot, "chemprot.jsonl", lambda ls: ls[:1] + ["{not json"] + ls[1:], r"chemprot.jsonl:2: not a ChemProt"),
    (read_biobert_tsv, "gad_train.tsv", lambda ls: ls + ["a sentence without a label"], r"gad_train.tsv:3: expected"),
    (read_drugcomb, "drugcomb.jsonl", lambda ls: ls[:2] + ['{"doc_id": "x"}'], r"drugcomb.jsonl:3: missing key"),
    (read_scier, "scier.jsonl", lambda ls: ["[1, 2"] + ls, r"scier.jsonl:1: not a JSON line"),
])
def test_corrupted_line_raises_with_file_and_line(tmp_path, fixtures, reader, name, edit, message):
    lines = edit((fixtures / name).read_text().splitlines())
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusFormatError, match=message):
        reader(tmp_path / name)


def test_corrupted_xml_and_ann_name_file_and_line(tmp_path, fixtures):
    shutil.copytree(fixtures / "ddi", tmp_path / "ddi")
    xml = tmp_path / "ddi" / "DrugBank" / "Sample_ddi.xml"
    xml.write_text(xml.read_text().replace("</sentence>\n    <sentence", "<sentence", 1))
    with pytest.raises(CorpusFormatError, match=r"Sample_ddi.xml:\d+: malformed XML"):
        read_ddi(tmp_path / "ddi")
    shutil.copytree(fixtures / "jnlpba", tmp_path / "jnlpba")
    ann = tmp_path / "jnlpba" / "1001.ann"
    ann.write_text(ann.read_text() + "T9\tprotein x y\tIL\n")
    with pytest.raises(CorpusFormatError, match=r"1001.ann:6: offsets must be integers"):
        read_standoff(tmp_path / "jnlpba")


def test_unknown_split_lists_known_splits():
    with pytest.raises(KeyError, match="known: .*test"):
        load("drugcomb", "dev")
