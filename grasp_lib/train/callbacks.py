"""Trainer callbacks every stage gets: TensorBoard logs in the run folder and progress events for the runner."""

from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from ..progress import emit


class TrainingProgress(TrainerCallback):
    """One event per logging step of a trainer, from the main process only (under `accelerate launch`)."""

    def __init__(self, stage: str):
        self.stage, self.started, self.first_step = stage, 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.time(), state.global_step  # a resumed run starts past 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero or not ({"loss", "reward"} & set(logs)):
            return  # the end-of-training summary has neither
        elapsed = time.time() - self.started
        done = state.global_step - self.first_step
        left = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        emit(kind="train", stage=self.stage, step=state.global_step, total=state.max_steps,
             loss=logs.get("loss"), reward=logs.get("reward"), elapsed=elapsed, left=left)


class RunTensorBoard(TensorBoardCallback):
    """transformers' TensorBoard writer with its folder fixed to the run's (transformers 5 has no
    `logging_dir` argument, and its TENSORBOARD_LOGGING_DIR variable would hold for every stage of a process)."""

    def __init__(self, logging_dir: Path):
        super().__init__()
        self.logging_dir = str(logging_dir)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and state.global_step == 0:  # a fresh start replaces the last curves;
            for old in Path(self.logging_dir).glob("events.out.tfevents.*"):  # a resumed one adds to them
                old.unlink()
        super().on_train_begin(args, state, control, **kwargs)


def stage_callbacks(run_dir: Path, stage: str, extra: list | None = None) -> list:
    """A stage's trainer callbacks: TensorBoard logs in runs/R/tensorboard/<stage>, the progress events,
    then `extra` (tests pass their own)."""
    return [RunTensorBoard(Path(run_dir) / "tensorboard" / stage), TrainingProgress(stage)] + list(extra or [])
