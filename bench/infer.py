"""Generation speed: the same BC5CDR test sentences through plain model.generate and through the fast engine.

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/infer.py                  # 256 sentences, SFT model
    .venv/bin/python bench/infer.py --n 32 --model smollm2-135m               # a quick look
    .venv/bin/python bench/infer.py --paths fast,constrained                  # grounded decoding's cost
    .venv/bin/python bench/infer.py --paths fast,fast-bf16 --n 300            # bf16 against fp32 (issue goal)

Prints sentences/s, the speed-up over plain generate (batch 16), strict micro-F1 of each path on those
sentences, the share of answers that are valid JSON and of predicted mentions that are not in the text,
and how many fp32 outputs equal plain generate's token for token. `constrained` is the fast engine with
grounded decoding (grasp_lib.constrained), compared with `fast` in throughput; `-bf16` paths decode on
bf16 weights (cast once), `-int8` on int8 weights (fp32 prefill). Last line: `infer: <sentences/s>
sentences/s, <x>x plain generate, F1 delta <points>` for the fastest engine path, then `bf16 <x>x over fp32
engine, F1 delta <points>` (fast-bf16 against fast) when both ran.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grasp_lib.models import load_model  # noqa: E402  (models first: it may import Unsloth)
from grasp_lib.examples import build_examples  # noqa: E402
from grasp_lib.constrained import Grounding  # noqa: E402
from grasp_lib.infer import generate_result, grounded_answers, stop_token_ids  # noqa: E402
from grasp_lib.metrics import score_predictions  # noqa: E402
from grasp_lib.params import load  # noqa: E402
from grasp_lib.prompts import prompt_messages  # noqa: E402
from grasp_lib.runner import machine_gflops  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "quick" / "models" / "sft"))
    parser.add_argument("--params", default=str(ROOT / "params" / "quick.yaml"))
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-batch", type=int, default=16)
    parser.add_argument("--fast-batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: params eval.max_new_tokens")
    parser.add_argument("--bf16-batch", type=int, default=None, help="batch of the -bf16 paths (default: --fast-batch)")
    parser.add_argument("--paths", default="plain,fast,fast-bf16,fast-int8")
    parser.add_argument("--attn", default=None, help="attention kernel (transformers attn_implementation: sdpa, eager)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    params = load(args.params)
    max_new = args.max_new_tokens or params.eval.max_new_tokens
    examples, _ = build_examples("bc5cdr", "test", "sentence", params.data.data_dir)
    usable = [e.to_row() for e in examples if len(e.text) <= params.data.max_chars]
    rows = random.Random(args.seed).sample(usable, min(args.n, len(usable)))
    conversations = [prompt_messages(r, params, []) for r in rows]
    model, tokenizer, _ = load_model(args.model)
    if args.attn:
        model.set_attn_implementation(args.attn)
    print(f"model {args.model}, {len(rows)} BC5CDR test sentences (seed {args.seed}), max_new_tokens {max_new}, "
          f"attention {model.config._attn_implementation}, machine {machine_gflops()} GFLOP/s fp32 / "
          f"{machine_gflops(dtype='bf16')} bf16")

    answers = grounded_answers(rows, params.prompt.levels)
    if any("constrained" in name for name in args.paths.split(",")):
        started = time.time()  # llguidance's token trie: built once per tokenizer and process, not timed below
        Grounding(tokenizer, stop_token_ids(model, tokenizer))
        print(f"grounded decoding: tokenizer set up once in {time.time() - started:.1f} s")
    bf16 = dict(engine="fast", batch_size=args.bf16_batch or args.fast_batch, precision="bf16")
    settings = {"plain": dict(engine="plain", batch_size=args.plain_batch),
                "fast-bf16": bf16, "constrained-bf16": bf16 | dict(answers=answers),
                "fast": dict(engine="fast", batch_size=args.fast_batch),
                "fast-int8": dict(engine="fast", batch_size=args.fast_batch, int8=True),
                "constrained": dict(engine="fast", batch_size=args.fast_batch, answers=answers),
                "constrained-int8": dict(engine="fast", batch_size=args.fast_batch, answers=answers, int8=True),
                "plain-constrained": dict(engine="plain", batch_size=args.plain_batch, answers=answers)}
    results = {}
    for name in args.paths.split(","):
        started = time.time()
        result = generate_result(model, tokenizer, conversations, max_new_tokens=max_new, progress=False,
                                 **settings[name])
        seconds = time.time() - started  # int8: includes quantizing the model (a few seconds)
        metrics, records = score_predictions(rows, [t[0] for t in result.texts])
        results[name] = {"rate": len(rows) / seconds, "seconds": seconds, "f1": metrics["strict"]["micro"]["f1"],
                         "new_tokens": result.new_tokens, "unfinished": result.unfinished,
                         "prefix_tokens": result.prefix_tokens, "ids": result.token_ids,
                         "batch_size": settings[name]["batch_size"]} | answer_shares(rows, records)
        r = results[name]
        print(f"{name:16s} batch {settings[name]['batch_size']:3d}: {r['rate']:6.2f} sentences/s "
              f"({seconds:6.1f} s, {result.new_tokens / len(rows):.1f} new tokens/sentence, "
              f"{result.unfinished} hit max_new_tokens, prefix {result.prefix_tokens} tokens), "
              f"strict F1 {r['f1']:.4f}, valid JSON {r['valid_json']:.1%}, "
              f"mentions not in the text {r['not_in_text']:.1%} of {r['mentions']}", flush=True)
    if "fast" in results and "constrained" in results:
        cost = 1 - results["constrained"]["rate"] / results["fast"]["rate"]
        print(f"constrained vs fast: throughput cost {cost:.1%}, strict F1 "
              f"{100 * (results['constrained']['f1'] - results['fast']['f1']):+.2f} points")

    base = results.get("plain")
    if base:
        for name, r in results.items():
            if name == "plain":
                continue
            same = sum(a == b for a, b in zip(base["ids"], r["ids"]))
            print(f"{name:16s} vs plain: {r['rate'] / base['rate']:.2f}x, F1 delta "
                  f"{100 * (r['f1'] - base['f1']):+.2f} points, identical outputs {same}/{len(rows)}")
    best = max((n for n in results if n != "plain"), key=lambda n: results[n]["rate"], default="plain")
    r = results[best]
    speedup = r["rate"] / base["rate"] if base else float("nan")
    delta = 100 * (r["f1"] - base["f1"]) if base else float("nan")
    if args.json:
        Path(args.json).write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "ids"}
                                               for k, v in results.items()}, indent=2))
    line = f"infer: {r['rate']:.2f} sentences/s ({best})" + (
        f", {speedup:.2f}x plain generate, F1 delta {delta:+.2f}" if base else "")
    if "fast" in results and "fast-bf16" in results:
        fp32, half = results["fast"], results["fast-bf16"]
        same = sum(a == b for a, b in zip(fp32["ids"], half["ids"]))
        line += (f", bf16 {half['rate'] / fp32['rate']:.2f}x over fp32 engine, F1 delta "
                 f"{100 * (half['f1'] - fp32['f1']):+.2f} (identical outputs {same}/{len(rows)})")
    print(line)


def answer_shares(rows: list[dict], records: list[dict]) -> dict:
    """Share of answers that parse as valid JSON and of predicted mentions that are not spans of the text."""
    mentions = [(p["text"], row["text"]) for row, rec in zip(rows, records) for p in rec["predicted"]]
    return {"valid_json": sum(rec["status"] == "valid" for rec in records) / max(1, len(records)),
            "mentions": len(mentions),
            "not_in_text": sum(m not in text for m, text in mentions) / max(1, len(mentions))}


if __name__ == "__main__":
    main()
