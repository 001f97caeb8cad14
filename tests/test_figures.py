"""Figures (a)-(g) from a synthetic run folder: each is written, skips say why, files are deterministic."""

import hashlib
import json
import random
import shutil

import pytest

from grasp_lib import figures
from grasp_lib.__main__ import main
from grasp_lib.metrics import score_predictions

CHEMICALS, DISEASES = ["naloxone", "aspirin", "cocaine", "lithium"], ["hypertension", "seizures", "pain"]


def make_run(root, n=24, seed=0, stages=("base", "sft", "grpo"), confidence=True, samples=True, log=True):
    """A small run folder shaped like notebook 04/05's output, with predictions of rising quality."""
    rng = random.Random(seed)
    (root / "data").mkdir(parents=True)
    (root / "results").mkdir()
    rows = []
    for i in range(n):
        c, d = rng.choice(CHEMICALS), rng.choice(DISEASES)
        text = f"Treatment with {c} caused {d} in rats."
        rows.append({"id": f"u{i}", "task": "ner", "dataset": "bc5cdr", "text": text, "alternatives": [],
                     "entities": [{"start": text.index(c), "end": text.index(c) + len(c), "type": "Chemical", "text": c},
                                  {"start": text.index(d), "end": text.index(d) + len(d), "type": "Disease",
                                   "text": d}]})
    records, metrics = [], {}
    for q, stage in zip((0.3, 0.6, 0.8), stages):
        completions = []
        for r in rows:
            c, d = r["entities"][0]["text"], r["entities"][1]["text"]
            answer = json.dumps({"Chemical": [c] if rng.random() < q else [c[:-2]],
                                 "Disease": [d] if rng.random() < q else []})
            completions.append(answer + (f" confidence: {min(1.0, q + rng.uniform(-0.2, 0.2)):.2f}"
                                         if confidence else ""))
        metrics[stage], recs = score_predictions(rows, completions)
        records += [{"stage": stage} | rec for rec in recs]
    (root / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "results" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "results" / "metrics.json").write_text(json.dumps(metrics))
    if log:
        steps = [{"step": s, "reward": 0.5 + 0.02 * s, "reward_std": 0.1, "rewards/format/mean": 0.9,
                  "rewards/format/std": 0.1, "rewards/entity/mean": 0.4 + 0.02 * s, "rewards/entity/std": 0.2,
                  "completions/mean_length": 30 - s, "completions/min_length": 20 - s,
                  "completions/max_length": 40 - s} for s in range(1, 7)] + [{"step": 6, "train_runtime": 9.0}]
        (root / "results" / "grpo_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in steps))
    if samples:
        lines = [{"stage": stages[-1], "id": r["id"], "dataset": "bc5cdr", "temperature": t, "sample": k,
                  "completion": json.dumps({"Chemical": [r["entities"][0]["text"]] if rng.random() < 1 - t / 2
                                            else []})}
                 for t in (0.5, 1.0) for k in range(3) for r in rows]
        (root / "results" / f"samples_{stages[-1]}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run") / "full")
    return run, figures.make_all(run, {"reward variants": [run, run.parent / "missing"], "prompt levels": []},
                                 to_repo=False)


def test_every_figure_is_written_with_its_sources(built):
    run, results = built
    assert list(results) == ["f1_by_stage", "grpo_curves", "reward_components", "best_f1_at_k",
                             "f1_by_temperature", "reliability", "ablations"]
    assert [r["letter"] for r in results.values()] == list("abcdefg")
    for name, r in results.items():
        assert r["skipped"] is None, name
        assert sorted(p.name for p in r["paths"]) == [f"{name}.pdf", f"{name}.png"]
        assert all(p.parent == run / "figures" and p.stat().st_size > 1000 for p in r["paths"])
    sources = (run / "figures" / "SOURCES.md").read_text()
    assert f"{run}/results/samples_grpo.jsonl sha256" in sources.replace("`", "")
    assert "(g) `ablations`: from" in sources


def test_regenerating_gives_identical_files(built, tmp_path):
    run, results = built
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for r in results.values() for p in r["paths"]}
    sources = (run / "figures" / "SOURCES.md").read_bytes()
    again = figures.make_all(run, {"reward variants": [run, run.parent / "missing"], "prompt levels": []},
                             to_repo=False)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for r in again.values() for p in r["paths"]}
    assert len(before) == 14 and after == before
    assert (run / "figures" / "SOURCES.md").read_bytes() == sources


def test_missing_inputs_skip_with_a_reason(tmp_path):
    run = make_run(tmp_path / "bare", confidence=False, samples=False, log=False)
    (run / "figures").mkdir()
    (run / "figures" / "reliability.png").write_bytes(b"stale")
    results = figures.make_all(run, {"reward variants": [tmp_path / "ablation_binary"], "prompt levels": []},
                               to_repo=False)
    assert results["f1_by_stage"]["skipped"] is None
    assert "grpo_log.jsonl does not exist" in results["grpo_curves"]["skipped"]
    assert "grpo_log.jsonl does not exist" in results["reward_components"]["skipped"]
    assert "eval.samples_k" in results["best_f1_at_k"]["skipped"]
    assert "eval.samples_k" in results["f1_by_temperature"]["skipped"]
    assert "no stage states a confidence" in results["reliability"]["skipped"]
    assert "ablation_binary" in results["ablations"]["skipped"]
    assert not (run / "figures" / "reliability.png").exists()  # a stale figure is removed, not left behind
    assert "(f) `reliability`: skipped: " in (run / "figures" / "SOURCES.md").read_text()


def test_prompt_ablation_labels_name_the_levels(tmp_path):
    run = make_run(tmp_path / "ablation_prompt_nolabels", samples=False, log=False)
    (run / "run_info.json").write_text(json.dumps({"params": {"prompt": {"levels": ["role", "task"]}}}))
    assert figures.run_label(run, "prompt levels") == "ablation_prompt_nolabels\n[role, task]"
    assert figures.run_label(tmp_path / "ablation_binary", "reward variants") == "binary"
    paths = figures.ablations({"reward variants": [], "prompt levels": [run]}, run, to_repo=False)
    assert (run / "figures" / "ablations.png") in paths


def test_cli_figures_needs_a_run(tmp_path, capsys):
    assert main(["figures", "--run", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_multi_dataset_run_plots_one_bar_per_dataset(tmp_path):
    run = make_run(tmp_path / "multi", samples=False, log=False)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    rows = [json.loads(line) for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    preds = [json.loads(line) for line in (run / "results" / "predictions.jsonl").read_text().splitlines()]
    rows += [r | {"dataset": "ncbi-disease", "entities": [e | {"type": "Disease"} for e in r["entities"]
                                                          if e["type"] == "Disease"]} for r in rows]
    preds += [p | {"dataset": "ncbi-disease"} for p in preds]
    (other / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (other / "results" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    table = figures.stats.f1_with_intervals(other, n_boot=50)
    assert {r["dataset"] for r in table} == {"bc5cdr", "ncbi-disease"}
    assert (other / "figures" / "f1_by_stage.png") in figures.f1_by_stage(other, to_repo=False, n_boot=50)


def test_only_an_explicit_request_writes_the_papers_figures_folder(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    monkeypatch.setattr(figures, "REPO_ROOT", repo)
    run = make_run(repo / "runs" / "other_params", samples=False, log=False)  # a run inside the repository
    assert all(p.is_relative_to(run) for p in figures.f1_by_stage(run, n_boot=50))
    assert not (repo / "figures").exists()
    written = figures.f1_by_stage(run, to_repo=True, n_boot=50)
    assert (repo / "figures" / "f1_by_stage.png") in written


def test_ablation_legend_lists_the_stages_of_every_panel(tmp_path, monkeypatch):
    rewards = make_run(tmp_path / "ablation_binary", samples=False, log=False)
    prompts = make_run(tmp_path / "ablation_prompt_task", stages=("base", "sft"), samples=False, log=False)
    captured = {}
    monkeypatch.setattr(figures, "save", lambda fig, name, run_dir, to_repo=None: captured.setdefault("fig", fig))
    figures.ablations({"reward variants": [rewards], "prompt levels": [prompts]}, tmp_path, n_boot=50)
    legend = captured["fig"].axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["sft", "grpo"]  # grpo only in the first panel


def test_reliability_figure_can_come_from_its_own_run(tmp_path):
    main_run = make_run(tmp_path / "main", confidence=False)
    calibrated = make_run(tmp_path / "calibrated", confidence=True)
    groups = {"reward variants": [], "prompt levels": []}
    alone = figures.make_all(main_run, groups)
    assert "no stage states a confidence" in alone["reliability"]["skipped"]
    results = figures.make_all(main_run, groups, calibration_run=calibrated)
    assert results["reliability"]["skipped"] is None
    assert results["reliability"]["sources"] == [calibrated / "data" / "eval.jsonl",
                                                 calibrated / "results" / "predictions.jsonl"]
    assert "calibrated/results/predictions.jsonl" in (main_run / "figures" / "SOURCES.md").read_text()
