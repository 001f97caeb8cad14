"""The task registry, and one definition per task family that prompts, parsing, rewards and metrics share.

registry (datasets: family, labels, metric), families (one `Family` record per family), parts (the parts
of an answer and how each is scored), scoring (counts and the one F1), converters (JSON answer -> parsed
fields), rows (corpus document -> data rows). The names below are the package's API.
"""

from .families import FAMILIES, OUTPUT_SCHEMAS, Family, Headline, family_of, grouped_mentions, target_json
from .parts import (ANSWER, COMBINATIONS, ENTITIES, LABEL, READINGS, RELATIONS, SCHEMES, SET_VIEW, Entities,
                    EntityView, ItemPart, Part, drug_set, set_credit)
from .registry import TASKS, TaskSpec, get_task, label_lines
from .scoring import (add_counts, answer_tokens, example_f1, f1, label_block, norm, prf, scored, soft_f1, tally,
                      token_f1)

__all__ = ["FAMILIES", "OUTPUT_SCHEMAS", "Family", "Headline", "family_of", "grouped_mentions", "target_json",
           "ANSWER", "COMBINATIONS", "ENTITIES", "LABEL", "READINGS", "RELATIONS", "SCHEMES", "SET_VIEW", "Entities",
           "EntityView", "ItemPart", "Part", "drug_set", "set_credit", "TASKS", "TaskSpec", "get_task", "label_lines",
           "add_counts", "answer_tokens", "example_f1", "f1", "label_block", "norm", "prf", "scored", "soft_f1",
           "tally", "token_f1"]
