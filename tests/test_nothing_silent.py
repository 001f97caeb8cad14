"""Nothing silent: numbers that are not finite, cut files, repeated ids, broken models and
half-written saves each end as a clear error (file, line or key) or a counted outcome, never as a number or
a model that is quietly wrong.

One table per kind of input, each case a damaged copy of a real file: params/smoke.yaml, BC5CDR's test set,
the built-in tiny-random model folder, a run folder in the format notebook 05 writes. Params go through the
command line with the notebooks replaced by a stub that fails the test if reached.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grasp_lib import corpora, evaluation, examples, models, run_files, runner
from grasp_lib import params as P
from grasp_lib.__main__ import main
from grasp_lib.corpora import CorpusFormatError, read_pubtator
from grasp_lib.paths import data_root

SMOKE = "params/smoke.yaml"
BC5CDR_TEST = "BC5CDR/CDR_TestSet.PubTator.txt"
BC5CDR_TRAIN = "BC5CDR/CDR_TrainingSet.PubTator.txt"


def _stub_notebooks(*args, **kwargs):
    raise AssertionError("a notebook started although the input was bad")


@pytest.fixture
def no_notebooks(monkeypatch):
    monkeypatch.setattr(runner, "run_notebooks", _stub_notebooks)


def run_error(args: list[str], capsys) -> str:
    """The one-line error of a command that must exit 2 (never a traceback)."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ params: values outside their type
@pytest.mark.parametrize("override, named", [
    ("sft.learning_rate=inf", "sft.learning_rate = inf: expected a finite number"),
    ("grpo.temperature=.inf", "grpo.temperature = inf: expected a finite number"),
    ("grpo.beta=inf", "grpo.beta = inf: expected a finite number"),
    ("sft.max_grad_norm=inf", "sft.max_grad_norm = inf"),
    ("sft.num_train_epochs=inf", "sft.num_train_epochs = inf"),
    ("sft.adam_beta1=nan", "sft.adam_beta1 = nan: expected a finite number"),
    ("sft.adam_epsilon=nan", "sft.adam_epsilon = nan"),
    ("preference.temperature=inf", "preference.temperature = inf"),
    ("preference.margin=inf", "preference.margin = inf"),
    ("confidence.temperature=inf", "confidence.temperature = inf"),
    ("rewards.entity.overlap_weight=nan", "rewards.entity.overlap_weight = nan"),
    ("grpo.reward_weights=0.2,nan", "grpo.reward_weights[1] = nan"),
    ("seed=4294967296", "seed = 4294967296: expected less than or equal to 4294967295"),
    ("data.sft_size=100000000000000000000000", "data.sft_size = 100000000000000000000000: expected an integer that "
                                               "fits 64 bits"),
    ("unsloth.load_in_4bit='false'", "unsloth.load_in_4bit = 'false': expected a valid boolean"),
    ("unsloth.fast_inference='no'", "unsloth.fast_inference = 'no'"),
    ("unsloth.gpu_memory_utilization=1.5", "unsloth.gpu_memory_utilization = 1.5: expected less than or equal to 1"),
    ("unsloth.max_seq_length=0", "unsloth.max_seq_length = 0"),
    ("unsloth.load_in_8bit=true", "unsloth: unknown key(s) ['load_in_8bit']"),
    ("rewards.nary.overlap='false'", "rewards.nary.overlap = 'false': expected a valid boolean"),
    ("rewards.entity.type_credit=half", "rewards.entity.type_credit = 'half': expected a valid number"),
])
def test_a_value_outside_its_type_stops_before_any_notebook(override, named, no_notebooks, capsys):
    err = run_error(["run", SMOKE, "-p", override], capsys)
    assert "smoke.yaml" in err and named in err


FLOATS = ["sft.learning_rate", "sft.adam_beta1", "sft.adam_epsilon", "sft.weight_decay", "sft.max_grad_norm",
          "grpo.temperature", "grpo.beta", "grpo.learning_rate", "dpo.beta", "preference.temperature",
          "preference.margin", "confidence.temperature", "rewards.entity.overlap_weight",
          "rewards.entity.type_credit", "lora.lora_dropout", "unsloth.gpu_memory_utilization"]
INTS = ["seed", "data.sft_size", "data.rl_size", "data.eval_size", "sft.max_steps", "grpo.max_completion_length",
        "grpo.num_generations", "lora.r", "eval.batch_size", "eval.max_new_tokens", "unsloth.max_seq_length"]
BOOLS = ["resume", "shared_prefix", "eval.int8", "eval.constrained", "rewards.adaptive", "unsloth.load_in_4bit",
         "unsloth.fast_inference", "grpo.constrained_rollouts", "sft.bf16", "rewards.nary.overlap",
         "rewards.relation.partial"]
NOT_FINITE = st.sampled_from(["inf", "-inf", ".inf", "nan", ".nan", "1e999"])
HUGE = st.integers(min_value=2**63, max_value=2**200).map(str)
BOOL_WORDS = st.sampled_from(["false", "true", "no", "yes", "off", "on", "0", "1", "False"]).map(lambda w: f"'{w}'")
BAD = st.one_of(st.tuples(st.sampled_from(FLOATS), NOT_FINITE), st.tuples(st.sampled_from(INTS), HUGE),
                st.tuples(st.just("seed"), st.integers(min_value=2**32, max_value=2**63 - 1).map(str)),
                st.tuples(st.sampled_from(BOOLS), BOOL_WORDS),
                st.tuples(st.just("grpo.reward_weights"), NOT_FINITE.map(lambda v: f"1.0,{v}")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=BAD)
def test_any_value_outside_its_type_is_refused_before_any_notebook(bad, capsys):
    key, text = bad
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_notebooks", _stub_notebooks)
        err = run_error(["run", SMOKE, "-p", f"{key}={text}"], capsys)
    assert key.split(".")[-1] in err


# ------------------------------------------------------------------ params files: damaged copies of smoke.yaml
def _smoke_copy(tmp_path: Path, damage) -> Path:
    text = Path(SMOKE).read_text(encoding="utf-8")
    target = tmp_path / "smoke.yaml"
    target.write_bytes(damage(text))
    return target


SEED_LINE = Path(SMOKE).read_text().splitlines().index("seed: 0") + 1
SFT_LINE = Path(SMOKE).read_text().splitlines().index("sft:") + 1
N_LINES = len(Path(SMOKE).read_text().splitlines())


@pytest.mark.parametrize("damage, named", [
    (lambda t: (t + "seed: 7\n").encode(),
     f"smoke.yaml:{N_LINES + 1}: key 'seed' appears twice in one mapping (lines {SEED_LINE} and {N_LINES + 1})"),
    (lambda t: (t + "sft:\n  max_steps: 1\n").encode(),
     f"smoke.yaml:{N_LINES + 1}: key 'sft' appears twice in one mapping (lines {SFT_LINE} and {N_LINES + 1})"),
    (lambda t: t.replace("  max_steps: 3\n", "  max_steps: 3\n  max_steps: 4\n").encode(), "key 'max_steps' appears twice"),
    (lambda t: t.replace("rewards:\n  funcs: [format, entity]\n", "rewards:\n  funcs: [format, entity]\n  verifiers:\n"
                         + "".join(f"    l{k}: &l{k} [{', '.join([f'*l{k - 1}' if k else 'x'] * 9)}]\n" for k in range(6))
                         ).encode(),
     "YAML alias *l0: anchors and aliases are not allowed in params files"),
    (lambda t: b"\xef\xbb\xbf" + t.replace("name: smoke", "name: smoke\nsft: {}").encode(), "key 'sft' appears twice"),
])
def test_a_damaged_params_file_is_an_error_naming_its_line(tmp_path, damage, named, no_notebooks, capsys, hang_guard):
    target = _smoke_copy(tmp_path, damage)
    with hang_guard(30):
        err = run_error(["run", str(target)], capsys)
    assert named in err


def test_a_params_file_with_a_byte_order_mark_reads_as_without(tmp_path):
    target = _smoke_copy(tmp_path, lambda t: b"\xef\xbb\xbf" + t.encode())
    assert P.load(target).to_dict() == P.load(SMOKE).to_dict()


@pytest.mark.parametrize("base_damage, child, named", [
    ("data: {sft_size: -3}\n", "name: child\n", ["base.yaml: data.sft_size = -3"]),
    ("sft: {learning_rate: .inf}\n", "name: child\n", ["base.yaml: sft.learning_rate = inf"]),
    ("data: {sft_size: -3}\n", "name: child\neval: {batch_size: 0}\n",
     ["base.yaml: data.sft_size = -3", "child.yaml: eval.batch_size = 0"]),
    ("data: {sft_size: -3}\n", "name: child\ndata: {rl_size: -4}\n",
     ["base.yaml: data.sft_size = -3", "child.yaml: data.rl_size = -4"]),  # one section, a problem from each file
    ("data: {sft_size: -3}\n", "name: child\ndata: {sft_size: 3}\n", None),  # the child fixes it: no error
])
def test_a_bad_value_in_a_base_file_is_named_against_that_file(tmp_path, base_damage, child, named):
    (tmp_path / "base.yaml").write_text(f"base: {Path(SMOKE).resolve()}\n" + base_damage)  # smoke.yaml, damaged
    (tmp_path / "child.yaml").write_text("base: base.yaml\n" + child)
    if named is None:
        assert P.load(tmp_path / "child.yaml").data.sft_size == 3
        return
    with pytest.raises(P.ParamsError) as caught:
        P.load(tmp_path / "child.yaml")
    message = str(caught.value)
    for part in named:
        assert f"{tmp_path}/{part}" in message
    assert f"child.yaml: {named[0].split(': ', 1)[1]}" not in message  # not against the child


# ------------------------------------------------------------------ training: non-finite loss or gradient norm
@pytest.mark.parametrize("logs, stops", [
    ({"loss": float("nan"), "grad_norm": 0.5}, True),
    ({"loss": 10.8, "grad_norm": float("inf")}, True),
    ({"loss": float("-inf")}, True),
    ({"loss": 10.8, "grad_norm": 0.25, "learning_rate": 1e30}, False),
    ({"train_runtime": 3.0}, False),
])
def test_the_stage_callback_stops_on_a_non_finite_loss_or_gradient_norm(logs, stops):
    from types import SimpleNamespace

    from grasp_lib.train.callbacks import StopOnNonFinite, TrainingDiverged, stage_callbacks

    assert any(isinstance(c, StopOnNonFinite) for c in stage_callbacks(Path("/tmp/r"), "sft"))
    callback = StopOnNonFinite("sft")
    state = SimpleNamespace(global_step=2)
    if stops:
        with pytest.raises(TrainingDiverged, match=r"sft: training diverged at step 2: .* not finite; no model"):
            callback.on_log(None, state, None, logs=logs)
    else:
        callback.on_log(None, state, None, logs=logs)


@pytest.mark.parametrize("stage", ["sft", "confidence", "dpo", "grpo"])
def test_every_stage_trains_with_the_stage_callbacks(stage):
    import importlib
    import inspect

    assert "callbacks=stage_callbacks(" in inspect.getsource(importlib.import_module(f"grasp_lib.train.{stage}").run)


def test_a_diverging_sft_run_stops_with_an_error_and_saves_no_model(tmp_path):
    from grasp_lib.train import sft
    from grasp_lib.train.callbacks import TrainingDiverged

    params = P.load(SMOKE, {"stages": ["sft"], "sft.max_steps": 4, "sft.learning_rate": 1e30})  # finite, absurd
    examples.prepare(params, tmp_path)
    with pytest.raises(TrainingDiverged, match=r"sft: training diverged at step \d: .*'grad_norm': nan"):
        sft.run(params, tmp_path)
    assert not run_files.model_dir(tmp_path, "sft").exists()


# ------------------------------------------------------------------ models: damaged copies of a real model folder
@pytest.fixture
def model_copy(tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(models.model_path("tiny-random"), target)
    return target


def _cut(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _drop_tensor(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    del tensors["model.layers.1.mlp.down_proj.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def _nan_tensor(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    tensors["model.norm.weight"][3] = float("nan")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize("damage, named", [
    (lambda f: (f / "config.json").write_text('{"model_type": "llama", '), r"config.json: not JSON"),
    (_cut, r"model.safetensors: cut short|model.safetensors: \d+ bytes, but its header describes \d+"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x10\x00"), r"model.safetensors: cut short"),
    (lambda f: (f / "model.safetensors").unlink(), r"no weights \(\*.safetensors\)"),
    (_drop_tensor, r"1 tensor\(s\) the architecture needs are in none of \['model.safetensors'\], e.g. "
                   r"\['model.layers.1.mlp.down_proj.weight'\]"),
])
def test_a_damaged_model_folder_is_refused_by_preflight_and_load_model(model_copy, damage, named, no_notebooks,
                                                                      capsys):
    damage(model_copy)
    err = run_error(["run", SMOKE, "-p", f"model={model_copy}"], capsys)
    assert f"model = '{model_copy}'" in err and re.search(named, err), err
    with pytest.raises(models.BrokenModel, match=named):
        models.load_model(str(model_copy))


def test_a_model_with_non_finite_weights_is_refused_by_load_model(model_copy):
    models.verify_model_dir(model_copy)  # complete (lm_head.weight is tied: absent from the file on purpose)
    _nan_tensor(model_copy)
    with pytest.raises(models.BrokenModel, match=r"model.safetensors: 1 of 20 tensors hold inf or nan, e.g. "
                                                 r"\['model.norm.weight'\]"):
        models.verify_model_dir(model_copy, values=True)
    with pytest.raises(models.BrokenModel, match=r"1 weight tensor\(s\) hold inf or nan, e.g. \['model.norm.weight'\]"):
        models.load_model(str(model_copy))


class Killed(BaseException):
    """A kill mid-write (BaseException, as KeyboardInterrupt and SystemExit are)."""


@pytest.mark.parametrize("earlier_model", [False, True])
def test_a_save_killed_midway_leaves_no_folder_the_next_stage_accepts(tmp_path, monkeypatch, earlier_model):
    import transformers.modeling_utils as modeling_utils

    model, tokenizer, _ = models.load_model("tiny-random")
    target = run_files.model_dir(tmp_path, "sft")
    if earlier_model:  # an earlier run's model under the stage's name
        shutil.copytree(models.model_path("tiny-random"), target)
    real = modeling_utils.safe_save_file

    def killed_midway(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(Path(filename).read_bytes()[:1000])  # half a file on disk, then the kill
        raise Killed("killed while writing the weights")

    monkeypatch.setattr(modeling_utils, "safe_save_file", killed_midway)
    with pytest.raises(Killed):
        models.save_merged(model, tokenizer, target)
    assert not target.exists() and not target.with_name(".sft.partial").exists()
    with pytest.raises((FileNotFoundError, OSError, ValueError)):
        models.load_model(str(target))  # the next stage's start model
    monkeypatch.setattr(modeling_utils, "safe_save_file", real)
    models.save_merged(model, tokenizer, target)  # the rerun saves whole and replaces what stepped aside
    models.verify_model_dir(target, values=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["sft"]


def test_a_folder_written_straight_by_a_killed_save_is_refused(tmp_path):
    """What a kill left before saves were atomic: models/sft with its weights cut short."""
    target = run_files.model_dir(tmp_path, "sft")
    shutil.copytree(models.model_path("tiny-random"), target)
    _cut(target)
    with pytest.raises(models.BrokenModel, match=r"sft/model.safetensors: "):
        models.load_model(str(target))


# ------------------------------------------------------------------ run files: damaged copies of a run folder
@pytest.fixture(scope="module")
def eval_rows() -> list[dict]:
    rows, _ = examples.dataset_rows("bc5cdr", "test")
    return [dict(r) for r in rows[:12]]


def _answer(row: dict) -> str:
    by_type: dict = {"Chemical": [], "Disease": []}
    for e in row["entities"]:
        by_type[e["type"]].append(e["text"])
    return json.dumps(by_type)


@pytest.fixture
def run(tmp_path, eval_rows) -> Path:
    """A run folder as notebook 05 leaves it: data/eval.jsonl, results/predictions.jsonl, metrics.json."""
    run_files.write_jsonl(eval_rows, run_files.data_path(tmp_path, "eval"))
    records = [{"stage": s, "id": r["id"], "dataset": r["dataset"], "completion": _answer(r) if s == "sft" else "[]"}
               for s in ("base", "sft") for r in eval_rows]
    run_files.write_jsonl(records, run_files.predictions_path(tmp_path))
    evaluation.rescore_run(tmp_path)
    return tmp_path


def _lines(path: Path, edit) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(edit(lines)))


@pytest.mark.parametrize("file, edit, named", [
    (run_files.PREDICTIONS, lambda ls: ls[:-5], r"stage 'sft' has 7 records for the 12 rows .* 5 row\(s\) without a record"),
    (run_files.PREDICTIONS, lambda ls: ls[:-1] + ls[12:13], r"stage 'sft' has 12 records .* 1 row\(s\) without a "
                                                             r"record .* 1 with more than one"),
    (run_files.PREDICTIONS, lambda ls: ls[:3] + ls[4:], r"stage 'base' has 11 records for the 12 rows"),
    (run_files.PREDICTIONS, lambda ls: ls + ls[:12], r"stage 'base' has 24 records .* 12 with more than one"),
    (run_files.PREDICTIONS, lambda ls: ls + [ls[0].replace('"id": "', '"id": "x')], r"has no row in data/eval.jsonl"),
    (run_files.EVAL, lambda ls: ls[:1] + [ls[0]] + ls[2:], r"data/eval.jsonl: rows 1 and 2 have the same dataset and id"),
])
def test_a_cut_or_mixed_run_file_is_an_error_before_anything_is_written(run, file, edit, named, capsys):
    from grasp_lib import figures, stats

    _lines(run / file, edit)
    before = {p: p.read_bytes() for p in (run / "results").iterdir()}
    err = run_error(["rescore", str(run)], capsys)
    assert re.search(named, err), err
    assert {p: p.read_bytes() for p in (run / "results").iterdir()} == before  # nothing written
    for reads in (stats.f1_with_intervals, figures.f1_by_stage):  # notebook 05's intervals, notebook 06's figure
        with pytest.raises((ValueError, KeyError), match=named):
            reads(run)


def test_notebook_05_checks_its_records_before_writing(run, monkeypatch):
    from grasp_lib.metrics import score_predictions

    def one_row_short(model, rows, params, run_dir):
        return score_predictions(rows[:-1], [_answer(r) for r in rows[:-1]])

    monkeypatch.setattr(evaluation, "evaluate_model", one_row_short)
    before = {p: p.read_bytes() for p in (run / "results").iterdir()}
    with pytest.raises(ValueError, match=r"stage 'base' has 11 records for the 12 rows"):
        evaluation.evaluate_run(P.load(SMOKE), run)
    assert {p: p.read_bytes() for p in (run / "results").iterdir()} == before


def test_metrics_are_replaced_whole_and_the_previous_ones_kept(run, monkeypatch, capsys):
    metrics = run_files.metrics_path(run)
    first = metrics.read_bytes()
    evaluation.rescore_run(run)
    assert (run / run_files.METRICS_PREV).read_bytes() == first
    older = json.loads(first) | {"note": "an older figure"}
    metrics.write_text(json.dumps(older))

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(run_files.os, "replace", disk_full)
    err = run_error(["rescore", str(run)], capsys)
    assert "No space left on device" in err
    assert json.loads(metrics.read_text()) == older  # untouched, not half written
    assert not list((run / "results").glob(".*.partial"))


# ------------------------------------------------------------------ corpora: damaged copies of BC5CDR's test set
@pytest.fixture(scope="module")
def bc5cdr() -> dict[str, str]:
    return {rel: (data_root() / rel).read_text(encoding="utf-8") for rel in (BC5CDR_TEST, BC5CDR_TRAIN)}


def damaged_root(tmp_path: Path, test_text: str | bytes) -> Path:
    """A data root holding only BC5CDR/, with the test file replaced."""
    root = tmp_path / "data"
    (root / "BC5CDR").mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        shutil.copy(data_root() / "BC5CDR" / name, root / "BC5CDR" / name)
    data = test_text.encode("utf-8") if isinstance(test_text, str) else test_text
    (root / BC5CDR_TEST).write_bytes(data)
    return root


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def test_a_repeated_pmid_is_an_error_naming_both_title_lines(tmp_path, bc5cdr):
    blocks = bc5cdr[BC5CDR_TEST].split("\n\n")
    damaged = "\n\n".join(blocks[:5] + [blocks[1]] + blocks[5:])
    pmid = blocks[1].split("|")[0]
    first = _line_of(damaged, damaged.index(f"{pmid}|t|"))
    second = _line_of(damaged, damaged.index(f"{pmid}|t|", damaged.index(f"{pmid}|t|") + 1))
    with pytest.raises(CorpusFormatError, match=rf"CDR_TestSet.PubTator.txt:{second}: document {pmid} repeated \(its first "
                                                  rf"title line is line {first}\)"):
        corpora.load("bc5cdr", "test", damaged_root(tmp_path, damaged))


def test_a_repeated_document_id_in_another_format_is_an_error(tmp_path):
    source = data_root() / "DrugComb/final_test_set.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "DrugComb").mkdir()
    (tmp_path / "DrugComb/final_test_set.jsonl").write_text("".join(lines[:4] + lines[2:3] + lines[4:]), encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"final_test_set.jsonl: documents 3 and 5 \(in file order\) have "
                                                r"the same id"):
        corpora.load("drugcomb", "test", tmp_path)


def test_a_byte_order_mark_is_read_as_one(tmp_path, bc5cdr):
    with pytest.warns(corpora.fetch.ChecksumWarning):
        docs, report = corpora.load("bc5cdr", "test", damaged_root(tmp_path, b"\xef\xbb\xbf" + bc5cdr[BC5CDR_TEST].encode()))
    original, again = read_pubtator(data_root() / BC5CDR_TEST)
    assert [(d.id, d.text, len(d.entities)) for d in docs] == [(d.id, d.text, len(d.entities)) for d in original]
    assert (report.converted, report.n_rejected) == (again.converted, again.n_rejected)


def test_a_byte_order_mark_in_a_brat_text_is_named(tmp_path, fixtures):
    shutil.copytree(fixtures / "jnlpba", tmp_path / "jnlpba")
    txt = sorted((tmp_path / "jnlpba").glob("*.txt"))[0]
    txt.write_bytes(b"\xef\xbb\xbf" + txt.read_bytes())
    with pytest.raises(CorpusFormatError, match=rf"{txt.name}:1: starts with a UTF-8 byte-order mark"):
        corpora.read_standoff(tmp_path / "jnlpba")


def _with_invisible(text: str) -> tuple[str, str]:
    """The file with a space inside its first multi-word mention replaced by U+200B (offsets unchanged),
    in the document's text and in every annotation covering it; and that mention's PMID."""
    lines = text.splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if len(f := line.split("\t")) >= 6 and " " in f[3])
    pmid, start, _, mention = lines[i].split("\t")[:4]
    at = int(start) + mention.index(" ")
    t = next(j for j in range(i, -1, -1) if lines[j].startswith(f"{pmid}|t|"))
    title = lines[t].split("|", 2)[2].rstrip("\n")
    where, offset = (t, at) if at < len(title) else (t + 1, at - len(title) - 1)
    head, content = lines[where].split("|", 2)[:2], lines[where].split("|", 2)[2]
    lines[where] = "|".join(head) + "|" + content[:offset] + "\u200b" + content[offset + 1:]
    for j in range(t + 2, len(lines)):
        fields = lines[j].split("\t")
        if len(fields) < 6:
            break
        if int(fields[1]) <= at < int(fields[2]):
            k = at - int(fields[1])
            fields[3] = fields[3][:k] + "\u200b" + fields[3][k + 1:]
            lines[j] = "\t".join(fields)
    return "".join(lines), pmid


def test_invisible_characters_in_mentions_are_counted(tmp_path, bc5cdr):
    damaged, pmid = _with_invisible(bc5cdr[BC5CDR_TEST])
    with pytest.warns(corpora.fetch.ChecksumWarning):
        docs, report = corpora.load("bc5cdr", "test", damaged_root(tmp_path, damaged))
    original = read_pubtator(data_root() / BC5CDR_TEST)[1]
    assert report.converted == original.converted and report.n_rejected == original.n_rejected
    assert report.extra["invisible_in_mentions"] >= 1
    assert all(e.startswith(pmid) for e in report.extra["invisible_examples"])
    assert "invisible_in_mentions" not in corpora.load("bc5cdr", "test")[1].extra  # the real file has none


def test_a_training_document_in_the_test_file_is_counted_in_the_data_report(tmp_path, bc5cdr):
    from grasp_lib.params import DataParams

    train_doc = bc5cdr[BC5CDR_TRAIN].split("\n\n")[0]
    root = damaged_root(tmp_path, bc5cdr[BC5CDR_TEST].rstrip("\n") + "\n\n" + train_doc + "\n\n")
    data = DataParams(sft_size=4, rl_size=4, eval_size=8, data_dir=str(root))
    with pytest.warns(corpora.fetch.ChecksumWarning):
        _, report = examples.sample_splits(data, seed=0)
    assert report["eval"]["documents_in_train_split"] == 1
    assert report["eval"]["documents_in_train_split_examples"] == [train_doc.split("|")[0]]
    clean = examples.sample_splits(DataParams(sft_size=4, rl_size=4, eval_size=8), seed=0)[1]
    assert clean["eval"]["documents_in_train_split"] == 0


# ------------------------------------------------------------------ the runner: every OSError is one line, exit 2
@pytest.mark.parametrize("step, error", [
    ("run_lock", OSError(errno.EROFS, "Read-only file system")),
    ("write_run_info", PermissionError(errno.EACCES, "Permission denied")),
    ("record_machine", OSError(errno.ENOSPC, "No space left on device")),
    ("record_inputs", OSError(errno.EDQUOT, "Disk quota exceeded")),
    ("run_notebooks", OSError(errno.ENOSPC, "No space left on device")),  # timings.json, between notebooks
])
def test_every_os_error_of_a_run_is_an_error_line_with_exit_2(tmp_path, monkeypatch, capsys, step, error):
    def fails(*args, **kwargs):
        error.filename = str(tmp_path / "runs" / "smoke")
        raise error

    real_resolve = runner.resolve
    monkeypatch.setattr(runner, "resolve", lambda p: tmp_path / p if str(p).startswith("runs") else real_resolve(p))
    monkeypatch.setattr(runner, step, fails)
    err = run_error(["run", SMOKE], capsys)
    assert f"{tmp_path}/runs/smoke: {error.strerror}" in err
