"""Mutation fuzzing of every reader, each case in a worker process under a memory and time cap.

    python -m tests.fuzz.harness --preset ci                  # the short seeded run CI makes
    python -m tests.fuzz.harness --preset long --jobs 2       # every truncation offset (files up
                                                              # to 64 KiB), thousands of flips
    python -m tests.fuzz.harness --replay aedat4:byte:123:7   # one case, in this process

Mutations of each target's bytes (seeded, reproducible): ``truncate`` at an offset, ``byte``
(XOR one byte with a value 1..255) and ``int32`` (overwrite 4 header bytes with an extreme
value). A case is *clean* when the reader returns a valid result (events sorted by ``t``;
archives extracted inside their folder) or raises ``EventFileError`` naming the file.
Everything else is a failure: another exception (``MemoryError`` included), a crash of the
worker (SIGSEGV, SIGABRT, the kernel's OOM killer), or no answer within the time cap.
Workers run with ``RLIMIT_AS`` (default 2 GiB); a crashed or hung worker is replaced.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
EXTREMES = (0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00010000, 0x40000000)
PRESETS = {
    # (truncations, byte flips, int32 extremes) per target; "all" = every offset up to max_all bytes
    "ci": dict(truncations=40, flips=50, extremes=15, timeout=60.0),
    "long": dict(truncations="all", flips=3000, extremes=500, timeout=120.0, max_all=65536, sampled=4000),
}


@dataclass(frozen=True)
class Case:
    target: str
    kind: str  # truncate | byte | int32
    offset: int
    value: int = 0

    def key(self) -> str:
        return f"{self.target}:{self.kind}:{self.offset}:{self.value}"

    @staticmethod
    def parse(text: str) -> Case:
        t, k, o, v = text.split(":")
        return Case(t, k, int(o), int(v))


def mutate(data: bytes, case: Case) -> bytes:
    """The mutated bytes of ``case`` (deterministic)."""
    if case.kind == "truncate":
        return data[:case.offset]
    out = bytearray(data)
    if case.kind == "byte":
        out[case.offset] ^= case.value
    else:
        out[case.offset:case.offset + 4] = case.value.to_bytes(4, "little")
    return bytes(out)


def plan(target: str, size: int, *, truncations, flips: int, extremes: int, seed: int,
         max_all: int = 65536, sampled: int = 4000) -> list[Case]:
    """The cases of one target of ``size`` bytes: truncation offsets (``"all"``: every offset when
    ``size <= max_all``, else all of the first 4 KiB plus ``sampled`` random ones; an int: half
    in the first KiB, half anywhere, always 0 and size-1), random byte flips (half in the first
    4 KiB, where headers are) and int32 extremes at 4-aligned offsets of the first 4 KiB."""
    rng = np.random.default_rng([seed, zlib.crc32(target.encode())])
    if truncations == "all":
        offs = set(range(size)) if size <= max_all else set(range(min(size, 4096))) | set(
            rng.integers(0, size, sampled).tolist())
    else:
        k = int(truncations)
        offs = {0, max(size - 1, 0)} | set(rng.integers(0, min(size, 1024), k // 2).tolist()) | set(
            rng.integers(0, size, k - k // 2).tolist())
    cases = [Case(target, "truncate", o) for o in sorted(offs)]
    head = min(size, 4096)
    pos = np.concatenate([rng.integers(0, head, flips // 2), rng.integers(0, size, flips - flips // 2)])
    cases += [Case(target, "byte", int(p), int(v)) for p, v in zip(pos, rng.integers(1, 256, flips), strict=True)]
    if size >= 4:
        aligned = rng.integers(0, (head - 4) // 4 + 1, extremes) * 4
        cases += [Case(target, "int32", int(p), int(EXTREMES[i])) for p, i in
                  zip(aligned, rng.integers(0, len(EXTREMES), extremes), strict=True)]
    return cases


# ------------------------------------------------------------------------------------------
# the worker (one process, many cases; replaced when it dies)


def run_case(case: Case, scratch: Path, originals: dict[str, bytes]) -> tuple[str, str]:
    """(outcome, detail): outcome ``accepted`` | ``rejected`` (EventFileError) | ``fail``."""
    from eventkit.errors import EventFileError
    from tests.fuzz.targets import TARGETS

    target = TARGETS[case.target]
    if case.target not in originals:
        originals[case.target] = target.build(scratch)
    path = scratch / f"case{target.suffix}"
    path.unlink(missing_ok=True)
    path.write_bytes(mutate(originals[case.target], case))
    try:
        result = target.read(path, scratch)
    except EventFileError as exc:
        if str(path) not in str(exc) and path.name not in str(exc):
            return "fail", f"EventFileError without the file name: {exc}"
        return "rejected", str(exc).replace(str(path), "<file>")[:300]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzzer looks for
        return "fail", f"{type(exc).__name__}: {str(exc)[:300]}"
    problem = target.check(result, scratch)
    return ("fail", problem) if problem else ("accepted", "")


def worker(cap: int) -> int:
    import faulthandler
    import resource

    faulthandler.disable()
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import eventkit.datasets.extract
    import eventkit.io  # noqa: F401 - imported before "ready": not timed as part of a case

    originals: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="eventkit-fuzz-") as tmp:
        sys.stdout.write('{"ready": true}\n')
        sys.stdout.flush()
        for line in sys.stdin:
            case = Case.parse(line.strip())
            try:
                outcome, detail = run_case(case, Path(tmp), originals)
            except FileNotFoundError as exc:  # a real sample missing: the case is skipped
                outcome, detail = "skipped", str(exc)
            sys.stdout.write(json.dumps({"outcome": outcome, "detail": detail}) + "\n")
            sys.stdout.flush()
    return 0


# ------------------------------------------------------------------------------------------
# the parent: workers, time caps, tallies


class _Worker:
    def __init__(self, cap: int):
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.harness", "--worker", "--cap", str(cap)],
                                     cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        ready = self.proc.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise RuntimeError(f"fuzz worker did not start (exit {self.proc.wait()})")
        self.case: Case | None = None
        self.deadline = 0.0

    def send(self, case: Case, timeout: float) -> None:
        self.case, self.deadline = case, time.monotonic() + timeout
        self.proc.stdin.write(case.key() + "\n")
        self.proc.stdin.flush()

    def died(self) -> str:
        self.proc.kill()
        code = self.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return f"worker killed by {name}" + (" (OOM killer?)" if name == "SIGKILL" else "")
        return f"worker exited with status {code}"


def run(cases: list[Case], *, jobs: int = 2, timeout: float = 60.0, cap: int = 2 << 30,
        progress: bool = False) -> list[tuple[Case, str, str]]:
    """Run ``cases`` on ``jobs`` workers -> ``[(case, outcome, detail)]`` in completion order."""
    todo = list(reversed(cases))
    results: list[tuple[Case, str, str]] = []
    sel = selectors.DefaultSelector()
    workers = []
    for _ in range(min(jobs, len(cases))):
        w = _Worker(cap)
        workers.append(w)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
    idle = list(workers)

    def replace(w: _Worker) -> None:
        sel.unregister(w.proc.stdout)
        nw = _Worker(cap)
        sel.register(nw.proc.stdout, selectors.EVENT_READ, nw)
        idle.append(nw)

    while todo or len(idle) < len(workers):
        while idle and todo:
            idle.pop().send(todo.pop(), timeout)
        busy = [k.data for k in sel.get_map().values() if k.data.case is not None]
        wait = max(0.0, min(w.deadline for w in busy) - time.monotonic()) if busy else 0.0
        for key, _ in sel.select(timeout=min(wait, 5.0)):
            w = key.data
            line = w.proc.stdout.readline()
            if line:
                reply = json.loads(line)
                results.append((w.case, reply["outcome"], reply["detail"]))
                w.case = None
                idle.append(w)
            else:
                results.append((w.case, "fail", w.died()))
                replace(w)
        now = time.monotonic()
        for w in [k.data for k in sel.get_map().values()]:
            if w.case is not None and now > w.deadline:
                case = w.case
                w.died()
                results.append((case, "fail", f"no answer within {timeout:.0f} s (hang)"))
                replace(w)
        if progress and len(results) % 200 == 0 and results:
            print(f"  {len(results)}/{len(cases)} cases", file=sys.stderr, flush=True)
    for w in [k.data for k in sel.get_map().values()]:
        w.proc.stdin.close()
        w.proc.wait(timeout=30)
    return results


def tally(results: list[tuple[Case, str, str]]) -> dict[str, dict]:
    """Per target: tried, clean, accepted, rejected, failures (case key + detail), skipped, and
    ``isolated``: rejections because the isolated HDF5 read crashed, hung or ran out of memory."""
    out: dict[str, dict] = {}
    for case, outcome, detail in results:
        row = out.setdefault(case.target, {"tried": 0, "clean": 0, "accepted": 0, "rejected": 0, "skipped": 0,
                                           "isolated": 0, "isolated_cases": [], "failures": []})
        if outcome == "skipped":
            row["skipped"] += 1
            row["skip_reason"] = detail
            continue
        row["tried"] += 1
        if outcome == "fail":
            row["failures"].append((case.key(), detail))
        else:
            row["clean"] += 1
            row[outcome] += 1
            if "isolated process" in detail:  # libhdf5 crashed, hung or ran out of memory in the child
                row["isolated"] += 1
                row["isolated_cases"].append((case.key(), detail))
    return out


def markdown(table: dict[str, dict], header: str) -> str:
    from tests.fuzz.targets import TARGETS

    lines = [header, "", "| format | sample | tried | clean | read | EventFileError | of which isolated "
             "crash/hang | failures |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        src = TARGETS[name].source
        lines.append(f"| {name} | {src} | {row['tried']} | {row['clean']} | {row['accepted']} | "
                     f"{row['rejected']} | {row['isolated']} | {len(row['failures'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="ci")
    ap.add_argument("--targets", help="comma-separated target names (default: all)")
    ap.add_argument("--truncations", help="number of truncation offsets per target, or 'all'")
    ap.add_argument("--flips", type=int)
    ap.add_argument("--extremes", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, help="seconds per case (a hang after that is a failure)")
    ap.add_argument("--cap-gib", type=float, default=2.0, help="RLIMIT_AS of each worker (GiB)")
    ap.add_argument("--json", type=Path, help="write the tallies (and failing cases) here")
    ap.add_argument("--markdown", type=Path, help="write the table here")
    ap.add_argument("--replay", help="run one case 'target:kind:offset:value' in this process and print it")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cap", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.cap)
    if args.replay:
        with tempfile.TemporaryDirectory() as tmp:
            print(run_case(Case.parse(args.replay), Path(tmp), {}))
        return 0
    from tests.fuzz.targets import TARGETS

    cfg = dict(PRESETS[args.preset])
    for k in ("flips", "extremes", "timeout"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    if args.truncations is not None:
        cfg["truncations"] = args.truncations if args.truncations == "all" else int(args.truncations)
    names = args.targets.split(",") if args.targets else list(TARGETS)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                size = len(TARGETS[name].build(Path(tmp)))
            except FileNotFoundError as exc:
                print(f"skip {name}: {exc}", file=sys.stderr)
                continue
            cases += plan(name, size, truncations=cfg["truncations"], flips=cfg["flips"], extremes=cfg["extremes"],
                          seed=args.seed, max_all=cfg.get("max_all", 65536), sampled=cfg.get("sampled", 4000))
    t0 = time.monotonic()
    results = run(cases, jobs=args.jobs, timeout=cfg["timeout"], cap=int(args.cap_gib * (1 << 30)), progress=True)
    table = tally(results)
    header = (f"Fuzz run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, preset {args.preset}, seed {args.seed}, "
              f"{len(results)} cases in {time.monotonic() - t0:.0f} s on {args.jobs} worker(s), "
              f"RLIMIT_AS {args.cap_gib:g} GiB, {cfg['timeout']:.0f} s per case; load {os.getloadavg()[0]:.1f}")
    text = markdown(table, header)
    print(text)
    for row in table.values():
        for key, detail in row["failures"][:10]:
            print(f"FAIL {key}: {detail}")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "targets": table}, indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 1 if any(row["failures"] for row in table.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
