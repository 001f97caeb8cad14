"""BioRLHF's verifiers V1-V4 for extraction and QA: factual, pathway (direction), consistency, uncertainty.

Each verifier is a reward of its own (`None` where it does not apply, so TRL leaves it out of that
example's sum, BioRLHF's multi-reward mode) and `VerifierReward` composes them with weights
renormalised over the verifiers that apply to each example (BioRLHF's composed mode).
"""

from __future__ import annotations

import re

from .. import parsing
from ..tasks import drug_set, norm
from .common import completion_text, golds, parse_completion
from .nary import NaryReward
from .ner import EntityReward
from .relation import RelationReward


def factual_reward(completions, dataset, **columns) -> list[float | None]:
    """V1 factual: the short answer against the gold answer, in [0, 1]; None for rows without an answer part.

    The metrics' per-example token F1 (tasks.Answer, SQuAD normalisation: "the COX-2 enzyme." and
    "COX-2 enzyme" are the same answer); 0 for an unparsable answer (never read as a default class
    such as "no").

    >>> factual_reward(['{"answer": "the COX-2 enzyme."}'], dataset=["biorlhf"], answer=["COX-2 enzyme"])
    [1.0]
    """
    rewards: list[float | None] = []
    for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
        part = family.part("answer")
        if part is None or not part.gold(row):
            rewards.append(None)
            continue
        parsed = parse_completion(completion, spec.dataset)
        rewards.append(part.counts(parsed, row, spec, "token_f1")["ALL"]["tp_p"] if parsed.ok else 0.0)
    return rewards


factual_reward.__name__ = "factual"

# Direction cues (BioRLHF V1 pathway direction), matched at word starts; a negation shortly before flips.
_UP = re.compile(r"\b(up-?regulat\w*|increas\w*|activat\w*|enhanc\w*|induc\w*|elevat\w*|stimulat\w*|"
                 r"promot\w*|agonist\w*|higher|up)\b", re.IGNORECASE)
_DOWN = re.compile(r"\b(down-?regulat\w*|decreas\w*|inhibit\w*|suppress\w*|reduc\w*|lower\w*|block\w*|"
                   r"attenuat\w*|antagonist\w*|down)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(not|no|without|never)\b|n't", re.IGNORECASE)
NO_CLAIM = 0.3  # BioRLHF's band for an answer that states no direction


def direction(text: str) -> tuple[int, int]:
    """(up claims, down claims) in a text; a negation within 12 characters before a cue flips it."""
    up = down = 0
    for pattern, sign in ((_UP, 1), (_DOWN, -1)):
        for m in pattern.finditer(text):
            flipped = bool(_NEGATION.search(text[max(0, m.start() - 12):m.start()]))
            if (sign > 0) != flipped:
                up += 1
            else:
                down += 1
    return up, down


def label_polarity(label: str | None, polarity: dict[str, str]) -> int:
    """+1 (up), -1 (down) or 0 for a relation label: from the `polarity` setting, else from its name."""
    if not label:
        return 0
    if label in polarity:
        return {"up": 1, "down": -1}.get(polarity[label], 0)
    up, down = direction(label.replace("_", " ").replace("-", " "))
    return (up > down) - (down > up)


class PathwayReward:
    """V2 pathway: does the answer state the gold direction (up / down regulation), in [0, 1].

    QA: the gold answer's direction (cue words, negation-aware) against the answer's: 1 right and not
    contradicted, 0.5 mixed, 0 wrong, 0.3 no direction stated (BioRLHF's bands). Relation families: for
    each gold relation whose label has a polarity (`polarity` setting, e.g. {"CPR:3": "up"}, else cue
    words in the label such as INHIBITOR or UPREGULATOR), the predicted relation between the same two
    mentions: 1 same polarity, 0 opposite, 0.3 none; the mean. None where the gold states no direction.

    >>> PathwayReward().score_text("It strongly inhibits COX-2.", "COX-2 is downregulated")
    1.0
    >>> PathwayReward().score_text("It does not inhibit COX-2.", "COX-2 is downregulated")
    0.0
    """

    __name__ = "pathway"

    def __init__(self, polarity: dict[str, str] | None = None):
        self.polarity = dict(polarity or {})

    @staticmethod
    def score_text(pred: str, gold: str) -> float | None:
        g_up, g_down = direction(gold)
        if g_up == g_down:
            return None
        want_up = g_up > g_down
        up, down = direction(pred)
        right, wrong = (up, down) if want_up else (down, up)
        if not right and not wrong:
            return NO_CLAIM
        if right and not wrong:
            return 1.0
        return 0.5 if right else 0.0

    def score_relations(self, pred_triples, golds) -> float | None:
        pred = {}
        for h, r, t in pred_triples:
            pred.setdefault((norm(h), norm(t)), []).append(label_polarity(r, self.polarity))
        scores = []
        for h, r, t in golds:
            want = label_polarity(r, self.polarity)
            if not want:
                continue
            said = [p for p in pred.get((norm(h), norm(t)), []) if p]
            scores.append(NO_CLAIM if not said else (1.0 if all(p == want for p in said) else
                                                     0.5 if want in said else 0.0))
        return sum(scores) / len(scores) if scores else None

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            ans, lab = row.get("answer"), row.get("label")
            if family.part("answer") and ans:
                parsed = parse_completion(completion, spec.dataset)
                text = parsed.answer if parsed.ok and parsed.answer is not None else ""
                rewards.append(self.score_text(text, ans) if direction(ans)[0] != direction(ans)[1] else None)
            elif family.part("label") and label_polarity(lab, self.polarity):
                parsed = parse_completion(completion, spec.dataset)
                said = label_polarity(parsed.label, self.polarity) if parsed.ok else 0
                want = label_polarity(lab, self.polarity)
                rewards.append(NO_CLAIM if not said else float(said == want))
            elif family.part("relations"):
                part = family.part("relations")
                parsed = parse_completion(completion, spec.dataset)
                rewards.append(self.score_relations(part.predicted(parsed) if parsed.ok else (), part.gold(row)))
            else:
                rewards.append(None)
        return rewards


class ConsistencyReward:
    """V3 consistency: the answer does not contradict itself, in [0, 1]; needs no gold.

    The share of items free of contradiction: a mention given two different types (ner, joint), a pair
    of mentions related with opposite polarities (triples, joint), a drug set given two labels (nary),
    a relation argument that is not among the answer's own entities (joint). 1 for an answer without
    items, 0 for an unparsable one; None for re and qa (a single label or answer cannot contradict itself).

    >>> ConsistencyReward()(['{"Chemical": ["lithium", "Lithium"], "Disease": ["lithium", "tremor"]}'],
    ...     dataset=["bc5cdr"], task=["ner"])
    [0.25]
    """

    __name__ = "consistency"

    def __init__(self, polarity: dict[str, str] | None = None):
        self.polarity = dict(polarity or {})

    def score(self, parsed, family) -> float:
        bad = total = 0
        mentions, relations = family.part("entities"), family.part("relations")
        if mentions:
            types: dict[str, set] = {}
            for m, t in parsed.mentions:
                types.setdefault(norm(m), set()).add(t)
            total += len(parsed.mentions)
            bad += sum(1 for m, _ in parsed.mentions if len(types[norm(m)]) > 1)
        if relations:
            polarities: dict[tuple, set] = {}
            for h, r, t in parsed.relations:
                p = label_polarity(r, self.polarity)
                if p:
                    polarities.setdefault((norm(h), norm(t)), set()).add(p)
            entities = {norm(m) for m, _ in parsed.mentions}
            for h, r, t in parsed.relations:
                total += 1
                contradicted = len(polarities.get((norm(h), norm(t)), ())) > 1
                unsupported = bool(mentions) and (norm(h) not in entities or norm(t) not in entities)
                bad += contradicted or unsupported
        if family.part("combinations"):
            labels: dict[frozenset, set] = {}
            for drugs, lab in parsed.combinations:
                labels.setdefault(drug_set(drugs), set()).add(lab)
            total += len(parsed.combinations)
            bad += sum(1 for drugs, _ in parsed.combinations if len(labels[drug_set(drugs)]) > 1)
        return 1.0 - bad / total if total else 1.0

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, (_, spec, family) in zip(completions, golds(len(completions), dataset, columns)):
            if not any(family.part(name) for name in ("entities", "relations", "combinations")):
                rewards.append(None)  # a single label or answer cannot contradict itself
                continue
            parsed = parse_completion(completion, spec.dataset)
            rewards.append(self.score(parsed, family) if parsed.ok else 0.0)
        return rewards


_HEDGE = re.compile(r"\b(may|might|possibly|perhaps|unclear|uncertain|not sure|likely)\b", re.IGNORECASE)
_SURE = re.compile(r"\b(definitely|certainly|clearly|undoubtedly|confirmed)\b", re.IGNORECASE)


def stated_confidence(text: str) -> float | None:
    """Confidence the completion states: "confidence: 80%" / "confidence": 0.8, else hedging (0.25) or
    certainty (0.85) words (BioRLHF V4's levels); None when it states none."""
    number = parsing.stated_confidence(text)
    if number is not None:
        return number
    hedges, sure = len(_HEDGE.findall(text)), len(_SURE.findall(text))
    if hedges > sure:
        return 0.25
    if sure > hedges:
        return 0.85
    return None


class UncertaintyReward:
    """V4 uncertainty: stated confidence against how right the answer is, in [0, 1].

    1 - (confidence - correctness)^2 (the Brier score, a proper scoring rule: the best stated
    confidence is the true chance of being right). `correctness` "granular" (default): the task's own
    granular score against the gold (entity soft F1, relation, n-ary, or the QA answer's token F1);
    "exact": 1 when the answer is exactly right (tasks.Family.exactly_right, the binary reward's and the
    metrics' verdict), else 0: the event the reliability diagram and the confidence stage's targets measure. Never
    this reward itself (BioRLHF defined correctness from the reward, which is circular). None when no
    confidence is stated.

    >>> UncertaintyReward()(['{"Chemical": ["Naloxone"], "Disease": []} confidence: 50%'],
    ...     text=["Naloxone works."], dataset=["bc5cdr"], task=["ner"],
    ...     entities=[[{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]])
    [0.75]
    """

    __name__ = "uncertainty"

    def __init__(self, polarity: dict[str, str] | None = None, correctness: str = "granular"):
        if correctness not in ("granular", "exact"):
            raise ValueError(f"rewards.uncertainty.correctness: expected 'granular' or 'exact', got {correctness!r}")
        self.exact = correctness == "exact"
        self.entity = EntityReward()
        self.relation = RelationReward()
        self.nary = NaryReward()

    def correctness(self, completions, dataset, columns) -> list[float | None]:
        if self.exact:
            return [float(family.exactly_right(parse_completion(c, spec.dataset), row, spec))
                    for c, (row, spec, family) in zip(completions, golds(len(completions), dataset, columns))]
        parts = [self.entity(completions, dataset=dataset, **columns) if columns.get("entities") is not None else None,
                 self.relation(completions, dataset=dataset, **columns),
                 self.nary(completions, dataset=dataset, **columns),
                 factual_reward(completions, dataset=dataset, **columns)]
        out = []
        for i in range(len(completions)):
            values = [p[i] for p in parts if p is not None and p[i] is not None]
            out.append(sum(values) / len(values) if values else None)
        return out

    def __call__(self, completions, dataset, **columns) -> list[float | None]:
        stated = [stated_confidence(completion_text(c)) for c in completions]
        if all(s is None for s in stated):
            return [None] * len(completions)
        right = self.correctness(completions, dataset, columns)
        return [None if s is None or r is None else 1.0 - (s - r) ** 2 for s, r in zip(stated, right)]


DEFAULT_WEIGHTS = {"factual": 0.35, "pathway": 0.30, "consistency": 0.15, "uncertainty": 0.20}


class VerifierReward:
    """BioRLHF's composed verifier score: sum of w_k * V_k over the verifiers that apply, weights
    renormalised to sum 1 per example, in [0, 1]; None where none applies.

    `weights` names the verifiers used (factual V1, pathway V2, consistency V3, uncertainty V4);
    default BioRLHF's {0.35, 0.30, 0.15, 0.20}.

    >>> VerifierReward({"consistency": 1.0})(['{"Chemical": ["a"], "Disease": ["a"]}'],
    ...     dataset=["bc5cdr"], task=["ner"])
    [0.0]
    """

    __name__ = "verifiers"

    def __init__(self, weights: dict[str, float] | None = None, polarity: dict[str, str] | None = None):
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise KeyError(f"unknown verifier(s) {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
        self.verifiers = {"factual": factual_reward, "pathway": PathwayReward(polarity),
                          "consistency": ConsistencyReward(polarity),
                          "uncertainty": UncertaintyReward(polarity)}

    def __call__(self, completions, dataset, **kwargs) -> list[float | None]:
        kwargs = {k: v for k, v in kwargs.items() if k not in ("log_extra", "log_metric")}
        scores = {name: self.verifiers[name](completions, dataset=dataset, **kwargs)
                  for name, w in self.weights.items() if w}
        out = []
        for i in range(len(completions)):
            applied = [(self.weights[name], s[i]) for name, s in scores.items() if s[i] is not None]
            total = sum(w for w, _ in applied)
            out.append(sum(w * v for w, v in applied) / total if total else None)
        return out
