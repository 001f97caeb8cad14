"""Shared test setup: no hub access, data read in place from the shared corpora root."""

import contextlib
import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@contextlib.contextmanager
def _hang_guard(seconds: int):
    """Fail instead of hanging: a guard against super-linear work (parsing, YAML aliases), not a speed goal."""
    def expired(*_):
        raise AssertionError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def hang_guard():
    """`with hang_guard(seconds): ...` fails the test once `seconds` have passed."""
    return _hang_guard
