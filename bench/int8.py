"""int8 fidelity: which layers break under dynamic int8, and strict F1 of int8 against fp32 on the same rows.

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/int8.py --model runs/quick/models/sft
    .venv/bin/python bench/int8.py --model runs/quick/models/grpo --n 300 --skip-diagnosis

Diagnosis (teacher-forced: each prompt followed by its gold answer, no generation): per linear layer, the
input activations' largest magnitude against their typical one (per-tensor int8 activations lose the small
values when a few are huge), and how far the model's next-token distributions move (KL divergence from
fp32, and the share of answer tokens whose top-1 changes) when every linear layer is int8, when one kind of
layer is left in fp32, and when the prompt is prefilled in fp32 and only the answer runs on int8 (what the
engine does). Then strict micro-F1 on `--n` seeded BC5CDR test sentences (the evaluation's sampler), fp32
against the engine's int8.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grasp_lib.models import load_model  # noqa: E402  (models first: it may import Unsloth)
import torch  # noqa: E402
from transformers import DynamicCache  # noqa: E402

from grasp_lib import infer  # noqa: E402
from grasp_lib.examples import sample_splits  # noqa: E402
from grasp_lib.metrics import score_predictions  # noqa: E402
from grasp_lib.params import load  # noqa: E402
from grasp_lib.prompts import build_target  # noqa: E402
from grasp_lib.tasks import get_task  # noqa: E402
from grasp_lib.prompts import prompt_messages  # noqa: E402


def teacher_batch(tokenizer, rows, params):
    """Prompt + gold answer token ids, and for each row the positions that predict answer tokens."""
    batches = []
    for row in rows:
        messages = prompt_messages(row, params, []) + [
            {"role": "assistant", "content": build_target(row, get_task(row["dataset"]))}]
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        batches.append((torch.tensor([ids]), slice(start - 1, len(ids) - 1)))
    return batches


@torch.inference_mode()
def answer_logprobs(model, batch):
    return [torch.log_softmax(model(input_ids=ids).logits[0, span].float(), -1) for ids, span in batch]


@torch.inference_mode()
def prefill_then_decode_logprobs(prefill_model, decode_model, batch):
    """What the engine does with int8: the prompt through `prefill_model` (fp32), the answer on `decode_model`."""
    out = []
    for ids, span in batch:
        cache = DynamicCache()
        first = infer.model_forward(prefill_model, cache=cache, input_ids=ids[:, :span.start + 1]).logits[0, -1:]
        rest = infer.model_forward(decode_model, cache=cache, input_ids=ids[:, span.start + 1:span.stop]).logits[0]
        out.append(torch.log_softmax(torch.cat([first, rest]).float(), -1))
    return out


def divergence(reference, other) -> tuple[float, float]:
    """Mean KL(reference || other) per answer token, and the share of answer tokens whose argmax changes."""
    kl = sum(float((r.exp() * (r - o)).sum()) for r, o in zip(reference, other))
    flips = sum(int((r.argmax(-1) != o.argmax(-1)).sum()) for r, o in zip(reference, other))
    tokens = sum(r.shape[0] for r in reference)
    return kl / tokens, flips / tokens


@torch.inference_mode()
def activation_outliers(model, batch, top: int = 8):
    """Linear layers ranked by max |input| / mean |input| over the teacher-forced batch."""
    stats, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            def hook(_, inputs, __, name=name):
                x = inputs[0].detach().abs().float()
                peak, mean = stats.get(name, (0.0, []))
                stats[name] = (max(peak, float(x.max())), mean + [float(x.mean())])
            hooks.append(module.register_forward_hook(hook))
    for ids, _ in batch:
        model(input_ids=ids)
    for h in hooks:
        h.remove()
    ranked = sorted(((peak / (sum(m) / len(m)), peak, name) for name, (peak, m) in stats.items()), reverse=True)
    return ranked[:top]


def diagnose(model, tokenizer, rows, params) -> None:
    batch = teacher_batch(tokenizer, rows, params)
    reference = answer_logprobs(model, batch)
    print("input activations, largest |x| / mean |x| (top linear layers):")
    for ratio, peak, name in activation_outliers(model, batch):
        print(f"  {name:45s} ratio {ratio:8.1f}  max |x| {peak:8.2f}")
    kinds = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
                   - {"lm_head"})
    variants = {"every decoder linear int8 (per-tensor activations)": ((), False),
                **{f"  ... but {k} in fp32": ((k,), False) for k in kinds},
                "fp32 prefill, then every decoder linear int8": ((), True),
                f"fp32 prefill, then int8 but {infer.INT8_FP32_LAYERS} (the engine)": (None, True)}
    print(f"next-token distributions on {sum(r.shape[0] for r in reference)} gold answer tokens, against fp32:")
    for label, (skip, split) in variants.items():
        quantized = infer.quantize_int8(model, skip=skip)
        other = prefill_then_decode_logprobs(model, quantized, batch) if split else answer_logprobs(quantized, batch)
        kl, flips = divergence(reference, other)
        print(f"  {label:62s} KL {kl:.4f}  top-1 changed {flips:.2%}", flush=True)


def f1_of(model, tokenizer, rows, params, **options) -> tuple[float, float]:
    conversations = [prompt_messages(r, params, []) for r in rows]
    started = time.time()
    result = infer.generate_result(model, tokenizer, conversations, batch_size=64,
                                   max_new_tokens=params.eval.max_new_tokens, progress=False, **options)
    seconds = time.time() - started
    metrics, _ = score_predictions(rows, [t[0] for t in result.texts])
    return metrics["strict"]["micro"]["f1"], len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "quick" / "models" / "sft"))
    parser.add_argument("--params", default=str(ROOT / "params" / "quick.yaml"))
    parser.add_argument("--n", type=int, default=300, help="seeded BC5CDR test sentences for the F1 comparison")
    parser.add_argument("--probe", type=int, default=48, help="teacher-forced rows for the diagnosis")
    parser.add_argument("--skip-diagnosis", action="store_true")
    args = parser.parse_args()

    params = load(args.params)
    data = dataclasses.replace(params.data, eval_size=args.n)
    rows = sample_splits(data, params.seed)[0]["eval"]
    model, tokenizer, _ = load_model(args.model)
    print(f"model {args.model}, {len(rows)} seeded BC5CDR test sentences (the evaluation's sampler)")
    if not args.skip_diagnosis:
        diagnose(model, tokenizer, rows[:args.probe], params)
    f1_fp32, rate_fp32 = f1_of(model, tokenizer, rows, params)
    f1_int8, rate_int8 = f1_of(model, tokenizer, rows, params, int8=True)
    print(f"strict F1 fp32 {f1_fp32:.4f} ({rate_fp32:.2f} sentences/s), int8 {f1_int8:.4f} ({rate_int8:.2f} "
          f"sentences/s, {rate_int8 / rate_fp32:.2f}x)")
    print(f"int8: F1 delta {100 * (f1_int8 - f1_fp32):+.2f} points, {rate_int8 / rate_fp32:.2f}x fp32")


if __name__ == "__main__":
    main()
