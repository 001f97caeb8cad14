"""The precision switch (params `precision: auto | fp32 | bf16`): what auto picks and says, bf16 mixed-precision
training (the shared-prefix step against TRL's stock step, fp32 master weights), bf16 generation (the engine
against model.generate on the same bf16 weights), and fp32 kept bit for bit where bf16 is not native."""

import logging

import pytest
import torch

from grasp_lib import infer, models
from grasp_lib import params as P
from grasp_lib.train import prefix, sft
from grasp_lib.preflight import trainer_defaults

TEXTS = ["Aspirin caused bleeding.", "Long-term use of lithium may lead to renal failure in some patients.",
         "No adverse effect.", "Cisplatin nephrotoxicity was dose dependent in this cohort of children."]


def conversation(system: str, text: str) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Text: {text}"}]


def fresh_model():
    return models.load_model("tiny-random", None)[:2]


def sft_rows():
    from datasets import Dataset

    answers = ['{"Chemical": ["Aspirin"], "Disease": ["bleeding"]}', '{"Chemical": [], "Disease": []}',
               '{"Chemical": ["lithium"], "Disease": ["renal failure"]}', '{"Chemical": ["Cisplatin"], "Disease": []}']
    return Dataset.from_list([{"prompt": conversation("Extract chemicals and diseases as JSON.", text),
                               "completion": [{"role": "assistant", "content": answer}]}
                              for text, answer in zip(TEXTS, answers)])


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_bf16_probe_and_says_why_not(monkeypatch, caplog, native, expected):
    monkeypatch.setattr(models, "bf16_native", lambda: (native, "the CPU has neither AMX nor avx512_bf16"))
    with caplog.at_level(logging.INFO, logger="grasp_lib.models"):
        assert models.resolve_precision("auto") == expected
    assert ("precision auto: fp32, because the CPU has neither" in caplog.text) == (not native)


@pytest.mark.parametrize("forced", ["fp32", "bf16"])
def test_forced_precision_ignores_the_probe(monkeypatch, forced):
    monkeypatch.setattr(models, "bf16_native", lambda: pytest.fail("a forced precision must not probe"))
    assert models.resolve_precision(forced) == forced
    assert trainer_defaults("out", 0, forced)["bf16"] is (forced == "bf16")


def test_unknown_precision_is_refused_when_params_load(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("precision: fp16\n")
    with pytest.raises(P.ParamsError, match="precision = 'fp16': expected 'auto', 'fp32' or 'bf16'"):
        P.load(path)


def body_dtypes(model) -> set:
    """Dtypes of every weight but the LM head's (a generation copy keeps its head fp32)."""
    head = model.get_output_embeddings().weight
    return {p.dtype for p in model.parameters() if p is not head}


# ---------------------------------------------------------------- training


def sft_step_bf16(shared: bool, tmp_path, precision: str):
    """Loss and gradients of one SFT batch under the trainer's own autocast (accelerate's, as in training)."""
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = fresh_model()
    cls = prefix.with_shared_prefix(SFTTrainer, prefix.SharedPrefixSFT, shared)
    config = SFTConfig(**trainer_defaults(tmp_path, 0, precision) | {"per_device_train_batch_size": 4,
                                                                     "disable_tqdm": True})
    trainer = cls(model=model, args=config, train_dataset=sft_rows(), processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    with trainer.accelerator.autocast():
        loss = trainer.compute_loss(trainer.model, batch)
    trainer.model.zero_grad()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}


def flat(grads: dict) -> torch.Tensor:
    return torch.cat([g.float().flatten() for _, g in sorted(grads.items())])


def test_shared_prefix_step_in_bf16_matches_the_stock_step_in_bf16(tmp_path, packed_calls):
    """Both bf16 steps round differently (other matmul shapes), so neither equals fp32. The tolerance is bf16's
    own rounding, measured here: the shared step may differ from the stock bf16 step by at most twice as much
    as the stock bf16 step differs from the fp32 one (relative L2 over every gradient), and it must be far
    closer to it than an unrelated gradient (the fp32 step of another batch order would be ~1)."""
    loss_fp32, grads_fp32 = sft_step_bf16(False, tmp_path / "fp32", "fp32")
    loss_stock, grads_stock = sft_step_bf16(False, tmp_path / "stock", "bf16")
    assert packed_calls == []
    loss_shared, grads_shared = sft_step_bf16(True, tmp_path / "shared", "bf16")
    assert packed_calls == [4]
    reference, stock, shared = flat(grads_fp32), flat(grads_stock), flat(grads_shared)
    bf16_noise = (stock - reference).norm() / reference.norm()
    assert 0 < bf16_noise < 0.05  # bf16 really ran (not bit-equal to fp32), and it is close
    assert (shared - stock).norm() / stock.norm() <= 2 * bf16_noise
    assert abs(loss_shared - loss_stock) <= 2 * abs(loss_stock - loss_fp32) + 1e-3 * abs(loss_fp32)


@pytest.fixture
def packed_calls(monkeypatch) -> list[int]:
    calls, pack = [], prefix.pack_rows
    monkeypatch.setattr(prefix, "pack_rows", lambda rows, *a, **k: calls.append(len(rows)) or pack(rows, *a, **k))
    return calls


def smoke_params(tmp_path, precision: str, steps: int = 2) -> P.Params:
    from grasp_lib import examples

    params = P.load("params/smoke.yaml", {"precision": precision, "sft.max_steps": steps, "stages": ["sft"],
                                          "lora": None})
    examples.prepare(params, tmp_path)
    return params


def test_bf16_sft_runs_the_packed_forward_in_bf16_and_keeps_fp32_master_weights(tmp_path, monkeypatch, packed_calls):
    seen = {"activations": set(), "weights": set()}
    load = sft.load_model

    def watched(*args, **kwargs):
        model, tokenizer, peft_config = load(*args, **kwargs)
        model.model.layers[0].mlp.down_proj.register_forward_hook(
            lambda module, inputs, output: seen["activations"].add(output.dtype))
        seen["model"] = model
        return model, tokenizer, peft_config

    monkeypatch.setattr(sft, "load_model", watched)
    sft.run(smoke_params(tmp_path, "bf16"), tmp_path)
    assert packed_calls and seen["activations"] == {torch.bfloat16}  # autocast reached the packed forward
    assert {p.dtype for p in seen["model"].parameters()} == {torch.float32}  # master weights stay fp32
    saved = models.load_model(str(tmp_path / "models" / "sft"))[0]
    assert {p.dtype for p in saved.parameters()} == {torch.float32}


def test_bf16_grpo_rolls_out_on_a_bf16_copy_and_trains_fp32_master_weights(tmp_path, monkeypatch):
    """The trainer's model carries accelerate's autocast wrapper; the rollout copy must not (it mixed fp32 keys
    into the bf16 cache), and the policy it trains stays fp32."""
    from grasp_lib.train import grpo, grpo_trainer

    seen = {"rollout": set(), "policy": set()}
    cast = grpo_trainer.cast_for_generation

    def watched(model, precision, into=None):
        seen["policy"] |= {p.dtype for p in model.parameters()}
        copy = cast(model, precision, into)
        seen["rollout"] |= body_dtypes(copy)
        return copy

    monkeypatch.setattr(grpo_trainer, "cast_for_generation", watched)
    params = smoke_params(tmp_path, "bf16")
    params.stages = ["sft", "grpo"]
    sft.run(params, tmp_path)
    summary = grpo.run(params, tmp_path)
    assert summary["steps"] == params.grpo["max_steps"]
    assert seen == {"rollout": {torch.bfloat16}, "policy": {torch.float32}}


def test_fp32_where_bf16_is_not_native_is_bit_for_bit_the_forced_fp32_run(tmp_path, monkeypatch):
    """`auto` on a CPU without native bf16 trains exactly as `precision: fp32` (today's behaviour)."""
    monkeypatch.setattr(models, "bf16_native", lambda: (False, "no bf16 here"))
    weights = {}
    for precision in ("fp32", "auto"):
        run_dir = tmp_path / precision
        sft.run(smoke_params(run_dir, precision), run_dir)
        weights[precision] = models.load_model(str(run_dir / "models" / "sft"))[0].state_dict()
    assert weights["fp32"].keys() == weights["auto"].keys()
    assert all(torch.equal(weights["fp32"][k], weights["auto"][k]) for k in weights["fp32"])


# ---------------------------------------------------------------- generation


def test_bf16_engine_equals_model_generate_in_bf16_token_for_token():
    model, tokenizer = fresh_model()
    conversations = [conversation("You extract chemicals and diseases. Answer in JSON.", t) for t in TEXTS]
    fast = infer.generate_result(model, tokenizer, conversations, max_new_tokens=16, progress=False,
                                 precision="bf16")
    plain = infer.generate_result(model, tokenizer, conversations, max_new_tokens=16, progress=False,
                                  engine="plain", precision="bf16")
    fp32 = infer.generate_result(model, tokenizer, conversations, max_new_tokens=16, progress=False)
    assert fast.precision == plain.precision == "bf16" and fp32.precision == "fp32"
    assert fast.token_ids == plain.token_ids
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the caller's model is not cast
    engine = infer.Engine(model, tokenizer, precision="bf16")
    assert body_dtypes(engine.model) == {torch.bfloat16}
    head = engine.model.get_output_embeddings().weight
    assert head.dtype == torch.float32 and head is not engine.model.get_input_embeddings().weight
    assert torch.equal(head, model.get_output_embeddings().weight)  # the fp32 head, not a bf16 round trip
    assert engine.model.model.rotary_emb.inv_freq.dtype == torch.float32  # positions stay exact


def test_bf16_engine_keeps_its_cache_in_bf16(monkeypatch):
    model, tokenizer = fresh_model()
    engine = infer.Engine(model, tokenizer, precision="bf16")
    seen = []
    fill = infer.KVCache.fill
    monkeypatch.setattr(infer.KVCache, "fill", lambda self, *a: fill(self, *a) or seen.append(self.layers[0].key_buffer.dtype))
    ids = infer.encode_conversations(tokenizer, [conversation("S", TEXTS[0])], None)[0][0]
    out = engine.generate_ids([ids], 4, infer.Sampling(do_sample=True, temperature=0.7), seed=0)
    assert seen == [torch.bfloat16] and len(out[0][0]) >= 1


def test_int8_needs_an_fp32_prefill():
    model, tokenizer = fresh_model()
    with pytest.raises(ValueError, match="int8 decodes after an fp32 prefill"):
        infer.Engine(model, tokenizer, int8=True, precision="bf16")


def test_the_lm_head_computes_fp32_logits_under_autocast_and_is_plain_linear_in_fp32():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 50, bias=False)
    head = models.Fp32Head(16, 50, bias=False)
    head.load_state_dict(linear.state_dict())
    hidden = torch.randn(3, 16)
    assert torch.equal(head(hidden), linear(hidden))  # fp32: exactly nn.Linear
    with torch.autocast("cpu", dtype=torch.bfloat16):
        coarse, fine = linear(hidden), head(hidden)
    assert coarse.dtype == torch.bfloat16 and fine.dtype == torch.float32
    assert torch.equal(fine, linear(hidden))
    model = fresh_model()[0]
    assert type(model.get_output_embeddings()) is models.Fp32Head  # load_model swaps it in
