"""``eventkit data``: dataset manifests (what to download, from where, where to put it) and checks.

    eventkit data list [--json]
    eventkit data info NAME [--json]
    eventkit data verify NAME [--root DIR] [--skip-checksums] [--json]
    eventkit data unpack NAME [--root DIR] [--skip-checksums]
    eventkit data fetch NAME [--root DIR] [--mirror URL ...] [--no-unpack] [--json]

A missing root or a checksum mismatch is an error (exit 2, one message from the root
group); a partial root (fewer samples than the release) exits 0 with a warning line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from .options import dataset_argument, json_option, root_option


def _spec_dict(name: str) -> dict:
    from eventkit.datasets import get_dataset
    from eventkit.datasets.spec import ENV_DATA

    s = get_dataset(name)
    env = os.environ.get(ENV_DATA)
    return {
        "name": s.name, "title": s.title, "kind": s.kind, "sensor_size": list(s.sensor_size),
        "classes": list(s.classes), "splits": list(s.splits), "counts": dict(s.counts),
        "duration_us": s.duration_us, "timestamp_unit": s.timestamp_unit, "reader": s.reader,
        "citation": s.citation, "homepage": s.homepage,
        "archives": [
            {"file": a.file, "url": a.url, "mirrors": list(a.mirrors), "manual": a.manual, "algorithm": a.algorithm,
             "checksum": a.checksum, "unpack": a.unpack, "splits": list(a.splits), "optional": a.optional,
             "alternative": a.alternative, "note": a.note}
            for a in s.archives
        ],
        "layout": {"family": s.layout.family, "description": s.layout.description, "paths": list(s.layout.paths)},
        "label_rule": s.label_rule, "split_rule": s.split_rule, "conventions": s.conventions,
        "manifest": s.manifest_file, "manifest_sha256": s.manifest_sha256,
        "default_root": str(Path(env).expanduser() / s.name) if env else None,
    }


@click.group("data")
def data() -> None:
    """Dataset manifests: what to download, where, and checks."""


@data.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List the datasets eventkit knows (name, kind, samples per split, title)."""
    from eventkit.datasets import get_dataset, list_datasets

    rows: list[dict[str, Any]] = []
    for name in list_datasets():
        s = get_dataset(name)
        rows.append({"name": name, "kind": s.kind, "counts": dict(s.counts), "title": s.title})
    if as_json:
        click.echo(json.dumps({"datasets": rows}, indent=2))
        return
    for r in rows:
        counts = " / ".join(f"{k} {v}" for k, v in r["counts"].items())
        click.echo(f"{r['name']:<13} {r['kind']:<7} {counts:<40} {r['title']}")


@data.command("info")
@dataset_argument
@json_option
def info(name: str, as_json: bool) -> None:
    """What NAME is, where to download it, its checksums, expected layout, split rule and counts."""
    d = _spec_dict(name)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    from eventkit.datasets import get_dataset

    s = get_dataset(name)
    out = [
        f"{d['name']}: {d['title']}",
        f"  kind: {d['kind']}   sensor_size: {tuple(d['sensor_size'])}   timestamps: {d['timestamp_unit']}"
        + (f"   duration_us: {d['duration_us']}" if d["duration_us"] else ""),
        f"  classes ({len(d['classes'])}): {', '.join(d['classes'])}",
        "  samples: " + ", ".join(f"{k} {v}" for k, v in d["counts"].items()),
        f"  citation: {d['citation']}",
        f"  homepage: {d['homepage']}",
        "  download:",
        *[f"    - {a.describe()}" + ("  [alternative]" if a.alternative else "  [optional]" if a.optional else "")
          + ("  [by hand: browser or form]" if a.manual else "") for a in s.archives],
        f"  expected layout: {d['layout']['description']}",
        f"  label rule: {d['label_rule']}",
        f"  split rule: {d['split_rule']}",
    ]
    if d["conventions"]:
        out.append(f"  conventions: {d['conventions']}")
    where = d["default_root"] or "(set $EVENTKIT_DATA or pass --root)"
    out += [
        f"  data folder: --root DIR, else $EVENTKIT_DATA/{name} = {where}",
        f"  manifest: {d['manifest']} (sha256 {d['manifest_sha256'][:16]}...)",
        f"  get it with: eventkit data fetch {name} [--root DIR]"
        + ("  (some files by hand: see [by hand])" if any(a.manual for a in s.needed_archives()) else ""),
        f"  check it with: eventkit data verify {name} [--root DIR]",
    ]
    click.echo("\n".join(out))


@data.command("verify")
@dataset_argument
@root_option
@click.option("--skip-checksums", is_flag=True, default=False,
              help="Do not hash the archives/data files present (e.g. fixtures under the release's file names).")
@json_option
def verify(name: str, root: Path | None, skip_checksums: bool, as_json: bool) -> None:
    """Check archives' checksums, the raw layout and samples per split of NAME under --root."""
    from eventkit.datasets import verify_dataset

    report = verify_dataset(name, root, checksums=not skip_checksums)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        lines = [f"{name}: {report.root}: {report.status}"]
        for a in report.archives:
            extra = f" ({a['algorithm']} {a.get('actual', '')})" if a["status"] == "ok" else ""
            lines.append(f"  archive {a['file']}: {a['status']}{extra}")
        for split, r in report.splits.items():
            exp = r["expected"] if r["expected"] is not None else "?"
            lines.append(f"  {split}: {r['found']} / {exp} samples ({r['status']})")
        click.echo("\n".join(lines))
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)


@data.command("unpack")
@dataset_argument
@root_option
@click.option("--skip-checksums", is_flag=True, default=False, help="Unpack without checking the archives' digests.")
def unpack(name: str, root: Path | None, skip_checksums: bool) -> None:
    """Check and safely unpack the downloaded archives of NAME into its root."""
    from eventkit.datasets.extract import unpack_dataset

    unpacked = unpack_dataset(name, root, checksums=not skip_checksums)
    for archive in unpacked:
        click.echo(f"unpacked {archive}")
    if not unpacked:
        click.echo(f"{name}: nothing to unpack (its files are read as downloaded"
                   + ("" if skip_checksums else "; checksums verified") + ")")


@data.command("fetch")
@dataset_argument
@root_option
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Base URL tried first for every file (URL/<file>), e.g. a local copy; repeatable.")
@click.option("--retries", type=click.IntRange(0, 100), default=3, show_default=True,
              help="Tries per URL after the first; a dropped connection resumes where it stopped.")
@click.option("--no-unpack", is_flag=True, default=False, help="Download and check only.")
@json_option
def fetch(name: str, root: Path | None, mirrors: tuple[str, ...], retries: int, no_unpack: bool,
          as_json: bool) -> None:
    """Download NAME's files (mirrors, checksums, resume), then unpack them safely into --root.

    Files go to ROOT/download/ (ROOT: --root DIR, else $EVENTKIT_DATA/NAME). Progress goes to
    stderr: a bar on a terminal, plain lines otherwise and with --json. Files behind a browser page or a form
    are not downloaded: the message says where to get them and where to put them.
    """
    import sys

    from eventkit.datasets.fetch import fetch_dataset

    from .options import progress_enabled

    # stderr only (stdout stays the JSON): plain lines off a terminal or with --json, nothing with `eventkit -q`
    mode = progress_enabled(as_json)
    result = fetch_dataset(name, root, mirrors=list(mirrors), retries=retries, unpack=not no_unpack,
                           stream=sys.stderr if mode else None, progress=mode)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(f"{name}: {len(result.files)} file(s) in {result.root}/download, "
                   f"{len(result.unpacked)} unpacked into {result.root}")
