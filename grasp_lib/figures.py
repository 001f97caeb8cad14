"""One function per paper figure, (a) to (g). Reads only files under runs/; never trains or loads a model.

Each figure function takes a run folder and returns the PNG and PDF paths it wrote; one whose inputs are
not in the run raises FigureSkipped with what is missing. `make_all` makes every figure and writes
SOURCES.md naming the run files each came from.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import run_files, stats  # noqa: E402
from .paths import REPO_ROOT, resolve  # noqa: E402

STAGE_ORDER = ["base", "sft", "confidence", "dpo", "grpo"]


def style() -> None:
    """One look for every figure: colour-blind palette, column-width sizes, deterministic files."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42,
                         "svg.hashsalt": "grasp"})


def save(fig, name: str, run_dir: Path, to_repo: bool = False) -> list[Path]:
    """Write PNG and PDF into runs/R/figures/ and, with to_repo, into the repository's figures/; no timestamps.
    Only `make figures` (python -m grasp_lib figures) passes to_repo: a run's notebook 06 draws its own
    figures, so running another params set never replaces the paper's. The run's PNG comes first (what a
    notebook shows)."""
    run_dir = Path(run_dir)
    targets = [run_files.figures_dir(run_dir)] + ([REPO_ROOT / "figures"] if to_repo else [])
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


class FigureSkipped(Exception):
    """A figure whose inputs are not in the run (e.g. no K samples drawn): the message says what is missing."""


def _run_name(run_dir: Path) -> str:
    run_dir = Path(run_dir).resolve()
    return str(run_dir.relative_to(REPO_ROOT)) if run_dir.is_relative_to(REPO_ROOT) else str(run_dir)


def stage_color(stage: str, k: int = 0):
    """One colour per stage in every figure (base, sft, grpo first; others after)."""
    palette = sns.color_palette("colorblind")
    return palette[STAGE_ORDER.index(stage) if stage in STAGE_ORDER else (len(STAGE_ORDER) + k) % len(palette)]


def _stage_order(stages) -> list[str]:
    stages = list(dict.fromkeys(stages))
    return [s for s in STAGE_ORDER if s in stages] + [s for s in stages if s not in STAGE_ORDER]


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FigureSkipped(f"{path} does not exist ({what})")
    return path


def _bars(ax, frame: pd.DataFrame, x: str, hue: str, hue_order: list[str]) -> None:
    """Grouped bars of `f1` with asymmetric error bars from `low`/`high` (bootstrap interval)."""
    groups = list(dict.fromkeys(frame[x]))
    width = 0.8 / len(hue_order)
    for h, name in enumerate(hue_order):
        part = frame[frame[hue] == name].set_index(x).reindex(groups)
        pos = [g + (h - (len(hue_order) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(pos, part["f1"], width=width, label=name, color=stage_color(name, h))
        ax.errorbar(pos, part["f1"], yerr=[part["f1"] - part["low"], part["high"] - part["f1"]], fmt="none",
                    ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_xticks(range(len(groups)), groups)


def f1_by_stage(run_dir: Path, to_repo: bool = False, n_boot: int = 1000) -> list[Path]:
    """(a) F1 per task (per entity type for a single NER dataset) and stage, with 95% bootstrap intervals
    over evaluation units; from data/eval.jsonl and results/predictions.jsonl."""
    run_dir = Path(run_dir)
    _need(run_files.predictions_path(run_dir), "notebook 05 writes it")
    table = pd.DataFrame(stats.f1_with_intervals(run_dir, n_boot=n_boot))
    datasets = list(dict.fromkeys(table["dataset"]))
    if len(datasets) == 1:
        frame = table.assign(x=table["label"].replace({"all": "all types (micro)"}))
        xlabel, ylabel = "entity type", "strict micro-F1"
        title = f"{datasets[0]} (n={table['n'].iloc[0]} units, {_run_name(run_dir)})"
    else:
        frame = table[table["label"] == "all"].assign(x=lambda f: f["dataset"])
        xlabel, ylabel = "dataset", "headline F1 (per dataset)"
        title = f"{_run_name(run_dir)}"
    style()
    fig, ax = plt.subplots(layout="constrained", figsize=(max(3.5, 0.9 * frame["x"].nunique() + 1.5), 2.8))
    _bars(ax, frame, "x", "stage", _stage_order(frame["stage"]))
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.0))
    ax.set_title(title + "; bars: 95% bootstrap interval", fontsize="small")
    ax.legend(title="stage", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save(fig, "f1_by_stage", run_dir, to_repo)


def _grpo_log(run_dir: Path) -> pd.DataFrame:
    log = read_log(_need(run_files.log_path(run_dir, "grpo"), "notebook 04 writes it"))
    if "reward" not in log or "step" not in log:
        raise FigureSkipped(f"{run_dir}/results/grpo_log.jsonl has no per-step reward")
    return log[log["step"].notna() & log["reward"].notna()]


def grpo_curves(run_dir: Path, to_repo: bool = False) -> list[Path]:
    """(b) Mean total reward (weighted sum; band: spread within groups) and mean completion length
    (band: shortest to longest) against GRPO step; from results/grpo_log.jsonl."""
    log = _grpo_log(run_dir)
    palette = sns.color_palette("colorblind")
    style()
    fig, (left, right) = plt.subplots(1, 2, layout="constrained", figsize=(7.0, 2.6))
    left.plot(log["step"], log["reward"], color=palette[0], marker="o", markersize=3)
    if "reward_std" in log:
        left.fill_between(log["step"], log["reward"] - log["reward_std"], log["reward"] + log["reward_std"],
                          color=palette[0], alpha=0.2, linewidth=0)
    left.set(xlabel="GRPO step", ylabel="total reward (weighted sum)", title="reward (band: ±1 std)")
    right.plot(log["step"], log["completions/mean_length"], color=palette[2], marker="o", markersize=3)
    if {"completions/min_length", "completions/max_length"} <= set(log.columns):
        right.fill_between(log["step"], log["completions/min_length"], log["completions/max_length"],
                           color=palette[2], alpha=0.2, linewidth=0)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set(xlabel="GRPO step", ylabel="completion length (tokens)", title="length (band: min to max)")
    fig.suptitle(_run_name(run_dir), fontsize="small")
    return save(fig, "grpo_curves", Path(run_dir), to_repo)


def reward_components(run_dir: Path, to_repo: bool = False) -> list[Path]:
    """(c) Each reward function's mean (band: ±1 std over completions) against GRPO step, one panel each."""
    log = _grpo_log(run_dir)
    names = [c.split("/")[1] for c in log.columns if c.startswith("rewards/") and c.endswith("/mean")]
    if not names:
        raise FigureSkipped(f"{run_dir}/results/grpo_log.jsonl has no rewards/<name>/mean columns")
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    palette = sns.color_palette("colorblind")
    style()
    fig, axes = plt.subplots(rows, cols, layout="constrained", figsize=(2.4 * cols + 0.4, 2.1 * rows),
                             sharex=True, squeeze=False)
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        mean, std = log[f"rewards/{name}/mean"], log.get(f"rewards/{name}/std")
        ax.plot(log["step"], mean, color=palette[k % len(palette)], marker="o", markersize=3)
        if std is not None:
            ax.fill_between(log["step"], mean - std, mean + std, color=palette[k % len(palette)], alpha=0.2,
                            linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=name, xlabel="GRPO step" if k >= len(names) - cols else "",
               ylabel="mean reward" if k % cols == 0 else "")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"reward components, band ±1 std ({_run_name(run_dir)})", fontsize="small")
    return save(fig, "reward_components", Path(run_dir), to_repo)


def _samples(run_dir: Path) -> dict[str, list[dict]]:
    found = stats.load_samples(run_dir)
    if not found:
        raise FigureSkipped(f"no {run_dir}/results/samples_<stage>.jsonl: set eval.samples_k > 0 (and "
                            "eval.temperatures) and run notebook 05")
    return found


def best_f1_at_k(run_dir: Path, to_repo: bool = False) -> list[Path]:
    """(d) Best-F1@K (oracle: best of K samples per unit) and Avg@K (mean F1 of one sample) against K,
    one panel per sampling temperature; from results/samples_<stage>.jsonl."""
    samples = _samples(Path(run_dir))
    frame = pd.DataFrame([{"stage": r["stage"], "temperature": r["temperature"], "K": r["k"], "metric": metric,
                           "F1": r[column]} for r in stats.at_k_table(samples)
                          for metric, column in (("Best-F1@K", "best_f1"), ("Avg@K", "avg_f1"))])
    if frame.empty or frame["K"].max() < 2:
        raise FigureSkipped(f"{run_dir}: fewer than 2 samples per unit; set eval.samples_k >= 2")
    temps = sorted(frame["temperature"].unique())
    style()
    fig, axes = plt.subplots(1, len(temps), layout="constrained", figsize=(2.6 * len(temps) + 1.2, 2.6),
                             sharey=True, squeeze=False)
    for k, (ax, t) in enumerate(zip(axes[0], temps)):
        sns.lineplot(frame[frame["temperature"] == t], x="K", y="F1", hue="stage", style="metric", markers=True,
                     hue_order=_stage_order(frame["stage"]), style_order=["Best-F1@K", "Avg@K"], ax=ax,
                     palette={st: stage_color(st, j) for j, st in enumerate(_stage_order(frame["stage"]))},
                     legend=k == len(temps) - 1)
        ax.set(title=f"temperature {t:g}", xlabel="K (samples per unit)", ylabel="strict micro-F1", ylim=(0, 1))
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, -1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.suptitle(_run_name(run_dir), fontsize="small")
    return save(fig, "best_f1_at_k", Path(run_dir), to_repo)


def f1_by_temperature(run_dir: Path, to_repo: bool = False, n_boot: int = 1000) -> list[Path]:
    """(e) Mean F1 of one sample against sampling temperature (bars: 95% bootstrap interval over units),
    greedy decoding (results/predictions.jsonl) drawn at temperature 0."""
    run_dir = Path(run_dir)
    samples = _samples(run_dir)
    greedy = {}
    if run_files.predictions_path(run_dir).exists():
        greedy = {r["stage"]: r for r in stats.f1_with_intervals(run_dir, n_boot=n_boot) if r["label"] == "all"}
    style()
    fig, ax = plt.subplots(layout="constrained", figsize=(4.2, 2.8))
    for k, stage in enumerate(_stage_order(samples)):
        curve = pd.DataFrame(stats.f1_by_temperature(samples[stage], n_boot=n_boot))
        color = stage_color(stage, k)
        ax.errorbar(curve["temperature"], curve["f1"], yerr=[curve["f1"] - curve["low"], curve["high"] - curve["f1"]],
                    color=color, marker="o", markersize=3, capsize=2, label=stage)
        if stage in greedy:
            g = greedy[stage]
            ax.errorbar([0.0], [g["f1"]], yerr=[[g["f1"] - g["low"]], [g["high"] - g["f1"]]], color=color,
                        marker="s", markersize=4, capsize=2, linestyle="none")
    ax.set(xlabel="sampling temperature (0 = greedy, square)", ylabel="strict micro-F1 of one sample",
           ylim=(0, 1), title=f"{_run_name(run_dir)}; bars: 95% bootstrap interval")
    ax.title.set_fontsize("small")
    ax.legend(title="stage", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save(fig, "f1_by_temperature", run_dir, to_repo)


def reliability(run_dir: Path, to_repo: bool = False, bins: int = 10, min_share: float = 0.1) -> list[Path]:
    """(f) Reliability diagram per stage: accuracy (exactly right answer) against the confidence the model
    states in its answer, in equal-width bins (answers per bin above each bar), with the expected
    calibration error (ECE) and AUROC (does a higher stated confidence pick out the right answers).
    Stages where fewer than `min_share` of the answers state a confidence are named, not drawn."""
    run_dir = Path(run_dir)
    _need(run_files.predictions_path(run_dir), "notebook 05 writes it; a run whose model states a "
          "confidence: python -m grasp_lib run params/confidence_quick.yaml")
    every = stats.run_calibration(run_dir, bins)
    calib = {s: c for s, c in every.items() if c["n"] > 0 and c["n"] >= min_share * c["total"]}
    if not calib:
        raise FigureSkipped(f"{run_dir}: no stage states a confidence (\"confidence\": 0.8 or 'confidence: 80%') "
                            f"in at least {min_share:.0%} of its answers; nothing to calibrate "
                            "(params/confidence_quick.yaml trains a model that does)")
    stages = _stage_order(calib)
    style()
    fig, axes = plt.subplots(1, len(stages), layout="constrained", figsize=(2.7 * len(stages) + 1.6, 3.0),
                             sharey=True, squeeze=False)
    for k, (ax, stage) in enumerate(zip(axes[0], stages)):
        c = calib[stage]
        b = pd.DataFrame(c["bins"])
        auroc = "n/a" if c["auroc"] is None else f"{c['auroc']:.2f}"  # n/a: every answer right, or none
        ax.bar((b["low"] + b["high"]) / 2, b["accuracy"], width=1 / bins, color=stage_color(stage, k),
               edgecolor="white", label="accuracy in bin")
        for x, y, n in zip((b["low"] + b["high"]) / 2, b["accuracy"], b["n"]):
            ax.annotate(str(n), (x, y), xytext=(0, 2), textcoords="offset points", ha="center", fontsize="x-small")
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        ax.plot(b["confidence"], b["accuracy"], linestyle="none", marker="o", markersize=3, color="black",
                label="(mean confidence, accuracy)")
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0", ".2", ".4", ".6", ".8", "1"])
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="stated confidence",
               ylabel="accuracy (exact answer)" if k == 0 else "",
               title=f"{stage}\nECE {c['ece']:.3f}, AUROC {auroc}\n{c['n']} of {c['total']} state one")
        ax.title.set_fontsize("small")
    axes[0, -1].legend(title="numbers: answers in bin", title_fontsize="x-small", fontsize="x-small",
                       loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    left_out = [f"{s} ({c['n']} of {c['total']})" for s, c in every.items() if s not in calib]
    fig.suptitle(_run_name(run_dir) + ("; too few state a confidence: " + ", ".join(left_out) if left_out else ""),
                 fontsize="small")
    return save(fig, "reliability", run_dir, to_repo)


def run_label(run_dir: Path, group: str) -> str:
    """Short label of an ablation run: its name, and for prompt ablations the prompt levels it used."""
    run_dir = Path(run_dir)
    if group.startswith("prompt"):
        for info in sorted(run_dir.glob("*_info.json")):
            levels = json.loads(info.read_text()).get("params", {}).get("prompt", {}).get("levels")
            if levels is not None:
                return f"{run_dir.name}\n[{', '.join(levels)}]"
    return run_dir.name.removeprefix("ablation_")


def ablations(groups: dict[str, list[Path]], run_dir: Path, to_repo: bool = False,
              n_boot: int = 1000) -> list[Path]:
    """(g) Strict micro-F1 (95% bootstrap interval) of each ablation run and stage, one panel per group
    (e.g. reward variants; prompt levels on and off). Runs without results/predictions.jsonl are left
    out; with none at all the figure is skipped."""
    present = {g: [Path(r) for r in runs if run_files.predictions_path(r).exists()]
               for g, runs in groups.items()}
    present = {g: runs for g, runs in present.items() if runs}
    if not present:
        wanted = ", ".join(str(r) for runs in groups.values() for r in runs) or "(none named)"
        raise FigureSkipped(f"no ablation run has results/predictions.jsonl: looked for {wanted}; make them with "
                            "`python -m grasp_lib run params/ablation_<variant>.yaml`")
    style()
    fig, axes = plt.subplots(1, len(present), layout="constrained", figsize=(3.6 * len(present) + 0.8, 2.9),
                             sharey=True, squeeze=False)
    for k, (ax, (group, runs)) in enumerate(zip(axes[0], present.items())):
        rows = []
        for r in runs:
            rows += [t | {"run": run_label(r, group)} for t in stats.f1_with_intervals(r, n_boot=n_boot)
                     if t["label"] == "all" and t["stage"] != "base"]
        frame = pd.DataFrame(rows)
        _bars(ax, frame, "run", "stage", _stage_order(frame["stage"]))
        ax.set(title=group, xlabel="run", ylabel="strict micro-F1" if k == 0 else "", ylim=(0, 1))
    handles = {}  # every stage of every panel (a panel may lack one), in stage order
    for ax in axes[0]:
        handles |= {label: h for h, label in zip(*ax.get_legend_handles_labels()) if label not in handles}
    order = _stage_order(handles)
    axes[0, -1].legend([handles[s] for s in order], order, title="stage", fontsize="small", loc="upper left",
                       bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("ablations (each panel: its runs share one SFT checkpoint and eval sample); "
                 "bars: 95% bootstrap interval", fontsize="small")
    return save(fig, "ablations", Path(run_dir), to_repo)


# name -> (letter, function of (run_dir, to_repo), input files relative to the run)
_EVAL, _LOG = run_files.EVAL, str(run_files.log_path("", "grpo"))
FIGURES = {
    "f1_by_stage": ("a", f1_by_stage, [_EVAL, run_files.PREDICTIONS]),
    "grpo_curves": ("b", grpo_curves, [_LOG]),
    "reward_components": ("c", reward_components, [_LOG]),
    "best_f1_at_k": ("d", best_f1_at_k, [_EVAL, run_files.SAMPLES]),
    "f1_by_temperature": ("e", f1_by_temperature, [_EVAL, run_files.SAMPLES, run_files.PREDICTIONS]),
    "reliability": ("f", reliability, [_EVAL, run_files.PREDICTIONS]),
}
DEFAULT_ABLATIONS = {"reward variants": ["runs/ablation_binary", "runs/ablation_granular", "runs/ablation_adaptive"],
                     "prompt levels": ["runs/ablation_prompt_*"]}


def _inputs(run_dir: Path, patterns: list[str]) -> list[Path]:
    return [p for pattern in patterns for p in sorted(Path(run_dir).glob(pattern)) if p.is_file()]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def make_all(run_dir: Path, ablation_groups: dict[str, list] | None = None, to_repo: bool = False,
             calibration_run: Path | None = None) -> dict:
    """Every figure (a)-(g) from a run's files; writes SOURCES.md next to the figures, naming for each
    figure the run folder and input files (with a content hash) it came from, or why it was skipped.
    `calibration_run`: the run of (f) when it is not `run_dir` (one whose model states a confidence).

    Returns {name: {"letter", "paths", "sources", "skipped"}}."""
    run_dir = Path(run_dir)
    groups = {g: [p for r in runs for p in (sorted(REPO_ROOT.glob(str(r))) if "*" in str(r) else [resolve(r)])]
              for g, runs in (DEFAULT_ABLATIONS if ablation_groups is None else ablation_groups).items()}
    source = {name: run_dir for name in FIGURES} | ({"reliability": Path(calibration_run)} if calibration_run else {})
    results = {}
    jobs = [(name, letter, lambda f=fn, r=source[name]: f(r, to_repo), _inputs(source[name], inputs))
            for name, (letter, fn, inputs) in FIGURES.items()]
    ablation_inputs = [p for runs in groups.values() for r in runs for p in _inputs(r, [_EVAL, run_files.PREDICTIONS])]
    jobs.append(("ablations", "g", lambda: ablations(groups, run_dir, to_repo), ablation_inputs))
    for name, letter, job, inputs in jobs:
        try:
            paths, skipped = job(), None
        except FigureSkipped as why:
            paths, skipped = [], str(why)
            for folder in [run_files.figures_dir(run_dir)] + ([REPO_ROOT / "figures"] if to_repo else []):
                for ext in ("png", "pdf"):  # a stale figure from older files would mislead
                    (folder / f"{name}.{ext}").unlink(missing_ok=True)
        results[name] = {"letter": letter, "paths": paths, "skipped": skipped,
                         "sources": [] if skipped else inputs}
    lines = ["# Figures and the run files they came from", "",
             "Regenerate with `make figures` (python -m grasp_lib figures); nothing is trained.", ""]
    for name, r in results.items():
        lines.append(f"- ({r['letter']}) `{name}`: " + (f"skipped: {r['skipped']}" if r["skipped"] else "from"))
        lines += [f"  - `{_run_name(p)}` sha256 {_digest(p)}" for p in r["sources"]]
    text = "\n".join(lines) + "\n"
    for folder in [run_files.figures_dir(run_dir)] + ([REPO_ROOT / "figures"] if to_repo else []):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "SOURCES.md").write_text(text)
    return results


def regenerate(run: str = "runs/quick", reward_runs: list[str] | None = None,
               prompt_runs: list[str] | None = None, calibration_run: str = "runs/confidence_quick") -> int:
    """`python -m grasp_lib figures`: every figure from existing run files into figures/ (and the run's
    figures/), printing which run each came from; exit status 2 when the run has no results at all.
    (f) comes from `calibration_run` (params/confidence_quick.yaml trains a model that states a confidence)."""
    run_dir = resolve(run)
    if not run_files.results_dir(run_dir).is_dir():
        print(f"error: {run_dir}/results does not exist: run `python -m grasp_lib run params/<name>.yaml` first",
              file=sys.stderr)
        return 2
    groups = {"reward variants": reward_runs if reward_runs is not None else DEFAULT_ABLATIONS["reward variants"],
              "prompt levels": prompt_runs if prompt_runs is not None else DEFAULT_ABLATIONS["prompt levels"]}
    results = make_all(run_dir, groups, to_repo=True, calibration_run=resolve(calibration_run))
    for name, r in results.items():
        if r["skipped"]:
            print(f"({r['letter']}) {name}: skipped: {r['skipped']}")
        else:
            runs = sorted({_run_name(p.parent.parent if p.parent.name in ("data", "results") else p.parent)
                           for p in r["sources"]})
            print(f"({r['letter']}) {name}: figures/{name}.png|pdf from {', '.join(runs)}")
    print(f"sources: {REPO_ROOT / 'figures' / 'SOURCES.md'}")
    return 0


def length_histogram(splits: dict, run_dir: Path) -> list[Path]:
    """Unit length in characters per split (notebook 01; not a paper figure)."""
    frame = pd.DataFrame([{"split": name, "characters": len(e.text)} for name, rows in splits.items() for e in rows])
    style()
    fig, ax = plt.subplots(layout="constrained", figsize=(4.5, 2.6))
    sns.histplot(frame, x="characters", hue="split", element="step", stat="density", common_norm=False, ax=ax)
    ax.set(xlabel="unit length (characters)", ylabel="density")
    return save(fig, "data_lengths", run_dir, to_repo=False)


def sft_loss(run_dir: Path) -> list[Path]:
    """SFT training loss against step (notebook 03; not a paper figure)."""
    log = read_log(run_files.log_path(run_dir, "sft"))
    log = log[log["loss"].notna()] if "loss" in log else log
    style()
    fig, ax = plt.subplots(layout="constrained", figsize=(4.5, 2.6))
    ax.plot(log["step"], log["loss"])
    ax.set(xlabel="SFT step", ylabel="training loss (completion tokens)")
    return save(fig, "sft_loss", run_dir, to_repo=False)
