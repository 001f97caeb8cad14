"""Benchmark: the NER reward composite against generation time, on realistic completions.

Scores batches of 8 prompts x G 16 completions with the full NER composite (format + entity +
grounding + length, called the way TRL calls them: one call per reward on the whole batch, columns
repeated per completion) and, in the same run, times the generation of one such batch with the CPU
default model (smollm2-135m, do_sample, 64 new tokens). Rewards are timed on one core (the process is
pinned to it) with the caches emptied before every batch, as a new GRPO step finds them.

Completions scored: (a) the 128 the model generated, (b) synthetic ones built from BC5CDR test
sentences with the perturbations a policy produces (dropped, added, misspelled, retyped, extended,
duplicated mentions, truncated JSON, prose around the JSON, code fences, <think> blocks, pure prose),
over many batches. The reported throughput is the lower of the two.

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/rewards.py [--batches 40] [--no-generation] [--parse-only]

Also the parser's worst case: `parse` on hostile completions (deep nesting, long whitespace runs where
unanchored patterns used to backtrack, runs of escapes, quotes and strings) of 10k to 200k characters,
one line `parse: worst-case N us per 1k characters` (goal: under 1,000, and flat across lengths: linear),
next to json.loads on valid JSON as this machine's figure.

Last line: `rewards: <completions/s> completions/s, <percent>% of generation`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time

from grasp_lib.examples import build_examples
from grasp_lib.rewards import build_rewards
from grasp_lib.rewards.common import clear_caches
from grasp_lib.tasks import get_task

NER_COMPOSITE = ["format", "entity", "grounding", "length"]
BATCH, G = 8, 16
HALLUCINATIONS = ["aspirin", "ibuprofen", "myocardial infarction", "hepatitis", "warfarin", "seizures",
                  "metformin", "renal failure"]


def gold_answer(entities: list[dict], labels: list[str]) -> dict[str, list[str]]:
    grouped = {label: [] for label in labels}
    for e in sorted(entities, key=lambda e: (e["start"], e["end"])):
        grouped[e["type"]].append(e["text"])
    return grouped


def perturb(row: dict, labels: list[str], rng: random.Random) -> str:
    """One plausible policy completion for a row: the gold answer with a few random mistakes."""
    answer = {k: list(v) for k, v in gold_answer(row["entities"], labels).items()}
    words = row["text"].split()
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        kind = rng.choice(["drop", "add", "misspell", "retype", "extend", "duplicate"])
        label = rng.choice(labels)
        items = answer[label]
        if kind == "drop" and items:
            items.pop(rng.randrange(len(items)))
        elif kind == "add":
            items.append(rng.choice(HALLUCINATIONS + words))
        elif kind == "misspell" and items:
            i = rng.randrange(len(items))
            m = items[i]
            if len(m) > 3:
                j = rng.randrange(len(m) - 1)
                items[i] = m[:j] + m[j + 1] + m[j] + m[j + 2:]
        elif kind == "retype" and items:
            other = rng.choice([x for x in labels if x != label])
            answer[other].append(items.pop(rng.randrange(len(items))))
        elif kind == "extend" and items and words:
            items[rng.randrange(len(items))] += " " + rng.choice(words)
        elif kind == "duplicate" and items:
            items.append(rng.choice(items))
    body = json.dumps(answer, ensure_ascii=False)
    style = rng.random()
    if style < 0.45:
        return body
    if style < 0.55:
        return body[:rng.randrange(1, len(body))]  # truncated at max_completion_length
    if style < 0.65:
        return f"Sure! Here are the entities:\n{body}\nLet me know if you need more."
    if style < 0.75:
        return f"```json\n{body}\n```"
    if style < 0.85:
        mentions = [m for v in answer.values() for m in v]
        return "<think>" + " ".join(f'"{m}" is a mention.' for m in mentions) + "</think>\n" + body
    if style < 0.95:
        return "The text mentions " + ", ".join(m for v in answer.values() for m in v) + "."
    return " ".join(rng.choice(words) for _ in range(30)) if words else ""


def columns(rows: list[dict]) -> dict[str, list]:
    """Columns as TRL passes them: each row's values repeated once per completion (same objects)."""
    return {key: [row[key] for row in rows for _ in range(G)]
            for key in ("text", "task", "dataset", "entities", "relations", "label", "combinations", "answer")}


def score_batch(funcs, completions: list[str], cols: dict) -> None:
    for f in funcs:
        out = f(completions, **cols)
        assert len(out) == len(completions)


def time_rewards(funcs, batches: list[tuple[list[str], dict]], repeats: int = 3) -> float:
    """Completions per second over the batches, caches emptied before each batch; best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        elapsed = 0.0
        for completions, cols in batches:
            clear_caches()
            start = time.perf_counter()
            score_batch(funcs, completions, cols)
            elapsed += time.perf_counter() - start
        best = min(best, elapsed)
    return sum(len(c) for c, _ in batches) / best


def generate_batch(rows: list[dict], max_new_tokens: int) -> tuple[list[str], float]:
    from grasp_lib.infer import generate
    from grasp_lib.models import load_model
    from grasp_lib.prompts import build_messages

    model, tokenizer, _ = load_model("smollm2-135m")
    spec = get_task("bc5cdr")
    conversations = [build_messages(spec, r["text"], ["role", "task", "labels", "schema"]) for r in rows]
    start = time.perf_counter()
    outputs = generate(model, tokenizer, conversations, batch_size=BATCH, max_new_tokens=max_new_tokens,
                       do_sample=True, temperature=1.0, num_samples=G, seed=0, progress=False)
    seconds = time.perf_counter() - start
    return [c for per_prompt in outputs for c in per_prompt], seconds


def hostile(answer: str, n: int) -> dict[str, str]:
    """Completions of about n characters built to be slow for a naive parser."""
    run = " " * n
    return {"whitespace": run + "x", "whitespace in JSON": answer[:-1] + run + "}", "deep nesting": "[" * n,
            "balanced pairs": "[]" * (n // 2), "closed deep nesting": "[" * (n // 2) + "]" * (n // 2),
            "many numbers": "[[[" + "1," * (n // 2) + "]]]", "repeated 'confiden'": "confiden" * (n // 8),
            "confidence then spaces": "confidence:" + run + "x", "confidence line": answer + "\n" + run + "Confidence: 80%",
            "open <think>": "<think>" + run, "fence then spaces": "```" + run + "x", "quotes": '"' * n,
            "backslashes": '["' + "\\" * n, "escaped quotes": '{"Chemical": ["' + '\\"' * (n // 2),
            "many strings": '{"Chemical": [' + '"a",' * (n // 4), "tabs and newlines": "\t\n" * (n // 2) + "{",
            "truncated nested lists": "[" + ("[" * 30 + "]" * 30 + ",") * (n // 61)}


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def us_per_1k(func, text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func(text)
        best = min(best, time.perf_counter() - start)
    return best * 1e6 / (len(text) / 1000)


def parse_worst_case(labels: tuple[str, ...]) -> None:
    """Print the slowest hostile case per length, and the `parse: worst-case` line over all of them."""
    from grasp_lib.parsing import MAX_CHARS, parse

    answer = json.dumps({"Chemical": ["naloxone"], "Disease": []})
    reference = us_per_1k(json.loads, json.dumps([answer] * (MAX_CHARS // len(answer))))
    worst = {}
    for n in (10_000, 50_000, 100_000, MAX_CHARS - 100):
        timings = {name: us_per_1k(lambda t: parse(t, labels), text) for name, text in hostile(answer, n).items()}
        name = max(timings, key=timings.get)
        worst[n] = timings[name]
        print(f"  parse, {n:>7,} characters: slowest case {name!r} {timings[name]:.0f} us per 1k characters")
    print(f"parse: worst-case {max(worst.values()):.0f} us per 1k characters (lengths 10k to {MAX_CHARS // 1000}k: "
          f"{' / '.join(f'{v:.0f}' for v in worst.values())}; machine figure: json.loads of valid JSON "
          f"{reference:.0f} us per 1k characters)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="synthetic batches of 8 x 16")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--no-generation", action="store_true", help="skip the model (rewards only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parse-only", action="store_true", help="only the parser's worst case (seconds)")
    args = parser.parse_args()
    if args.parse_only:
        pin_one_core()
        parse_worst_case(tuple(get_task("bc5cdr").label_names))
        return

    rng = random.Random(args.seed)
    examples, _ = build_examples("bc5cdr", "test", "sentence")
    rows = [e.to_row() for e in examples if e.text.strip() and len(e.text) <= 600]
    labels = get_task("bc5cdr").label_names
    funcs = build_rewards(NER_COMPOSITE)

    # Generation of one batch (all cores), then the rewards of those completions (one core)
    gen_rows = rng.sample(rows, BATCH)
    if args.no_generation:
        gen_seconds = None
        generated = [perturb(r, labels, rng) for r in gen_rows for _ in range(G)]
    else:
        generated, gen_seconds = generate_batch(gen_rows, args.max_new_tokens)
    pin_one_core()
    parse_worst_case(tuple(labels))

    synthetic = []
    for _ in range(args.batches):
        batch_rows = rng.sample(rows, BATCH)
        synthetic.append(([perturb(r, labels, rng) for r in batch_rows for _ in range(G)], columns(batch_rows)))
    generated_batches = [(generated, columns(gen_rows))] * 10

    rate_generated = time_rewards(funcs, generated_batches)
    rate_synthetic = time_rewards(funcs, synthetic)
    rate = min(rate_generated, rate_synthetic)

    # What the rewards say about the completions (a sanity check that they were really scored)
    clear_caches()
    cols = columns(gen_rows)
    means = {f.__name__: statistics.mean(v for v in f(generated, **cols) if v is not None) for f in funcs}
    print(f"NER composite {'+'.join(NER_COMPOSITE)} on one core, caches emptied per batch of {BATCH}x{G}")
    print(f"  generated completions: {rate_generated:,.0f} completions/s; mean rewards "
          + ", ".join(f"{k} {v:.3f}" for k, v in means.items()))
    print(f"  synthetic completions ({args.batches} batches): {rate_synthetic:,.0f} completions/s")
    print("  example generated completion:", json.dumps(generated[0])[:200])
    reward_seconds = BATCH * G / rate
    if gen_seconds is None:
        print(f"rewards: {rate:.0f} completions/s, n/a% of generation")
        return
    percent = 100 * reward_seconds / gen_seconds
    print(f"generation: {gen_seconds:.1f} s for {BATCH}x{G} completions of up to {args.max_new_tokens} new tokens "
          f"(smollm2-135m, sampling, all cores); rewards: {reward_seconds * 1000:.2f} ms per batch; "
          f"ratio {percent / 100:.2e}")
    print(f"rewards: {rate:.0f} completions/s, {percent:.3f}% of generation")


if __name__ == "__main__":
    main()
