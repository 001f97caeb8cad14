"""One function per paper figure. Reads only files under runs/; never trains or loads a model."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .paths import REPO_ROOT  # noqa: E402

STAGE_ORDER = ["base", "sft", "grpo"]


def style() -> None:
    """One look for every figure: colour-blind palette, column-width sizes, deterministic files."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42,
                         "svg.hashsalt": "grasp"})


def save(fig, name: str, run_dir: Path, to_repo: bool | None = None) -> list[Path]:
    """Write PNG and PDF into runs/R/figures/ and, for runs under the repository's runs/, into figures/
    (so a test run in a temporary folder never overwrites the paper's figures); no timestamps."""
    if to_repo is None:
        to_repo = Path(run_dir).resolve().is_relative_to(REPO_ROOT / "runs")
    targets = [run_dir / "figures"] + ([REPO_ROOT / "figures"] if to_repo else [])
    written = []
    for folder in targets:
        folder.mkdir(parents=True, exist_ok=True)
        for ext in ("png", "pdf"):
            path = folder / f"{name}.{ext}"
            fig.savefig(path, metadata={"CreationDate": None} if ext == "pdf" else {"Software": None})
            written.append(path)
    plt.close(fig)
    return written


def read_log(path: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def f1_by_stage(run_dir: Path, to_repo: bool | None = None) -> list[Path]:
    """(a) Strict micro-F1 overall and per entity type, one bar per training stage."""
    metrics = json.loads((run_dir / "results" / "metrics.json").read_text())
    rows = []
    for stage, m in metrics.items():
        rows.append({"stage": stage, "type": "all (micro)", "F1": m["strict"]["micro"]["f1"]})
        rows += [{"stage": stage, "type": label, "F1": v["f1"]} for label, v in m["strict"]["per_type"].items()]
    frame = pd.DataFrame(rows)
    style()
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    sns.barplot(frame, x="type", y="F1", hue="stage", ax=ax,
                hue_order=[s for s in STAGE_ORDER if s in metrics] + [s for s in metrics if s not in STAGE_ORDER])
    ax.set(xlabel="entity type", ylabel="strict F1", ylim=(0, 1),
           title=f"BC5CDR test sample (n={next(iter(metrics.values()))['n']})")
    ax.legend(title="stage", fontsize="small")
    return save(fig, "f1_by_stage", run_dir, to_repo)


def grpo_curves(run_dir: Path, to_repo: bool | None = None) -> list[Path]:
    """(b) Mean reward (and each component) and mean completion length against GRPO step."""
    log = read_log(run_dir / "results" / "grpo_log.jsonl")
    log = log[log["step"].notna() & log.get("reward").notna()] if "reward" in log else log.iloc[0:0]
    reward_cols = [c for c in log.columns if c.startswith("rewards/") and c.endswith("/mean")]
    style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.5, 2.6))
    left.plot(log["step"], log["reward"], label="total (weighted)", linewidth=2)
    for col in reward_cols:
        left.plot(log["step"], log[col], label=col.split("/")[1], linestyle="--")
    left.set(xlabel="GRPO step", ylabel="mean reward")
    left.legend(fontsize="small")
    right.plot(log["step"], log["completions/mean_length"], color=sns.color_palette()[2])
    right.set(xlabel="GRPO step", ylabel="mean completion length (tokens)")
    return save(fig, "grpo_curves", run_dir, to_repo)


def length_histogram(splits: dict, run_dir: Path) -> list[Path]:
    """Unit length in characters per split (notebook 01; not a paper figure)."""
    frame = pd.DataFrame([{"split": name, "characters": len(e.text)} for name, rows in splits.items() for e in rows])
    style()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    sns.histplot(frame, x="characters", hue="split", element="step", stat="density", common_norm=False, ax=ax)
    ax.set(xlabel="unit length (characters)", ylabel="density")
    return save(fig, "data_lengths", run_dir, to_repo=False)


def sft_loss(run_dir: Path) -> list[Path]:
    """SFT training loss against step (notebook 03; not a paper figure)."""
    log = read_log(run_dir / "results" / "sft_log.jsonl")
    log = log[log["loss"].notna()] if "loss" in log else log
    style()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.plot(log["step"], log["loss"])
    ax.set(xlabel="SFT step", ylabel="training loss (completion tokens)")
    return save(fig, "sft_loss", run_dir, to_repo=False)
