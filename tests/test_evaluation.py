import json

from grasp_lib.__main__ import main
from grasp_lib.evaluation import rescore_run
from grasp_lib.examples import write_jsonl
from grasp_lib.metrics import score_predictions

ROWS = [{"id": "1", "dataset": "bc5cdr", "task": "ner", "text": "Naloxone reversed hypotension.",
         "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                      {"start": 18, "end": 29, "type": "Disease", "text": "hypotension"}]},
        {"id": "2", "dataset": "bc5cdr", "task": "ner", "text": "No drug here.", "entities": []}]


def test_rescore_recomputes_metrics_from_saved_completions_and_keeps_timings(tmp_path, capsys):
    completions = {"sft": ['{"Chemical": ["Naloxone"], "Disease": []}', '{"Chemical": [], "Disease": []}'],
                   "grpo": ['{"Chemical": ["Naloxone", "Naloxonne"], "Disease": ["hypotension"]}', "oops"]}
    (tmp_path / "data").mkdir(), (tmp_path / "results").mkdir()
    write_jsonl(ROWS, tmp_path / "data" / "eval.jsonl")
    write_jsonl([{"stage": s, "id": r["id"], "dataset": "bc5cdr", "completion": c}
                 for s, cs in completions.items() for r, c in zip(ROWS, cs)], tmp_path / "results" / "predictions.jsonl")
    stale = {s: {"strict": "stale", "generation_seconds": 12.5} for s in completions}
    (tmp_path / "results" / "metrics.json").write_text(json.dumps(stale))

    metrics = rescore_run(tmp_path)

    for stage, cs in completions.items():
        expected, _ = score_predictions(ROWS, cs)
        assert metrics[stage] == expected | {"generation_seconds": 12.5}
    assert json.loads((tmp_path / "results" / "metrics.json").read_text()) == metrics
    assert metrics["grpo"]["strict"]["micro"]["precision"] == 2 / 3  # the misspelt copy is a false positive
    assert main(["rescore", str(tmp_path)]) == 0
    assert "stage grpo" in capsys.readouterr().out
