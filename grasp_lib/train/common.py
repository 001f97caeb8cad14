"""Pieces the stage drivers share: the model a stage starts from, resuming, the command line, ranks (their
trainer defaults: preflight.trainer_defaults, which preflight checks the sections with)."""

from __future__ import annotations

import os
from pathlib import Path

from ..params import KNOWN_STAGES, Params
from ..run_files import stage_models


def start_model(params: Params, run_dir: Path, stage: str) -> str:
    """The model a stage starts from: the saved model of the last earlier stage in params.stages (stages
    run in KNOWN_STAGES order: sft, confidence, dpo, grpo), else the base model."""
    earlier = [s for s in KNOWN_STAGES[:KNOWN_STAGES.index(stage)] if s in params.stages]
    return list(stage_models(run_dir, params.model, earlier).values())[-1]


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
