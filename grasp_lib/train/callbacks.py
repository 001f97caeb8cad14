"""Trainer callbacks every stage gets: TensorBoard logs in the run folder, progress events for the runner, and
a stop at the first loss or gradient norm that is not finite."""

from __future__ import annotations

import math
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


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm of a training step is inf or nan: the stage stops before saving."""


class StopOnNonFinite(TrainerCallback):
    """Raise TrainingDiverged at the first logged loss or grad_norm that is inf or nan. Without it a diverged
    run trains on (the weights turn nan, the logged loss can read 0.0) and saves a model the next stage uses.
    Raising inside trainer.train() means the stage never reaches its save."""

    KEYS = ("loss", "grad_norm")

    def __init__(self, stage: str):
        self.stage = stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        bad = {k: (logs or {})[k] for k in self.KEYS if _not_finite((logs or {}).get(k))}
        if bad:
            raise TrainingDiverged(
                f"{self.stage}: training diverged at step {state.global_step}: {bad} is not finite; no model "
                f"was saved. Lower the stage's learning_rate, set max_grad_norm (gradient clipping), or check "
                f"the data; the log so far is in the trainer's state (log_history)")


def _not_finite(value) -> bool:
    try:
        return value is not None and not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


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
    """A stage's trainer callbacks: TensorBoard logs in runs/R/tensorboard/<stage>, the progress events, the
    stop on a non-finite loss or gradient norm, then `extra` (tests pass their own)."""
    return [RunTensorBoard(Path(run_dir) / "tensorboard" / stage), TrainingProgress(stage),
            StopOnNonFinite(stage)] + list(extra or [])
