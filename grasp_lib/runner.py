"""Run the numbered notebooks in order with papermill, one run folder per params name.

Each notebook gets the same three parameters (params_path, overrides, run_dir); its executed copy goes
to runs/<name>/notebooks/. The first failing notebook stops the run with a non-zero exit.
Before any kernel starts: every params value is checked (params.load and preflight.preflight), the run
folder is locked (runs/<name>/run.lock: a second run on the same folder fails at once), and the sha256
of the corpus files notebook 01 reads are written to runs/<name>/data/inputs.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .params import Params, load
from .paths import REPO_ROOT, resolve
from . import run_files
from .preflight import preflight
from .progress import reporting_to
from .run_files import write_run_info

NOTEBOOKS = ["01_data", "02_prompts", "03_sft", "04_grpo", "05_evaluate", "06_figures"]

# Set before any kernel starts: no hub access here, and glibc must not hand large tensor buffers
# back to the OS after every step (page-fault churn made CPU training about 30% slower).
ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "MALLOC_TRIM_THRESHOLD_": "8589934592",
               "MALLOC_TOP_PAD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "8589934592"}


def set_environment() -> None:
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class NotebookFailed(RuntimeError):
    pass


class RunLocked(RuntimeError):
    """Another live process is running in this run folder; the message names its pid."""


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold `run_dir/run.lock` (it names the owner: pid, host, start) while the run writes the folder.
    A second run on the same folder raises RunLocked at once, naming the owner. The lock is an fcntl
    lock, which the kernel releases when its process ends however it ends: the lock file of a run that
    died is taken over (and said so), never left to block the next run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_files.lock_path(run_dir)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "owner unknown"
        handle.close()
        raise RunLocked(f"run folder {run_dir} is in use by another run ({owner}; lock file {path}): wait "
                        f"for it to finish or stop it, or give this run another params name") from None
    handle.seek(0)
    previous = handle.read().strip()
    if previous:
        print(f"taking over {path} from a run that is gone ({previous})", file=sys.stderr)
    _write_owner(handle, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
    try:
        yield path
    finally:
        _write_owner(handle, "")  # an empty lock file: released cleanly
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _write_owner(handle, owner: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(owner)
    handle.flush()


def record_inputs(params: Params, run_dir: Path) -> Path:
    """data/inputs.json: the sha256 of the corpus files notebook 01 reads (each dataset's train split and
    eval split), checked against grasp_lib/corpora/checksums.sha256; a mismatch is printed as a warning."""
    from . import corpora

    pairs = []
    for name in params.data.mixture or {params.data.dataset: None}:
        # the eval split notebook 01 uses (examples.sample_splits): the named one where the dataset has it
        eval_split = params.data.eval_split if params.data.eval_split in corpora.REGISTRY[name] else "test"
        pairs += [(name, params.data.train_split), (name, eval_split)]
    record = corpora.input_checksums(pairs, params.data.data_dir)
    target = run_files.inputs_path(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record, indent=2))
    if record["changed"] or record["missing"]:
        print(f"warning: corpus files differ from grasp_lib/corpora/checksums.sha256 (changed: {record['changed']}, "
              f"missing: {record['missing']}); `python -m grasp_lib data verify` checks them all", file=sys.stderr)
    return target


def run_notebooks(params_path: str, overrides: dict, run_dir: Path, notebooks: list[str],
                  kernel_name: str = "python3", machine: dict | None = None) -> dict[str, float]:
    """Execute notebooks in order; returns wall seconds per notebook; raises NotebookFailed on the first error.
    timings.json holds `machine` (the machine's measured speed) and the seconds per notebook."""
    import papermill

    set_environment()
    out_dir = run_files.notebooks_dir(run_dir)
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
            run_files.timings_path(run_dir).write_text(json.dumps((machine or {}) | timings, indent=2))
    return timings


def machine_gflops(size: int = 1024, seconds: float = 1.0, dtype: str = "fp32") -> float:
    """This machine's matmul speed in GFLOP/s in `dtype` (fp32 | bf16; best of repeated size x size products
    for about `seconds`, torch's default threads). Wall times vary about 3x between machines: each run records
    this beside them."""
    import torch

    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(size, size, dtype=kind), torch.randn(size, size, dtype=kind)
    best, spent = float("inf"), 0.0
    while spent < seconds:
        started = time.perf_counter()
        a @ b
        took = time.perf_counter() - started
        best, spent = min(best, took), spent + took
    return round(2 * size ** 3 / best / 1e9, 1)


def record_machine(info_path: Path, precision: str) -> dict:
    """Measure the machine once (fp32 and bf16 matmul), add it and the run's resolved precision to the run's
    info file; returns {"machine_gflops": N, "machine_gflops_bf16": N, "precision": P}."""
    machine = {"machine_gflops": machine_gflops(), "machine_gflops_bf16": machine_gflops(dtype="bf16"),
               "precision": precision}
    info_path.write_text(json.dumps(json.loads(info_path.read_text()) | machine, indent=2))
    return machine


def f1_summary(run_dir: Path) -> str:
    """The F1 table of results/metrics.json (parse counts: only the unparsable ones), for the end of a run."""
    from .metrics import f1_table, text_table

    metrics_path = run_files.metrics_path(run_dir)
    if not metrics_path.exists():
        return "(no results/metrics.json)"
    rows = f1_table(run_files.read_json(metrics_path))
    return text_table(rows, [c for c in rows[0] if not c.startswith("parse_")] + ["parse_unparsable"], indent="")


def run(params_path: str, overrides: dict, notebooks: list[str] | None = None,
        run_dir: str | Path | None = None) -> int:
    """Check every param, lock the run folder (runs/<name> unless `run_dir`), record the inputs, run the
    notebooks. Raises ParamsError / RunLocked before any kernel starts."""
    set_environment()  # before preflight too: the model check sees the hub offline
    notebooks = notebooks or NOTEBOOKS
    unknown = [n for n in notebooks if n not in NOTEBOOKS]
    if unknown:
        raise KeyError(f"notebooks {unknown} unknown; valid: {NOTEBOOKS}")
    params: Params = load(params_path, overrides)  # fail fast on bad keys and values, before any kernel starts
    preflight(params, resolve(params_path))  # TRL/PEFT sections, rewards, datasets, model (imports TRL once)
    run_dir = resolve(run_dir or Path("runs") / params.name)
    with run_lock(run_dir):
        from .models import resolve_precision  # transformers: after preflight has imported it anyway

        info = write_run_info(params.to_dict(), run_dir, "run")
        machine = record_machine(info, resolve_precision(params.precision))
        if "01_data" in notebooks:
            record_inputs(params, run_dir)
        return _run_and_report(params, params_path, overrides, run_dir, notebooks, machine)


def _run_and_report(params: Params, params_path: str, overrides: dict, run_dir: Path, notebooks: list[str],
                    machine: dict) -> int:
    started = time.time()
    try:
        with reporting_to(run_files.progress_path(run_dir)):  # training steps and generation bars, from the kernels
            timings = run_notebooks(params_path, overrides, run_dir, notebooks, machine=machine)
    except NotebookFailed as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    print(f"\nrun {params.name}: {time.time() - started:.0f} s  (per notebook: {timings}; machine "
          f"{machine['machine_gflops']} GFLOP/s fp32 / {machine['machine_gflops_bf16']} bf16 matmul; "
          f"precision {machine['precision']})")
    datasets = ", ".join(params.data.mixture) if params.data.mixture else params.data.dataset
    print(f"F1 on {datasets} ({params.data.eval_split}; NER: strict / partial micro-F1; other datasets: "
          f"their headline F1) from {run_files.metrics_path(run_dir)}:")
    print(f1_summary(run_dir))
    return 0
