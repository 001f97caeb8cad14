"""Grounded decoding against free decoding: the same models on the same BC5CDR test sentences, paired.

    flock /tmp/grasp-cpu.lock .venv/bin/python bench/grounded.py --run runs/quick            # 300 seeded sentences
    flock /tmp/grasp-cpu.lock .venv/bin/python bench/grounded.py --run runs/quick --n 0      # the whole test split
    .venv/bin/python bench/grounded.py --models sft=runs/quick/models/sft,x=runs/other/models/grpo --n 96
    .venv/bin/python bench/grounded.py --models sft=runs/quick/models/sft --rollouts 4 --n 32   # GRPO's view

For each model (default: the run's sft and grpo), greedy fast-engine generation without and with grounded
decoding (`eval.constrained`): strict micro-F1 with its bootstrap interval, the paired bootstrap of the
difference (constrained - free), the share of answers that are valid JSON, the share of predicted mentions
that are not in the text, and sentences/s. Rows come from the evaluation's own seeded sampler.

`--rollouts K`: what GRPO would see instead, on `--n` seeded training sentences (the rl split's sampler):
K sampled completions per prompt at grpo.temperature and grpo.max_completion_length, free and grounded,
scored by the run's rewards (rewards.funcs weighted by grpo.reward_weights): the mean composite reward,
the share of groups whose K rewards are all equal (zero advantage: no gradient from that prompt), and
the mean within-group spread of the reward.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grasp_lib.models import load_model  # noqa: E402  (models first: it may import Unsloth)
from grasp_lib.examples import sample_splits  # noqa: E402
from grasp_lib.infer import generate_result, grounded_answers  # noqa: E402
from grasp_lib.metrics import score_predictions  # noqa: E402
from grasp_lib.params import load  # noqa: E402
from grasp_lib.stats import bootstrap_ci, paired_bootstrap, score_example  # noqa: E402
from grasp_lib.prompts import prompt_messages  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from infer import answer_shares  # noqa: E402


def decode(model, tokenizer, rows, params, constrained: bool, int8: bool) -> dict:
    conversations = [prompt_messages(r, params, []) for r in rows]
    answers = grounded_answers(rows, params.prompt.levels) if constrained else None
    started = time.time()
    result = generate_result(model, tokenizer, conversations, batch_size=params.eval.batch_size,
                             max_new_tokens=params.eval.max_new_tokens, progress=False, int8=int8, answers=answers)
    seconds = time.time() - started
    completions = [t[0] for t in result.texts]
    _, records = score_predictions(rows, completions)
    items = [score_example(row, c) for row, c in zip(rows, completions)]
    return {"items": items, "rate": len(rows) / seconds, "unfinished": result.unfinished,
            **answer_shares(rows, records)}


def rollout_report(model, tokenizer, params, n: int, k: int) -> None:
    """Sampled groups free and grounded, scored with GRPO's composite reward."""
    import statistics

    from grasp_lib.rewards import build_rewards

    data = dataclasses.replace(params.data, rl_size=n)
    rows = sample_splits(data, params.seed)[0]["rl"]
    conversations = [prompt_messages(r, params, []) for r in rows]
    funcs = build_rewards(params.rewards.funcs, dataclasses.asdict(params.rewards))
    weights = params.grpo.get("reward_weights") or [1.0] * len(funcs)
    columns = {key: [r.get(key) for r in rows for _ in range(k)] for key in rows[0]}
    for mode in ("free", "constrained"):
        answers = grounded_answers(rows, params.prompt.levels) if mode == "constrained" else None
        result = generate_result(model, tokenizer, conversations, batch_size=64, do_sample=True,
                                 temperature=params.grpo.get("temperature", 1.0), num_samples=k, seed=params.seed,
                                 max_new_tokens=params.grpo.get("max_completion_length", 64), progress=False,
                                 answers=answers)
        completions = [[{"role": "assistant", "content": t}] for texts in result.texts for t in texts]
        scores = [f(completions, **columns) for f in funcs]
        total = [sum(w * (s[i] or 0.0) for w, s in zip(weights, scores)) for i in range(len(completions))]
        groups = [total[i:i + k] for i in range(0, len(total), k)]
        tied = sum(max(g) - min(g) < 1e-9 for g in groups) / len(groups)
        spread = statistics.mean(statistics.pstdev(g) for g in groups)
        means = {name: statistics.mean(x or 0.0 for x in s) for name, s in zip(params.rewards.funcs, scores)}
        print(f"rollouts {mode:11s}: {len(rows)} prompts x {k}, composite reward {statistics.mean(total):.4f} "
              f"({', '.join(f'{n} {v:.3f}' for n, v in means.items())}), groups with all rewards equal {tied:.1%}, "
              f"mean within-group spread {spread:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs" / "quick"))
    parser.add_argument("--models", default=None, help="name=path,...; default: the run's models/sft and models/grpo")
    parser.add_argument("--params", default=str(ROOT / "params" / "quick.yaml"))
    parser.add_argument("--n", type=int, default=300, help="seeded test sentences; 0 = the whole split")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--rollouts", type=int, default=0, help="K: GRPO-style sampled groups instead of evaluation")
    args = parser.parse_args()

    params = load(args.params)
    if args.rollouts:
        for name, path in (dict(m.split("=", 1) for m in args.models.split(",")) if args.models else
                           {"sft": str(Path(args.run) / "models" / "sft")}).items():
            print(f"model {name}: {path}")
            rollout_report(*load_model(path)[:2], params, args.n, args.rollouts)
        return
    data = dataclasses.replace(params.data, eval_size=args.n or None)
    rows = sample_splits(data, params.seed)[0]["eval"]
    models = dict(m.split("=", 1) for m in args.models.split(",")) if args.models else \
        {stage: str(Path(args.run) / "models" / stage) for stage in ("sft", "grpo")}
    print(f"{len(rows)} BC5CDR test sentences, params {args.params}, {'int8' if args.int8 else 'fp32'}")
    report = {}
    for name, path in models.items():
        model, tokenizer, _ = load_model(path)
        runs = {mode: decode(model, tokenizer, rows, params, mode == "constrained", args.int8)
                for mode in ("free", "constrained")}
        for mode, r in runs.items():
            ci = bootstrap_ci(r["items"])
            r["f1"] = ci
            print(f"{name:6s} {mode:11s}: strict F1 {ci['f1']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}], valid JSON "
                  f"{r['valid_json']:.1%}, mentions not in the text {r['not_in_text']:.1%} of {r['mentions']}, "
                  f"{r['rate']:.2f} sentences/s, {r['unfinished']} hit max_new_tokens", flush=True)
        paired = paired_bootstrap(runs["free"]["items"], runs["constrained"]["items"])
        print(f"{name:6s} constrained - free: {100 * paired['delta']:+.2f} points [{100 * paired['low']:+.2f}, "
              f"{100 * paired['high']:+.2f}], p = {paired['p_value']:.3f}; throughput "
              f"{runs['constrained']['rate'] / runs['free']['rate']:.2f}x")
        report[name] = {mode: {k: v for k, v in r.items() if k != "items"} for mode, r in runs.items()}
        report[name]["paired"] = paired
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
