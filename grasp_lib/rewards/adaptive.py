"""Task-adaptive weighting: each reward normalised per task by running mean and spread."""

from __future__ import annotations

import math


class RunningStats:
    """Welford's running mean and variance."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


class TaskAdaptive:
    """Wraps a reward so that each task's values are normalised by that task's running mean and spread.

    For every example of task k (the `key` column: "task" family by default, or "dataset") the reward
    r becomes (r - mean_k) / (std_k + eps), clipped to [-clip, clip], where mean_k and std_k run over all
    values of task k seen so far, this batch included (the batch is added first). An easy task whose
    reward is always high is then no longer worth more than a hard one in a multi-task batch, and a
    task with a narrow spread is scaled up. None (reward does not apply) passes through. The logging key
    stays the wrapped reward's name; the raw per-task means are logged as `raw/<name>/<task>` when
    the trainer passes `log_metric`. Picklable (holds the wrapped reward and plain statistics).

    >>> from grasp_lib.rewards.ner import format_reward
    >>> adaptive = TaskAdaptive(format_reward)
    >>> out = adaptive(['{"Chemical": []}', 'none'], dataset=["bc5cdr"] * 2, task=["ner"] * 2)
    >>> [round(v, 3) for v in out]  # raw 1 and 0: mean 0.5, std 0.7071
    [0.707, -0.707]
    """

    def __init__(self, func, key: str = "task", eps: float = 1e-4, clip: float = 5.0):
        self.func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)
        self.key = key
        self.eps = eps
        self.clip = clip
        self.stats: dict[str, RunningStats] = {}

    def __call__(self, completions, **kwargs) -> list[float | None]:
        raw = self.func(completions, **kwargs)
        keys = kwargs.get(self.key) or ["all"] * len(raw)
        batch: dict[str, list[float]] = {}
        for value, k in zip(raw, keys):
            if value is not None:
                self.stats.setdefault(k, RunningStats()).add(value)
                batch.setdefault(k, []).append(value)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for k, values in batch.items():
                log_metric(f"raw/{self.__name__}/{k}", sum(values) / len(values))
        out: list[float | None] = []
        for value, k in zip(raw, keys):
            if value is None:
                out.append(None)
                continue
            s = self.stats[k]
            z = (value - s.mean) / (s.std + self.eps)
            out.append(max(-self.clip, min(self.clip, z)))
        return out
