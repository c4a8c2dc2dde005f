"""Rewrite the ``--help`` blocks of docs/cli.md from the commands themselves.

Every section headed ``### `eventkit WORDS --help` `` followed by a ```text block gets the
output of ``eventkit WORDS --help`` at 80 columns (what ``tests/cli/test_frames.py`` checks).
Commands and subcommands without such a section are listed on stderr; ``--add-missing``
appends an empty section for each at the end of the file (filled in the same run).

    python scripts/update_cli_docs.py [--add-missing]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from eventkit.cli.main import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
SECTION = re.compile(r"(### `eventkit ((?:[a-z-]+ )*)--help`\n\n```text\n)(.*?)(```)", flags=re.S)


def help_text(words: str) -> str:
    r = CliRunner().invoke(cli, [*words.split(), "--help"], prog_name="eventkit", terminal_width=78)
    if r.exit_code != 0:
        raise SystemExit(f"eventkit {words}--help failed: {r.output}")
    return r.output


def all_commands(group: click.Group = cli, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        out.append(f"{prefix}{name} ")
        if isinstance(cmd, click.Group):
            out += all_commands(cmd, f"{prefix}{name} ")
    return out


def main() -> int:
    doc = DOC.read_text(encoding="utf-8")
    documented = [m.group(2) for m in SECTION.finditer(doc)]
    if "--add-missing" in sys.argv[1:]:
        for c in all_commands():
            if c not in documented:
                doc = doc.rstrip("\n") + f"\n\n### `eventkit {c}--help`\n\n```text\n```\n"
                documented.append(c)
    doc = SECTION.sub(lambda m: m.group(1) + help_text(m.group(2)) + m.group(4), doc)
    DOC.write_text(doc, encoding="utf-8")
    missing = [c for c in all_commands() if c not in documented]
    for c in missing:
        print(f"docs/cli.md has no `eventkit {c}--help` section", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
