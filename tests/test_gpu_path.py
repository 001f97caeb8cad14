"""The GPU path on a CPU: what breaks on first contact with CUDA, Unsloth, vLLM, DDP and ZeRO-3, checked
with stubs where only a GPU could run it (the rest is in `make gpu-check`). Marked `pins`: these also run
under the GPU pin set (trl 1.15, transformers 5.17) in `make test-gpu-pins`."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from grasp_lib import examples, models
from grasp_lib import params as P
from grasp_lib.train import common, confidence, dpo, grpo, grpo_trainer, sft

pytestmark = pytest.mark.pins
LORA = {"r": 4, "lora_alpha": 8, "target_modules": "all-linear"}


# ---------------------------------------------------------------- 1, 3, 4: GRPO rollouts


def test_rollout_hook_drops_a_keyword_the_installed_trl_lacks():
    seen = []

    def unwrap_115(model, accelerator, gather_deepspeed3_params=True, generation_kwargs=None):  # trl 1.15
        seen.append(gather_deepspeed3_params)

    def unwrap_116(model, accelerator, gather_deepspeed3_params=True, generation_kwargs=None,
                   gradient_checkpointing_kwargs=None):
        seen.append(gradient_checkpointing_kwargs)

    optional = {"gradient_checkpointing_kwargs"}
    grpo_trainer.accepted_kwargs_only(unwrap_115, optional)("m", "a", gather_deepspeed3_params=False,
                                                    gradient_checkpointing_kwargs={"x": 1})
    grpo_trainer.accepted_kwargs_only(unwrap_116, optional)("m", "a", gradient_checkpointing_kwargs={"x": 1})
    assert seen == [False, {"x": 1}]
    with pytest.raises(TypeError):  # only the named keyword is dropped; a real typo still fails
        grpo_trainer.accepted_kwargs_only(unwrap_115, optional)("m", "a", gather_deepspeed=False)


def test_fast_rollouts_step_aside_for_vllm_before_reading_the_generation_config():
    trainer = object.__new__(grpo_trainer.GraspGRPOTrainer)  # TRL sets no generation_config with vLLM
    trainer.use_vllm = True
    assert trainer._engine_applies(None, {}) is False


def test_under_unsloth_generation_goes_through_unsloths_own_path(monkeypatch):
    monkeypatch.delenv("GRASP_ROLLOUTS", raising=False)
    assert grpo.fast_rollouts() and models.generation_engine("fast") == "fast"
    monkeypatch.setattr(models, "USE_UNSLOTH", True)
    assert not grpo.fast_rollouts()  # TRL's GRPOTrainer as Unsloth patched it
    assert models.generation_engine("fast") == "plain"  # model.generate, which Unsloth patches
    monkeypatch.setattr(models, "USE_UNSLOTH", False)
    monkeypatch.setenv("GRASP_ROLLOUTS", "plain")
    assert not grpo.fast_rollouts()


# ---------------------------------------------------------------- 5, 7, Also: what each stage loads, and when


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def all_stages(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stages")
    params = P.load("params/smoke.yaml", {
        "stages": ["sft", "confidence", "dpo", "grpo"], "data.confidence_size": 2,
        "prompt.levels": ["task", "schema", "confidence"], "unsloth": {"fast_inference": True}})
    examples.prepare(params, run_dir)
    return params, run_dir


@pytest.mark.parametrize("stage", [sft, confidence, dpo, grpo], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_each_stage_builds_its_trainer_config_before_loading_the_model(stage, all_stages, monkeypatch):
    """ZeRO-3 loads sharded only when a TrainingArguments exists at load time; the LoRA gets the params
    seed; only GRPO may start Unsloth's vLLM engine (one per notebook kernel)."""
    import transformers

    params, run_dir = all_stages
    configs, loads = [], []
    original = transformers.TrainingArguments.__post_init__
    monkeypatch.setattr(transformers.TrainingArguments, "__post_init__",
                        lambda self: (configs.append(type(self).__name__), original(self))[1])

    def fake_load(name, lora=None, **options):
        loads.append((list(configs), options))
        raise Stop

    monkeypatch.setattr(stage, "load_model", fake_load)
    with pytest.raises(Stop):
        stage.run(params, run_dir)
    configs_at_load, options = loads[0]
    assert configs_at_load, "the model was loaded before any trainer config existed"
    assert options["seed"] == params.seed
    assert options.get("vllm", False) is (stage is grpo)
    assert options["unsloth"] == {"fast_inference": True}


def test_fast_inference_only_for_a_stage_that_generates_with_vllm(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: object())  # vllm, bitsandbytes
    settings = {"fast_inference": True, "gpu_memory_utilization": 0.5}
    assert "fast_inference" not in models.unsloth_options(settings)[0]  # sft, confidence, dpo, evaluation
    load = models.unsloth_options(settings, vllm=True)[0]
    assert load["fast_inference"] is True and load["gpu_memory_utilization"] == 0.5


class StubAccelerator:
    def __init__(self):
        self.barriers = 0

    def wait_for_everyone(self):
        self.barriers += 1


class StubTrainer:
    """The parts of transformers.Trainer that saving uses; save_model writes what Trainer._save writes for
    a PEFT model (the adapter), on rank 0 only, as Trainer does after gathering the ZeRO-3 shards."""

    def __init__(self, model, rank):
        self.model, self.rank, self.saved, self.accelerator = model, rank, [], StubAccelerator()

    def is_world_process_zero(self):
        return self.rank == 0

    def save_model(self, output_dir):
        self.saved.append(output_dir)
        if self.rank == 0:
            self.model.save_pretrained(output_dir)


@pytest.fixture
def peft_model():
    from peft import get_peft_model

    model, tokenizer, config = models.load_model("tiny-random", LORA, seed=0)
    model = get_peft_model(model, config)
    with torch.no_grad():  # a trained adapter: B is zero at init, so merging would change nothing
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return model, tokenizer


def _merged_weights(model):
    import copy

    return {k: v.clone() for k, v in copy.deepcopy(model).merge_and_unload().state_dict().items()}


def test_zero3_saves_through_trainer_save_model_on_every_rank_then_rank_0_merges(peft_model, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    model, tokenizer = peft_model
    expected = _merged_weights(model)
    monkeypatch.setattr(models, "zero3", lambda: True)
    target = tmp_path / "models" / "sft"
    rank1, rank0 = StubTrainer(model, 1), StubTrainer(model, 0)
    models.save_trained(rank1, tokenizer, target)
    assert rank1.saved and not target.exists()  # rank 1 took part in the gather, wrote nothing
    models.save_trained(rank0, tokenizer, target)
    assert rank0.saved and rank0.accelerator.barriers == 2
    saved = load_file(target / "model.safetensors")
    assert set(saved) <= set(expected) and "model.embed_tokens.weight" in saved
    for key, value in saved.items():
        torch.testing.assert_close(value, expected[key])
    assert not (tmp_path / "models" / "sft.zero3").exists()  # the gathered adapter was a staging folder


def test_without_zero3_only_rank_0_saves_and_the_trainer_does_not_gather(peft_model, tmp_path, monkeypatch):
    model, tokenizer = peft_model
    monkeypatch.setattr(models, "zero3", lambda: False)
    rank1, rank0 = StubTrainer(model, 1), StubTrainer(model, 0)
    models.save_trained(rank1, tokenizer, tmp_path / "a")
    assert not rank1.saved and not (tmp_path / "a").exists()
    models.save_trained(rank0, tokenizer, tmp_path / "b")
    assert not rank0.saved and (tmp_path / "b" / "config.json").exists()


def test_a_4bit_qlora_model_is_saved_merged_into_its_16bit_base(peft_model, tmp_path):
    from safetensors.torch import load_file

    model, tokenizer = peft_model
    expected = _merged_weights(model)
    model.config.quantization_config = {"load_in_4bit": True}  # as bitsandbytes leaves it (CPU: not quantized)
    try:
        models.save_merged(model, tokenizer, tmp_path / "sft")
    finally:
        del model.config.quantization_config
    saved = load_file(tmp_path / "sft" / "model.safetensors")
    for key, value in saved.items():
        torch.testing.assert_close(value, expected[key])
    assert "quantization_config" not in json.loads((tmp_path / "sft" / "config.json").read_text())


def test_the_rank_0_merge_loads_its_base_unsharded():
    from transformers.integrations import deepspeed

    class FakeZero3Config:
        def is_zero3(self):
            return True

    config = FakeZero3Config()
    deepspeed.set_hf_deepspeed_config(config)
    try:
        assert models.zero3()
        with models._zero3_init_off():
            assert not models.zero3()
        assert models.zero3()
    finally:
        deepspeed.unset_hf_deepspeed_config()


# ---------------------------------------------------------------- Also: devices, precision, LoRA seed


def test_on_cuda_without_unsloth_the_model_goes_on_this_process_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(models, "zero3", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert models.transformers_options() == {"dtype": torch.float32, "device_map": {"": 3}}
    four_bit = models.transformers_options(load_in_4bit=True)
    quant = four_bit["quantization_config"]
    assert quant.load_in_4bit and four_bit["device_map"] == {"": 3}
    # ZeRO-3 shards 4-bit weights only when they are stored in the model's float dtype (uint8 by default)
    assert quant.bnb_4bit_quant_storage == torch.bfloat16 == four_bit["dtype"]
    monkeypatch.setattr(models, "zero3", lambda: True)
    assert "device_map" not in models.transformers_options()  # DeepSpeed places the shards


def test_load_model_passes_the_placement_to_from_pretrained(monkeypatch):
    seen = {}
    real = models.AutoModelForCausalLM.from_pretrained

    def recording(path, **kwargs):
        seen.update(kwargs)
        return real(path, dtype=torch.float32)

    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", recording)
    monkeypatch.setattr(models, "transformers_options", lambda load_in_4bit=False: {"device_map": {"": 0},
                                                                                    "four_bit": load_in_4bit})
    models.load_model("tiny-random", unsloth={"load_in_4bit": True})
    assert seen == {"device_map": {"": 0}, "four_bit": True}


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3"])
def test_accelerate_configs_leave_precision_to_the_trainer(name, monkeypatch, tmp_path):
    """accelerate launch exports the config's mixed_precision; TrainingArguments takes it over unless it
    sets bf16/fp16 itself, so 'bf16' there would force bf16 on GPUs without it (V100, T4)."""
    from accelerate.commands.config.config_args import load_config_from_file
    from transformers import TrainingArguments

    launched = load_config_from_file(f"params/accelerate/{name}.yaml").mixed_precision
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", str(launched))
    args = TrainingArguments(output_dir=str(tmp_path), bf16=False, use_cpu=True, report_to="none")
    assert args.mixed_precision == "no"


def _lora_a_after_trainer_init(seed, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, report_to="none", seed=seed,
                       gradient_checkpointing=False, max_steps=1)
    model, tokenizer, peft_config = models.load_model("tiny-random", LORA, seed=seed)
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "ok"}]}]
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=peft_config)
    return next(p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_A" in n)


def test_peft_lora_initialisation_follows_the_params_seed(tmp_path):
    # TRL's trainers seed with their config's seed (trainer_defaults: the params seed) before adding the adapter
    first, again, other = (_lora_a_after_trainer_init(s, tmp_path) for s in (1, 1, 2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


class StubFastLanguageModel:
    """Records what load_model asks of Unsloth's FastLanguageModel."""

    calls: list = []

    @classmethod
    def from_pretrained(cls, path, **options):
        cls.calls.append(("from_pretrained", path, options))
        return "model", "tokenizer"

    @classmethod
    def get_peft_model(cls, model, **options):
        cls.calls.append(("get_peft_model", model, options))
        return "peft model"


def test_unsloth_load_seeds_the_lora_loads_4bit_from_the_folder_and_starts_vllm_only_for_grpo(monkeypatch):
    monkeypatch.setattr(models, "USE_UNSLOTH", True)
    monkeypatch.setattr(models, "FastLanguageModel", StubFastLanguageModel, raising=False)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: object())  # bitsandbytes, vllm
    StubFastLanguageModel.calls = []
    settings = {"load_in_4bit": True, "fast_inference": True}
    assert models.load_model("tiny-random", LORA, unsloth=settings, seed=7) == ("peft model", "tokenizer", None)
    models.load_model("tiny-random", LORA, unsloth=settings, seed=7, vllm=True)
    (_, path, load), (_, _, peft), (_, _, grpo_load), _ = StubFastLanguageModel.calls
    assert path == models.model_path("tiny-random") and load["load_in_4bit"] and load["use_exact_model_name"]
    assert peft["random_state"] == 7 and peft["r"] == 4  # not Unsloth's default 3407
    assert "fast_inference" not in load and grpo_load["fast_inference"] is True


# ---------------------------------------------------------------- 8: offline hub ids


def _fake_hub_cache(cache: Path, repo: str) -> Path:
    """A Hugging Face hub cache holding `repo` (the tiny model's files), laid out as hf_hub_download does."""
    import shutil

    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / ("0" * 40)
    shutil.copytree(models.model_path("tiny-random"), snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0" * 40)
    return snapshot


def test_a_cached_hub_id_loads_offline_from_its_snapshot_folder(tmp_path, monkeypatch):
    """Unsloth resolves a hub id to a `-bnb-4bit` repository for 4-bit loading and fetches its 16-bit
    weights for merged saving; from the cache folder, both stay on disk."""
    import huggingface_hub

    snapshot = _fake_hub_cache(tmp_path, "grasp-test/tiny")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.model_path("grasp-test/tiny") == str(snapshot)
    model, _, _ = models.load_model("grasp-test/tiny")
    assert model.config._name_or_path == str(snapshot)
    with pytest.raises(FileNotFoundError, match=r"'grasp-test/absent'.*offline.*hf download grasp-test/absent"):
        models.model_path("grasp-test/absent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert models.model_path("grasp-test/absent") == "grasp-test/absent"  # online: the libraries download it
    assert models.unsloth_options()[0]["use_exact_model_name"] is True  # no -bnb-4bit repository swap


# ---------------------------------------------------------------- 9: several processes sample once


RANK_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from grasp_lib.train.common import on_main_process

    calls = []
    def sample(fail):
        calls.append(os.environ["RANK"])
        if fail:
            raise ValueError("no preference pairs")
        return {"pairs": ["rank " + os.environ["RANK"]]}

    got = on_main_process(sample, False)
    try:
        on_main_process(sample, True)
        error = None
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
    with open(f"rank{os.environ['RANK']}.json", "w") as out:  # a file each: the ranks' stdout can interleave
        json.dump({"rank": os.environ["RANK"], "got": got, "calls": calls, "error": error}, out)
    # leave together: a rank exiting with gloo's threads alive aborted now and then ("terminate called
    # without an active exception")
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()
""")


def test_sampling_runs_on_rank_0_and_every_rank_gets_its_result(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["got"] for r in ranks] == [{"pairs": ["rank 0"]}] * 2  # rank 0's sample on both
    assert [r["calls"] for r in ranks] == [["0", "0"], []]  # rank 1 never sampled
    assert ranks[0]["error"] == "ValueError: no preference pairs"
    assert ranks[1]["error"] == "RuntimeError: rank 0 failed: ValueError: no preference pairs"  # no hang


def test_one_process_just_calls(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert common.on_main_process(lambda x: x + 1, 1) == 2 and common.is_main_process()

