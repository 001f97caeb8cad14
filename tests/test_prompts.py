import pytest

from grasp_lib.parsing import VALID, parse
from grasp_lib.prompts import LEVELS, build_messages, ner_target, system_prompt
from grasp_lib.tasks import get_task

SPEC = get_task("bc5cdr")


def test_each_level_adds_its_part():
    assert system_prompt(SPEC, []) == ""
    assert "Chemical = " in system_prompt(SPEC, ["labels"]) and "Task" not in system_prompt(SPEC, ["labels"])
    full = system_prompt(SPEC, ["role", "task", "labels", "schema"])
    assert full.index("Domain") < full.index("Task") < full.index("Types") < full.index("Output")
    shots = [{"text": "Aspirin helps.", "entities": [{"start": 0, "end": 7, "type": "Chemical", "text": "Aspirin"}]}]
    assert '{"Chemical": ["Aspirin"], "Disease": []}' in system_prompt(SPEC, ["few_shot"], shots)
    assert "<think>" in system_prompt(SPEC, ["reasoning"])


def test_unknown_level_is_an_error():
    with pytest.raises(ValueError, match="valid"):
        system_prompt(SPEC, ["roles"])


def test_messages_put_the_text_in_the_user_turn():
    messages = build_messages(SPEC, "Aspirin helps.", list(LEVELS[:4]))
    assert [m["role"] for m in messages] == ["system", "user"] and messages[1]["content"] == "Text: Aspirin helps."
    assert [m["role"] for m in build_messages(SPEC, "x", [])] == ["user"]


def test_target_round_trips_through_the_parser():
    entities = [{"start": 9, "end": 17, "type": "Disease", "text": "delirium"},
                {"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
                {"start": 20, "end": 28, "type": "Chemical", "text": "Naloxone"}]
    target = ner_target(entities, SPEC.label_names)
    assert target == '{"Chemical": ["Naloxone", "Naloxone"], "Disease": ["delirium"]}'
    parsed = parse(target, tuple(SPEC.label_names))
    assert parsed.status == VALID
    assert sorted(parsed.mentions) == sorted((e["text"], e["type"]) for e in entities)


class _Tokenizer:
    """Chat template: the messages' contents joined; a token per character."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "|".join(m["content"] for m in messages)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(text)}


ROWS = [{"id": "1", "task": "ner", "dataset": "bc5cdr", "text": "Naloxone.",
         "entities": [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"}]},
        {"id": "2", "task": "ner", "dataset": "bc5cdr", "text": "Other.", "entities": []},
        {"id": "3", "task": "ner", "dataset": "ncbi-disease", "text": "Cancer.",
         "entities": [{"start": 0, "end": 6, "type": "Disease", "text": "Cancer"}]}]


def test_first_rows_one_per_dataset_in_order():
    from grasp_lib.prompts import first_rows

    assert {name: row["id"] for name, row in first_rows(ROWS).items()} == {"bc5cdr": "1", "ncbi-disease": "3"}


def test_levels_by_dataset_one_column_per_dataset():
    from grasp_lib.prompts import first_rows, level_table, levels_by_dataset

    table = levels_by_dataset(first_rows(ROWS), ["role", "task"], _Tokenizer(), [])
    assert [r["levels"] for r in table] == ["(none)", "role", "role+task"]
    alone = level_table(get_task("ncbi-disease"), "Cancer.", ["role", "task"], _Tokenizer(), [])
    assert [r["ncbi-disease"] for r in table] == [r["tokens"] for r in alone]


def test_sft_examples_text_shows_prompt_and_target_per_dataset():
    from types import SimpleNamespace

    from grasp_lib.prompts import build_target, first_rows, sft_examples_text

    params = SimpleNamespace(prompt=SimpleNamespace(levels=["role", "task"]))
    text = sft_examples_text(first_rows(ROWS), params, [], _Tokenizer())
    assert text.count("=====") == 4 and "===== ncbi-disease (ner): prompt" in text
    assert build_target(ROWS[0], get_task("bc5cdr")) in text
