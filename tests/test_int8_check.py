"""Evaluation with int8 also scores a seeded fp32 subsample and records the delta; grounded evaluation."""

from __future__ import annotations

import logging

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


def test_int8_check_scores_fp32_on_a_seeded_subsample_and_warns_over_one_point(monkeypatch, caplog):
    params = Params()
    params.eval.int8, params.eval.int8_check = True, 3
    seen = []

    def fp32(model, tokenizer, conversations, rows, params, int8):
        assert not int8
        seen.append([r["id"] for r in rows])
        return _Texts([GOLD[int(r["id"])] for r in rows])  # fp32 right, int8 (below) wrong

    monkeypatch.setattr(evaluation, "_generate", fp32)
    int8_texts = [['{"Chemical": [], "Disease": []}']] * len(ROWS)
    with caplog.at_level(logging.WARNING, logger="grasp_lib.evaluation"):
        check = evaluation.int8_check(None, None, [[]] * len(ROWS), ROWS, int8_texts, params)
    assert check["rows"] == 3 and len(seen[0]) == 3
    assert check["f1_fp32"] == 1.0 and check["f1_int8"] == 0.0 and check["delta_points"] == -100.0
    assert not check["within_1_point"] and "int8 changes the F1" in caplog.text
    again = evaluation.int8_check(None, None, [[]] * len(ROWS), ROWS, int8_texts, params)
    assert seen[1] == seen[0]  # seeded: the same subsample every time
    caplog.clear()
    same = evaluation.int8_check(None, None, [[]] * len(ROWS), ROWS, [[g] for g in GOLD], params)
    assert same["delta_points"] == 0.0 and same["within_1_point"] and again["rows"] == 3
    assert "int8 changes" not in caplog.text


def test_evaluate_model_int8_grounded_records_the_check(tmp_path):
    params = Params(model="tiny-random")
    params.eval.int8, params.eval.int8_check, params.eval.constrained = True, 2, True
    params.eval.max_new_tokens = 12
    metrics, records = evaluation.evaluate_model("tiny-random", ROWS, params, tmp_path)
    assert metrics["generation"]["int8"] and metrics["generation"]["constrained"]
    assert metrics["int8_check"]["rows"] == 2
    assert all(r["status"] == "valid" for r in records)  # grounded: every answer parses
    assert all(p["start"] is not None for r in records for p in r["predicted"])  # every mention is in the text
