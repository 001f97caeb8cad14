import json

from grasp_lib.__main__ import main
from grasp_lib.evaluation import cross_checks, rescore_run
from grasp_lib.metrics import dataset_table, f1_table, score_predictions
from grasp_lib.run_files import write_jsonl

ROWS = [{"id": "1", "dataset": "bc5cdr", "task": "ner", "text": "Naloxone reversed hypotension.",
         "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                      {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]},
        {"id": "2", "dataset": "bc5cdr", "task": "ner", "text": "No drug here.", "entities": []}]
COMPLETIONS = {"sft": ['{"Chemical": ["Naloxone"], "Disease": []}', '{"Chemical": [], "Disease": []}'],
               "grpo": ['{"Chemical": ["Naloxone", "Naloxonne"], "Disease": ["Hypotension"]}', "oops"]}


def _run(tmp_path, old_metrics):
    write_jsonl(ROWS, tmp_path / "data" / "eval.jsonl")
    write_jsonl([{"stage": s, "id": r["id"], "dataset": "bc5cdr", "completion": c}
                 for s, cs in COMPLETIONS.items() for r, c in zip(ROWS, cs)], tmp_path / "results" / "predictions.jsonl")
    (tmp_path / "results" / "metrics.json").write_text(json.dumps(old_metrics))
    return tmp_path


def test_rescore_recomputes_metrics_from_saved_completions_and_keeps_timings(tmp_path, capsys):
    old = {s: {"strict": {"micro": {"f1": 0.75}}, "generation_seconds": 12.5} for s in COMPLETIONS}
    run = _run(tmp_path, old)

    metrics = rescore_run(run)

    for stage, cs in COMPLETIONS.items():
        expected, _ = score_predictions(ROWS, cs)
        assert metrics[stage] == expected | {"generation_seconds": 12.5}
    assert json.loads((run / "results" / "metrics.json").read_text()) == metrics
    # strict: "Naloxonne" (a typo) and "Hypotension" (another case) are not in the text verbatim
    assert metrics["grpo"]["strict"]["micro"]["precision"] == 1 / 3
    assert metrics["grpo"]["lenient"]["strict"]["micro"]["precision"] == 2 / 3  # the typo repeats a claimed span

    assert main(["rescore", str(run), "--cross-check"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "strict_f1" in line).split()
    assert header[:4] == ["stage", "n", "strict_f1", "lenient_f1"]  # strict and lenient side by side
    assert "nervaluate_strict" in out


def test_cross_checks_recompute_the_strict_f1_with_nervaluate(tmp_path):
    run = _run(tmp_path, {s: {"strict": {"micro": {"f1": 0.75}}} for s in COMPLETIONS})
    rescore_run(run)
    checks = {c["stage"]: c for c in cross_checks(run)}
    assert checks["grpo"]["strict"] == checks["grpo"]["nervaluate_strict"] == 0.4


def test_tables_give_the_columns_a_metrics_file_has():
    before = {"sft": {"n": 2, "strict": {"micro": {"f1": 0.5}, "per_type": {"Chemical": {"f1": 0.5}}},
                      "partial": {"micro": {"f1": 0.6}}, "parse_status": {"valid": 2}}}
    assert f1_table(before) == [{"stage": "sft", "n": 2, "strict_f1": 0.5, "partial_f1": 0.6, "strict_f1_Chemical": 0.5,
                                 "parse_valid": 2}]
    after, _ = score_predictions(ROWS, COMPLETIONS["grpo"])
    row = f1_table({"grpo": after})[0]
    assert (row["strict_f1"], row["lenient_f1"]) == (0.4, 0.8)
    assert {"all_occurrences_f1", "set_f1", "partial_f1"} <= row.keys()
    rows = ROWS + [{"id": "q", "dataset": "biorlhf", "task": "qa", "text": "x", "entities": [], "answer": "yes"}]
    mixed, _ = score_predictions(rows, COMPLETIONS["sft"] + ['{"answer": "Yes."}'])
    table = {r["dataset"]: r for r in dataset_table({"sft": mixed})}
    assert table["biorlhf"]["exact_match"] == 1.0 and table["bc5cdr"]["lenient_f1"] == table["bc5cdr"]["value"]
