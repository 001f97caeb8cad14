"""Evaluation in bf16 or int8 also scores a seeded fp32 subsample and records the delta; grounded evaluation."""

from __future__ import annotations

import logging

import pytest

from grasp_lib import evaluation
from grasp_lib.params import Params

ROWS = [{"id": str(i), "dataset": "bc5cdr", "text": text,
         "entities": [{"start": 0, "end": len(first), "type": "Chemical", "text": first}]}
        for i, (text, first) in enumerate([("Naloxone reversed hypotension.", "Naloxone"),
                                           ("Aspirin caused bleeding.", "Aspirin"),
                                           ("Lithium induced tremor.", "Lithium"),
                                           ("Heparin and warfarin.", "Heparin")])]
GOLD = ['{"Chemical": ["%s"], "Disease": []}' % r["entities"][0]["text"] for r in ROWS]


class _Texts:
    def __init__(self, texts):
        self.texts = [[t] for t in texts]


@pytest.mark.parametrize("precision, int8", [("bf16", False), ("fp32", True), ("auto", True)])
def test_fidelity_check_scores_fp32_on_a_seeded_subsample_and_warns_over_one_point(monkeypatch, caplog, precision,
                                                                                   int8):
    params = Params(precision=precision)
    params.eval.int8, params.eval.fidelity_check = int8, 3
    reduced = "int8" if int8 else "bf16"
    seen = []

    def fp32(model, tokenizer, conversations, rows, params, precision):
        assert precision == "fp32"
        seen.append([r["id"] for r in rows])
        return _Texts([GOLD[int(r["id"])] for r in rows])  # fp32 right, the reduced precision (below) wrong

    monkeypatch.setattr(evaluation, "_generate", fp32)
    wrong = [['{"Chemical": [], "Disease": []}']] * len(ROWS)
    with caplog.at_level(logging.WARNING, logger="grasp_lib.evaluation"):
        check = evaluation.fidelity_check(None, None, [[]] * len(ROWS), ROWS, wrong, params)
    assert check["precision"] == reduced and check["rows"] == 3 and len(seen[0]) == 3
    assert check["f1_fp32"] == 1.0 and check["f1"] == 0.0 and check["delta_points"] == -100.0
    assert not check["within_1_point"] and f"{reduced} changes the F1" in caplog.text
    again = evaluation.fidelity_check(None, None, [[]] * len(ROWS), ROWS, wrong, params)
    assert seen[1] == seen[0]  # seeded: the same subsample every time
    caplog.clear()
    same = evaluation.fidelity_check(None, None, [[]] * len(ROWS), ROWS, [[g] for g in GOLD], params)
    assert same["delta_points"] == 0.0 and same["within_1_point"] and again["rows"] == 3
    assert "changes the F1" not in caplog.text


@pytest.mark.parametrize("precision, int8", [("fp32", True), ("bf16", False)])
def test_evaluate_model_reduced_precision_grounded_records_the_check(tmp_path, precision, int8):
    params = Params(model="tiny-random", precision=precision)
    params.eval.int8, params.eval.fidelity_check, params.eval.constrained = int8, 2, True
    params.eval.max_new_tokens = 12
    metrics, records = evaluation.evaluate_model("tiny-random", ROWS, params, tmp_path)
    assert metrics["generation"]["int8"] == int8 and metrics["generation"]["constrained"]
    assert metrics["generation"]["precision"] == ("fp32" if int8 else "bf16")
    assert metrics["fidelity_check"]["rows"] == 2
    assert metrics["fidelity_check"]["precision"] == ("int8" if int8 else "bf16")
    assert all(r["status"] == "valid" for r in records)  # grounded: every answer parses
    assert all(p["start"] is not None for r in records for p in r["predicted"])  # every mention is in the text


def test_fp32_evaluation_has_no_fidelity_check(tmp_path):
    params = Params(model="tiny-random", precision="fp32")
    params.eval.max_new_tokens = 4
    metrics, _ = evaluation.evaluate_model("tiny-random", ROWS[:2], params, tmp_path)
    assert metrics["generation"]["precision"] == "fp32" and "fidelity_check" not in metrics


@pytest.mark.parametrize("run, at_eval, int8, expected", [("bf16", None, False, "bf16"), ("bf16", "fp32", False, "fp32"),
                                                             ("fp32", "bf16", False, "bf16"), ("bf16", None, True, "int8")])
def test_the_evaluation_precision_overrides_the_runs(run, at_eval, int8, expected):
    params = Params(precision=run)
    params.eval.precision, params.eval.int8 = at_eval, int8
    assert evaluation.generation_precision(params) == expected
