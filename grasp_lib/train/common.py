"""Pieces the stage drivers share: CPU-safe trainer defaults, conversational rows, saving logs."""

from __future__ import annotations

import json
from pathlib import Path

from ..examples import read_jsonl
from ..params import KNOWN_STAGES, Params, trainer_defaults  # noqa: F401  (the stages import it from here)
from ..prompts import build_target, reasoning_target, row_messages
from ..tasks import get_task


def start_model(params: Params, run_dir: Path, stage: str) -> str:
    """The model a stage starts from: the saved model of the last earlier stage in params.stages (stages
    run in KNOWN_STAGES order: sft, confidence, dpo, grpo), else the base model."""
    earlier = [s for s in KNOWN_STAGES[:KNOWN_STAGES.index(stage)] if s in params.stages]
    return str(Path(run_dir) / "models" / earlier[-1]) if earlier else params.model


def last_checkpoint(output_dir: str | Path, resume: bool = True) -> str | None:
    """The newest `checkpoint-N` folder under a stage's output_dir, to resume from (None: start fresh).

    Checkpoints exist only when the stage's params ask for them (`save_strategy: steps`, `save_steps: N`);
    rerunning the same params after a kill then continues from the last one (as open-r1's drivers do).
    `resume: false` in params starts over even when checkpoints exist."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = Path(output_dir)
    if not resume or not output_dir.is_dir():
        return None
    found = get_last_checkpoint(str(output_dir))
    if found:
        print(f"resuming from {found}", flush=True)
    return found


def shots_for(params: Params, run_dir: Path) -> list[dict]:
    """Few-shot examples: the first `prompt.few_shot` SFT rows (fixed by the data seed)."""
    if "few_shot" not in params.prompt.levels or not params.prompt.few_shot:
        return []
    return read_jsonl(run_dir / "data" / "sft.jsonl")[:params.prompt.few_shot]


def prompt_messages(row: dict, params: Params, shots: list[dict]) -> list[dict]:
    return row_messages(row, get_task(row["dataset"]), params.prompt.levels, shots)


def sft_rows(rows: list[dict], params: Params, shots: list[dict]) -> list[dict]:
    """Conversational prompt-completion rows: TRL puts the loss on the completion only. With the
    `reasoning` prompt level the completion is MimicSFT's gold-derived <think> plan, then the answer."""
    target = reasoning_target if "reasoning" in params.prompt.levels else build_target  # MimicSFT
    return [{"prompt": prompt_messages(r, params, shots),
             "completion": [{"role": "assistant", "content": target(r, get_task(r["dataset"]))}]}
            for r in rows]


def stage_main(doc: str, run) -> None:
    """Command line of a stage module (`python -m` / `accelerate launch -m grasp_lib.train.<stage>`):
    --params, --run-dir (default runs/<name>; its data/ comes from notebook 01), -p key=value overrides."""
    import argparse

    from ..params import load, parse_override
    from ..paths import resolve

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--params", required=True, help="a params YAML file, e.g. params/paper.yaml")
    parser.add_argument("--run-dir", help="the run folder (default: runs/<params name>)")
    parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param (dotted keys: grpo.use_vllm=true); repeatable")
    args = parser.parse_args()
    params = load(args.params, dict(parse_override(o) for o in args.overrides))
    print(run(params, resolve(args.run_dir or Path("runs") / params.name)))


def save_log(log_history: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(entry) for entry in log_history) + "\n")
