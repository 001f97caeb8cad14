"""Every reader on the full corpus files: counts equal those in each SOURCE.md (../shared/data/*/SOURCE.md).

Where a SOURCE.md count includes a known quirk, the test states how the reader handles it.
"""

from collections import Counter

import pytest

from grasp_lib.corpora import REGISTRY, load


def _types(docs):
    return Counter(e.type for d in docs for e in d.entities)


def _relations(docs):
    return Counter(r.type for d in docs for r in d.relations)


def _checked(name, split):
    docs, report = load(name, split)
    assert report.read == report.converted + report.n_rejected
    return docs, report


# NCBI-disease: (title lines, mentions read, SpecificDisease, DiseaseClass, Modifier, CompositeMention).
# train: the repeated PMID 8528200 (11 mentions) is rejected, leaving 592 documents and 5,134 mentions
# (= the MTL/BioBERT train file); the mention whose quotes became spaces (line 3249) is repaired.
NCBI = {"train": (593, 5145, 2972, 769, 1289, 115), "dev": (100, 787, 412, 126, 214, 35),
        "test": (100, 960, 555, 121, 264, 20)}


@pytest.mark.parametrize("split", sorted(NCBI))
def test_ncbi_disease(split):
    docs, report = _checked("ncbi-disease", split)
    titles, read, *per_type = NCBI[split]
    duplicate = {"train": (1, 11, {"SpecificDisease": 10, "Modifier": 1})}.get(split, (0, 0, {}))
    assert len(docs) == titles - duplicate[0] and report.read == read
    assert report.n_rejected == duplicate[1]
    types = _types(docs)
    expected = [n - duplicate[2].get(t, 0) for t, n in
                zip(("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention"), per_type)]
    assert [types[t] for t in ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")] == expected
    if split == "train":
        assert report.extra["repaired"] == 1 and report.extra["duplicate_documents"] == ["8528200"]
        assert all(r[2].startswith("document 8528200 repeated") for r in report.rejected)
        assert len({d.id for d in docs}) == 592


# BC2GM: (sentences, GENE lines, ALTGENE lines). One GENE line (and three ALTGENE lines) of the
# official train file do not match their text ('/translation upstream factor'): rejected with line.
BC2GM = {"train": (12500, 15204, 12162, 1), "dev": (2500, 3061, 2337, 0), "test": (5000, 6331, 5068, 0),
         "train_full": (15000, 18265, 14499, 1)}


@pytest.mark.parametrize("split", sorted(BC2GM))
def test_bc2gm(split):
    docs, report = _checked("bc2gm", split)
    sentences, genes, alts, rejected = BC2GM[split]
    assert (len(docs), report.read, report.n_rejected, report.extra["altgene_read"]) == (sentences, genes, rejected, alts)
    assert sum(len(d.entities) for d in docs) == genes - rejected
    assert sum(len(d.alternatives) for d in docs) == report.extra["altgene_converted"]


JNLPBA = {"train": (2000, 51301, 30269, 9533, 951, 6718, 3830), "test": (404, 8662, 5067, 1056, 118, 1921, 500)}


@pytest.mark.parametrize("split", sorted(JNLPBA))
def test_jnlpba(split):
    docs, report = _checked("jnlpba", split)
    types = _types(docs)
    observed = (len(docs), report.converted, *(types[t] for t in ("protein", "DNA", "RNA", "cell_type", "cell_line")))
    assert observed == JNLPBA[split] and report.n_rejected == 0


CHEMPROT = {"train": (4169, 1642, 14), "dev": (2427, 812, 5), "test": (3469, 1255, 0)}


@pytest.mark.parametrize("split", sorted(CHEMPROT))
def test_chemprot(split):
    docs, report = _checked("chemprot", split)
    labels = _relations(docs)
    assert (len(docs), labels["INHIBITOR"], labels["SUBSTRATE_PRODUCT-OF"]) == CHEMPROT[split]
    assert report.n_rejected == 0 and len(labels) == {"train": 13, "dev": 12, "test": 12}[split]


# DDI: (docs, entities, drug, group, brand, drug_n, pairs, effect, mechanism, advise, int).
# Train quirks: 3 entities whose stated text differs from the span only in whitespace are repaired;
# '(R)-warfarin' (Eszopiclone_ddi.xml) does not match its offsets and is rejected with the 4 pairs that
# use it; the pair with ddi="true" and no type is rejected.
DDI = {("ddi", "train"): (714, 14765, 9425, 3399, 1437, 504, 27792, 1687, 1319, 826, 188),
       ("ddi", "test"): (191, 3040, 1864, 667, 369, 140, 5716, 360, 302, 221, 96),
       ("ddi-ner", "test"): (112, 686, 351, 155, 59, 121, 941, 0, 0, 0, 0)}


@pytest.mark.parametrize("name, split", sorted(DDI))
def test_ddi(name, split):
    docs, report = _checked(name, split)
    docs_n, entities, drug, group, brand, drug_n, pairs, *typed = DDI[(name, split)]
    assert (len(docs), report.extra["entities_read"], report.extra["pairs_read"]) == (docs_n, entities, pairs)
    types, labels = _types(docs), _relations(docs)
    lost_drug = 1 if split == "train" else 0
    assert [types[t] for t in ("drug", "group", "brand", "drug_n")] == [drug - lost_drug, group, brand, drug_n]
    assert [labels[t] for t in ("effect", "mechanism", "advise", "int")] == typed
    if split == "train":
        assert report.n_rejected == 6 and report.extra["repaired_whitespace"] == 3
        assert sum(labels.values()) == pairs - 5
    else:
        assert report.n_rejected == 0 and sum(labels.values()) == pairs


# GAD / EU-ADR: per fold (train rows, train positives, test rows, test positives); test folds cover all rows once
GAD = {1: (4796, 2520, 534, 281), 5: (4797, 2521, 533, 280), 10: (4798, 2521, 532, 280)}
EUADR = {1: (318, 235, 37, 27), 3: (319, 236, 36, 26), 7: (320, 236, 35, 26)}


@pytest.mark.parametrize("name, fold, expected", [("gad", k, v) for k, v in GAD.items()]
                         + [("euadr", k, v) for k, v in EUADR.items()])
def test_biobert_folds(name, fold, expected):
    train, _ = _checked(name, f"fold{fold}_train")
    test, _ = _checked(name, f"fold{fold}_test")
    observed = (len(train), _relations(train)["association"], len(test), _relations(test)["association"])
    assert observed == expected


@pytest.mark.parametrize("name, total, positive", [("gad", 5330, 2801), ("euadr", 355, 262)])
def test_biobert_test_folds_cover_every_row(name, total, positive):
    docs = [d for k in range(1, 11) for d in _checked(name, f"fold{k}_test")[0]]
    assert len(docs) == total and _relations(docs)["association"] == positive


# DrugComb: (sentences, spans, relations, POS, COMB, NEG, sentences without relation, arity counts).
# Train line 1274 has 3 spans whose text does not match their offsets: the sentence (4 spans, no
# relation) is left out, its spans rejected.
DRUGCOMB = {"train": (1362, 4060, 1039, 688, 235, 116, 494, {2: 745, 3: 191, 4: 57, 5: 22, 6: 14, 7: 7, 8: 1, 11: 2}),
            "test": (272, 775, 209, 150, 43, 16, 97, {2: 155, 3: 35, 4: 12, 5: 4, 6: 3})}


@pytest.mark.parametrize("split", sorted(DRUGCOMB))
def test_drugcomb(split):
    docs, report = _checked("drugcomb", split)
    sentences, spans, rels, pos, comb, neg, empty, arity = DRUGCOMB[split]
    left_out = report.extra.get("sentences_left_out", 0)
    assert left_out == (1 if split == "train" else 0)
    assert len(docs) == sentences - left_out and report.read == spans + rels
    labels = _relations(docs)
    assert (labels["POS"], labels["COMB"], labels["NEG"]) == (pos, comb, neg)
    assert sum(1 for d in docs if not d.relations) == empty - left_out
    assert Counter(len(r.args) for d in docs for r in d.relations) == Counter(arity)


SCIER = {"train": (5575, 18041, 11424, 3397, 3220, 8743), "dev": (713, 2234, 1549, 416, 269, 1132),
         "test": (854, 2948, 1890, 688, 370, 1626), "test_ood": (580, 1295, 1018, 194, 83, 582)}


@pytest.mark.parametrize("split", sorted(SCIER))
def test_scier(split):
    docs, report = _checked("scier", split)
    types = _types(docs)
    observed = (len(docs), sum(types.values()), types["Method"], types["Task"], types["Dataset"],
                sum(len(d.relations) for d in docs))
    assert observed == SCIER[split] and report.n_rejected == 0


@pytest.mark.parametrize("split, records", [("train", 363), ("test", 8), ("dpo", 61)])
def test_biorlhf(split, records):
    docs, report = _checked("biorlhf", split)
    assert len(docs) == records == report.converted


def test_every_registered_split_loads_and_balances():
    for name, splits in REGISTRY.items():
        for split in splits:
            if not split.startswith("fold"):
                _checked(name, split)
