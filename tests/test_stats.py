"""Bootstrap intervals, paired test, Best-F1@K / Avg@K, temperature curve, ECE: hand-computed values."""

import json

import numpy as np
import pytest

from grasp_lib import parsing, run_files, stats
from grasp_lib.metrics import score_predictions

TEXT = "Naloxone reverses hypotension."
ROW = {"id": "u1", "task": "ner", "dataset": "bc5cdr", "text": TEXT, "alternatives": [],
       "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                    {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]}
EMPTY_ROW = {"id": "u2", "task": "ner", "dataset": "bc5cdr", "text": "Nothing here.", "alternatives": [],
             "entities": []}


def item(tp, pred, gold, id_="x", f1=None, **extra):
    return {"id": id_, "dataset": "d", "family": "ner", "tp_p": tp, "tp_r": tp, "pred": pred, "gold": gold,
            "f1": f1 if f1 is not None else (1.0 if pred == gold == 0 else 2 * tp / (pred + gold)),
            "per_type": {}} | extra


@pytest.mark.parametrize("completion, scheme, expected", [
    ('{"Chemical": ["Naloxone"], "Disease": ["hypotension"]}', "strict", (2, 2, 2, 1.0)),
    ('{"Chemical": ["Naloxone"], "Disease": []}', "strict", (1, 1, 2, 2 / 3)),
    ('{"Chemical": ["Naloxone", "hypotension"]}', "strict", (1, 2, 2, 0.5)),  # wrong type on a right span
    ('{"Chemical": ["Naloxone", "hypotension"]}', "exact", (2, 2, 2, 1.0)),
    ('{"Chemical": ["Nalox"], "Disease": ["hypotension"]}', "partial", (1.5, 2, 2, 0.75)),
    ('{"Chemical": ["aspirin"]}', "strict", (0, 1, 2, 0.0)),  # hallucinated: not in the text
    ("no json at all", "strict", (0, 0, 2, 0.0)),
])
def test_score_example_counts(completion, scheme, expected):
    got = stats.score_example(ROW, completion, scheme)
    assert (got["tp_p"], got["pred"], got["gold"], got["f1"]) == pytest.approx(expected)


def test_empty_answer_on_empty_example_is_right():
    assert stats.score_example(EMPTY_ROW, '{"Chemical": [], "Disease": []}')["f1"] == 1.0
    assert stats.score_example(EMPTY_ROW, '{"Chemical": ["Nothing"]}')["f1"] == 0.0


def test_per_type_counts():
    got = stats.score_example(ROW, '{"Chemical": ["Naloxone", "hypotension"]}')
    assert got["per_type"]["Chemical"] == (1, 1, 2, 1)  # two predicted as Chemical, one right
    assert got["per_type"]["Disease"] == (0, 0, 0, 1)


def test_corpus_f1_equals_metrics_micro_f1():
    rows = [ROW, EMPTY_ROW, ROW | {"id": "u3"}]
    completions = ['{"Chemical": ["Naloxone"]}', '{"Disease": ["Nothing"]}', '{"Disease": ["hypotension"]}']
    metrics, records = score_predictions(rows, completions)
    items = stats.per_example(rows, [{"stage": "sft"} | r for r in records])["sft"]
    # tp 2, pred 3, gold 4: P 2/3, R 1/2, F1 4/7
    assert stats.corpus_f1(items) == pytest.approx(4 / 7) == pytest.approx(metrics["strict"]["micro"]["f1"])
    assert stats.corpus_f1(items, "Chemical") == pytest.approx(metrics["strict"]["per_type"]["Chemical"]["f1"])


@pytest.mark.parametrize("tp_p, tp_r, pred, gold, f1", [
    (1, 1, 2, 2, 0.5), (0, 0, 0, 0, 0.0), (0, 0, 3, 0, 0.0), (2, 1, 4, 2, 0.5), (3, 3, 3, 6, 2 / 3)])
def test_f1_from_counts(tp_p, tp_r, pred, gold, f1):
    assert float(stats.f1_from(tp_p, tp_r, pred, gold)) == pytest.approx(f1)


def test_bootstrap_contains_point_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    base = [item(int(t), 1, 1, id_=str(i)) for i, t in enumerate(rng.random(30) < 0.6)]
    small = stats.bootstrap_ci(base, n_boot=500)
    large = stats.bootstrap_ci([i | {"id": f"{i['id']}-{k}"} for k in range(16) for i in base], n_boot=500)
    assert small["f1"] == pytest.approx(large["f1"])  # the same proportions, 16 times the units
    for ci in (small, large):
        assert ci["low"] <= ci["f1"] <= ci["high"]
    assert large["high"] - large["low"] < 0.5 * (small["high"] - small["low"])  # about 1/4 as wide


def test_bootstrap_degenerate_cases():
    same = [item(1, 1, 1, id_=str(i)) for i in range(10)]
    assert stats.bootstrap_ci(same) == {"f1": 1.0, "low": 1.0, "high": 1.0, "n": 10}
    assert stats.bootstrap_ci([]) == {"f1": 0.0, "low": 0.0, "high": 0.0, "n": 0}
    a = stats.bootstrap_ci(same[:5] + [item(0, 1, 1, id_=f"z{i}") for i in range(5)], n_boot=200, seed=3)
    assert a == stats.bootstrap_ci(same[:5] + [item(0, 1, 1, id_=f"z{i}") for i in range(5)], n_boot=200, seed=3)


def test_paired_bootstrap_detects_a_real_gain_and_not_a_null_one():
    a = [item(0, 1, 1, id_=str(i)) for i in range(20)] + [item(1, 1, 1, id_=str(i)) for i in range(20, 40)]
    b = [item(1, 1, 1, id_=str(i)) for i in range(40)]
    gain = stats.paired_bootstrap(a, b, n_boot=1000)
    assert gain["delta"] == pytest.approx(0.5) and gain["n"] == 40
    assert gain["low"] > 0 and gain["p_value"] == pytest.approx(1 / 1000)
    null = stats.paired_bootstrap(a, list(reversed(a)), n_boot=1000)  # same items, other order: paired by id
    assert null["delta"] == 0.0 and null["p_value"] == 1.0
    swapped = stats.paired_bootstrap(b, a, n_boot=1000)
    assert swapped["delta"] == pytest.approx(-0.5) and swapped["high"] < 0


def test_best_and_avg_at_k_hand_computed():
    # two units, two samples each; unit A: sample 0 right (1/1), sample 1 wrong (0/1);
    # unit B: sample 0 wrong, sample 1 right. Gold 1 per unit, 1 predicted per sample.
    items = [item(1, 1, 1, "A", sample=0), item(0, 1, 1, "A", sample=1),
             item(0, 1, 1, "B", sample=0), item(1, 1, 1, "B", sample=1)]
    got = stats.best_and_avg_at_k(items)
    assert got == [{"k": 1, "best_f1": 0.5, "avg_f1": 0.5, "n": 2}, {"k": 2, "best_f1": 1.0, "avg_f1": 0.5, "n": 2}]


def test_best_at_k_keeps_first_sample_on_ties_and_stops_at_smallest_k():
    items = [item(1, 2, 2, "A", sample=0), item(1, 2, 2, "A", sample=1), item(1, 1, 1, "B", sample=0)]
    got = stats.best_and_avg_at_k(items)
    assert [r["k"] for r in got] == [1]  # unit B has one sample only
    assert got[0]["best_f1"] == pytest.approx(2 * 2 / 6)


def test_f1_by_temperature_averages_sample_sets():
    items = [item(1, 1, 1, "A", sample=0, temperature=0.5), item(0, 1, 1, "A", sample=1, temperature=0.5),
             item(1, 1, 1, "A", sample=0, temperature=1.0), item(1, 1, 1, "A", sample=1, temperature=1.0)]
    got = stats.f1_by_temperature(items, n_boot=100)
    assert [(r["temperature"], r["f1"], r["samples"], r["n"]) for r in got] == [(0.5, 0.5, 2, 1), (1.0, 1.0, 2, 1)]


@pytest.mark.parametrize("text, expected", [
    ('{"Chemical": ["a"], "confidence": 0.8}', 0.8),
    ('{"Chemical": ["a"]} confidence: 80%', 0.8),
    ('{"Chemical": ["a"]}\nConfidence: 65', 0.65),
    ('{"Chemical": ["a"]} confidence 1', 1.0),
    ('{"Chemical": ["a"]} confidence: 150%', 1.0),
    ('{"Chemical": ["a"]} I am fairly sure', None),
    ('{"Chemical": ["a"]} this might be wrong', None),  # hedging words are no number
    (None, None),
])
def test_stated_confidence(text, expected):
    assert parsing.stated_confidence(text) == (pytest.approx(expected) if expected is not None else None)


def test_ece_hand_computed():
    # bin [0.2,0.3): conf .2,.2 acc 1,0 -> |0.5-0.2| = 0.3, weight 2/5
    # bin [0.9,1.0]: conf .9, 1.0, 1.0 acc 1,1,0 -> mean conf 29/30, acc 2/3 -> gap 0.3, weight 3/5
    got = stats.calibration([0.2, 0.2, 0.9, 1.0, 1.0], [1, 0, 1, 1, 0], bins=10)
    assert got["ece"] == pytest.approx(0.4 * 0.3 + 0.6 * (29 / 30 - 2 / 3))
    assert [(b["bin"], b["n"]) for b in got["bins"]] == [(2, 2), (9, 3)]
    assert stats.calibration([0.7, 0.7], [1, 0])["ece"] == pytest.approx(0.2)
    assert stats.calibration([1.0, 0.0], [1, 0])["ece"] == 0.0  # perfectly calibrated
    assert stats.calibration([], [])["ece"] is None


def test_brier_and_auroc_hand_computed():
    got = stats.calibration([0.2, 0.2, 0.9, 1.0, 1.0], [1, 0, 1, 1, 0])
    assert got["brier"] == pytest.approx((0.64 + 0.04 + 0.01 + 0 + 1) / 5)
    # right answers state .2, .9, 1; wrong ones .2, 1: pairs won 0.5+0 | 1+0 | 1+0.5 = 3 of 6
    assert got["auroc"] == pytest.approx(3 / 6)
    constant = stats.calibration([0.4] * 5, [1, 1, 0, 0, 0])
    assert constant["ece"] == pytest.approx(0.0) and constant["auroc"] == 0.5  # calibrated, uninformative
    assert stats.calibration([0.9, 0.1], [1, 0])["auroc"] == 1.0
    assert stats.calibration([0.9, 0.8], [1, 1])["auroc"] is None  # no wrong answer to rank against


def _write_run(root, rows, records):
    (root / "data").mkdir(parents=True)
    (root / "results").mkdir()
    (root / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "results" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_run_level_tables(tmp_path):
    rows = [ROW | {"id": f"u{i}"} for i in range(4)]
    right = '{"Chemical": ["Naloxone"], "Disease": ["hypotension"]} confidence: 0.9'
    half = '{"Chemical": ["Naloxone"]} confidence: 0.9'
    records = ([{"stage": "sft", "id": r["id"], "dataset": "bc5cdr", "completion": half} for r in rows]
               + [{"stage": "grpo", "id": r["id"], "dataset": "bc5cdr", "completion": right} for r in rows])
    _write_run(tmp_path, rows, records)
    table = {(r["stage"], r["label"]): r for r in stats.f1_with_intervals(tmp_path, n_boot=50)}
    assert table[("sft", "all")]["f1"] == pytest.approx(2 / 3)  # tp 4, pred 4, gold 8
    assert table[("sft", "Disease")]["f1"] == 0.0 and table[("grpo", "all")]["f1"] == 1.0
    tests = stats.stage_comparisons(tmp_path, n_boot=50)
    assert [(t["from"], t["to"]) for t in tests] == [("sft", "grpo")]
    assert tests[0]["delta"] == pytest.approx(1 / 3)
    calib = stats.run_calibration(tmp_path)
    assert calib["sft"]["ece"] == pytest.approx(0.9) and calib["grpo"]["ece"] == pytest.approx(0.1)
    assert calib["sft"]["total"] == 4


def test_sample_run_writes_k_samples_per_unit_and_temperature(tmp_path):
    from grasp_lib import params as P
    from grasp_lib.sampling_eval import sample_run

    p = P.load("params/smoke.yaml", {"stages": [], "eval.samples_k": 2, "eval.temperatures": [0.5, 1.0],
                                     "eval.max_new_tokens": 4})
    _write_run(tmp_path, [ROW, EMPTY_ROW], [])
    assert sample_run(P.load("params/smoke.yaml", {"stages": []}), tmp_path) == []  # samples_k 0: off
    [path] = sample_run(p, tmp_path)
    assert path == tmp_path / "results" / "samples_base.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((x["id"], x["temperature"], x["sample"]) for x in lines) == sorted(
        (u, t, k) for u in ("u1", "u2") for t in (0.5, 1.0) for k in (0, 1))
    items = stats.load_samples(tmp_path)["base"]
    at_one = [i for i in items if i["temperature"] == 1.0]
    assert len(items) == 8 and [r["k"] for r in stats.best_and_avg_at_k(at_one)] == [1, 2]


@pytest.mark.parametrize("row, completion, expected", [
    ({"id": "q", "dataset": "biorlhf", "text": "x", "answer": "COX-2 enzyme"}, '{"answer": "the COX-2 enzyme."}',
     (1.0, 1.0, 1.0, 1.0, True)),
    ({"id": "q", "dataset": "biorlhf", "text": "x", "answer": "COX-2 enzyme"}, '{"answer": "COX-2"}',
     (2 / 3, 1.0, 1.0, 2 / 3, False)),
    ({"id": "r", "dataset": "ddi", "text": "a b", "label": "none"}, '{"relation": "none"}',
     (0.0, 0.0, 0.0, 1.0, True)),  # a right negative: nothing predicted, nothing gold
    ({"id": "r", "dataset": "ddi", "text": "a b", "label": "none"}, "none", (0.0, 0.0, 0.0, 0.0, False)),  # unparsable
    ({"id": "d", "dataset": "drugcomb", "text": "x", "combinations": [{"drugs": ["a", "b"], "label": "POS"}]},
     '[{"drugs": ["b", "a"], "label": "POS"}, {"drugs": ["a", "b"], "label": "POS"}]', (1.0, 2.0, 1.0, 2 / 3, False)),
])
def test_score_example_for_other_families(row, completion, expected):
    """The headline view of each family, one example: QA token F1, RE micro over positive labels, n-ary pos
    exact matched one to one (a repeated combination is a false positive); `exact` is the binary verdict."""
    got = stats.score_example(row, completion)
    assert (got["tp_p"], got["pred"], got["gold"], got["f1"], got["exact"]) == pytest.approx(expected)
    assert stats.exactly_right(got) is expected[-1]


def test_sample_tables_per_stage_and_temperature():
    items = [item(1, 1, 1, id_=u, sample=k, temperature=t) for u in ("a", "b") for k in (0, 1) for t in (0.5, 1.0)]
    at_k = stats.at_k_table({"grpo": items})
    assert [(r["stage"], r["temperature"], r["k"]) for r in at_k] == [("grpo", 0.5, 1), ("grpo", 0.5, 2),
                                                                      ("grpo", 1.0, 1), ("grpo", 1.0, 2)]
    assert all(r["best_f1"] == r["avg_f1"] == 1.0 for r in at_k)
    by_t = stats.temperature_table({"grpo": items}, n_boot=20)
    assert [(r["stage"], r["temperature"], r["samples"], r["n"]) for r in by_t] == [("grpo", 0.5, 2, 2),
                                                                                   ("grpo", 1.0, 2, 2)]


def test_calibration_table_names_each_stage():
    calib = {"sft": {"ece": 0.1, "brier": 0.2, "auroc": None, "n": 3, "total": 4, "bins": []}}
    assert stats.calibration_table(calib) == [{"stage": "sft", "ece": 0.1, "brier": 0.2, "auroc": None,
                                               "stated": 3, "total": 4}]


def test_confidence_targets_table_counts_rows_and_greedy_right(tmp_path):
    records = [{"id": "a", "percent": 50, "greedy_right": True}, {"id": "b", "percent": 50, "greedy_right": False},
               {"id": "c", "percent": 0, "greedy_right": False}]
    run_files.write_jsonl(records, run_files.result_path(tmp_path, "confidence_targets.jsonl"))
    assert stats.confidence_targets_table(tmp_path) == [{"percent": 0, "rows": 1, "greedy_right": 0.0},
                                                       {"percent": 50, "rows": 2, "greedy_right": 0.5}]


def test_reward_log_table_keeps_reward_steps_and_columns(tmp_path):
    log = [{"step": 1, "loss": 0.3, "reward": 0.5, "rewards/format/mean": 1.0, "completions/mean_length": 9},
           {"step": 1, "train_runtime": 2.0}, {"step": 2, "reward": float("nan")}]
    run_files.write_jsonl(log, run_files.log_path(tmp_path, "grpo"))
    assert stats.reward_log_table(tmp_path) == [{"step": 1, "reward": 0.5, "rewards/format/mean": 1.0,
                                                 "completions/mean_length": 9}]


def test_saved_tables_land_in_results_sorted(tmp_path):
    rows = [ROW | {"id": f"u{i}"} for i in range(2)]
    records = [{"stage": s, "id": r["id"], "dataset": "bc5cdr", "completion": '{"Chemical": ["Naloxone"]}'}
               for s in ("base", "sft") for r in rows]
    _write_run(tmp_path, rows, records)
    for save, name in ((stats.save_f1_intervals, "f1_intervals.json"), (stats.save_calibration, "calibration.json"),
                       (stats.save_stage_comparisons, "stage_tests.json")):
        table = save(tmp_path)
        path = tmp_path / "results" / name
        assert path.read_text() == json.dumps(table, indent=2, sort_keys=True) + "\n"
