"""A run folder's layout and its file I/O: every room that reads or writes a run does it through here.

runs/<name>/
  data/{sft,rl,eval,confidence}.jsonl, data/report.json    notebook 01 (examples.prepare)
  models/<stage>/                                         notebooks 03, 04
  results/metrics.json, predictions.jsonl                 notebook 05 (evaluation)
  results/samples_<stage>.jsonl                           K samples per unit (sampling_eval)
  results/<stage>_log.jsonl, figures/, notebooks/         training logs, figures, executed notebooks
  <stage>_info.json                                       provenance: resolved params, versions, git commit
  results/<name>.json(l)                                  other stage outputs and statistics tables
  checkpoints/<stage>/                                    trainer checkpoints (resumed from)
  data/inputs.json, run.lock, timings.json, progress.jsonl  the runner's records

Prediction records are joined to eval rows by (dataset, id); records written before they carried the
dataset are joined by id alone when that is unambiguous. Before anything is scored, each stage's records
must name every eval row exactly once (check_records): a cut or mixed predictions file is an error, not a
score over fewer rows. Files are written whole or not at all (a temporary file, then os.replace), and
results/metrics.json keeps the one it replaces as results/metrics.prev.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

EVAL = "data/eval.jsonl"
METRICS = "results/metrics.json"
METRICS_PREV = "results/metrics.prev.json"
PREDICTIONS = "results/predictions.jsonl"
SAMPLES = "results/samples_*.jsonl"


def data_path(run_dir: str | Path, split: str) -> Path:
    """data/<split>.jsonl: split is sft, rl, eval or confidence."""
    return Path(run_dir) / "data" / f"{split}.jsonl"


def report_path(run_dir: str | Path) -> Path:
    """data/report.json: what the corpus readers read, converted and rejected (notebook 01)."""
    return Path(run_dir) / "data" / "report.json"


def results_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "results"


def metrics_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS


def predictions_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / PREDICTIONS


def samples_path(run_dir: str | Path, stage: str) -> Path:
    return results_dir(run_dir) / f"samples_{stage}.jsonl"


def samples_paths(run_dir: str | Path) -> list[Path]:
    """Every results/samples_<stage>.jsonl of a run, sorted (empty when none was sampled)."""
    return sorted(Path(run_dir).glob(SAMPLES))


def log_path(run_dir: str | Path, stage: str) -> Path:
    return results_dir(run_dir) / f"{stage}_log.jsonl"


def model_dir(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / "models" / stage


def figures_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "figures"


def sources_path(run_dir: str | Path) -> Path:
    """figures/SOURCES.md: the run files each figure came from."""
    return figures_dir(run_dir) / "SOURCES.md"


def result_path(run_dir: str | Path, name: str) -> Path:
    """results/<name>: a stage's or a table's own file (dpo_pairs.jsonl, f1_intervals.json, ...)."""
    return results_dir(run_dir) / name


def checkpoints_dir(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / "checkpoints" / stage


def stage_models(run_dir: str | Path, base_model: str, stages: list[str]) -> dict[str, str]:
    """What each stage leaves, in the order they run: "base" the base model, then each of `stages` its
    saved model under models/. A stage starts from the model of the entry before it."""
    return {"base": base_model} | {stage: str(model_dir(run_dir, stage)) for stage in stages}


def inputs_path(run_dir: str | Path) -> Path:
    """data/inputs.json: the checksums of the corpus files the run reads."""
    return Path(run_dir) / "data" / "inputs.json"


def notebooks_dir(run_dir: str | Path) -> Path:
    """notebooks/: the executed copies."""
    return Path(run_dir) / "notebooks"


def timings_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "timings.json"


def progress_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "progress.jsonl"


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "run.lock"


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    return _write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _write_atomic(path: str | Path, text: str) -> Path:
    """`text` into `path` through a temporary sibling and os.replace: a reader (or a kill, or a full disk)
    sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file; a line that is not JSON is an error naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as err:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({err})") from None
    return rows


def read_json(path: str | Path):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None


def write_json(obj, path: str | Path, sort_keys: bool = False) -> Path:
    """Indented JSON (sort_keys: deterministic files for the statistics under results/)."""
    return _write_atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def write_metrics(metrics: dict, run_dir: str | Path) -> Path:
    """results/metrics.json, replaced atomically; the one it replaces is kept as results/metrics.prev.json
    (a rescore that goes wrong can be compared with, or restored from, the previous figures)."""
    path = metrics_path(run_dir)
    if path.exists():
        _write_atomic(Path(run_dir) / METRICS_PREV, path.read_text(encoding="utf-8"))
    return write_json(metrics, path)


def row_key(row: dict) -> tuple[str, str]:
    return row.get("dataset", ""), str(row["id"])


def join(rows: list[dict], records: list[dict], where: str = "predictions") -> list[dict]:
    """The eval row of each record, in record order, by (dataset, id); a record without a dataset is
    joined by id when exactly one row has it. A record without a row is an error naming it; so is an eval
    file that holds one (dataset, id) twice (each record would be joined to the last of them)."""
    unique_rows(rows)
    by_key = {row_key(r): r for r in rows}
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(str(r["id"]), []).append(r)
    joined = []
    for n, rec in enumerate(records, start=1):
        row = by_key.get(row_key(rec)) if rec.get("dataset") else None
        if row is None and not rec.get("dataset") and len(by_id.get(str(rec["id"]), [])) == 1:
            row = by_id[str(rec["id"])][0]
        if row is None:
            raise KeyError(f"{where} record {n} (dataset {rec.get('dataset')!r}, id {rec['id']!r}) has no row "
                           "in data/eval.jsonl")
        joined.append(row)
    return joined


def unique_rows(rows: list[dict], where: str = EVAL) -> None:
    """Each (dataset, id) once among `rows`; a repeat is an error naming both rows (1-based)."""
    first: dict = {}
    for n, row in enumerate(rows, start=1):
        key = row_key(row)
        if key in first:
            raise ValueError(f"{where}: rows {first[key]} and {n} have the same dataset and id {key}: records "
                             f"of that id cannot be told apart (rerun notebook 01)")
        first[key] = n


def check_records(rows: list[dict], records: list[dict], where: str = PREDICTIONS) -> None:
    """Each stage's records name every eval row exactly once (same ids, each once); otherwise an error
    that counts what is missing and repeated, before anything is scored or written."""
    by_stage: dict = {}
    for rec in records:
        by_stage.setdefault(rec.get("stage"), []).append(rec)
    for stage, recs in by_stage.items():
        counts = Counter(id(row) for row in join(rows, recs, where))
        missing = [row_key(r) for r in rows if id(r) not in counts]
        repeated = [row_key(r) for r in rows if counts.get(id(r), 0) > 1]
        if missing or repeated:
            raise ValueError(f"{where}: stage {stage!r} has {len(recs)} records for the {len(rows)} rows of {EVAL}: "
                             f"{len(missing)} row(s) without a record (e.g. {missing[:3]}), {len(repeated)} with "
                             f"more than one (e.g. {repeated[:3]}); the file was cut or mixed: rerun notebook 05")


def load_run(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(eval rows, prediction records) of a run folder, checked against each other (check_records)."""
    rows, records = read_jsonl(data_path(run_dir, "eval")), read_jsonl(predictions_path(run_dir))
    check_records(rows, records, str(predictions_path(run_dir)))
    return rows, records


# ---------------------------------------------------------------- provenance
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "papermill", "unsloth",
             "nervaluate", "rapidfuzz", "matplotlib", "seaborn", "pydantic")


def versions() -> dict[str, str | None]:
    found = {}
    for lib in LIBRARIES:
        try:
            found[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            found[lib] = None
    return found


def git_commit() -> str | None:
    """HEAD of the checkout this code runs from, `-dirty` when it has uncommitted changes."""
    here = Path(__file__).resolve().parent  # git finds the repository from inside it
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True)
    except OSError:
        return None
    commit = out.stdout.strip() or None
    return f"{commit}-dirty" if commit and dirty.stdout.strip() else commit


def info_path(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / f"{stage}_info.json"


def write_run_info(params: dict, run_dir: str | Path, stage: str = "run") -> Path:
    """<stage>_info.json: the resolved params (Params.to_dict()), library versions and git commit."""
    info = {"params": params, "versions": versions(), "git_commit": git_commit(),
            "python": sys.version.split()[0], "platform": platform.platform()}
    return write_json(info, info_path(run_dir, stage))
