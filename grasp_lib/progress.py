"""Progress that the terminal of `python -m grasp_lib run` shows while papermill executes a notebook.

The notebook's kernel is another process, and papermill only reports which cell runs. So the kernel appends
one JSON line per event to the file named by GRASP_PROGRESS (the runner sets it, to runs/R/progress.jsonl),
and the runner tails that file and prints it. Events: a trainer's logging step (step/total, loss or mean
reward, elapsed, time left) and a generation loop's batches (drawn as a bar). Without GRASP_PROGRESS (a
notebook in JupyterLab, a test, `accelerate launch` by hand) nothing is written: tqdm's own bars show there.

The trainers' side is grasp_lib.train.callbacks. Imports nothing of grasp_lib (the runner, infer and train use it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

ENV = "GRASP_PROGRESS"


def emit(**event) -> None:
    """Append one event to the progress file, when there is one (one short line: appends do not interleave)."""
    target = os.environ.get(ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event | {"time": round(time.time(), 2)}) + "\n")


def bar(items: list, desc: str, disable: bool = False):
    """tqdm over `items` (in the kernel's output, as before) that also reports each step to the progress
    file; `disable` silences both (GRPO's rollouts: the trainer's step lines say enough)."""
    if not disable:
        emit(kind="bar", desc=desc, n=0, total=len(items))
    for n, item in enumerate(tqdm(items, desc=desc, disable=disable), start=1):
        yield item
        if not disable:
            emit(kind="bar", desc=desc, n=n, total=len(items))


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def train_line(event: dict) -> str:
    """'sft   step  3/60  loss 2.3141  elapsed 0:12  left 3:48' (GRPO: mean reward, then loss).

    >>> train_line({"stage": "grpo", "step": 4, "total": 12, "loss": 0.0012, "reward": 0.41, "elapsed": 75, "left": 150})
    'grpo  step  4/12  reward 0.4100  loss 0.0012  elapsed 1:15  left 2:30'
    """
    width = len(str(event["total"]))
    values = "".join(f"  {key} {event[key]:.4f}" for key in ("reward", "loss") if event.get(key) is not None)
    return (f"{event['stage']:<5} step {event['step']:>{width}}/{event['total']}{values}"
            f"  elapsed {_clock(event['elapsed'])}  left {_clock(event['left'])}")


class Tail:
    """Prints a progress file's new events while a notebook runs: a line per training step (tqdm.write, so
    papermill's cell bar stays intact) and a tqdm bar per generation loop. Use as a context manager."""

    def __init__(self, path: Path, interval: float = 0.5):
        self.path, self.interval = Path(path), interval
        self.offset = self.path.stat().st_size if self.path.exists() else 0  # only what this notebook adds
        self.stopped, self.bars = threading.Event(), {}
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
        self.poll()  # what was written after the last poll
        for progress in self.bars.values():
            progress.close()

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self.offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # not ours (the file was edited by hand): the display goes on, the run too
                continue
            self.show(event)

    def show(self, event: dict) -> None:
        if event["kind"] == "train":
            tqdm.write(train_line(event))
        elif event["kind"] == "bar":
            self._bar(event)

    def _bar(self, event: dict) -> None:
        desc = event["desc"]
        if event["n"] == 0 or desc not in self.bars:
            if desc in self.bars:
                self.bars[desc].close()
            self.bars[desc] = tqdm(total=event["total"], desc=f"  {desc}", leave=True)
        progress = self.bars[desc]
        progress.update(event["n"] - progress.n)
        if event["n"] >= event["total"]:
            progress.close()
            del self.bars[desc]


@contextmanager
def reporting_to(path: Path):
    """While the block runs, kernels started in it write progress to `path` (GRASP_PROGRESS, inherited at
    their start) and this process prints it."""
    previous = os.environ.get(ENV)
    os.environ[ENV] = str(path)
    try:
        with Tail(path):
            yield
    finally:
        if previous is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = previous
