"""The parts of an answer (entities, relations, combinations, a pair's label, a short answer), behind one
protocol (`Part`). A part says how its items are read from a parsed answer and from a gold row, how they
are normalised, when a predicted item is the same as a gold one, and how one example is scored
(per-label counts under each view the metrics report). Rewards call the same part with their own partial
credit on top of that matching, never another matching or normalisation.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Protocol

from ..matching import Placed, Span, match, match_placed, place_all, place_listed, scheme_credit
from .scoring import label_block, norm, answer_tokens, prf, scored, tally, token_f1


class Part(Protocol):
    """What every part of an answer answers. `view`: one of the part's `views` (how the metrics read it);
    `credit(pred item, gold item) -> float`: a reward's own partial credit (None: the exact view's)."""

    name: str
    in_text: bool  # the items claim to be strings of the source text (grounding)
    views: tuple
    exact_view: object

    def predicted(self, parsed) -> list: ...

    def gold(self, row: dict) -> list: ...

    def key(self, item, spec): ...

    def strings(self, items) -> list[str]: ...

    def counts(self, parsed, row: dict, spec, view) -> dict:
        """Per-label counts of one example under `view`."""

    def matched(self, parsed, row: dict, spec, credit: Callable | None = None,
                alignment: str = "verbatim") -> tuple[float, int, int]:
        """(matched credit, predicted, gold) under `credit`, matched one to one: the rewards' core.
        `alignment` places entity mentions in the text (matching.py); other parts are not spans."""

    def report(self, totals: dict, spec, labels: list[str] | None = None) -> dict:
        """The part's metrics from counts summed over a dataset ({view: counts})."""


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


class Entities(Part):
    """Typed mentions (ner, joint), scored as spans of the text: a listed (string, type) stands for its
    occurrences under the view's alignment and is matched one to one to the gold spans. `strict` is the
    string verbatim at a gold span with the gold type."""

    name = "entities"
    in_text = True
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

    def matched(self, parsed, row: dict, spec, credit=None, alignment: str = "verbatim") -> tuple[float, int, int]:
        """`credit(Span, gold Span)`; by default the strict scheme's."""
        items, golds = self.placed(parsed, row, alignment), self.gold_spans(row)
        pairs, _ = match_placed(items, golds, credit or partial(scheme_credit, "strict"))
        return sum(s for _, _, s in pairs), len(items), len(golds)

    def shown_spans(self, parsed, row: dict) -> list[Span | None]:
        """The span each listed mention is scored at under the strict reading (None: not in the text)."""
        return match_placed(self.placed(parsed, row), self.gold_spans(row), partial(scheme_credit, "strict"))[1]

    def counts(self, parsed, row: dict, spec, view: EntityView) -> dict:
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


class ItemPart(Part):
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

    def matched(self, parsed, row: dict, spec, credit=None, alignment: str = "verbatim") -> tuple[float, int, int]:
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


class Relations(ItemPart):
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
        if view == "boundaries":  # the arguments as the key orders them: a symmetric type's pair in either order
            return lambda p, g: float(self.key(p, spec)[::2] == self.key(g, spec)[::2])
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


class Combinations(ItemPart):
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


class _SingleItem(ItemPart):
    """A part of at most one item: the parsed answer's field and the gold row's column named `name`."""

    def predicted(self, parsed) -> list[str]:
        value = getattr(parsed, self.name)
        return [value] if value is not None else []

    def gold(self, row: dict) -> list[str]:
        return [row[self.name]] if row.get(self.name) is not None else []


class PairLabel(_SingleItem):
    """The relation label of a marked pair (re). Views: micro (over the positive labels: every label but
    the task's `negative`; an unparsable answer predicts nothing) and accuracy."""

    name = "label"
    views = ("micro", "accuracy")
    exact_view = "accuracy"

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


class ShortAnswer(_SingleItem):
    """A short answer (qa), normalised as SQuAD does (`answer_tokens`). Views: exact_match and token_f1,
    each a per-example score averaged over examples."""

    name = "answer"
    views = ("exact_match", "token_f1")
    exact_view = "exact_match"

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


ENTITIES, RELATIONS, COMBINATIONS, LABEL, ANSWER = Entities(), Relations(), Combinations(), PairLabel(), ShortAnswer()
