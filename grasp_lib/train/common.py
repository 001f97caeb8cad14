"""Pieces the stage drivers share: the start model, checkpoints, conversational rows, saving logs (their
trainer defaults: preflight.trainer_defaults, which preflight checks the sections with)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..params import KNOWN_STAGES, Params
from ..prompts import build_target, prompt_messages, reasoning_target
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


def is_main_process() -> bool:
    """Rank 0 of a multi-process run (accelerate launch / torchrun set RANK), or the only process."""
    return int(os.environ.get("RANK", 0)) == 0


def on_main_process(func, *args, **kwargs):
    """`func(*args, **kwargs)` computed on rank 0 alone and sent to every process (DPO pairs, confidence
    targets: one sample of the split, the same data on every rank). One process: just the call. An error
    on rank 0 is raised on every rank instead of leaving them waiting. The others wait up to the trainer
    config's `ddp_timeout` (default 1800 s; raise it in the stage's section for long sampling)."""
    if int(os.environ.get("WORLD_SIZE", 1)) == 1:
        return func(*args, **kwargs)
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    if not dist.is_initialized():  # the trainer's accelerate state joins it (NCCL on GPUs, gloo on CPUs)
        PartialState(cpu=not torch.cuda.is_available())
    box, error = [None], None
    if is_main_process():
        try:
            box = [("ok", func(*args, **kwargs))]
        except Exception as err:  # noqa: BLE001 (re-raised below, after the other ranks are told)
            error, box = err, [("error", f"{type(err).__name__}: {err}")]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    status, value = box[0]
    if status == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value
