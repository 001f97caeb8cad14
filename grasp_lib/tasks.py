"""The task registry, and one definition per task family that prompts, parsing, rewards and metrics share.

Per dataset (`TASKS`): its task family, labels (one-line definition each), unit and usual metric.
Per family (`FAMILIES`): a `Family` record holding the prompt's definition and output schema, the
parser's converter (JSON value -> typed fields), the gold target builder, and its parts (entities,
relations, combinations, label, answer). A part says how its items are read from a parsed answer and
from a gold row, how they are normalised, when a predicted item is the same as a gold one, and how
one example is scored (per-label counts under each view the metrics report). Rewards call the same
part with their own partial credit on top of that matching, never another matching or normalisation.
"""

from __future__ import annotations

import json
import string
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, NamedTuple

from .matching import Placed, Span, match, match_placed, place_all, place_listed, scheme_credit

@dataclass(frozen=True)
class TaskSpec:
    dataset: str
    family: str
    domain: str
    labels: dict[str, str]  # label -> one-line definition (entity types; relation labels for re/triples/nary)
    relation_labels: dict[str, str] = field(default_factory=dict)  # joint family: relation types
    unit: str = "sentence"  # the natural unit of an example (sentence | passage | document | instance)
    negative: str | None = None  # re: the label meaning "no relation" (left out of micro-F1), if any
    symmetric: frozenset[str] = frozenset()  # relation types without direction (either order is the same)
    metric: str = ""  # the field's usual reported form, one line

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    def parse_args(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """The arguments of parsing.parse for this task, after the completion."""
        return tuple(self.labels), self.family, tuple(self.relation_labels)


_CHEMPROT = {
    "INHIBITOR": "the chemical inhibits the protein",
    "INDIRECT-DOWNREGULATOR": "the chemical lowers the protein's level or activity indirectly",
    "INDIRECT-UPREGULATOR": "the chemical raises the protein's level or activity indirectly",
    "DOWNREGULATOR": "the chemical lowers the protein's activity directly",
    "UPREGULATOR": "the chemical raises the protein's activity directly",
    "ACTIVATOR": "the chemical activates the protein",
    "ANTAGONIST": "the chemical is an antagonist of the protein (receptor)",
    "AGONIST": "the chemical is an agonist of the protein (receptor)",
    "AGONIST-ACTIVATOR": "an agonist that activates the protein",
    "AGONIST-INHIBITOR": "an agonist that inhibits the protein",
    "SUBSTRATE": "the chemical is a substrate of the protein (enzyme, transporter)",
    "PRODUCT-OF": "the chemical is a product of the protein (enzyme)",
    "SUBSTRATE_PRODUCT-OF": "the chemical is both substrate and product of the protein",
}
_GENE_DISEASE = {"association": "the sentence asserts that the gene is associated with the disease",
                 "none": "no association between the gene and the disease is asserted"}
_SCIER_RELATIONS = {
    "Used-For": "head is used for tail", "Part-Of": "head is a part of tail",
    "Synonym-Of": "head and tail name the same thing", "Compare-With": "head is compared with tail",
    "Evaluated-With": "head is evaluated with tail (a dataset or metric)",
    "SubClass-Of": "head is a kind of tail", "Benchmark-For": "head (dataset) is a benchmark for tail (task)",
    "Trained-With": "head (method) is trained with tail (dataset)", "SubTask-Of": "head is a subtask of tail",
}

TASKS = {
    "bc5cdr": TaskSpec(
        dataset="bc5cdr", family="ner", domain="PubMed abstracts (BC5CDR)",
        labels={
            "Chemical": "drug or chemical, abbreviations too",
            "Disease": "disease, disorder, symptom or adverse effect",
        },
        metric="entity-level strict micro-F1",
    ),
    "bc5cdr-cid": TaskSpec(
        dataset="bc5cdr-cid", family="triples", domain="PubMed abstracts (BC5CDR)",
        labels={"CID": "the chemical induces the disease (chemical-induced disease)"},
        unit="document", metric="micro-F1 over [chemical, CID, disease] triples (mention texts, case-insensitive)",
    ),
    "ncbi-disease": TaskSpec(
        dataset="ncbi-disease", family="ner", domain="PubMed abstracts (NCBI-disease)",
        labels={
            "SpecificDisease": "a specific disease, e.g. cystic fibrosis",
            "DiseaseClass": "a class of diseases, e.g. cancers",
            "Modifier": "a disease word modifying another noun, e.g. the DM1 gene",
            "CompositeMention": "several diseases in one phrase, e.g. breast and ovarian cancer",
        },
        metric="entity-level strict micro-F1 (also type-agnostic 'exact', the usual single-type Disease F1)",
    ),
    "bc2gm": TaskSpec(
        dataset="bc2gm", family="ner", domain="MEDLINE sentences (BioCreative II)",
        labels={"GENE": "gene or gene product (protein, RNA), as a name or symbol"},
        metric="entity-level strict micro-F1, ALTGENE boundaries accepted as alternatives",
    ),
    "jnlpba": TaskSpec(
        dataset="jnlpba", family="ner", domain="MEDLINE abstracts (GENIA, JNLPBA)",
        labels={
            "protein": "protein, protein family or complex",
            "DNA": "gene, DNA region or sequence",
            "RNA": "RNA molecule or transcript",
            "cell_type": "natural cell type",
            "cell_line": "cultured cell line",
        },
        metric="entity-level strict micro-F1",
    ),
    "ddi-ner": TaskSpec(
        dataset="ddi-ner", family="ner", domain="drug labels and MEDLINE abstracts (DDI-2013)",
        labels={
            "drug": "generic drug name approved for human use",
            "brand": "brand (trade) name of a drug",
            "group": "group or class of drugs",
            "drug_n": "active substance not approved for human use",
        },
        metric="entity-level strict micro-F1",
    ),
    "chemprot": TaskSpec(
        dataset="chemprot", family="re", domain="PubMed abstracts (ChemProt)",
        labels=_CHEMPROT, unit="instance",
        metric="micro-F1 over the positive classes (every instance is positive in this version)",
    ),
    "ddi": TaskSpec(
        dataset="ddi", family="re", domain="drug labels and MEDLINE abstracts (DDI-2013)",
        labels={
            "mechanism": "a pharmacokinetic interaction (absorption, metabolism, levels)",
            "effect": "an interaction stated by its effect or pharmacodynamic mechanism",
            "advise": "a recommendation or advice about using the two drugs together",
            "int": "an interaction is stated without further information",
            "none": "no interaction between the two drugs is stated",
        },
        unit="instance", negative="none", metric="micro-F1 over mechanism, effect, advise, int",
    ),
    "gad": TaskSpec(
        dataset="gad", family="re", domain="PubMed sentences (GAD)", labels=_GENE_DISEASE,
        unit="instance", negative="none", metric="binary F1 of the positive class (association)",
    ),
    "euadr": TaskSpec(
        dataset="euadr", family="re", domain="PubMed sentences (EU-ADR)", labels=_GENE_DISEASE,
        unit="instance", negative="none", metric="binary F1 of the positive class (association)",
    ),
    "drugcomb": TaskSpec(
        dataset="drugcomb", family="nary", domain="PubMed sentences on drug combinations",
        labels={
            "POS": "the drugs are given together with a positive (beneficial, synergistic) effect",
            "COMB": "the drugs are given together; effect not stated or unclear",
            "NEG": "the drugs are given together with a negative (adverse, antagonistic) effect",
        },
        metric="F1 exact and partial, POS vs other and any combination (Tiktinsky et al.)",
    ),
    "scier": TaskSpec(
        dataset="scier", family="joint", domain="machine learning papers (SciER)",
        labels={"Method": "method, model, algorithm or architecture",
                "Task": "task or problem addressed", "Dataset": "dataset or benchmark"},
        relation_labels=_SCIER_RELATIONS, symmetric=frozenset({"Synonym-Of", "Compare-With"}),
        metric="entity strict micro-F1 and relation micro-F1 (exact head, type, tail; Synonym-Of and "
               "Compare-With in either order)",
    ),
    "biorlhf": TaskSpec(
        dataset="biorlhf", family="qa", domain="KMP spaceflight transcriptomics (BioRLHF)",
        labels={"answer": "a short factual answer"}, unit="instance",
        metric="exact match and token F1 of the answer",
    ),
}


def label_lines(spec: TaskSpec) -> dict[str, str]:
    """Every label of a task with its definition (joint: entity types, then relation types)."""
    return dict(spec.labels) | dict(spec.relation_labels)


def get_task(dataset: str) -> TaskSpec:
    if dataset not in TASKS:
        raise KeyError(f"no task registered for dataset {dataset!r}; known: {sorted(TASKS)}")
    return TASKS[dataset]


# ================================================================ normalisation (one per kind of string)

def norm(s: str) -> str:
    """Case- and whitespace-insensitive form of a string compared as text, not as a span of the source
    (relation arguments, drug names)."""
    return " ".join(s.casefold().split())


_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = {"a", "an", "the"}


def answer_tokens(s: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, split on whitespace."""
    return [w for w in s.casefold().translate(_PUNCT).split() if w not in _ARTICLES]


def token_f1(pred: str, gold: str) -> float:
    """SQuAD token F1 of two answers after `answer_tokens` (1 when both are empty).

    >>> token_f1("the COX-2 enzyme.", "COX-2 enzyme"), token_f1("COX-2", "COX-2 enzyme"), token_f1("no", "yes")
    (1.0, 0.6666666666666666, 0.0)
    """
    p, g = answer_tokens(pred), answer_tokens(gold)
    if not p and not g:
        return 1.0
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


# ================================================================ counts of one example, and P/R/F1

def _zero() -> dict:
    return {"tp_p": 0.0, "tp_r": 0.0, "pred": 0, "gold": 0}


def tally(pred_labels: list[str], gold_labels: list[str], pairs) -> dict[str, dict]:
    """Counts per label and "ALL": tp_p (credit earned by predictions of that label), tp_r (credit earned
    by gold items of that label), pred, gold. A pair's credit counts under the prediction's label for
    precision and under the gold item's label for recall, so per-label P and R stay in [0, 1] when the two
    differ (type-agnostic schemes), and each sums over the labels to the "ALL" credit."""
    counts: dict[str, dict] = defaultdict(_zero)
    counts["ALL"]  # noqa: B018  (present even for an example with nothing predicted or gold)
    for label in pred_labels:
        counts[label]["pred"] += 1
        counts["ALL"]["pred"] += 1
    for label in gold_labels:
        counts[label]["gold"] += 1
        counts["ALL"]["gold"] += 1
    for i, j, credit in pairs:
        counts[pred_labels[i]]["tp_p"] += credit
        counts[gold_labels[j]]["tp_r"] += credit
        counts["ALL"]["tp_p"] += credit
        counts["ALL"]["tp_r"] += credit
    return dict(counts)


def scored(value: float) -> dict[str, dict]:
    """Counts of a per-example score (QA answers, accuracy): one predicted, one gold, credit `value`."""
    return {"ALL": {"tp_p": value, "tp_r": value, "pred": 1, "gold": 1}}


def add_counts(total: dict, counts: dict, prefix: str = "") -> dict:
    """Sum `counts` into `total` (labels prefixed, "ALL" kept), in place; returns `total`."""
    for label, c in counts.items():
        t = total.setdefault(label if label == "ALL" else prefix + label, _zero())
        for k in t:
            t[k] += c[k]
    return total


def prf(tp_p: float, tp_r: float, pred: float, gold: float) -> dict:
    """Precision tp_p / pred, recall tp_r / gold, F1 (0 where undefined); `tp` is tp_r (the credit of gold
    items, equal to tp_p over all labels and for type-respecting schemes)."""
    precision = tp_p / pred if pred else 0.0
    recall = tp_r / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp_r, "tp_p": tp_p, "tp_r": tp_r,
            "pred": pred, "gold": gold}


def example_f1(counts: dict) -> float:
    """F1 of one example's "ALL" counts; 1 when nothing is predicted and nothing is gold (a right empty
    answer). The per-example score of the rewards' soft F1: 2 * credit / (|pred| + |gold|)."""
    c = counts["ALL"]
    if not c["pred"] and not c["gold"]:
        return 1.0
    return prf(c["tp_p"], c["tp_r"], c["pred"], c["gold"])["f1"]


def label_block(totals: dict, labels: list[str]) -> dict:
    """{"micro", "per_type", "macro_f1"} from summed counts: micro over every label, macro over `labels`."""
    per_type = {label: prf(**totals.get(label, _zero())) for label in labels}
    return {"micro": prf(**totals.get("ALL", _zero())), "per_type": per_type,
            "macro_f1": sum(t["f1"] for t in per_type.values()) / len(labels) if labels else 0.0}


# ================================================================ parts of an answer

class EntityView(NamedTuple):
    """How typed mentions are scored against gold spans (see matching.py)."""
    scheme: str = "strict"  # strict | exact | partial | type (nervaluate's), or "set": (string, type) sets
    alignment: str = "verbatim"  # verbatim | normalised | lenient
    occurrences: str = "listed"  # listed: one occurrence per listed string | all: every occurrence
    matcher: str = "optimal"  # optimal | greedy (greedy only to measure what optimal matching changed)


SCHEMES = ("strict", "exact", "partial", "type")
SET_VIEW = EntityView("set")
READINGS = {  # name in metrics.json -> (alignment, occurrences) of the four schemes; "" = the top level
    "": ("verbatim", "listed"), "lenient": ("lenient", "listed"), "all_occurrences": ("verbatim", "all")}


class Entities:
    """Typed mentions (ner, joint), scored as spans of the text: a listed (string, type) stands for its
    occurrences under the view's alignment and is matched one to one to the gold spans. `strict` is the
    string verbatim at a gold span with the gold type."""

    name = "entities"
    in_text = True  # the items claim to be strings of the source text (grounding)
    exact_view = EntityView()
    views = tuple(EntityView(s, a, o) for a, o in READINGS.values() for s in SCHEMES) + (SET_VIEW,)

    def predicted(self, parsed) -> list[tuple[str, str]]:
        return list(parsed.mentions)

    def gold(self, row: dict) -> list[tuple[str, str]]:
        return [(e["text"], e["type"]) for e in row.get("entities") or []]

    def key(self, item, spec) -> tuple:
        return norm(item[0]), item[1]

    def strings(self, items) -> list[str]:
        return [m for m, _ in items]

    @staticmethod
    def gold_spans(row: dict) -> list[Span]:
        return [Span(e["start"], e["end"], e["type"]) for e in row.get("entities") or []]

    def placed(self, parsed, row: dict, alignment: str = "verbatim", occurrences: str = "listed") -> list[Placed]:
        place = {"listed": place_listed, "all": place_all}[occurrences]
        return _snap_alternatives(place(row.get("text") or "", parsed.mentions, alignment), row)

    def matched(self, parsed, row: dict, spec, credit, alignment: str = "verbatim") -> tuple[float, int, int]:
        """(matched credit, predicted, gold) under `credit(Span, gold Span)`: what the entity reward needs."""
        items, golds = self.placed(parsed, row, alignment), self.gold_spans(row)
        pairs, _ = match_placed(items, golds, credit)
        return sum(s for _, _, s in pairs), len(items), len(golds)

    def shown_spans(self, parsed, row: dict) -> list[Span | None]:
        """The span each listed mention is scored at under the strict reading (None: not in the text)."""
        return match_placed(self.placed(parsed, row), self.gold_spans(row), partial(scheme_credit, "strict"))[1]

    def counts(self, parsed, row: dict, spec, view: EntityView = EntityView()) -> dict:
        if view.scheme == "set":
            pred, gold = list(dict.fromkeys(parsed.mentions)), list(dict.fromkeys(self.gold(row)))
            return tally([t for _, t in pred], [t for _, t in gold],
                         [(i, gold.index(p), 1.0) for i, p in enumerate(pred) if p in gold])
        items, golds = self.placed(parsed, row, view.alignment, view.occurrences), self.gold_spans(row)
        pairs, _ = match_placed(items, golds, partial(scheme_credit, view.scheme), view.matcher, prefer_same_type=True)
        return tally([it.type for it in items], [g.type for g in golds], pairs)

    def report(self, totals: dict, spec, labels: list[str] | None = None) -> dict:
        """nervaluate's four schemes at the top level (strict reading), the same under the other readings,
        and the set F1 of (string, type) per example."""
        labels = spec.label_names if labels is None else labels
        out: dict = {}
        for name, (alignment, occurrences) in READINGS.items():
            block = {s: label_block(totals[EntityView(s, alignment, occurrences)], labels) for s in SCHEMES}
            out |= block if not name else {name: block}
        return out | {"set": label_block(totals[SET_VIEW], labels)}


def _snap_alternatives(items: list[Placed], row: dict) -> list[Placed]:
    """BC2GM: a candidate span equal to an ALTGENE boundary of a gold mention stands for that mention."""
    alternatives = row.get("alternatives") or []
    if not alternatives:
        return items
    golds = Entities.gold_spans(row)
    gold_keys = {(g.start, g.end) for g in golds}
    snap: dict[tuple[int, int], tuple[int, int]] = {}
    for alt in alternatives:
        for g in golds:
            if alt["start"] < g.end and g.start < alt["end"]:
                snap.setdefault((alt["start"], alt["end"]), (g.start, g.end))
    return [Placed(it.type, tuple(s if s in gold_keys else snap.get(s, s) for s in it.spans)) for it in items]


class _Items:
    """A part whose items are matched to gold items one to one by a credit (no spans)."""

    name = ""
    in_text = False
    views: tuple = ()
    exact_view = ""

    def predicted(self, parsed) -> list:
        raise NotImplementedError

    def gold(self, row: dict) -> list:
        raise NotImplementedError

    def key(self, item, spec):
        return item

    def strings(self, items) -> list[str]:
        return []

    def label(self, item) -> str:
        return "ALL"

    def credit(self, view: str, spec):
        """The metric's credit of a predicted item against a gold one under `view`."""
        return lambda p, g: float(self.key(p, spec) == self.key(g, spec))

    def keep(self, view: str, item) -> bool:
        return True

    def pairs(self, preds: list, golds: list, spec, credit):
        return match(preds, golds, credit, key=lambda item: _sortable(self.key(item, spec)))

    def matched(self, parsed, row: dict, spec, credit=None) -> tuple[float, int, int]:
        """(matched credit, predicted, gold) under `credit` (default: the exact view's): the rewards' core."""
        preds, golds = self.predicted(parsed), self.gold(row)
        pairs = self.pairs(preds, golds, spec, credit or self.credit(self.exact_view, spec))
        return sum(s for _, _, s in pairs), len(preds), len(golds)

    def counts(self, parsed, row: dict, spec, view: str) -> dict:
        preds = [x for x in self.predicted(parsed) if self.keep(view, x)]
        golds = [x for x in self.gold(row) if self.keep(view, x)]
        pairs = self.pairs(preds, golds, spec, self.credit(view, spec))
        return tally([self.label(x) for x in preds], [self.label(x) for x in golds], pairs)

    def report(self, totals: dict, spec, labels=None) -> dict:
        return {view: prf(**totals[view]["ALL"]) for view in self.views}


def _sortable(key):
    """A total order over keys that may hold frozensets (compared as sorted tuples)."""
    if isinstance(key, (frozenset, set)):
        return tuple(sorted(key))
    if isinstance(key, tuple):
        return tuple(_sortable(k) for k in key)
    return key


class Relations(_Items):
    """[head, relation, tail] triples (triples, joint): head and tail compared with `norm`, the two
    arguments of a relation type in the task's `symmetric` set in either order. Views: strict (head,
    relation, tail) and boundaries (head and tail, relation ignored)."""

    name = "relations"
    in_text = True
    views = ("strict", "boundaries")
    exact_view = "strict"

    def predicted(self, parsed) -> list[tuple[str, str, str]]:
        return list(parsed.relations)

    def gold(self, row: dict) -> list[tuple[str, str, str]]:
        return [(r["head"], r["relation"], r["tail"]) for r in row.get("relations") or []]

    def key(self, item, spec) -> tuple[str, str, str]:
        h, r, t = norm(item[0]), item[1], norm(item[2])
        if r in spec.symmetric and t < h:
            h, t = t, h
        return h, r, t

    def strings(self, items) -> list[str]:
        return [s for h, _, t in items for s in (h, t)]

    def label(self, item) -> str:
        return item[1]

    def credit(self, view: str, spec):
        if view == "boundaries":
            return lambda p, g: float((norm(p[0]), norm(p[2])) == (norm(g[0]), norm(g[2])))
        return super().credit(view, spec)


def drug_set(drugs) -> frozenset[str]:
    return frozenset(n for n in (norm(d) for d in drugs) if n)


def set_credit(pred: frozenset, gold: frozenset, overlap: bool) -> float:
    """1 for the same non-empty set; with `overlap`, Jaccard when at least two members are shared
    (RexDrug's partial match); else 0."""
    if pred == gold:
        return 1.0 if pred else 0.0
    shared = len(pred & gold)
    return shared / len(pred | gold) if overlap and shared >= 2 else 0.0


class Combinations(_Items):
    """Drug combinations (nary) as (drugs, label), Tiktinsky et al. (2022) and RexDrug's views: `pos`
    (only combinations labelled POS, on both sides), `any` (every combination, label ignored) and
    `labelled` (every combination, label must agree), each with credit `exact` (same drug set) or
    `partial` (Jaccard when at least two drugs are shared), matched one to one."""

    name = "combinations"
    in_text = True
    positive = "POS"
    views = tuple(f"{v}_{c}" for v in ("pos", "any", "labelled") for c in ("exact", "partial"))
    exact_view = "labelled_exact"

    def predicted(self, parsed) -> list:
        return list(parsed.combinations)

    def gold(self, row: dict) -> list:
        return [(tuple(c["drugs"]), c["label"]) for c in row.get("combinations") or []]

    def key(self, item, spec) -> tuple:
        return drug_set(item[0]), item[1]

    def strings(self, items) -> list[str]:
        return [d for drugs, _ in items for d in drugs]

    def label(self, item) -> str:
        return item[1]

    def keep(self, view: str, item) -> bool:
        return not view.startswith("pos") or item[1] == self.positive

    def credit(self, view: str, spec):
        labelled, overlap = view.startswith("labelled"), view.endswith("partial")
        return lambda p, g: (0.0 if labelled and p[1] != g[1]
                             else set_credit(drug_set(p[0]), drug_set(g[0]), overlap))


class Label(_Items):
    """The relation label of a marked pair (re). Views: micro (over the positive labels: every label but
    the task's `negative`; an unparsable answer predicts nothing) and accuracy."""

    name = "label"
    views = ("micro", "accuracy")
    exact_view = "accuracy"

    def predicted(self, parsed) -> list[str]:
        return [parsed.label] if parsed.label is not None else []

    def gold(self, row: dict) -> list[str]:
        return [row["label"]] if row.get("label") is not None else []

    def label(self, item) -> str:
        return item

    def counts(self, parsed, row: dict, spec, view: str) -> dict:
        if view == "accuracy":
            return scored(float(self.predicted(parsed) == self.gold(row)))
        positive = [x for x in self.predicted(parsed) if x != spec.negative]
        gold = [x for x in self.gold(row) if x != spec.negative]
        return tally(positive, gold, self.pairs(positive, gold, spec, self.credit(view, spec)))

    def report(self, totals: dict, spec, labels=None) -> dict:
        micro = label_block(totals["micro"], [label for label in spec.label_names if label != spec.negative])
        accuracy = totals["accuracy"]["ALL"]
        return {"micro": micro["micro"], "per_label": micro["per_type"], "macro_f1": micro["macro_f1"],
                "accuracy": accuracy["tp_p"] / accuracy["gold"] if accuracy["gold"] else 0.0}


class Answer(_Items):
    """A short answer (qa), normalised as SQuAD does (`answer_tokens`). Views: exact_match and token_f1,
    each a per-example score averaged over examples."""

    name = "answer"
    views = ("exact_match", "token_f1")
    exact_view = "exact_match"

    def predicted(self, parsed) -> list[str]:
        return [parsed.answer] if parsed.answer is not None else []

    def gold(self, row: dict) -> list[str]:
        return [row["answer"]] if row.get("answer") is not None else []

    def key(self, item, spec) -> tuple[str, ...]:
        return tuple(answer_tokens(item))

    def counts(self, parsed, row: dict, spec, view: str) -> dict:
        pred, gold = self.predicted(parsed), (self.gold(row) or [""])[0]
        if not pred:
            return scored(0.0)
        if view == "token_f1":
            return scored(token_f1(pred[0], gold))
        return scored(float(self.key(pred[0], spec) == self.key(gold, spec)))

    def report(self, totals: dict, spec, labels=None) -> dict:
        return {view: totals[view]["ALL"]["tp_p"] / totals[view]["ALL"]["pred"] if totals[view]["ALL"]["pred"]
                else 0.0 for view in self.views}


ENTITIES, RELATIONS, COMBINATIONS, LABEL, ANSWER = Entities(), Relations(), Combinations(), Label(), Answer()


# ================================================================ parser converters (JSON value -> typed fields)

def _to_mentions(value: object, labels: tuple[str, ...]) -> tuple[list | None, str]:
    """Typed mentions from either accepted shape; drops (and reports) items of the wrong shape."""
    mentions, dropped = [], []
    if isinstance(value, dict):
        for label, items in value.items():
            if label not in labels:
                dropped.append(f"unknown type {label!r}")
            elif not isinstance(items, list):
                dropped.append(f"{label!r} is not a list")
            else:
                mentions += [(item, label) for item in items if isinstance(item, str)]
                dropped += [f"non-string item under {label!r}" for item in items if not isinstance(item, str)]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("text"), str) and item.get("type") in labels:
                mentions.append((item["text"], item["type"]))
            else:
                dropped.append(f"item {str(item)[:40]!r} is not {{text, type}} with a known type")
    else:
        return None, f"top-level JSON is {type(value).__name__}, expected an object or a list"
    return mentions, "; ".join(dropped)


def _convert_ner(value, labels, _relation_labels):
    """{"Type": ["mention", ...]} or [{"text": ..., "type": ...}]"""
    mentions, problems = _to_mentions(value, labels)
    return (None if mentions is None else {"mentions": tuple(mentions)}), problems


def _triples_from(items, labels) -> tuple[list | None, list[str]]:
    if not isinstance(items, list):
        return None, [f"relations must be a list, got {type(items).__name__}"]
    triples, dropped = [], []
    for item in items:
        if (isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)
                and item[1] in labels):
            triples.append(tuple(item))
        else:
            dropped.append(f"item {str(item)[:40]!r} is not [head, relation, tail] with a known relation")
    return triples, dropped


def _convert_triples(value, labels, _relation_labels):
    """[["head", "RELATION", "tail"], ...]"""
    triples, dropped = _triples_from(value, labels)
    if triples is None:
        return None, "; ".join(dropped)
    return {"relations": tuple(triples)}, "; ".join(dropped)


def _convert_re(value, labels, _relation_labels):
    """{"relation": "LABEL"} for the marked pair; the label must be one of the task's labels."""
    if not isinstance(value, dict) or not isinstance(value.get("relation"), str):
        return None, 'expected {"relation": "<label>"}'
    if value["relation"] not in labels:
        return None, f"unknown relation label {value['relation']!r}"
    extra = sorted(set(value) - {"relation"})
    return {"label": value["relation"]}, (f"extra keys {extra}" if extra else "")


def _convert_nary(value, labels, _relation_labels):
    """[{"drugs": ["a", "b", ...], "label": "POS"}, ...]; an empty list means no combination."""
    if not isinstance(value, list):
        return None, f"expected a list of combinations, got {type(value).__name__}"
    combos, dropped = [], []
    for item in value:
        drugs = item.get("drugs") if isinstance(item, dict) else None
        if (isinstance(drugs, list) and all(isinstance(d, str) for d in drugs)
                and item.get("label") in labels):
            combos.append((tuple(drugs), item["label"]))
        else:
            dropped.append(f"item {str(item)[:40]!r} is not {{drugs: [...], label}} with a known label")
    return {"combinations": tuple(combos)}, "; ".join(dropped)


def _convert_joint(value, labels, relation_labels):
    """{"entities": {"Type": [...]}, "relations": [["head", "REL", "tail"], ...]}"""
    if not isinstance(value, dict) or "entities" not in value:
        return None, 'expected {"entities": {...}, "relations": [...]}'
    mentions, problems = _to_mentions(value["entities"], labels)
    if mentions is None:
        return None, problems
    triples, dropped = _triples_from(value.get("relations", []), relation_labels)
    reasons = "; ".join([problems] * bool(problems) + (dropped or []))
    return {"mentions": tuple(mentions), "relations": tuple(triples or [])}, reasons


def _convert_qa(value, _labels, _relation_labels):
    """{"answer": "..."}"""
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
        return None, 'expected {"answer": "<text>"}'
    return {"answer": value["answer"]}, ""


# ================================================================ gold targets and schema examples (JSON values)

def grouped_mentions(entities: list[dict], labels: list[str]) -> dict[str, list[str]]:
    """Gold mentions grouped by type, in text order, repeats kept (one per occurrence)."""
    grouped: dict[str, list[str]] = {label: [] for label in labels}
    for ent in sorted(entities or [], key=lambda e: (e["start"], e["end"])):
        grouped.setdefault(ent["type"], []).append(ent["text"])
    return grouped


def _triples_value(row: dict) -> list[list[str]]:
    return [list(t) for t in RELATIONS.gold(row)]


def _first(labels) -> str:
    return next(iter(labels), "label")


# ================================================================ the families

@dataclass(frozen=True)
class Family:
    """One task family: everything prompts, the parser, rewards and metrics need to know about it."""

    name: str
    definition: str  # prompt level 2, one line
    output_schema: str  # prompt level 4
    convert: Callable  # parser: (JSON value, labels, relation labels) -> (fields of Parsed | None, problems)
    target: Callable  # (row, spec) -> the gold answer as a JSON value (what parse reads back)
    example: Callable  # spec -> a valid answer shown in the prompt's schema level
    parts: tuple  # the parts of an answer, each scored on its own
    headline: tuple  # (part name, view, its name in tables): the dataset's headline score
    label_heading: str | None = "Labels"  # prompt level 3 heading; None: no label inventory shown
    marks_pair: bool = False  # the input marks the pair whose relation is asked (pairwise RE)
    reasoning_hint: str = "quote the words of the text that support each answer item"

    def part(self, name: str):
        return next((p for p in self.parts if p.name == name), None)

    @property
    def headline_part(self):
        return self.part(self.headline[0])

    def headline_view(self, scheme: str | None = None):
        """The headline view; for an entity headline, `scheme` picks another of nervaluate's schemes."""
        view = self.headline[1]
        return view._replace(scheme=scheme) if scheme and isinstance(view, EntityView) else view

    def exactly_right(self, parsed, row: dict, spec) -> bool:
        """The answer parses and every part equals the gold one (per-example F1 1 under its exact view):
        the binary reward, the calibration figure's event and the confidence stage's target."""
        return parsed.ok and all(example_f1(p.counts(parsed, row, spec, p.exact_view)) == 1.0 for p in self.parts)

    def report(self, totals: dict, spec) -> dict:
        """The dataset's metrics from counts summed over its examples ({part name: {view: counts}})."""
        reports = {p.name: p.report(totals[p.name], spec) for p in self.parts}
        return reports[self.parts[0].name] if len(self.parts) == 1 else reports


FAMILIES = {f.name: f for f in (
    Family("ner", "find every mention of the entity types below, copied exactly from the text.",
           "JSON mapping each type to its mentions in text order", _convert_ner,
           lambda row, spec: grouped_mentions(row.get("entities"), spec.label_names),
           lambda spec: {label: [] for label in spec.label_names},
           (ENTITIES,), ("entities", EntityView(), "strict micro-F1"), label_heading="Types",
           reasoning_hint="list candidate mentions with the words that show their type"),
    Family("re", "classify the relation between the two marked entities.", 'JSON {"relation": "<one label>"}',
           _convert_re, lambda row, spec: {"relation": row["label"]},
           lambda spec: {"relation": _first(spec.labels)},
           (LABEL,), ("label", "micro", "micro-F1 (positive classes)"), marks_pair=True),
    Family("triples", "list every relation stated in the text as [head, relation, tail].",
           "JSON list of [head, relation, tail] triples, [] if none", _convert_triples,
           lambda row, spec: _triples_value(row), lambda spec: [["head", _first(spec.labels), "tail"]],
           (RELATIONS,), ("relations", "strict", "triple micro-F1")),
    Family("nary", "list every combination of drugs given together, with its label.",
           'JSON list of {"drugs": [...], "label": "<label>"}, [] if none', _convert_nary,
           lambda row, spec: [{"drugs": list(d), "label": lab} for d, lab in COMBINATIONS.gold(row)],
           lambda spec: [{"drugs": ["drug A", "drug B"], "label": _first(spec.labels)}],
           (COMBINATIONS,), ("combinations", "pos_exact", "F1 pos exact")),
    Family("joint", "find the entities, then the relations between them.",
           'JSON {"entities": {type: [mentions]}, "relations": [[head, relation, tail]]}', _convert_joint,
           lambda row, spec: {"entities": grouped_mentions(row.get("entities"), spec.label_names),
                              "relations": _triples_value(row)},
           lambda spec: {"entities": {label: [] for label in spec.label_names},
                         "relations": [["head", next(iter(spec.relation_labels), "REL"), "tail"]]},
           (ENTITIES, RELATIONS), ("relations", "strict", "relation micro-F1"), label_heading="Types"),
    Family("qa", "answer the question briefly.", 'JSON {"answer": "<short answer>"}', _convert_qa,
           lambda row, spec: {"answer": row.get("answer") or ""}, lambda spec: {"answer": "..."},
           (ANSWER,), ("answer", "token_f1", "token F1"), label_heading=None),
)}
OUTPUT_SCHEMAS = {name: f.output_schema for name, f in FAMILIES.items()}


def family_of(spec_or_dataset) -> Family:
    """The Family record of a TaskSpec or a dataset name."""
    spec = get_task(spec_or_dataset) if isinstance(spec_or_dataset, str) else spec_or_dataset
    if spec.family not in FAMILIES:
        raise KeyError(f"dataset {spec.dataset!r}: unknown task family {spec.family!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[spec.family]


def target_json(row: dict, spec) -> str:
    """The gold answer of a row in its family's output schema: exactly the JSON that parsing.parse reads."""
    return json.dumps(family_of(spec).target(row, spec), ensure_ascii=False)
