"""Rows per family, the seeded stratified mixture, the curriculum, and per-dataset metrics."""

from collections import Counter

import pytest

from grasp_lib.metrics import dataset_table, f1_table
from grasp_lib.examples import allocate, curriculum_order, curriculum_stages, dataset_rows, sample_splits
from grasp_lib.metrics import score_predictions
from grasp_lib.params import DataParams
from grasp_lib.prompts import build_target
from grasp_lib.tasks import get_task

MIX = {"bc5cdr": 30, "ddi": 20, "gad": 10, "drugcomb": 15, "scier": 10}


@pytest.mark.parametrize("total, sizes, expected", [
    (10, {"a": 50, "b": 50}, {"a": 5, "b": 5}),
    (10, {"a": 70, "b": 20, "c": 10}, {"a": 7, "b": 2, "c": 1}),
    (3, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}),
    (2, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 0}),
    (0, {"a": 5}, {"a": 0}),
])
def test_allocate_table(total, sizes, expected):
    counts = allocate(total, sizes)
    assert counts == expected and sum(counts.values()) == total
    assert all(counts[k] <= sizes[k] for k in sizes)


def test_allocate_refuses_more_than_available():
    with pytest.raises(ValueError, match="only 2 available"):
        allocate(3, {"a": 1, "b": 1})


def test_mixture_is_seeded_stratified_capped_and_disjoint():
    data = DataParams(mixture=MIX, sft_size=60, rl_size=15, eval_size=4)
    splits, report = sample_splits(data, seed=7)
    again, _ = sample_splits(data, seed=7)
    assert [r["id"] for r in splits["sft"]] == [r["id"] for r in again["sft"]]
    per = Counter(r["dataset"] for r in splits["sft"])
    assert per == allocate(60, {k: v for k, v in MIX.items()})  # proportional to the caps
    assert sum(Counter(r["dataset"] for r in splits["rl"]).values()) == 15
    assert not {r["id"] for r in splits["sft"]} & {r["id"] for r in splits["rl"]}
    assert Counter(r["dataset"] for r in splits["eval"]) == {k: 4 for k in MIX}
    assert set(report["train"]) == set(MIX) and report["capped"] == MIX
    other, _ = sample_splits(data, seed=8)
    assert [r["id"] for r in other["sft"]] != [r["id"] for r in splits["sft"]]
    for row in splits["sft"] + splits["eval"]:
        spec = get_task(row["dataset"])
        assert row["task"] == spec.family
        assert {"entities", "relations", "label", "combinations", "answer", "alternatives"} <= set(row)
        build_target(row, spec)


def test_mixture_asking_too_much_names_the_datasets():
    with pytest.raises(ValueError, match="gad"):
        sample_splits(DataParams(mixture={"gad": 5}, sft_size=6, rl_size=0, eval_size=1), seed=1)


def test_curriculum_stage_a_one_family_then_everything():
    rows = [{"id": str(i), "task": t} for i, t in enumerate(["ner", "re", "ner", "nary"])]
    ordered = curriculum_order(rows, "ner")
    stages = curriculum_stages(ordered)
    assert [s for s, _ in stages] == ["A", "B"]
    assert [r["id"] for r in stages[0][1]] == ["0", "2"] and len(stages[1][1]) == 4
    assert curriculum_stages(rows) == [("all", rows)]
    with pytest.raises(ValueError, match="no SFT rows of that task family"):
        curriculum_order(rows, "qa")


def test_curriculum_in_sample_splits():
    data = DataParams(mixture={"bc5cdr": 10, "gad": 10}, sft_size=12, rl_size=2, eval_size=1, curriculum="re")
    splits, _ = sample_splits(data, seed=3)
    first_b = next(i for i, r in enumerate(splits["sft"]) if r["stage"] == "B")
    assert all(r["task"] == "re" for r in splits["sft"][:first_b]) and first_b > 0


def test_bc2gm_rows_carry_alternatives_in_row_offsets():
    rows, _ = dataset_rows("bc2gm", "dev")
    with_alt = next(r for r in rows if r["alternatives"])
    assert all(with_alt["text"][a["start"]:a["end"]] == a["text"] for a in with_alt["alternatives"])


def test_score_predictions_multi_dataset_and_bc2gm_alternatives():
    rows = []
    for name in ("bc5cdr", "gad", "drugcomb", "scier"):
        rows += dataset_rows(name, "test")[0][:3]
    bc2gm = next(r for r in dataset_rows("bc2gm", "test")[0] if len(r["entities"]) == 1
                 and any((a["start"], a["end"]) not in {(e["start"], e["end"]) for e in r["entities"]}
                        for a in r["alternatives"]))
    gold_keys = {(e["start"], e["end"]) for e in bc2gm["entities"]}
    alt = next(a for a in bc2gm["alternatives"] if (a["start"], a["end"]) not in gold_keys)
    rows.append(bc2gm)
    completions = [build_target(r, get_task(r["dataset"])) for r in rows[:-1]]
    completions.append('{"GENE": [%s]}' % ", ".join(
        f'"{t}"' for t in [alt["text"]] + [e["text"] for e in bc2gm["entities"]
                                           if not (e["start"] < alt["end"] and alt["start"] < e["end"])]))
    metrics, records = score_predictions(rows, completions)
    assert set(metrics["datasets"]) == {"bc5cdr", "gad", "drugcomb", "scier", "bc2gm"}
    for name, d in metrics["datasets"].items():
        assert d["headline"]["value"] == pytest.approx(1.0) or d["headline"]["value"] == 0.0 and name == "drugcomb"
    assert metrics["datasets"]["bc2gm"]["strict"]["micro"]["f1"] == 1.0  # the ALTGENE boundary counts
    assert metrics["strict"]["micro"]["f1"] == 1.0 and metrics["pooled_ner_datasets"] == ["bc5cdr", "bc2gm"]
    assert metrics["n"] == len(rows) == len(records)
    table = f1_table({"base": metrics})
    assert table[0]["gad"] == 1.0 and "strict_f1" in table[0]
    long = dataset_table({"base": metrics})
    assert {r["dataset"] for r in long} == set(metrics["datasets"]) and all(r["stage"] == "base" for r in long)


def test_score_predictions_single_ner_dataset_keeps_top_level_shape():
    rows = dataset_rows("bc5cdr", "test")[0][:2]
    metrics, _ = score_predictions(rows, [build_target(r, get_task("bc5cdr")) for r in rows])
    assert "datasets" not in metrics and metrics["strict"]["micro"]["f1"] == 1.0
    assert set(metrics["strict"]["per_type"]) == {"Chemical", "Disease"} and metrics["n"] == 2


def test_counts_table_puts_too_long_beside_each_dataset_and_split():
    from grasp_lib.examples import counts_table

    rep = {"read": 5, "converted": 4, "rejected": 1, "documents": 2, "rows": 4}
    single = {"train": rep | {"dataset": "bc5cdr"}, "eval": rep | {"dataset": "bc5cdr"},
              "too_long": {"train": 3, "eval": 1}}
    assert [(r["dataset"], r["split"], r["too_long"]) for r in counts_table(single)] == [
        ("bc5cdr", "train", 3), ("bc5cdr", "eval", 1)]
    mixture = {"train": {"a": rep, "b": rep}, "eval": {"a": rep, "b": rep},
               "too_long": {"train": {"a": 2, "b": 0}, "eval": {"a": 0, "b": 5}}}
    assert [(r["dataset"], r["split"], r["too_long"]) for r in counts_table(mixture)] == [
        ("a", "train", 2), ("b", "train", 0), ("a", "eval", 0), ("b", "eval", 5)]
