"""Parser converters: a family's JSON answer (already decoded) -> the fields of parsing.Parsed, plus the
problems found. Items of the wrong shape are dropped and reported, never guessed."""

from __future__ import annotations


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


def convert_ner(value, labels, _relation_labels):
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


def convert_triples(value, labels, _relation_labels):
    """[["head", "RELATION", "tail"], ...]"""
    triples, dropped = _triples_from(value, labels)
    if triples is None:
        return None, "; ".join(dropped)
    return {"relations": tuple(triples)}, "; ".join(dropped)


def convert_re(value, labels, _relation_labels):
    """{"relation": "LABEL"} for the marked pair; the label must be one of the task's labels."""
    if not isinstance(value, dict) or not isinstance(value.get("relation"), str):
        return None, 'expected {"relation": "<label>"}'
    if value["relation"] not in labels:
        return None, f"unknown relation label {value['relation']!r}"
    extra = sorted(set(value) - {"relation"})
    return {"label": value["relation"]}, (f"extra keys {extra}" if extra else "")


def convert_nary(value, labels, _relation_labels):
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


def convert_joint(value, labels, relation_labels):
    """{"entities": {"Type": [...]}, "relations": [["head", "REL", "tail"], ...]}"""
    if not isinstance(value, dict) or "entities" not in value:
        return None, 'expected {"entities": {...}, "relations": [...]}'
    mentions, problems = _to_mentions(value["entities"], labels)
    if mentions is None:
        return None, problems
    triples, dropped = _triples_from(value.get("relations", []), relation_labels)
    reasons = "; ".join([problems] * bool(problems) + (dropped or []))
    return {"mentions": tuple(mentions), "relations": tuple(triples or [])}, reasons


def convert_qa(value, _labels, _relation_labels):
    """{"answer": "..."}"""
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
        return None, 'expected {"answer": "<text>"}'
    return {"answer": value["answer"]}, ""
