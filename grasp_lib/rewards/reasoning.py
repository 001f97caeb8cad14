"""The `reasoning` reward (R2GRPO relevance and rule-induced), grounded in the source text, not the gold."""

from __future__ import annotations

import re

from ..tasks import norm
from .common import answer_strings, golds, grounded, parse_completion

_QUOTE = re.compile(r'["“]([^"”\n]{1,200})["”]')
_LINE = re.compile(r"\n|;|(?<=[.!?])\s+")
_TAGS = re.compile(r"</?think>")


def _answer_strings(parsed, family) -> set[str]:
    return {s for s in (norm(x) for x in answer_strings(parsed, family, in_text_only=False)) if s}


class ReasoningReward:
    """How well the <think> block reasons from the text towards the answer, in [0, 1].

    Three parts, weighted (`relevance`, `rule`, `consistency`, normalised to sum 1):
    relevance (R2GRPO's evidence score): over the distinct quoted phrases ("..." or “...”) of the think
    block, the mean of [the phrase occurs in the source text] * (0.5 + 0.5 * (1 - len(phrase) /
    len(text))): quoting the text earns credit, quoting all of it little; 0 without quotes.
    rule (rule-induced, following the template "candidate mentions with the words that show their
    type"): the share of the think block's lines holding a quoted phrase in which a quote occurs in the
    text and a label of the task (an entity type or relation label) is named.
    consistency: the share of the answer's items (mentions, relation arguments, drugs, the label or the
    answer) that the think block mentions; 1 when the answer has none, 0 when it is unparsable.
    Nothing here reads the gold, so copying gold keywords (the seed systems' hackable reasoning reward)
    earns nothing; the text and the model's own answer are the references. No think block: 0.
    Applies to every family.

    Worked example, text "Naloxone reversed hypotension.", think
    '"Naloxone" is a drug: Chemical.' + newline + '"reversed" is a verb.', answer {"Chemical": ["Naloxone"]}:
    relevance mean((0.5 + 0.5 * (1 - 8/30)), (0.5 + 0.5 * (1 - 8/30))) = 0.8667; rule 1 of 2 lines = 0.5;
    consistency 1; reward (0.8667 + 0.5 + 1) / 3 = 0.7889.

    >>> think = '<think>"Naloxone" is a drug: Chemical.\\n"reversed" is a verb.</think>'
    >>> r = ReasoningReward()([think + '{"Chemical": ["Naloxone"], "Disease": []}'],
    ...     text=["Naloxone reversed hypotension."], dataset=["bc5cdr"], task=["ner"])
    >>> round(r[0], 4)
    0.7889
    """

    __name__ = "reasoning"

    def __init__(self, relevance: float = 1.0, rule: float = 1.0, consistency: float = 1.0):
        total = relevance + rule + consistency
        if total <= 0:
            raise ValueError("reasoning weights must sum to a positive number")
        self.weights = (relevance / total, rule / total, consistency / total)

    def score(self, think: str, text: str, parsed, family, labels: list[str]) -> float:
        body = _TAGS.sub("", think)
        quotes = {q.strip() for q in _QUOTE.findall(body) if q.strip()}
        size = max(len(text), 1)
        relevance = (sum(grounded(text, q) * (0.5 + 0.5 * max(0.0, 1 - len(q) / size)) for q in quotes)
                     / len(quotes)) if quotes else 0.0
        quoted_lines = [line for line in _LINE.split(body) if _QUOTE.search(line)]
        lowered = [label.casefold() for label in labels]
        rule_lines = sum(1 for line in quoted_lines
                         if any(grounded(text, q.strip()) for q in _QUOTE.findall(line) if q.strip())
                         and any(label in line.casefold() for label in lowered))
        rule = rule_lines / len(quoted_lines) if quoted_lines else 0.0
        if not parsed.ok:
            consistency = 0.0
        else:
            items = _answer_strings(parsed, family)
            think_norm = norm(body)
            consistency = sum(item in think_norm for item in items) / len(items) if items else 1.0
        w_rel, w_rule, w_cons = self.weights
        return w_rel * relevance + w_rule * rule + w_cons * consistency

    def __call__(self, completions, dataset, **columns) -> list[float]:
        rewards = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            parsed = parse_completion(completion, spec.dataset)
            if not parsed.think:
                rewards.append(0.0)
                continue
            labels = spec.label_names + list(spec.relation_labels)
            rewards.append(self.score(parsed.think, row.get("text") or "", parsed, family, labels))
        return rewards
