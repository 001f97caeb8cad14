"""Progress in the runner's terminal (events from the kernel, tailed) and TensorBoard logs of every stage."""

import json
import os

import pytest

from grasp_lib import progress
from grasp_lib.runner import run_notebooks


def test_tail_prints_a_line_per_training_step_and_a_bar_for_generation(tmp_path, capsys, monkeypatch):
    path = tmp_path / "progress.jsonl"
    path.write_text(json.dumps({"kind": "train", "stage": "sft", "step": 1, "total": 2, "loss": 9.0,
                                "elapsed": 1, "left": 1}) + "\n")  # an earlier run's line: not shown again
    with progress.reporting_to(path):
        assert os.environ[progress.ENV] == str(path)
        for _ in progress.bar([1, 2, 3], "generate"):
            pass
        progress.emit(kind="train", stage="sft", step=2, total=60, loss=2.3141, reward=None, elapsed=12.0, left=348.0)
        with open(path, "a") as handle:
            handle.write('{"kind": "train", "stage": "sft", "st')  # half written: waits for its newline
    assert progress.ENV not in os.environ
    out, err = capsys.readouterr()
    assert out.splitlines() == ["sft   step  2/60  loss 2.3141  elapsed 0:12  left 5:48"]
    assert "generate: 100%" in err and "3/3" in err


def test_nothing_is_written_without_a_progress_file(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert list(progress.bar([1, 2], "generate", disable=True)) == [1, 2]
    progress.emit(kind="train")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("resumed_at, kept", [(0, False), (5, True)])
def test_a_fresh_stage_replaces_its_tensorboard_curves_and_a_resumed_one_continues_them(tmp_path, resumed_at, kept):
    from transformers import TrainerState, TrainingArguments

    from grasp_lib.train.callbacks import stage_callbacks

    folder = tmp_path / "tensorboard" / "sft"
    folder.mkdir(parents=True)
    old = folder / "events.out.tfevents.1.earlier-run"
    old.write_bytes(b"")
    writer = stage_callbacks(tmp_path, "sft")[0]
    args = TrainingArguments(output_dir=str(tmp_path / "checkpoints"), report_to="none", use_cpu=True)
    writer.on_train_begin(args, TrainerState(global_step=resumed_at), None)
    writer.on_train_end(args, TrainerState(global_step=resumed_at), None)
    assert old.exists() == kept and len(list(folder.glob("events.out.tfevents.*"))) == 1 + kept


@pytest.mark.slow
def test_the_kernel_reports_each_sft_step_and_writes_tensorboard(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with progress.reporting_to(tmp_path / "progress.jsonl"):
        run_notebooks("params/smoke.yaml", {}, tmp_path, ["01_data", "03_sft"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sft ")]
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]  # smoke.yaml: sft.max_steps 3
    assert all(" loss " in line and " elapsed " in line and " left " in line for line in lines)
    events = EventAccumulator(str(tmp_path / "tensorboard" / "sft"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
