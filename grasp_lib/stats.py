"""Statistics over saved predictions: bootstrap intervals, paired bootstrap tests between stages,
Best-F1@K / Avg@K over K sampled completions, F1 against temperature, calibration (ECE).

Everything starts from per-example counts of the family's headline view (tasks.FAMILIES: the same parser
and scoring as the rewards and the corpus metrics), so a corpus F1 here is exactly the F1 of
results/metrics.json, and resampling examples is summing their counts again.

A per-example item: {"id", "dataset", "family", "tp_p", "tp_r", "pred", "gold", "f1", "exact", "per_type",
"status"}. Precision = sum tp_p / sum pred, recall = sum tp_r / sum gold; QA token F1 is an average,
stored as tp = score with pred = gold = 1. `f1` is 0 for an unparsable answer (as the rewards score it).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .metrics import parsed_row
from .tasks import example_f1, f1, get_task, target_json
from .parsing import parse, stated_confidence
from . import run_files
from .run_files import data_path, join, load_run, read_jsonl, samples_paths

# ---------------------------------------------------------------- per-example counts


# F1 of summed counts, element-wise over numpy arrays (bootstrap resamples): the metrics' own F1
f1_from = np.vectorize(f1, otypes=[float])


def _as_tuple(c: dict) -> tuple[float, float, float, float]:
    return float(c["tp_p"]), float(c["tp_r"]), float(c["pred"]), float(c["gold"])


def score_example(row: dict, completion: str, scheme: str = "strict") -> dict:
    """Counts of one completion on one eval row under its family's headline view (an entity headline:
    nervaluate's `scheme` of strict/exact/partial/type, strict reading)."""
    spec, family, parsed = parsed_row(row, completion)
    counts = family.headline_part.counts(parsed, row, spec, family.headline_view(scheme))
    tp_p, tp_r, pred, gold = _as_tuple(counts["ALL"])
    return {"id": str(row["id"]), "dataset": row.get("dataset", ""), "family": family.name, "tp_p": tp_p,
            "tp_r": tp_r, "pred": pred, "gold": gold, "f1": example_f1(counts) if parsed.ok else 0.0,
            "exact": family.exactly_right(parsed, row, spec),
            "per_type": {label: _as_tuple(c) for label, c in counts.items() if label != "ALL"},
            "status": {parsed.status: 1}}


def per_example(rows: list[dict], records: list[dict], scheme: str = "strict") -> dict[str, list[dict]]:
    """{stage: [item per record, in record order]} joining prediction records to eval rows by (dataset, id)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for rec, row in zip(records, join(rows, records)):
        item = score_example(row, rec["completion"], scheme)
        out[rec.get("stage", "")].append(item | {k: rec[k] for k in ("temperature", "sample") if k in rec})
    return dict(out)


def _arrays(items: list[dict], label: str | None = None) -> np.ndarray:
    """(n, 4) array of tp_p, tp_r, pred, gold; for `label`, the per-type counts of that label."""
    if label is None:
        return np.array([[i["tp_p"], i["tp_r"], i["pred"], i["gold"]] for i in items], dtype=float).reshape(-1, 4)
    return np.array([i["per_type"].get(label, (0.0, 0.0, 0.0, 0.0)) for i in items], dtype=float).reshape(-1, 4)


def corpus_f1(items: list[dict], label: str | None = None) -> float:
    """Micro F1 over the items (all types, or one entity type)."""
    return float(f1_from(*_arrays(items, label).sum(axis=0)))


# ---------------------------------------------------------------- bootstrap


def _resample(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(items: list[dict], label: str | None = None, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> dict:
    """Percentile bootstrap interval of micro F1, resampling examples with replacement.

    {"f1": point estimate on all items, "low", "high", "n"}; an empty list gives zeros."""
    counts = _arrays(items, label)
    point = float(f1_from(*counts.sum(axis=0)))
    if len(counts) == 0:
        return {"f1": 0.0, "low": 0.0, "high": 0.0, "n": 0}
    sums = counts[_resample(len(counts), n_boot, seed)].sum(axis=1)  # (n_boot, 4)
    samples = f1_from(*sums.T)
    alpha = (1 - level) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return {"f1": point, "low": float(min(low, point)), "high": float(max(high, point)), "n": len(counts)}


def paired_bootstrap(items_a: list[dict], items_b: list[dict], n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> dict:
    """Paired bootstrap of F1(b) - F1(a) on the same examples (matched by dataset and id).

    {"delta", "low", "high", "p_value", "n"}: p_value is two-sided, twice the smaller share of resamples
    on either side of zero (at least 1/n_boot, at most 1)."""
    b_by = {(i["dataset"], i["id"]): i for i in items_b}
    keys = [(i["dataset"], i["id"]) for i in items_a if (i["dataset"], i["id"]) in b_by]
    a_by = {(i["dataset"], i["id"]): i for i in items_a}
    a, b = _arrays([a_by[k] for k in keys]), _arrays([b_by[k] for k in keys])
    delta = float(f1_from(*b.sum(axis=0)) - f1_from(*a.sum(axis=0)))
    if not keys:
        return {"delta": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0, "n": 0}
    idx = _resample(len(keys), n_boot, seed)
    diffs = f1_from(*b[idx].sum(axis=1).T) - f1_from(*a[idx].sum(axis=1).T)
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    p = 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return {"delta": delta, "low": float(low), "high": float(high),
            "p_value": float(min(1.0, max(p, 1.0 / n_boot))), "n": len(keys)}


def f1_with_intervals(run_dir: str | Path, n_boot: int = 1000, seed: int = 0, scheme: str = "strict") -> list[dict]:
    """One row per (stage, dataset, label): F1 with its bootstrap interval; label "all" is the dataset's
    headline (NER: micro over types), then one row per entity type for NER datasets."""
    rows, records = load_run(run_dir)
    table = []
    for stage, items in per_example(rows, records, scheme).items():
        by_dataset = defaultdict(list)
        for item in items:
            by_dataset[item["dataset"]].append(item)
        for dataset, group in by_dataset.items():
            table.append({"stage": stage, "dataset": dataset, "family": group[0]["family"], "label": "all"}
                         | bootstrap_ci(group, None, n_boot, seed=seed))
            labels = sorted({label for i in group for label in i["per_type"]})
            table += [{"stage": stage, "dataset": dataset, "family": "ner", "label": label}
                      | bootstrap_ci(group, label, n_boot, seed=seed) for label in labels]
    return table


def stage_comparisons(run_dir: str | Path, n_boot: int = 1000, seed: int = 0, scheme: str = "strict") -> list[dict]:
    """Paired bootstrap test of every later stage against every earlier one (base -> sft -> grpo), per dataset."""
    rows, records = load_run(run_dir)
    stages = per_example(rows, records, scheme)
    names = list(stages)
    table = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for dataset in sorted({x["dataset"] for x in stages[a]}):
                pick = lambda s: [x for x in stages[s] if x["dataset"] == dataset]  # noqa: E731
                table.append({"dataset": dataset, "from": a, "to": b}
                             | paired_bootstrap(pick(a), pick(b), n_boot, seed=seed))
    return table


# ---------------------------------------------------------------- K samples, temperature


def best_and_avg_at_k(items: list[dict], ks: list[int] | None = None) -> list[dict]:
    """Best-F1@k and Avg@k for k = 1..K from items of K samples per input (item["sample"] = 0..K-1), all
    drawn at one temperature (filter by item["temperature"] first).

    Best-F1@k (R2GRPO): for each input the sample (of its first k) with the best per-example F1, first on
    ties; micro F1 over those. Avg@k: the mean over the first k sample indices of the micro F1 of that
    sample set (the expected F1 of one sample)."""
    by_input: dict[tuple, list[dict]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.get("sample", 0)):
        by_input[(item["dataset"], item["id"])].append(item)
    if not by_input:
        return []
    k_max = min(len(v) for v in by_input.values())
    out = []
    for k in ks or range(1, k_max + 1):
        if k > k_max:
            continue
        best = [max(v[:k], key=lambda i: i["f1"]) for v in by_input.values()]  # max keeps the first on ties
        per_sample = [corpus_f1([v[j] for v in by_input.values()]) for j in range(k)]
        out.append({"k": k, "best_f1": corpus_f1(best), "avg_f1": float(np.mean(per_sample)), "n": len(by_input)})
    return out


def f1_by_temperature(items: list[dict], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Per temperature: mean micro F1 over the sample sets (Avg@K) and a bootstrap interval over inputs of
    the F1 of all samples pooled."""
    by_t = defaultdict(list)
    for item in items:
        by_t[float(item.get("temperature", 0.0))].append(item)
    out = []
    for t in sorted(by_t):
        group = by_t[t]
        samples = sorted({i.get("sample", 0) for i in group})
        avg = float(np.mean([corpus_f1([i for i in group if i.get("sample", 0) == s]) for s in samples]))
        ci = bootstrap_ci(group, n_boot=n_boot, seed=seed)
        out.append({"temperature": t, "f1": avg, "low": ci["low"], "high": ci["high"], "samples": len(samples),
                    "n": len({(i["dataset"], i["id"]) for i in group})})
    return out


def load_samples(run_dir: str | Path, scheme: str = "strict") -> dict[str, list[dict]]:
    """{stage: items} from every results/samples_<stage>.jsonl of a run (empty when none was sampled)."""
    files = samples_paths(run_dir)
    if not files:
        return {}
    rows = read_jsonl(data_path(run_dir, "eval"))
    out = {}
    for path in files:
        out |= per_example(rows, read_jsonl(path), scheme)
    return out


def at_k_table(samples: dict[str, list[dict]]) -> list[dict]:
    """Best-F1@K and Avg@K per stage and sampling temperature (load_samples' items), K = 1, 2, ..."""
    return [{"stage": stage, "temperature": t} | r for stage, items in samples.items()
            for t in sorted({i["temperature"] for i in items})
            for r in best_and_avg_at_k([i for i in items if i["temperature"] == t])]


def temperature_table(samples: dict[str, list[dict]], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """f1_by_temperature per stage (load_samples' items)."""
    return [{"stage": stage} | r for stage, items in samples.items() for r in f1_by_temperature(items, n_boot, seed)]


# ---------------------------------------------------------------- calibration


def exactly_right(item: dict) -> bool:
    """An answer (a score_example item) is exactly right when it parses and every part of it equals the
    gold (tasks.Family.exactly_right: the gold structure itself, or an empty answer where there is no
    gold). The event of the calibration figure, of the confidence stage's targets and of the uncertainty
    reward's `exact` correctness, and the binary reward."""
    return bool(item["exact"])


def calibration(confidences: list[float], correct: list[float], bins: int = 10) -> dict:
    """Expected calibration error with `bins` equal-width bins over [0, 1] (confidence 1 goes to the last):
    ECE = sum_b n_b / N * |accuracy_b - confidence_b|, plus each non-empty bin for a reliability diagram,
    the Brier score mean((confidence - correct)^2) and AUROC, the chance that a right answer states a
    higher confidence than a wrong one (ties count half; None unless both occur). A constant confidence
    at the base rate has ECE 0 but AUROC 0.5: the two together say whether the confidence is informative."""
    conf, right = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    if conf.size == 0:
        return {"ece": None, "brier": None, "auroc": None, "n": 0, "bins": []}
    index = np.minimum((conf * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        c, a = float(conf[mask].mean()), float(right[mask].mean())
        ece += mask.sum() / conf.size * abs(a - c)
        table.append({"bin": b, "low": b / bins, "high": (b + 1) / bins, "n": int(mask.sum()),
                      "confidence": c, "accuracy": a})
    return {"ece": float(ece), "brier": float(np.mean((conf - right) ** 2)), "auroc": _auroc(conf, right > 0.5),
            "n": int(conf.size), "bins": table}


def _auroc(score: np.ndarray, positive: np.ndarray) -> float | None:
    pos, neg = score[positive], score[~positive]
    if pos.size == 0 or neg.size == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


# ---------------------------------------------------------------- confidence targets (the confidence stage)


def confidence_percent(right: list[bool]) -> int:
    """The share of exactly right answers, as a whole percent (what the model learns to state).

    >>> confidence_percent([True, False, False, False, True, False, False, False])
    25
    """
    if not right:
        raise ValueError("no answers to measure a confidence from")
    return round(100 * sum(right) / len(right))


def answer_kind(answer: str, dataset: str, max_items: int) -> tuple[str, int]:
    """What a model can see of its own answer when it states a confidence: (dataset, number of items it
    gave: mentions, relations or combinations, capped at `max_items`; -1 when it does not parse).

    >>> answer_kind('{"Chemical": ["a", "b"], "Disease": ["c"]}', "bc5cdr", max_items=4)
    ('bc5cdr', 3)
    """
    parsed = parse(answer, *get_task(dataset).parse_args())
    if not parsed.ok:
        return dataset, -1
    return dataset, min(max_items, len(parsed.mentions) + len(parsed.relations) + len(parsed.combinations))


def group_percents(kinds: list[tuple], right: list[bool]) -> dict[tuple, int]:
    """Per answer kind, the share of answers of that kind that are exactly right, as a whole percent.

    >>> group_percents([("d", 0), ("d", 0), ("d", 2), ("d", 0)], [True, False, False, True])
    {('d', 0): 67, ('d', 2): 0}
    """
    counts: dict[tuple, list[int]] = {}
    for kind, ok in zip(kinds, right):
        counts.setdefault(kind, [0, 0])
        counts[kind][0] += ok
        counts[kind][1] += 1
    return {kind: round(100 * hits / total) for kind, (hits, total) in counts.items()}


def confidence_targets(rows: list[dict], greedy: list[str], sampled: list[list[str]], target: str,
                       max_items: int = 4, answer: str = "own") -> list[dict]:
    """Score every answer (greedy first, then the samples) and measure each row's confidence target for
    the answer it will be shown with (`shown`): `answer` "own" (the greedy answer) or "gold" (the gold
    answer). `target` "sample": the share of the row's answers that are exactly right; "group": the share
    of all answers of the shown answer's kind (`answer_kind`; the share over all answers for a kind the
    model never gave)."""
    if target not in ("sample", "group") or answer not in ("own", "gold"):
        raise ValueError(f"confidence.target {target!r} / confidence.answer {answer!r}: expected "
                         f"sample|group / own|gold")
    answers = [[g] + s for g, s in zip(greedy, sampled)]
    right = [[exactly_right(score_example(row, text)) for text in texts] for row, texts in zip(rows, answers)]
    kinds = [answer_kind(text, row["dataset"], max_items) for row, texts in zip(rows, answers) for text in texts]
    groups = group_percents(kinds, [r for rs in right for r in rs])
    overall = confidence_percent([r for rs in right for r in rs])
    records = []
    for row, texts, ok in zip(rows, answers, right):
        shown = texts[0] if answer == "own" else target_json(row, get_task(row["dataset"]))
        kind = answer_kind(shown, row["dataset"], max_items)
        percent = confidence_percent(ok) if target == "sample" else groups.get(kind, overall)
        records.append({"id": row["id"], "dataset": row["dataset"], "greedy": texts[0], "greedy_right": ok[0],
                        "samples_right": sum(ok[1:]), "row_percent": confidence_percent(ok),
                        "kind_items": kind[1], "kind_percent": groups.get(kind, overall), "percent": percent,
                        "shown": shown})
    return records


def run_calibration(run_dir: str | Path, bins: int = 10, scheme: str = "strict") -> dict[str, dict]:
    """Per stage: ECE and reliability bins from the confidence each prediction states. An answer is
    correct when it is `exactly_right`: a definition independent of any reward. Also counts answers
    without a confidence."""
    rows, records = load_run(run_dir)
    items = per_example(rows, records, scheme)
    out = {}
    for stage in items:
        recs = [r for r in records if r.get("stage", "") == stage]
        pairs = [(stated_confidence(r["completion"]), float(exactly_right(i))) for r, i in zip(recs, items[stage])]
        stated = [(c, a) for c, a in pairs if c is not None]
        out[stage] = calibration([c for c, _ in stated], [a for _, a in stated], bins) | {"total": len(pairs)}
    return out


def calibration_table(calibration_by_stage: dict[str, dict]) -> list[dict]:
    """run_calibration's summary per stage: ECE, Brier, AUROC, answers that state a confidence, answers."""
    return [{"stage": s, "ece": c["ece"], "brier": c["brier"], "auroc": c["auroc"], "stated": c["n"],
             "total": c["total"]} for s, c in calibration_by_stage.items()]


def confidence_targets_table(run_dir: str | Path) -> list[dict]:
    """Per confidence target (percent) of the confidence stage: its rows and how often the greedy answer
    there is exactly right (results/confidence_targets.jsonl)."""
    by_percent: dict[int, list[dict]] = defaultdict(list)
    for record in read_jsonl(run_files.result_path(run_dir, "confidence_targets.jsonl")):
        by_percent[record["percent"]].append(record)
    return [{"percent": percent, "rows": len(recs), "greedy_right": float(np.mean([r["greedy_right"] for r in recs]))}
            for percent, recs in sorted(by_percent.items())]


def reward_log_table(run_dir: str | Path) -> list[dict]:
    """GRPO's logged steps (results/grpo_log.jsonl): total reward and its spread, each reward's columns,
    completion length and the share of groups with no reward spread; entries without a reward left out."""
    keep = ("step", "reward", "reward_std", "completions/mean_length", "frac_reward_zero_std")
    log = read_jsonl(run_files.log_path(run_dir, "grpo"))
    columns = [c for c in dict.fromkeys(k for entry in log for k in entry) if c.startswith("rewards/") or c in keep]
    return [{c: entry.get(c) for c in columns} for entry in log
            if entry.get("reward") is not None and entry["reward"] == entry["reward"]]  # NaN != NaN


# ---------------------------------------------------------------- results/ files of notebook 05


def save(table, run_dir: str | Path, name: str):
    """`table` into results/<name> as deterministic JSON (sorted keys); returns the table."""
    run_files.write_json(table, run_files.result_path(run_dir, name), sort_keys=True)
    return table


def save_f1_intervals(run_dir: str | Path) -> list[dict]:
    """f1_with_intervals, kept in results/f1_intervals.json."""
    return save(f1_with_intervals(run_dir), run_dir, "f1_intervals.json")


def save_stage_comparisons(run_dir: str | Path) -> list[dict]:
    """stage_comparisons, kept in results/stage_tests.json."""
    return save(stage_comparisons(run_dir), run_dir, "stage_tests.json")


def save_calibration(run_dir: str | Path) -> dict[str, dict]:
    """run_calibration, kept in results/calibration.json."""
    return save(run_calibration(run_dir), run_dir, "calibration.json")
