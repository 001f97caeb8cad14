"""The task families: one `Family` record each, holding everything another room needs to know about it.

Prompts read its definition, output schema and example answer; the parser its converter; grounded
decoding its answer grammar; the data preparation its row cutter; rewards and metrics its parts; the
evaluation tables its columns; the prediction records its fields. No other room keeps a table keyed by
family name: a new family is one record here (with its converter, rows and tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, NamedTuple

from . import converters, rows
from .parts import ANSWER, COMBINATIONS, ENTITIES, LABEL, RELATIONS, EntityView
from .registry import TaskSpec, get_task
from .scoring import example_f1


# ---------------------------------------------------------------- prediction records (results/predictions.jsonl)


def _shown_mentions(parsed, row: dict) -> dict:
    """Each listed mention with the span it is scored at under the strict reading (None: not in the text)."""
    spans = ENTITIES.shown_spans(parsed, row)
    return {"predicted": [{"text": m, "type": t, "start": s.start if s else None, "end": s.end if s else None}
                          for (m, t), s in zip(parsed.mentions, spans)]}


def _parsed_fields(parsed, row: dict) -> dict:
    return {"relations": [list(t) for t in parsed.relations], "label": parsed.label,
            "combinations": [[list(d), lab] for d, lab in parsed.combinations], "answer": parsed.answer}


def _joint_record(parsed, row: dict) -> dict:
    return _shown_mentions(parsed, row) | _parsed_fields(parsed, row)


class Headline(NamedTuple):
    """A dataset's headline score: a view of one part, and its name in tables."""
    part: str
    view: object
    title: str


@dataclass(frozen=True, kw_only=True)
class Family:
    """One task family: everything prompts, the parser, grounded decoding, the data, rewards and metrics
    need to know about it."""

    name: str
    definition: str  # prompt level 2, one line
    output_schema: str  # prompt level 4
    convert: Callable  # parser: (JSON value, labels, relation labels) -> (fields of Parsed | None, problems)
    target: Callable  # (row, spec) -> the gold answer as a JSON value (what parse reads back)
    example: Callable  # spec -> a valid answer shown in the prompt's schema level
    grammar: Callable  # (spec, nodes) -> the answer's schema tree, from constrained's node types (`nodes`)
    rows: Callable  # (dataset name, document, unit) -> data rows of one corpus document
    parts: tuple  # the parts of an answer, each scored on its own
    headline: Headline
    columns: dict  # metrics.dataset_table's columns: name -> path into the dataset's metrics
    record: Callable = _parsed_fields  # (parsed, row) -> the parsed answer's fields in a prediction record
    label_heading: str | None = "Labels"  # prompt level 3 heading; None: no label inventory shown
    marks_pair: bool = False  # the input marks the pair whose relation is asked (pairwise RE)
    reasoning_hint: str = "quote the words of the text that support each answer item"

    def part(self, name: str):
        return next((p for p in self.parts if p.name == name), None)

    @property
    def headline_part(self):
        return self.part(self.headline.part)

    def headline_view(self, scheme: str | None = None):
        """The headline view; for an entity headline, `scheme` picks another of nervaluate's schemes."""
        view = self.headline.view
        return view._replace(scheme=scheme) if scheme and isinstance(view, EntityView) else view

    def exactly_right(self, parsed, row: dict, spec) -> bool:
        """The answer parses and every part equals the gold one (per-example F1 1 under its exact view):
        the binary reward, the calibration figure's event and the confidence stage's target."""
        return parsed.ok and all(example_f1(p.counts(parsed, row, spec, p.exact_view)) == 1.0 for p in self.parts)

    def report(self, totals: dict, spec) -> dict:
        """The dataset's metrics from counts summed over its examples ({part name: {view: counts}})."""
        reports = {p.name: p.report(totals[p.name], spec) for p in self.parts}
        return reports[self.parts[0].name] if len(self.parts) == 1 else reports


# ---------------------------------------------------------------- gold targets and schema examples (JSON values)


def grouped_mentions(entities: list[dict], labels: list[str]) -> dict[str, list[str]]:
    """Gold mentions grouped by type, in text order, repeats kept (one per occurrence)."""
    grouped: dict[str, list[str]] = {label: [] for label in labels}
    for ent in sorted(entities or [], key=lambda e: (e["start"], e["end"])):
        grouped.setdefault(ent["type"], []).append(ent["text"])
    return grouped


def _first(labels) -> str:
    return next(iter(labels), "label")


def _no_mentions(spec: TaskSpec) -> dict:
    return {label: [] for label in spec.label_names}


def _ner_target(row: dict, spec: TaskSpec) -> dict:
    return grouped_mentions(row.get("entities"), spec.label_names)


def _re_target(row: dict, spec: TaskSpec) -> dict:
    return {"relation": row["label"]}


def _re_example(spec: TaskSpec) -> dict:
    return {"relation": _first(spec.labels)}


def _triples_target(row: dict, spec: TaskSpec) -> list:
    return [list(t) for t in RELATIONS.gold(row)]


def _triples_example(spec: TaskSpec) -> list:
    return [["head", _first(spec.labels), "tail"]]


def _nary_target(row: dict, spec: TaskSpec) -> list:
    return [{"drugs": list(drugs), "label": label} for drugs, label in COMBINATIONS.gold(row)]


def _nary_example(spec: TaskSpec) -> list:
    return [{"drugs": ["drug A", "drug B"], "label": _first(spec.labels)}]


def _joint_target(row: dict, spec: TaskSpec) -> dict:
    return {"entities": _ner_target(row, spec), "relations": _triples_target(row, spec)}


def _joint_example(spec: TaskSpec) -> dict:
    return {"entities": _no_mentions(spec), "relations": [["head", next(iter(spec.relation_labels), "REL"), "tail"]]}


def _qa_target(row: dict, spec: TaskSpec) -> dict:
    return {"answer": row.get("answer") or ""}


def _qa_example(spec: TaskSpec) -> dict:
    return {"answer": "..."}


# ---------------------------------------------------------------- answer grammars (grounded decoding)
# `nodes` carries constrained's node types and `nodes.mention`, a substring of the prompt's input text.


def _ner_grammar(spec: TaskSpec, nodes):
    return nodes.Object([(label, nodes.Array(nodes.mention), False) for label in spec.label_names])


def _triple(nodes, labels):
    return nodes.Tuple([nodes.mention, nodes.Label(labels), nodes.mention])


def _triples_grammar(spec: TaskSpec, nodes):
    return nodes.Array(_triple(nodes, spec.label_names))


def _joint_grammar(spec: TaskSpec, nodes):
    return nodes.Object([("entities", _ner_grammar(spec, nodes), True),
                         ("relations", nodes.Array(_triple(nodes, list(spec.relation_labels))), False)])


def _nary_grammar(spec: TaskSpec, nodes):
    return nodes.Array(nodes.Object([("drugs", nodes.Array(nodes.mention, min_items=1), True),
                                     ("label", nodes.Label(spec.label_names), True)]))


def _re_grammar(spec: TaskSpec, nodes):
    return nodes.Object([("relation", nodes.Label(spec.label_names), True)])


def _qa_grammar(spec: TaskSpec, nodes):
    return nodes.Object([("answer", nodes.Free(), True)])


# ---------------------------------------------------------------- the families

_ENTITY_COLUMNS = {"strict_f1": ("strict", "micro", "f1"), "lenient_f1": ("lenient", "strict", "micro", "f1"),
                   "partial_f1": ("partial", "micro", "f1"), "set_f1": ("set", "micro", "f1")}

NER = Family(
    name="ner", definition="find every mention of the entity types below, copied exactly from the text.",
    output_schema="JSON mapping each type to its mentions in text order",
    convert=converters.convert_ner, target=_ner_target, example=_no_mentions, grammar=_ner_grammar,
    rows=rows.ner_rows, record=_shown_mentions,
    parts=(ENTITIES,), headline=Headline("entities", EntityView(), "strict micro-F1"), columns=_ENTITY_COLUMNS,
    label_heading="Types", reasoning_hint="list candidate mentions with the words that show their type",
)
RE = Family(
    name="re", definition="classify the relation between the two marked entities.",
    output_schema='JSON {"relation": "<one label>"}',
    convert=converters.convert_re, target=_re_target, example=_re_example, grammar=_re_grammar,
    rows=rows.re_rows,
    parts=(LABEL,), headline=Headline("label", "micro", "micro-F1 (positive classes)"),
    columns={"micro_f1": ("micro", "f1"), "accuracy": ("accuracy",)}, marks_pair=True,
)
TRIPLES = Family(
    name="triples", definition="list every relation stated in the text as [head, relation, tail].",
    output_schema="JSON list of [head, relation, tail] triples, [] if none",
    convert=converters.convert_triples, target=_triples_target, example=_triples_example,
    grammar=_triples_grammar, rows=rows.triple_rows,
    parts=(RELATIONS,), headline=Headline("relations", "strict", "triple micro-F1"),
    columns={"triple_f1": ("strict", "f1")},
)
NARY = Family(
    name="nary", definition="list every combination of drugs given together, with its label.",
    output_schema='JSON list of {"drugs": [...], "label": "<label>"}, [] if none',
    convert=converters.convert_nary, target=_nary_target, example=_nary_example, grammar=_nary_grammar,
    rows=rows.nary_rows,
    parts=(COMBINATIONS,), headline=Headline("combinations", "pos_exact", "F1 pos exact"),
    columns={view: (view, "f1") for view in COMBINATIONS.views},
)
JOINT = Family(
    name="joint", definition="find the entities, then the relations between them.",
    output_schema='JSON {"entities": {type: [mentions]}, "relations": [[head, relation, tail]]}',
    convert=converters.convert_joint, target=_joint_target, example=_joint_example, grammar=_joint_grammar,
    rows=rows.joint_rows, record=_joint_record,
    parts=(ENTITIES, RELATIONS), headline=Headline("relations", "strict", "relation micro-F1"),
    columns={"entity_f1": ("entities", "strict", "micro", "f1"),
             "entity_lenient_f1": ("entities", "lenient", "strict", "micro", "f1"),
             "relation_f1": ("relations", "strict", "f1")},
    label_heading="Types",
)
QA = Family(
    name="qa", definition="answer the question briefly.", output_schema='JSON {"answer": "<short answer>"}',
    convert=converters.convert_qa, target=_qa_target, example=_qa_example, grammar=_qa_grammar,
    rows=rows.qa_rows,
    parts=(ANSWER,), headline=Headline("answer", "token_f1", "token F1"),
    columns={view: (view,) for view in ANSWER.views}, label_heading=None,
)

FAMILIES = {f.name: f for f in (NER, RE, TRIPLES, NARY, JOINT, QA)}
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
