"""The short seeded fuzz run of CI: every format's sample, truncated and byte-flipped, read in
worker processes under a 2 GiB address-space cap and a time cap; every case must be clean
(a valid result or an EventFileError naming the file). The long run:
``python -m tests.fuzz.harness --preset long`` (see docs/reliability.md)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.fuzz import harness
from tests.fuzz.targets import SHARED_DATA, TARGETS

CI_SEED = 20240611
SELFTEST = [name for name in ("segv", "abort", "hang", "oom", "valueerror", "unsorted")]


@pytest.fixture(scope="module")
def ci_run() -> dict[str, dict]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples folder {SHARED_DATA} not found (set EVENTKIT_SHARED_DATA)")
    cfg = harness.PRESETS["ci"]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in TARGETS.items():
            if name.startswith("selftest_"):
                continue
            try:
                size = len(target.build(Path(tmp)))
            except FileNotFoundError:
                continue  # reported as a skip by the test of that format
            cases += harness.plan(name, size, truncations=cfg["truncations"], flips=cfg["flips"],
                                  extremes=cfg["extremes"], seed=CI_SEED)
    return harness.tally(harness.run(cases, jobs=2, timeout=cfg["timeout"]))


@pytest.mark.parametrize("name", [n for n in TARGETS if not n.startswith("selftest_")])
def test_every_mutated_file_is_read_or_refused_cleanly(ci_run, name):
    if name not in ci_run:
        pytest.skip(f"{name}: its real sample is not under {SHARED_DATA}")
    row = ci_run[name]
    assert row["tried"] >= 90
    detail = "\n".join(f"  {key}: {why}  (replay: python -m tests.fuzz.harness --replay {key})"
                       for key, why in row["failures"][:20])
    assert not row["failures"], f"{name}: {len(row['failures'])} of {row['tried']} cases failed:\n{detail}"
    assert row["rejected"] > 0  # the mutations do reach the error paths


def test_the_harness_counts_crashes_hangs_oom_and_foreign_errors(monkeypatch):
    """A reader that segfaults, aborts, hangs, exhausts memory, raises a non-EventFileError or
    returns unsorted events is a failure, and the run goes on after each (workers replaced)."""
    monkeypatch.setenv("EVENTKIT_FUZZ_SELFTEST", "1")
    cases = [harness.Case(f"selftest_{how}", "truncate", 8) for how in SELFTEST]
    cases.append(harness.Case("selftest_valueerror", "byte", 3, 1))
    results = harness.run(cases, jobs=2, timeout=15.0)  # generous: a loaded machine must not turn a crash into a "hang"
    got = {case.target: (outcome, detail) for case, outcome, detail in results}
    assert len(results) == len(cases) and all(outcome == "fail" for _, outcome, _ in results), results
    assert "SIGSEGV" in got["selftest_segv"][1], got
    assert "SIGABRT" in got["selftest_abort"][1], got
    assert "no answer within 15 s" in got["selftest_hang"][1], got
    assert got["selftest_oom"][1].startswith("MemoryError"), got
    assert got["selftest_valueerror"][1] == "ValueError: a decoder's own exception", got
    assert "not sorted" in got["selftest_unsorted"][1], got


def test_mutations_are_reproducible():
    a = harness.plan("x", 5000, truncations=10, flips=10, extremes=5, seed=1)
    assert a == harness.plan("x", 5000, truncations=10, flips=10, extremes=5, seed=1)
    assert a != harness.plan("x", 5000, truncations=10, flips=10, extremes=5, seed=2)
    data = os.urandom(64)
    assert harness.mutate(data, harness.Case("x", "truncate", 10)) == data[:10]
    flipped = harness.mutate(data, harness.Case("x", "byte", 3, 0x41))
    assert flipped[3] == data[3] ^ 0x41 and flipped[:3] + flipped[4:] == data[:3] + data[4:]
    assert harness.mutate(data, harness.Case("x", "int32", 4, 0xFFFFFFFF))[4:8] == b"\xff" * 4
