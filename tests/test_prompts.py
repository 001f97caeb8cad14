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
