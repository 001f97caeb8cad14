"""Run the numbered notebooks in order with papermill, one run folder per params name.

Each notebook gets the same three parameters (params_path, overrides, run_dir); its executed copy goes
to runs/<name>/notebooks/. The first failing notebook stops the run with a non-zero exit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .params import Params, load, write_run_info
from .paths import REPO_ROOT, resolve
from .progress import reporting_to

NOTEBOOKS = ["01_data", "02_prompts", "03_sft", "04_grpo", "05_evaluate", "06_figures"]

# Set before any kernel starts: no hub access here, and glibc must not hand large tensor buffers
# back to the OS after every step (page-fault churn made CPU training about 30% slower).
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "MALLOC_TRIM_THRESHOLD_": "8589934592",
               "MALLOC_TOP_PAD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "8589934592"}


class NotebookFailed(RuntimeError):
    pass


def run_notebooks(params_path: str, overrides: dict, run_dir: Path, notebooks: list[str],
                  kernel_name: str = "python3") -> dict[str, float]:
    """Execute notebooks in order; returns wall seconds per notebook; raises NotebookFailed on the first error."""
    import papermill

    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in notebooks:
        source, target = REPO_ROOT / "notebooks" / f"{name}.ipynb", out_dir / f"{name}.ipynb"
        print(f"== {name} -> {target}", flush=True)
        started = time.time()
        try:
            papermill.execute_notebook(
                str(source), str(target), kernel_name=kernel_name, cwd=str(REPO_ROOT), progress_bar=True,
                parameters={"params_path": str(resolve(params_path)), "overrides": overrides,
                            "run_dir": str(run_dir)})
        except papermill.PapermillExecutionError as err:
            raise NotebookFailed(f"notebook {name} failed ({err.ename}: {err.evalue}); "
                                 f"see the executed copy {target}") from None
        finally:
            timings[name] = round(time.time() - started, 1)
            (run_dir / "timings.json").write_text(json.dumps(timings, indent=2))
    return timings


def f1_summary(run_dir: Path) -> str:
    from .evaluation import f1_table

    metrics_path = run_dir / "results" / "metrics.json"
    if not metrics_path.exists():
        return "(no results/metrics.json)"
    rows = f1_table(json.loads(metrics_path.read_text()))
    columns = [c for c in rows[0] if not c.startswith("parse_")] + ["parse_unparsable"]
    lines = ["  ".join(f"{c:>18}" for c in columns)]
    for row in rows:
        cells = [f"{row.get(c, 0):>18.4f}" if isinstance(row.get(c, 0), float) else f"{row.get(c, 0):>18}"
                 for c in columns]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def run(params_path: str, overrides: dict, notebooks: list[str] | None = None) -> int:
    params: Params = load(params_path, overrides)  # fail fast on bad keys, before any kernel starts
    run_dir = resolve(Path("runs") / params.name)
    write_run_info(params, run_dir, "run")
    started = time.time()
    try:
        with reporting_to(run_dir / "progress.jsonl"):  # training steps and generation bars, from the kernels
            timings = run_notebooks(params_path, overrides, run_dir, notebooks or NOTEBOOKS)
    except NotebookFailed as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    print(f"\nrun {params.name}: {time.time() - started:.0f} s  (per notebook: {timings})")
    datasets = ", ".join(params.data.mixture) if params.data.mixture else params.data.dataset
    print(f"F1 on {datasets} ({params.data.eval_split}; NER: strict / partial micro-F1; other datasets: "
          f"their headline F1) from {run_dir / 'results' / 'metrics.json'}:")
    print(f1_summary(run_dir))
    return 0
