import pickle

import pytest

from grasp_lib.rewards import EntityReward, build_rewards, format_reward

TEXT = "Naloxone reversed clonidine-induced hypotension."
GOLD = [{"start": 0, "end": 8, "type": "Chemical", "text": "Naloxone"},
        {"start": 18, "end": 27, "type": "Chemical", "text": "clonidine"},
        {"start": 36, "end": 47, "type": "Disease", "text": "hypotension"}]


def entity(completion, gold=GOLD, text=TEXT, dataset="bc5cdr"):
    return EntityReward()([completion], text=[text], entities=[gold], dataset=[dataset], task=["ner"])[0]


@pytest.mark.parametrize("completion, expected", [
    # perfect answer
    ('{"Chemical": ["Naloxone", "clonidine"], "Disease": ["hypotension"]}', 1.0),
    # one of three found: 2 * 1 / (1 + 3)
    ('{"Chemical": ["Naloxone"], "Disease": []}', 0.5),
    # empty prediction against non-empty gold
    ('{"Chemical": [], "Disease": []}', 0.0),
    # right span, wrong type: credit 0.5 for that pair -> 2 * (1 + 1 + 0.5) / 6
    ('{"Chemical": ["Naloxone", "clonidine", "hypotension"], "Disease": []}', 2 * 2.5 / 6),
    # overlapping span "clonidine-induced hypotension" [18,47) vs hypotension [36,47): IoU 11/29, x0.5;
    # it also overlaps clonidine (IoU 9/29 x0.5 x0.5 wrong type) but is matched once: 2 * (1 + 0.5*11/29) / (2 + 3)
    ('{"Chemical": ["Naloxone"], "Disease": ["clonidine-induced hypotension"]}', 2 * (1 + 0.5 * 11 / 29) / 5),
    # a duplicate of a correct item: the repeat finds no second occurrence -> unlocated -> 2 * 1 / (2 + 3)
    ('{"Chemical": ["Naloxone", "Naloxone"], "Disease": []}', 2 * 1 / 5),
    # hallucinated mention (not in text) adds to |pred| only: 2 * 3 / (4 + 3)
    ('{"Chemical": ["Naloxone", "clonidine", "aspirin"], "Disease": ["hypotension"]}', 6 / 7),
    # unparsable
    ('The entities are naloxone and hypotension.', 0.0),
])
def test_entity_reward_hand_computed(completion, expected):
    assert entity(completion) == pytest.approx(expected)


def test_entity_reward_edge_cases():
    assert entity('{"Chemical": [], "Disease": []}', gold=[]) == 1.0  # empty gold, empty answer
    assert entity('{"Chemical": ["Naloxone"]}', gold=[]) == 0.0  # empty gold, something predicted
    assert entity('{"Chemical": ["x"]}', dataset="ddi") is None  # a row whose family has no entities
    unicode_text = "Ναλοξόνη reversed hypotension."
    gold = [{"start": 0, "end": 8, "type": "Chemical", "text": "Ναλοξόνη"}]
    assert entity('{"Chemical": ["Ναλοξόνη"]}', gold=gold, text=unicode_text) == 1.0


def test_order_of_predicted_items_does_not_matter():
    a = entity('{"Chemical": ["Naloxone", "clonidine"], "Disease": ["hypotension"]}')
    b = entity('{"Disease": ["hypotension"], "Chemical": ["clonidine", "Naloxone"]}')
    assert a == b == 1.0


@pytest.mark.parametrize("completion, expected", [
    ('{"Chemical": ["Naloxone"], "Disease": []}', 1.0),
    ('```json\n{"Chemical": ["Naloxone"]}\n```', 0.5),
    ('{"Chemical": ["Naloxone"', 0.5),
    ('nothing here', 0.0),
])
def test_format_reward(completion, expected):
    assert format_reward([completion], dataset=["bc5cdr"]) == [expected]


def test_conversational_completions_are_read():
    completion = [{"role": "assistant", "content": '{"Chemical": ["Naloxone"], "Disease": []}'}]
    assert format_reward([completion], dataset=["bc5cdr"]) == [1.0]


def test_registry_names_are_the_logging_keys_and_picklable():
    funcs = build_rewards(["format", "entity"], {"entity": {"overlap_weight": 0.3, "type_credit": 0.0}})
    assert [f.__name__ for f in funcs] == ["format", "entity"]
    restored = pickle.loads(pickle.dumps(funcs[1]))
    assert restored.__name__ == "entity" and restored.type_credit == 0.0
    with pytest.raises(KeyError, match="known"):
        build_rewards(["formatt"])
