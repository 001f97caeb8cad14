"""`data fetch` against a loopback HTTP mirror of a few corpus files: full, resumed, corrupted.

Fetching from the real public sources (raw.githubusercontent.com) needs network and is not tested here;
upstream_url is checked for the URL it builds.
"""

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from grasp_lib.__main__ import main
from grasp_lib.corpora import fetch as F
from grasp_lib.paths import data_root

SHARED = data_root()
FILES = ["DrugComb/final_test_set.jsonl", "DrugComb/final_train_set.jsonl", "DrugComb/label2idx.json",
         "DrugComb/README.md"]


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A tmp copy of the DrugComb files served on 127.0.0.1 (random port), with their checksums."""
    served = tmp_path / "served"
    for rel in FILES:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / rel, served / rel)
    table = tmp_path / "checksums.sha256"
    table.write_text("".join(f"{hashlib.sha256((SHARED / r).read_bytes()).hexdigest()}  {r}\n" for r in FILES))
    monkeypatch.setattr(F, "CHECKSUMS", table)
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Quiet.requests.append(self.path)
        super().do_GET()


def test_full_then_idempotent_then_resumed(mirror, tmp_path):
    served, url = mirror
    target = tmp_path / "data"
    first = F.fetch(["drugcomb"], target, url, log=lambda *_: None)
    assert first == {"downloaded": 4, "present": 0, "files": 4}
    assert all((target / r).read_bytes() == (SHARED / r).read_bytes() for r in FILES)
    _Quiet.requests.clear()
    assert F.fetch(["drugcomb"], target, url, log=lambda *_: None)["downloaded"] == 0
    assert _Quiet.requests == []  # nothing downloaded again
    (target / FILES[1]).unlink()  # an interrupted fetch: one file missing, one truncated, one .part left
    (target / FILES[0]).write_bytes((SHARED / FILES[0]).read_bytes()[:100])
    (target / (FILES[2] + ".part")).write_text("partial")
    resumed = F.fetch(["drugcomb"], target, url, log=lambda *_: None)
    assert resumed == {"downloaded": 2, "present": 2, "files": 4}
    assert sorted(_Quiet.requests) == sorted("/" + r for r in FILES[:2])
    assert (target / FILES[0]).read_bytes() == (SHARED / FILES[0]).read_bytes()
    assert F.remove_partial(target) == 1


def test_corrupted_mirror_file_is_a_checksum_error_naming_it(mirror, tmp_path):
    served, url = mirror
    (served / FILES[2]).write_text('{"POS": 1}')
    with pytest.raises(F.ChecksumError, match="DrugComb/label2idx.json: checksum mismatch"):
        F.fetch(["drugcomb"], tmp_path / "data", url, log=lambda *_: None)
    assert not (tmp_path / "data" / FILES[2]).exists() and not list((tmp_path / "data").rglob("*.part"))


def test_cli_fetch_and_unreachable_source(mirror, tmp_path, capsys):
    served, url = mirror
    assert main(["data", "fetch", "drugcomb", "--data-dir", str(tmp_path / "d"), "--base-url", url]) == 0
    assert "4 downloaded" in capsys.readouterr().out
    (served / FILES[3]).unlink()
    (tmp_path / "d" / FILES[3]).unlink()
    assert main(["data", "fetch", "drugcomb", "--data-dir", str(tmp_path / "d"), "--base-url", url]) == 1
    assert "DrugComb/README.md: cannot download" in capsys.readouterr().err
    assert main(["data", "fetch", "nope", "--data-dir", str(tmp_path / "d"), "--base-url", url]) == 1


def test_project_checksums_cover_every_file_the_readers_use():
    table = F.checksums()
    assert len(table) > 5000 and {f.split("/")[0] for f in table} == set(F.SOURCES)
    for rel in ("BC5CDR/CDR_TestSet.PubTator.txt", "GAD/10/test.tsv", "SciER/LLM/train.jsonl"):
        assert hashlib.sha256((SHARED / rel).read_bytes()).hexdigest() == table[rel]


@pytest.mark.parametrize("rel, url", [
    ("BC5CDR/CDR_TrainingSet.PubTator.txt", "cryptoradon/biomedRelExt/e42e94570138158963ae4696298bf09232071740/"
                                            "CDR_Data/CDR.Corpus.v010516/CDR_TrainingSet.PubTator.txt"),
    ("ChemProt/test.txt", "allenai/scibert/06793f77d7278898159ed50da30d173cdc8fdea9/data/text_classification/chemprot/test.txt"),
    ("GAD/3/train.tsv", "BioMedBERT/biomedbert/9e5e1019d79d07c7aecc4eb49106203af1012663/datasets/RE/GAD/3/train.tsv"),
    ("SciER/LLM/dev.jsonl", "edzq/SciER/db347813de379eb200e0813bbfee350d67e7c701/SciER/LLM/dev.jsonl"),
    ("NCBI-disease/NCBItrainset_corpus.txt", "spyysalo/ncbi-disease/95a4ae5cca3a34f7715fdc792fc69f851c7b32df/"
                                             "original-data/train/NCBItrainset_corpus.txt"),
    ("JNLPBA/standoff/test/1.ann", "spyysalo/jnlpba/4455122de861c6e448e2e8c7f19ef8f49dbc32b2/standoff/test/1.ann"),
])
def test_upstream_urls(rel, url):
    assert F.upstream_url(rel) == f"https://raw.githubusercontent.com/{url}"


def test_missing_data(tmp_path):
    assert F.missing_data(tmp_path) and not F.missing_data(SHARED)
