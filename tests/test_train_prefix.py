"""Shared-prefix training (grasp_lib/train/prefix.py, packing.py): the packed forward gives TRL's stock loss and every
parameter gradient (within 1e-5 relative) for SFT, GRPO (beta 0 and beta > 0) and DPO on tiny-random,
with mixed prompt and completion lengths and padding on both sides; a short SFT run with the switch on
and off logs the same loss curve."""

import json
import shutil

import pytest
import torch

from grasp_lib import examples
from grasp_lib import params as P
from grasp_lib.models import load_model
from grasp_lib.train import packing, prefix, sft
from grasp_lib.preflight import trainer_defaults

RTOL = 1e-5
SYSTEMS = ["You extract chemicals and diseases from PubMed text. Answer in JSON.",
           "You label the relation between two marked entities. Answer in JSON."]
TEXTS = ["Aspirin caused bleeding.", "Long-term use of lithium may lead to renal failure in some patients.",
         "No adverse effect.", "Cisplatin nephrotoxicity was dose dependent in this cohort of children."]
ANSWERS = ['{"Chemical": ["Aspirin"], "Disease": ["bleeding"]}', '{"Chemical": [], "Disease": []}',
           '{"Chemical": ["lithium"], "Disease": ["renal failure", "nephrotoxicity", "kidney damage"]}',
           '{"Chemical": ["Cisplatin"], "Disease": ["nephrotoxicity"]}']


@pytest.fixture
def packed_calls(monkeypatch) -> list[int]:
    """Rows packed per call of the packed forward: proves the shared path ran (it falls back to TRL's own)."""
    calls, pack = [], prefix.pack_rows
    monkeypatch.setattr(prefix, "pack_rows", lambda rows, *a, **k: calls.append(len(rows)) or pack(rows, *a, **k))
    return calls


def conversation(system: str, text: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Text: {text}"}]


def sft_dataset(tasks: int):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": conversation(SYSTEMS[i % tasks], text),
                               "completion": [{"role": "assistant", "content": answer}]}
                              for i, (text, answer) in enumerate(zip(TEXTS, ANSWERS))])


def fresh_model():
    model, tokenizer, _ = load_model("tiny-random", None)
    return model, tokenizer


def step_gradients(model, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same(stock: dict, shared: dict, rtol: float = RTOL) -> None:
    assert stock.keys() == shared.keys() and stock
    for name, grad in stock.items():
        scale = grad.abs().max().clamp(min=1e-30)
        assert (shared[name] - grad).abs().max() <= rtol * scale, name


def sft_step(shared: bool, tmp_path, tasks: int, lora: dict | None = None):
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = fresh_model()
    cls = prefix.with_shared_prefix(SFTTrainer, prefix.SharedPrefixSFT, shared)
    config = SFTConfig(**trainer_defaults(tmp_path, 0) | {"per_device_train_batch_size": 4, "disable_tqdm": True})
    trainer = cls(model=model, args=config, train_dataset=sft_dataset(tasks), processing_class=tokenizer,
                  peft_config=LoraConfig(task_type="CAUSAL_LM", **lora) if lora else None)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    return loss, step_gradients(trainer.model, loss), trainer._metrics["train"], batch


@pytest.mark.parametrize("tasks,lora", [(1, None), (2, None), (1, {"r": 4, "lora_alpha": 8, "target_modules": "all-linear"})])
def test_sft_step_equals_the_stock_step(tmp_path, tasks, lora, packed_calls):
    loss_a, grads_a, metrics_a, batch = sft_step(False, tmp_path / "a", tasks, lora)
    assert packed_calls == []
    loss_b, grads_b, metrics_b, _ = sft_step(True, tmp_path / "b", tasks, lora)
    assert packed_calls == [4]
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()  # mixed lengths, right padding
    assert torch.isclose(loss_a, loss_b, rtol=RTOL)
    assert_same(grads_a, grads_b)
    for key in ("entropy", "mean_token_accuracy", "num_tokens"):
        assert metrics_b[key] == pytest.approx(metrics_a[key], rel=1e-4), key


def grpo_trainer(shared: bool, tmp_path, beta: float):
    from datasets import Dataset
    from trl import GRPOConfig

    from grasp_lib.train.grpo_trainer import GraspGRPOTrainer

    model, tokenizer = fresh_model()
    config = GRPOConfig(**trainer_defaults(tmp_path, 0) | {
        "per_device_train_batch_size": 6, "num_generations": 3, "max_completion_length": 8, "beta": beta,
        "temperature": 0.7, "disable_tqdm": True})
    dataset = Dataset.from_list([{"prompt": conversation(SYSTEMS[0], t)} for t in TEXTS])
    return GraspGRPOTrainer(model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                            args=config, train_dataset=dataset, processing_class=tokenizer, shared_prefix=shared)


def grpo_inputs(tokenizer) -> dict:
    """Two prompts of different lengths, left padded; three completions each of lengths 1..8, right padded."""
    prompts = [tokenizer.apply_chat_template(conversation(SYSTEMS[0], t), add_generation_prompt=True, tokenize=False)
               for t in TEXTS[:2]]
    encoded = tokenizer(prompts, padding=True, padding_side="left", add_special_tokens=False, return_tensors="pt")
    generator = torch.Generator().manual_seed(0)
    completion_ids = torch.randint(10, 2000, (6, 8), generator=generator)
    completion_mask = (torch.arange(8)[None] < torch.tensor([3, 8, 1, 5, 8, 2])[:, None]).long()
    return {"prompt_ids": encoded["input_ids"].repeat_interleave(3, 0),
            "prompt_mask": encoded["attention_mask"].repeat_interleave(3, 0),
            "completion_ids": completion_ids, "completion_mask": completion_mask,
            "advantages": torch.tensor([1.0, -0.5, -0.5, 0.3, 0.9, -1.2]),
            "num_items_in_batch": completion_mask.sum()}


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_and_gradients_equal_the_stock_step(tmp_path, beta, packed_calls):
    results = []
    for shared in (False, True):
        trainer = grpo_trainer(shared, tmp_path / str(shared), beta)
        inputs = grpo_inputs(trainer.processing_class)
        assert inputs["prompt_mask"].min() == 0  # left padding in the prompts, right padding in the completions
        if beta:
            ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
            mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
            with torch.no_grad():
                ref, _, _ = trainer._get_per_token_logps_and_entropies(trainer.ref_model, ids, mask, 8, batch_size=6)
            inputs["ref_per_token_logps"] = ref
        trainer.model.train()
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop
        loss = trainer._compute_loss(trainer.model, inputs)
        results.append((loss, step_gradients(trainer.model, loss), inputs.get("ref_per_token_logps"),
                        trainer._metrics["train"]["entropy"]))
    (loss_a, grads_a, ref_a, entropy_a), (loss_b, grads_b, ref_b, entropy_b) = results
    assert packed_calls == [6, 6] if beta else [6]  # reference (beta > 0), then the policy
    assert torch.isclose(loss_a, loss_b, rtol=RTOL)
    assert_same(grads_a, grads_b)
    assert entropy_b == pytest.approx(entropy_a, rel=1e-4)
    if beta:
        assert torch.allclose(ref_a, ref_b, atol=1e-5)


def test_dpo_loss_and_gradients_equal_the_stock_step(tmp_path, packed_calls):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [{"prompt": conversation(SYSTEMS[0], t), "chosen": [{"role": "assistant", "content": a}],
             "rejected": [{"role": "assistant", "content": b}]} for t, a, b in zip(TEXTS, ANSWERS, ANSWERS[::-1])]
    results = []
    for shared in (False, True):
        model, tokenizer = fresh_model()
        cls = prefix.with_shared_prefix(DPOTrainer, prefix.SharedPrefixDPO, shared)
        config = DPOConfig(**trainer_defaults(tmp_path / str(shared), 0) | {"per_device_train_batch_size": 4,
                                                                           "disable_tqdm": True})
        trainer = cls(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, batch)
        results.append((loss, step_gradients(trainer.model, loss)))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert packed_calls == [8, 8]  # policy and reference: 4 chosen and 4 rejected rows each
    assert torch.isclose(loss_a, loss_b, rtol=RTOL)
    assert_same(grads_a, grads_b)


def test_packed_layout_shares_each_prefix_once_and_lets_a_token_see_its_ancestors_only():
    packed = packing.pack_rows([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3, 6, 7], [9]])
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 2, 3, 4, 0]]
    assert packed.nodes == [[0, 1, 2, 3], [0, 1, 4], [0, 1, 2, 5, 6], [7]]
    seen = {i: packed.allowed[0, 0, i].nonzero().flatten().tolist() for i in range(8)}
    assert seen == {0: [0], 1: [0, 1], 2: [0, 1, 2], 3: [0, 1, 2, 3], 4: [0, 1, 4], 5: [0, 1, 2, 5],
                    6: [0, 1, 2, 5, 6], 7: [7]}


def test_a_packed_row_that_would_grow_past_the_cap_starts_another_and_pads_to_itself():
    packed = packing.pack_rows([[1, 2, 3], [1, 2, 4], [1, 5, 6]], max_tokens=4)
    assert packed.input_ids.tolist() == [[1, 2, 3, 4], [1, 5, 6, 0]]
    assert packed.nodes == [[0, 1, 2], [0, 1, 3], [4, 5, 6]]
    assert packed.allowed[1, 0, 3].nonzero().flatten().tolist() == [3]


def test_other_attention_implementations_keep_trl_s_forward():
    model, _ = fresh_model()
    model.config._attn_implementation = "flash_attention_2"
    with pytest.warns(UserWarning, match="shared prefix off"):
        assert prefix.shared_forward(model) is model


def test_prompt_grouped_sampler_fills_batches_with_one_prompt_seeded():
    keys = ["a"] * 7 + ["b"] * 5 + ["c"] * 3
    orders = [list(prefix.PromptGroupedSampler(keys, 3, seed=5)) for _ in range(2)]
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(15))
    batches = [[keys[i] for i in orders[0][j:j + 3]] for j in range(0, 15, 3)]
    assert [len(set(b)) for b in batches] == [1, 1, 1, 1, 2]  # a, a, b, c full; the leftovers a, b, b last
    assert sorted(b[0] for b in batches[:4]) == ["a", "a", "b", "c"] and sorted(batches[4]) == ["a", "b", "b"]
    sampler = prefix.PromptGroupedSampler(keys, 3, seed=5)
    assert list(sampler) != list(sampler)  # a new draw each epoch


def sft_losses(params, run_dir) -> list[float]:
    sft.run(params, run_dir)
    log = [json.loads(line) for line in (run_dir / "results" / "sft_log.jsonl").read_text().splitlines()]
    return [entry["loss"] for entry in log if "loss" in entry]


def test_sft_run_logs_the_same_loss_curve_with_the_switch_on_and_off(tmp_path, packed_calls):
    overrides = {"stages": ["sft"], "lora": None, "sft.max_steps": 6, "sft.learning_rate": 3e-3,
                 "sft.train_sampling_strategy": "group_by_length"}
    params = P.load("params/smoke.yaml", overrides)
    examples.prepare(params, tmp_path / "on")
    shutil.copytree(tmp_path / "on" / "data", tmp_path / "off" / "data")
    on = sft_losses(params, tmp_path / "on")
    assert len(packed_calls) == 6
    off = sft_losses(P.load("params/smoke.yaml", overrides | {"shared_prefix": False}), tmp_path / "off")
    assert len(packed_calls) == 6
    assert len(on) == 6 and on[-1] < on[0] - 0.5  # it learns
    assert on == pytest.approx(off, rel=1e-4)
