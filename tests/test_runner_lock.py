"""The run folder lock: a second run on the same folder fails at once naming the owner; the lock of a
run that died is taken over; a finished run leaves the folder free."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from grasp_lib import run_files, runner
from grasp_lib.paths import REPO_ROOT

SMOKE = "params/smoke.yaml"

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from grasp_lib.runner import run_lock
    with run_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()  # hold the lock until the test closes stdin
""")


@pytest.fixture
def stub_notebooks(monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run_notebooks", lambda *args, **kwargs: calls.append(args) or {})
    monkeypatch.setattr(runner, "f1_summary", lambda run_dir: "")
    return calls


def hold_lock(run_dir) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                              env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_run_on_the_same_folder_fails_at_once_naming_the_owner(tmp_path, stub_notebooks):
    holder = hold_lock(tmp_path / "run")
    try:
        with pytest.raises(runner.RunLocked, match=rf"run folder .*run is in use by another run \(pid {holder.pid} "):
            runner.run(SMOKE, {}, run_dir=tmp_path / "run")
        assert stub_notebooks == []
    finally:
        holder.stdin.close()
        holder.wait()
    assert runner.run(SMOKE, {}, run_dir=tmp_path / "run") == 0  # free again once the owner is done
    assert len(stub_notebooks) == 1


def test_cli_reports_the_lock_with_exit_2(stub_notebooks, capsys):
    from grasp_lib.__main__ import main

    name = f"lock_test_{os.getpid()}"  # the CLI runs in runs/<name>
    run_dir = REPO_ROOT / "runs" / name
    holder = hold_lock(run_dir)
    try:
        assert main(["run", SMOKE, "-p", f"name={name}"]) == 2
        assert f"error: run folder {run_dir} is in use by another run (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.stdin.close()
        holder.wait()
        shutil.rmtree(run_dir)


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path, stub_notebooks, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = run_files.lock_path(tmp_path / "run")
    lock.parent.mkdir()
    lock.write_text(f"pid {dead.stdout.strip()} on this host since yesterday")  # its process is gone
    assert runner.run(SMOKE, {}, run_dir=tmp_path / "run") == 0
    assert f"taking over {lock} from a run that is gone (pid {dead.stdout.strip()} " in capsys.readouterr().err
    assert lock.read_text() == ""  # released cleanly: the next run finds no owner


def test_the_lock_names_its_owner_while_held(tmp_path):
    with runner.run_lock(tmp_path) as lock:
        assert lock.read_text().startswith(f"pid {os.getpid()} on ")
    assert lock.read_text() == ""
