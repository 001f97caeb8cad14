"""Bad input stops at the door: one table per kind of input, each case a clear error (file,
line or key, the value, what was expected) or a counted outcome, never a silent result or a traceback.

Params go through the command line (`python -m grasp_lib run`) with the notebooks replaced by a stub that
fails the test if reached: every case must stop before notebook 01. Corpora cases damage a copy of a
real corpus file (BC5CDR's test set, 500 documents). Model outputs go through `parse`, every reward and
the metrics.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from grasp_lib import corpora, runner
from grasp_lib.__main__ import main
from grasp_lib.corpora import CorpusFormatError, read_pubtator
from grasp_lib.paths import data_root

SMOKE = "params/smoke.yaml"
BC5CDR_TEST = "BC5CDR/CDR_TestSet.PubTator.txt"


@pytest.fixture
def no_notebooks(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("a notebook started although the input was bad")

    monkeypatch.setattr(runner, "run_notebooks", started)


# ------------------------------------------------------------------ params
@pytest.mark.parametrize("override, named", [
    ("data.sft_size=-5", ["data.sft_size = -5", "greater than or equal to 0"]),
    ("data.sft_size=abc", ["data.sft_size = 'abc'", "integer"]),
    ("data.eval_size=0", ["data.eval_size = 0", "greater than or equal to 1"]),
    ("eval.engine=turbo", ["eval.engine = 'turbo'", "'fast' or 'plain'"]),
    ("sft.learning_rate=abc", ["sft.learning_rate = 'abc'", "number"]),
    ("grpo.num_generations=0", ["grpo.num_generations = 0", "greater than or equal to 2"]),
    ("grpo.num_generations=3", ["grpo", "GRPOConfig", "divisible by num_generations"]),  # TRL's own check
    ("sft.bogus_key=1", ["sft: unknown key(s) ['bogus_key'] for SFTConfig"]),
    ("grpo.constrained_rollouts=maybe", ["grpo.constrained_rollouts: expected true or false, got 'maybe'"]),
    ("eval.fidelity_check=-1", ["eval.fidelity_check = -1", "greater than or equal to 0"]),
    ("lora.r=0", ["lora.r = 0", "greater than or equal to 1"]),
    ("lora.bogus=1", ["lora: unknown key(s) ['bogus'] for LoraConfig"]),
    ("rewards.funcs=format,entiti", ["unknown reward(s) ['entiti']"]),
    ("data.dataset=bc5cdrx", ["data.dataset: unknown dataset 'bc5cdrx'"]),
    ("model=no-such-model-anywhere", ["model = 'no-such-model-anywhere'", "Hugging Face cache"]),
    ("data.data_dir=/nonexistent/grasp-data", ["data.data_dir = '/nonexistent/grasp-data'", "existing folder"]),
])
def test_bad_params_stop_before_any_notebook(override, named, no_notebooks, capsys):
    assert main(["run", SMOKE, "-p", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "smoke.yaml" in err
    for part in named:
        assert part in err


def test_missing_grasp_data_dir_is_an_error_naming_it(no_notebooks, monkeypatch, capsys):
    monkeypatch.setenv("GRASP_DATA_DIR", "/nonexistent/grasp-env-data")
    assert main(["run", SMOKE]) == 2
    assert "GRASP_DATA_DIR = '/nonexistent/grasp-env-data': no such folder" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="GRASP_DATA_DIR"):  # no fall back to ../shared/data
        data_root()


def test_yaml_syntax_error_names_file_and_line(tmp_path, no_notebooks, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndata:\n  sft_size: [1, 2\n  rl_size: 3\n")
    assert main(["run", str(bad)]) == 2
    assert f"error: {bad}:4: YAML syntax error" in capsys.readouterr().err


# ------------------------------------------------------------------ corpora (damaged copies of a real file)
@pytest.fixture(scope="module")
def bc5cdr_test() -> tuple[str, list, object]:
    """The real file's text, documents and report, read once for the module."""
    path = data_root() / BC5CDR_TEST
    docs, report = read_pubtator(path)
    return path.read_text(encoding="utf-8"), docs, report


def damaged_root(tmp_path: Path, content: bytes) -> Path:
    """A data root holding only BC5CDR/, with the test file replaced by `content`."""
    root = tmp_path / "data"
    (root / "BC5CDR").mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        shutil.copy(data_root() / "BC5CDR" / name, root / "BC5CDR" / name)
    (root / BC5CDR_TEST).write_bytes(content)
    return root


def test_documents_without_blank_lines_stay_apart(tmp_path, bc5cdr_test):
    text, docs, report = bc5cdr_test
    joined = tmp_path / "joined.txt"
    joined.write_text("".join(line for line in text.splitlines(keepends=True) if line.strip()))
    read, again = read_pubtator(joined)
    assert [d.id for d in read] == [d.id for d in docs] and len(read) == 500  # never merged, none lost
    assert [len(d.entities) for d in read] == [len(d.entities) for d in docs]
    assert (again.converted, again.extra["without_blank_line"]) == (report.converted, 499)


def test_a_second_title_line_inside_a_document_names_its_line(tmp_path, bc5cdr_test):
    lines = bc5cdr_test[0].splitlines(keepends=True)
    lines.insert(2, lines[0])  # the first document's title line again, after its abstract
    bad = tmp_path / "twice.txt"
    bad.write_text("".join(lines))
    with pytest.raises(CorpusFormatError, match=r"twice.txt:3: a second title line for"):
        read_pubtator(bad)


def test_a_byte_that_is_not_utf8_names_file_line_and_offset(tmp_path, bc5cdr_test):
    data = bc5cdr_test[0].encode("utf-8")
    at = data.index(b"\n", data.index(b"|a|")) - 5  # inside the first abstract (line 2)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(data[:at] + b"\xe9" + data[at:])
    with pytest.raises(CorpusFormatError, match=rf"latin1.txt:2: not UTF-8 text: byte 0xe9 at byte offset {at}"):
        read_pubtator(bad)
    with pytest.raises(CorpusFormatError, match=r"CDR_TestSet.PubTator.txt:2: not UTF-8"):  # through the registry
        corpora.load("bc5cdr", "test", damaged_root(tmp_path, data[:at] + b"\xe9" + data[at:]))


@pytest.mark.parametrize("reader, copy, damaged", [
    ("read_standoff", "jnlpba", "1001.ann"), ("read_bc2gm", "bc2gm", "sample.in"),
    ("read_chemprot", "chemprot.jsonl", ""), ("read_drugcomb", "drugcomb.jsonl", ""),
])
def test_every_text_reader_names_the_file_and_line_of_a_byte_that_is_not_utf8(tmp_path, fixtures, reader, copy,
                                                                              damaged):
    target = tmp_path / copy
    (shutil.copytree if (fixtures / copy).is_dir() else shutil.copy)(fixtures / copy, target)
    bad = target / damaged if damaged else target
    lines = bad.read_bytes().split(b"\n")
    bad.write_bytes(b"\n".join(lines[:1] + [b"\xff" + lines[1]] + lines[2:]))
    arg = target / "sample.in" if reader == "read_bc2gm" else target
    with pytest.raises(CorpusFormatError, match=rf"{bad.name}:2: not UTF-8 text: byte 0xff"):
        getattr(corpora, reader)(arg)


@pytest.mark.parametrize("annotation", ["\t9999\t10005\t\tChemical\tD000001",  # empty text, past the end
                                        "\t0\t0\t\tChemical\tD000001",  # empty span
                                        "\t-5\t3\tNal\tChemical\tD000001"])  # negative offset
def test_an_annotation_outside_the_text_is_rejected_with_its_line(tmp_path, bc5cdr_test, annotation):
    text, docs, report = bc5cdr_test
    lines = text.splitlines(keepends=True)
    lines.insert(2, docs[0].id + annotation + "\n")
    bad = tmp_path / "outside.txt"
    bad.write_text("".join(lines))
    read, again = read_pubtator(bad)
    assert (again.read, again.converted) == (report.read + 1, report.converted)
    assert again.rejected[0][1] == 3 and "0 <= start < end <=" in again.rejected[0][2]


def test_an_empty_test_file_is_an_error(tmp_path):
    with pytest.raises(CorpusFormatError, match=r"CDR_TestSet.PubTator.txt: no documents read"):
        corpora.load("bc5cdr", "test", damaged_root(tmp_path, b""))


def test_a_truncated_test_file_warns_with_its_counts(tmp_path, bc5cdr_test):
    text = bc5cdr_test[0]
    cut = text[:text.index("\n", len(text) // 2) + 1].encode("utf-8")  # cut at a line boundary
    with pytest.warns(corpora.fetch.ChecksumWarning, match=r"bc5cdr test: 1 file\(s\) differ .* read anyway: "
                                                          r"\d+ documents, \d+ annotations"):
        docs, report = corpora.load("bc5cdr", "test", damaged_root(tmp_path, cut))
    assert 0 < len(docs) < 500 and report.files[BC5CDR_TEST] != corpora.fetch.checksums()[BC5CDR_TEST]


def test_data_verify_finds_a_file_changed_in_place(tmp_path, bc5cdr_test, capsys):
    root = damaged_root(tmp_path, bc5cdr_test[0].replace("Naloxone", "Naloxona", 1).encode("utf-8"))
    assert main(["data", "verify", "bc5cdr", "--data-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "BC5CDR: 3 files checked, 1 changed, 0 missing" in out and f"changed {BC5CDR_TEST}" in out
    assert main(["data", "verify", "bc5cdr"]) == 0  # the shared corpora themselves match


def test_an_empty_eval_split_stops_before_evaluation():
    from grasp_lib.examples import sample_splits
    from grasp_lib.params import DataParams

    with pytest.raises(ValueError, match=r"eval split 'test' of bc5cdr has no usable rows: \d+ rows, \d+ of them "
                                         r"longer than data.max_chars=1"):
        sample_splits(DataParams(sft_size=0, rl_size=0, max_chars=1), seed=0)


# ------------------------------------------------------------------ model outputs
LABELS = ("Chemical", "Disease")


@pytest.mark.parametrize("completion, status, mentions", [
    ("[" * 10_000, "unparsable", []),
    ('{"Chemical": ' + "[" * 1_000, "unparsable", []),
    ("[" * 1_000 + "]" * 1_000, "unparsable", []),
    ('{"Chemical": ["5\\"-AMP", "nalox', "repaired", [('5"-AMP', "Chemical"), ("nalox", "Chemical")]),
    ('{"Chemical": ["a\\\\", "b\\', "repaired", [("a\\", "Chemical"), ("b", "Chemical")]),  # dangling escape
    (" " * 100_000 + "x", "unparsable", []),
    ('{"Chemical": ["x"]}' + "\n" * 100_000 + "Confidence: 80% or so", "repaired", [("x", "Chemical")]),
    ("confidence:" + " " * 100_000 + "x", "unparsable", []),
    ("```" + " " * 100_000 + "x", "unparsable", []),
    ("confiden" * 12_500, "unparsable", []),
])
def test_hostile_completions_are_outcomes(completion, status, mentions, hang_guard):
    from grasp_lib.metrics import score_predictions
    from grasp_lib.parsing import parse
    from grasp_lib.rewards import REWARDS, build_rewards

    row = {"id": "x", "text": "5\"-AMP and naloxone", "task": "ner", "dataset": "bc5cdr", "label": None,
           "entities": [], "relations": [], "combinations": [], "answer": None}
    with hang_guard(60):
        parsed = parse(completion, LABELS)
        assert (parsed.status, list(parsed.mentions)) == (status, mentions)
        for f in build_rewards(sorted(REWARDS)):
            value = f([completion], **{k: [v] for k, v in row.items() if k != "id"})[0]
            assert value is None or 0.0 <= value <= 1.0
        metrics, _ = score_predictions([row], [completion])
    assert metrics["parse_status"] == {status: 1}


def test_a_completion_past_the_cap_is_counted_too_long():
    from grasp_lib.parsing import MAX_CHARS, TOO_LONG, parse

    parsed = parse('{"Chemical": []}' + " " * MAX_CHARS, LABELS)
    assert parsed.status == "unparsable" and parsed.reason.startswith(TOO_LONG)
    assert parse(["not", "a", "string"], LABELS).status == "unparsable"  # unhashable: no cache error


# ------------------------------------------------------------------ the run records what it read
def test_a_run_records_the_checksums_of_the_corpus_files_it_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_notebooks", lambda *args, **kwargs: {})
    monkeypatch.setattr(runner, "f1_summary", lambda run_dir: "")
    assert runner.run(SMOKE, {}, ["01_data"], run_dir=tmp_path / "run") == 0
    inputs = json.loads((tmp_path / "run" / "data" / "inputs.json").read_text())
    table = corpora.fetch.checksums()
    assert inputs["sha256"] == {rel: table[rel] for rel in (BC5CDR_TEST, "BC5CDR/CDR_TrainingSet.PubTator.txt")}
    assert inputs["changed"] == inputs["missing"] == [] and inputs["data_root"] == str(data_root())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shared corpora match: no checksum warning
        assert corpora.load("bc5cdr", "test")[1].files == {BC5CDR_TEST: table[BC5CDR_TEST]}
