"""Training speed: TRL's padded forward against the shared-prefix forward (params `shared_prefix`), and the
shared-prefix step in bf16 (params `precision`) against fp32, one run.

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/train.py          # about 10 minutes on 2 cores

Same data, seed and batches for both paths: params/quick.yaml's seeded BC5CDR sample (the first
--sft-steps x 8 SFT sentences, the first GRPO prompts), smollm2-135m from the base weights. Each
configuration trains in its own process (the real stage drivers, grasp_lib.train.sft / .grpo, with the
runner's environment), so its peak resident memory is its own:
- SFT: s/step and tokens/s of --sft-steps steps (the first step, warm-up, left out of the means), the
  loss curves of both paths side by side;
- GRPO, from the shared-prefix SFT model of the same run: s/step of the loss forward + backward (TRL's
  training_step without the rollouts) and of the whole step (rollouts and optimizer included).
Three configurations: `stock` and `shared` in fp32, `bf16` (shared prefix, mixed precision). Prints the
machine's fp32 and bf16 matmul speeds first, then a final line `train: sft Nx, grpo Nx (shared prefix over
stock), bf16: sft step Nx, grpo step Nx (over fp32), peak RSS N GB, machine N GFLOP/s fp32 / N bf16` (stock
time / shared time for an SFT step and for GRPO's loss part; fp32 shared / bf16 for an SFT step and a whole
GRPO step, rollouts included; peak RSS: the largest of the shared-prefix processes).
`--levers` measures the other levers instead (LEVERS: glibc's default malloc, the tied embedding frozen,
torch.compile), each a shared-prefix SFT run of its own, against the runner's settings.
`--profile` profiles the second SFT step of `shared` and `bf16` (torch.profiler, self CPU time grouped into
matmul, dtype casts, attention, optimizer and the other elementwise ops): where bf16's time goes.
`--child` runs one configuration (used by the parent; `--extra` passes params overrides as JSON, e.g.
'{"sft.torch_compile": true}', to measure other levers the same way).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grasp_lib.runner import ENVIRONMENT, machine_gflops  # noqa: E402


def mean(values: list[float]) -> float:
    return sum(values) / max(len(values), 1)


def now() -> tuple[float, float]:
    """Wall and process CPU seconds: CPU time per step barely moves when other work shares the cores."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> list[float]:
    return [b - a for a, b in zip(start, now())]


def per_step(pairs: list[list[float]], cpu: bool = False) -> float:
    """Mean seconds per step of steps 2.. (step 1 warms up)."""
    return mean([p[cpu] for p in pairs[1:]])


# profile groups: an op's self CPU time goes to the first group whose name part it contains, else "other"
PROFILE_GROUPS = {"matmul": ("aten::mm", "aten::addmm", "aten::bmm"), "casts": ("aten::copy_", "aten::_to_copy"),
                  "attention": ("scaled_dot_product",), "optimizer": ("adam",)}


def profiled_step(step: int = 1):
    """A callback that profiles training step `step` (0-based) and keeps its self CPU seconds per group."""
    import torch
    from transformers import TrainerCallback

    class Profiled(TrainerCallback):
        def __init__(self):
            self.groups: dict[str, float] = {}

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == step:
                self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step + 1:
                self.profiler.__exit__(None, None, None)
                for event in self.profiler.key_averages():
                    group = next((g for g, parts in PROFILE_GROUPS.items() if any(p in event.key for p in parts)),
                                 "other")
                    self.groups[group] = self.groups.get(group, 0.0) + event.self_cpu_time_total / 1e6

    return Profiled()


def child(stage: str, run_dir: Path, overrides: dict, out: Path, freeze_embedding: bool,
          profile: bool = False) -> None:
    """Train one configuration; write its per-step figures and peak RSS (GB) to `out`."""
    from transformers import TrainerCallback

    from grasp_lib import params as P
    from grasp_lib.train import grpo, sft

    clock = {"steps": [], "loss_part": [], "rollouts": []}

    class Steps(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            clock["begin"] = now()

        def on_step_end(self, *args, **kwargs):
            clock["steps"].append(since(clock["begin"]))

    if stage == "grpo":  # on TRL's class: the run's trainer (fast rollouts, shared prefix) subclasses it
        from trl import GRPOTrainer

        time_rollouts(GRPOTrainer, clock)
    if freeze_embedding:
        freeze_tied_embedding(sft)
    params = P.load(ROOT / "params" / "quick.yaml", overrides)
    profiler = profiled_step() if profile else None
    (sft if stage == "sft" else grpo).run(params, run_dir, callbacks=[Steps()] + ([profiler] if profile else []))
    log = [json.loads(line) for line in (run_dir / "results" / f"{stage}_log.jsonl").read_text().splitlines()]
    tokens = [e["num_tokens"] for e in log if "num_tokens" in e and "loss" in e]
    result = clock | {"loss": [e["loss"] for e in log if "loss" in e and "train_loss" not in e],
                      "tokens": [b - a for a, b in zip([0] + tokens, tokens)],
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
                      "profile": profiler.groups if profile else None}
    out.write_text(json.dumps(result))


def time_rollouts(trainer_cls, clock: dict) -> None:
    """Time GRPO's rollouts and its whole training_step: the loss part is the difference."""
    generate, step = trainer_cls._generate_and_score_completions, trainer_cls.training_step

    def timed_generate(self, *args, **kwargs):
        started = now()
        result = generate(self, *args, **kwargs)
        clock["rollouts"].append(since(started))
        return result

    def timed_step(self, *args, **kwargs):
        started, rollouts = now(), len(clock["rollouts"])
        result = step(self, *args, **kwargs)
        generating = [sum(r[i] for r in clock["rollouts"][rollouts:]) for i in (0, 1)]
        clock["loss_part"].append([t - g for t, g in zip(since(started), generating)])
        return result

    trainer_cls._generate_and_score_completions, trainer_cls.training_step = timed_generate, timed_step


def freeze_tied_embedding(sft_module) -> None:
    """Lever: the tied input embedding / LM head (28M of 135M parameters) left out of training."""
    load = sft_module.load_model

    def frozen(*args, **kwargs):
        model, tokenizer, peft_config = load(*args, **kwargs)
        model.get_input_embeddings().weight.requires_grad_(False)
        return model, tokenizer, peft_config

    sft_module.load_model = frozen


def spawn(stage: str, name: str, run_dir: Path, overrides: dict, freeze: bool = False, environment: dict = ENVIRONMENT,
          timeout: float | None = None, profile: bool = False) -> dict | None:
    """Train one configuration in its own process; its figures, or None when it ran past `timeout` seconds."""
    out = run_dir / f"{stage}-{name}.json"
    overrides = {"shared_prefix": name != "stock", "precision": PRECISION.get(name, "fp32")} | overrides
    command = [sys.executable, __file__, "--child", stage, "--run-dir", str(run_dir), "--out", str(out),
               "--extra", json.dumps(overrides)] + (["--freeze-embedding"] if freeze else []) \
        + (["--profile"] if profile else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    try:
        done = subprocess.run(command, env=env | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        raise SystemExit(f"{stage} {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(out.read_text())


PRECISION = {"bf16": "bf16"}  # configuration -> params precision; the others run in fp32
CONFIGURATIONS = ("stock", "bf16", "shared")  # shared last: its fp32 SFT model is the one GRPO starts from

# Other levers, each against the shared-prefix SFT step in bf16 with the runner's settings (--levers):
# (params overrides, freeze the tied embedding, the child's environment)
GLIBC_DEFAULT_MALLOC = {k: v for k, v in ENVIRONMENT.items() if not k.startswith("MALLOC_")}
LEVERS = {"shared": ({}, False, ENVIRONMENT),
          "glibc-default-malloc": ({}, False, GLIBC_DEFAULT_MALLOC),
          "frozen-tied-embedding": ({}, True, ENVIRONMENT),
          "torch-compile": ({"sft.torch_compile": True}, False, ENVIRONMENT)}


def levers(run_dir: Path, overrides: dict, timeout: float) -> None:
    base = None
    for name, (extra, freeze, environment) in LEVERS.items():
        result = spawn("sft", name, run_dir, overrides | extra | {"stages": ["sft"], "precision": "bf16"}, freeze,
                       environment, timeout)
        if result is None:
            print(f"sft  {name}: did not finish {overrides['sft.max_steps']} steps in {timeout:.0f} s", flush=True)
            continue
        base = base or result
        print(f"{sft_line(name, result)}; {per_step(base['steps']) / per_step(result['steps']):.2f}x the first",
              flush=True)


def profile(run_dir: Path, overrides: dict) -> None:
    """Self CPU seconds of one shared-prefix SFT step per group, fp32 then bf16, and bf16's ratio per group."""
    found = {name: spawn("sft", name, run_dir, overrides | {"stages": ["sft"]}, profile=True)["profile"]
             for name in ("shared", "bf16")}
    for name, groups in found.items():
        cells = ", ".join(f"{g} {groups.get(g, 0.0):.2f}" for g in (*PROFILE_GROUPS, "other"))
        print(f"profile {name:6s}: self CPU s of step 2: {cells}; total {sum(groups.values()):.2f}", flush=True)
    fp32, bf16 = found["shared"], found["bf16"]
    print("profile bf16/fp32 per group: " + ", ".join(
        f"{g} {bf16.get(g, 0.0) / max(fp32.get(g, 0.0), 1e-9):.2f}x" for g in (*PROFILE_GROUPS, "other")))


def prepare(run_dir: Path, sft_steps: int, grpo_steps: int) -> dict:
    """quick.yaml's data, sized to the steps, in `run_dir`; the overrides every configuration shares."""
    from grasp_lib import examples
    from grasp_lib import params as P

    overrides = {"data.sft_size": 8 * sft_steps, "data.rl_size": 2 * grpo_steps, "sft.max_steps": sft_steps,
                 "grpo.max_steps": grpo_steps, "grpo.log_completions": False, "sft.disable_tqdm": True,
                 "grpo.disable_tqdm": True}
    examples.prepare(P.load(ROOT / "params" / "quick.yaml", overrides), run_dir)
    return overrides


def sft_line(name: str, r: dict) -> str:
    tokens = mean(r["tokens"][1:])
    return (f"sft  {name:6s}: {per_step(r['steps']):6.2f} s/step ({per_step(r['steps'], cpu=True):6.2f} CPU s), "
            f"{tokens / per_step(r['steps']):6.1f} tokens/s ({tokens:.0f} tokens/step), "
            f"peak RSS {r['peak_rss_gb']:.2f} GB, steps {[round(s[0], 1) for s in r['steps']]} s")


def grpo_line(name: str, r: dict) -> str:
    return (f"grpo {name:6s}: loss fwd+bwd {per_step(r['loss_part']):6.2f} s/step "
            f"({per_step(r['loss_part'], cpu=True):6.2f} CPU s), whole step {per_step(r['steps']):6.2f} s "
            f"(rollouts {per_step(r['rollouts']):5.2f} s), peak RSS {r['peak_rss_gb']:.2f} GB")


def ratios(stock: dict, shared: dict, key: str) -> tuple[float, float]:
    """stock / shared seconds per step: (wall, CPU)."""
    return tuple(per_step(stock[key], cpu) / per_step(shared[key], cpu) for cpu in (False, True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-steps", type=int, default=6)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--child", choices=["sft", "grpo"])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--extra", default="{}", help="params overrides (JSON) for every configuration")
    parser.add_argument("--freeze-embedding", action="store_true")
    parser.add_argument("--profile", action="store_true", help="instead: profile an SFT step, fp32 and bf16")
    parser.add_argument("--levers", action="store_true", help="instead: SFT with each of LEVERS (shared prefix on)")
    parser.add_argument("--lever-timeout", type=float, default=600, help="seconds one lever's SFT may take")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.run_dir, json.loads(args.extra), args.out, args.freeze_embedding, args.profile)

    machine, machine_bf16 = machine_gflops(), machine_gflops(dtype="bf16")
    print(f"machine: {machine} GFLOP/s fp32, {machine_bf16} bf16 matmul (1024x1024, {os.cpu_count()} cores)",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = prepare(Path(tmp), args.sft_steps, args.grpo_steps) | json.loads(args.extra)
        if args.levers:
            return levers(Path(tmp), overrides, args.lever_timeout)
        if args.profile:
            return profile(Path(tmp), overrides)
        sft = {name: spawn("sft", name, Path(tmp), overrides | {"stages": ["sft"]}, args.freeze_embedding)
               for name in CONFIGURATIONS}
        for name, result in sft.items():
            print(sft_line(name, result), flush=True)
        drift = max(abs(a - b) / abs(a) for a, b in zip(sft["stock"]["loss"], sft["shared"]["loss"]))
        print(f"sft loss curves: stock {[round(x, 4) for x in sft['stock']['loss']]}, shared "
              f"{[round(x, 4) for x in sft['shared']['loss']]} (largest relative difference {drift:.1e})")
        bf16_drift = abs(mean(sft["bf16"]["loss"][-3:]) / mean(sft["shared"]["loss"][-3:]) - 1)
        print(f"sft loss, bf16 against fp32: {[round(x, 4) for x in sft['bf16']['loss']]} (mean of the last 3 "
              f"within {100 * bf16_drift:.1f}%)")
        grpo = {name: spawn("grpo", name, Path(tmp), overrides | {"stages": ["sft", "grpo"]})
                for name in CONFIGURATIONS}
        for name, result in grpo.items():
            print(grpo_line(name, result), flush=True)
    sft_x, sft_cpu = ratios(sft["stock"], sft["shared"], "steps")
    grpo_x, grpo_cpu = ratios(grpo["stock"], grpo["shared"], "loss_part")
    whole_x, whole_cpu = ratios(grpo["stock"], grpo["shared"], "steps")
    print(f"speed-ups, wall (CPU time): sft step {sft_x:.2f}x ({sft_cpu:.2f}x), grpo loss part {grpo_x:.2f}x "
          f"({grpo_cpu:.2f}x), grpo whole step with rollouts {whole_x:.2f}x ({whole_cpu:.2f}x)")
    bf16_sft, bf16_sft_cpu = ratios(sft["shared"], sft["bf16"], "steps")
    bf16_grpo, bf16_grpo_cpu = ratios(grpo["shared"], grpo["bf16"], "steps")
    print(f"bf16 over fp32 (shared prefix), wall (CPU time): sft step {bf16_sft:.2f}x ({bf16_sft_cpu:.2f}x), grpo "
          f"whole step {bf16_grpo:.2f}x ({bf16_grpo_cpu:.2f}x), grpo rollouts "
          f"{ratios(grpo['shared'], grpo['bf16'], 'rollouts')[0]:.2f}x")
    peak = max(r["peak_rss_gb"] for r in (sft["shared"], grpo["shared"], sft["bf16"], grpo["bf16"]))
    print(f"train: sft {sft_x:.2f}x, grpo {grpo_x:.2f}x (shared prefix over stock), bf16: sft step {bf16_sft:.2f}x, "
          f"grpo step {bf16_grpo:.2f}x (over fp32), peak RSS {peak:.2f} GB, machine {machine} GFLOP/s fp32 / "
          f"{machine_bf16} bf16")


if __name__ == "__main__":
    main()
