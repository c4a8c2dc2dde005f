"""Progress output: tqdm bars only on a terminal; plain, rate-limited lines elsewhere and with
``--json`` (:mod:`eventkit.progress`, ``eventkit train/eval/plot``)."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventkit.errors import ParameterError
from eventkit.progress import Progress, resolve_mode

TINY_ARCH = "APk2s2-c4k3s1-BN-PLIF-MPk2s2-DP-FC20-PLIF-APk2s2"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_resolve_mode():
    assert resolve_mode(True, io.StringIO()) == "lines"
    assert resolve_mode("auto", TTY()) == "bar"
    assert resolve_mode(True, TTY()) == "bar"
    assert resolve_mode("lines", TTY()) == "lines"
    assert resolve_mode(False, TTY()) == "off" and resolve_mode(None, TTY()) == "off"
    with pytest.raises(ParameterError, match="progress="):
        resolve_mode("bars", TTY())


def test_lines_are_rate_limited_with_a_final_line():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, "build", progress=True, unit="samples", every_s=30, stream=out, clock=clock)
    for _ in range(1000):  # 1000 updates over 100 s: a line at 30, 60, 90 s, then the final one
        clock.t += 0.1
        bar.update(1, events=50)
    bar.close()
    bar.close()  # idempotent
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("build: 300/1000 samples, 10.0 samples/s, 500 events/s")
    assert lines[-1] == "build: 1000/1000 samples, 10.0 samples/s, 500 events/s, 100.0 s, done"
    resumed = io.StringIO()
    with Progress(10, "build", progress=True, unit="samples", initial=4, stream=resumed, clock=clock) as bar:
        bar.update(6)
    assert resumed.getvalue().startswith("build: 10/10 samples (4 done before)")


def test_after_lines_mode_is_silent_for_short_jobs_and_postfix_is_lazy():
    out, clock = io.StringIO(), FakeClock()
    calls = []

    def postfix() -> str:
        calls.append(1)
        return "loss 0.5000"

    with Progress(50, "epoch 1 train", progress="lines", unit="batches", final="after-lines", stream=out,
                  clock=clock) as bar:
        for _ in range(50):
            clock.t += 0.1
            bar.update(1, postfix=postfix)
    assert out.getvalue() == "" and not calls  # 5 s: no line, the postfix never computed
    with Progress(50, "epoch 2 train", progress="lines", unit="batches", final="after-lines", stream=out,
                  clock=clock) as bar:
        for _ in range(50):
            clock.t += 1.0
            bar.update(1, postfix=postfix)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 2 train: 30/50 batches") and "loss 0.5000" in lines[0]
    assert lines[1].endswith(", done") and len(calls) == 2


def test_failed_job_writes_no_final_line_and_off_writes_nothing():
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(3, "x", progress="lines", stream=out):
            raise RuntimeError("boom")
    assert out.getvalue() == ""
    with Progress(3, "x", progress=False, stream=out) as bar:
        bar.update(3)
    assert out.getvalue() == "" and bar.done == 3


def test_a_terminal_gets_a_bar_with_rates():
    tty, clock = TTY(), FakeClock()
    with Progress(10, "x", progress=True, stream=tty, clock=clock) as bar:
        for _ in range(10):
            clock.t += 1.0
            bar.update(1, events=100)
    assert "\r" in tty.getvalue() and "10/10" in tty.getvalue() and "100 events/s" in tty.getvalue()


# -- the commands, with stderr sent to a file ------------------------------------------------

def _run(args: list[str], tmp_path: Path, name: str) -> tuple[str, str]:
    err = tmp_path / f"{name}.stderr"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(err, "w") as stderr:
        proc = subprocess.run([sys.executable, "-m", "eventkit.cli.main", *args], stdout=subprocess.PIPE,
                              stderr=stderr, text=True, env=env, timeout=600)
    text = err.read_text()
    assert proc.returncode == 0, text
    return proc.stdout, text


def _assert_plain(text: str, max_lines: int) -> list[str]:
    assert "\r" not in text and "\x1b" not in text, text[:500]
    assert not re.search(r"\d+it/s|\|[#█▏▎▍▌▋▊▉ ]+\|", text), text[:500]  # no tqdm bar
    lines = text.splitlines()
    assert len(lines) <= max_lines, lines
    return lines


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from eventkit.testing import make_nmnist_root

    base = tmp_path_factory.mktemp("progress")
    root = make_nmnist_root(base / "raw", per_class_train=2, per_class_test=1)
    run = base / "run"
    args = ["train", "nmnist", "--root", str(root), "--cache", str(base / "cache"), "--T", "4", "--arch", TINY_ARCH,
            "--epochs", "3", "--batch-size", "8", "--device", "cpu", "--threads", "1", "--out", str(run), "--json"]
    stdout, stderr = _run(args, base, "train")
    return {"base": base, "root": root, "run": run, "stdout": stdout, "stderr": stderr}


def test_train_json_off_a_terminal_writes_plain_bounded_lines(trained):
    lines = _assert_plain(trained["stderr"], max_lines=3 * 2 + 6)  # 3 epochs: epoch lines + build + warnings
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert json.loads(trained["stdout"].strip().splitlines()[-1])["epochs"] == 3


def test_eval_and_plot_off_a_terminal(trained):
    stdout, stderr = _run(["eval", str(trained["run"]), "--device", "cpu", "--json"], trained["base"], "eval_json")
    _assert_plain(stderr, max_lines=4)
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["synops"]["total"] >= 0 and res["energy_pj"]["ann"] > 0
    stdout, stderr = _run(["eval", str(trained["run"]), "--device", "cpu"], trained["base"], "eval")
    _assert_plain(stderr, max_lines=4)
    assert "synaptic operations per sample" in stdout and "energy per sample" in stdout
    stdout, stderr = _run(["plot", str(trained["run"]), "--out", str(trained["base"] / "png")], trained["base"], "plot")
    _assert_plain(stderr, max_lines=3)
    assert {Path(p).name for p in stdout.split()} >= {"loss.png", "accuracy.png", "latency.png"}




def _run_on_a_terminal(args: list[str]) -> str:
    """Run ``eventkit ARGS`` with stderr on a pseudo-terminal of 100 columns; its output."""
    import fcntl
    import pty
    import struct
    import termios

    try:
        master, slave = pty.openpty()
    except OSError as exc:
        pytest.skip(f"no pseudo-terminal here: {exc}")
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "eventkit.cli.main", *args], stdout=subprocess.DEVNULL,
                            stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=600) == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


def test_train_on_a_terminal_bars_without_json_only(trained):
    args = ["train", "nmnist", "--root", str(trained["root"]), "--cache", str(trained["base"] / "cache"), "--T", "4",
            "--arch", TINY_ARCH, "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--threads", "1"]
    epoch_bar = re.compile(r"epoch 1/1 train:\s+\d+%\|")
    bars = _run_on_a_terminal(args + ["--out", str(trained["base"] / "tty")])
    assert epoch_bar.search(bars), bars[-2000:]  # a terminal without --json: tqdm bars
    plain = _run_on_a_terminal(args + ["--out", str(trained["base"] / "tty-json"), "--json"])
    assert not epoch_bar.search(plain) and "epoch 1/1: loss" in plain, plain[-2000:]
