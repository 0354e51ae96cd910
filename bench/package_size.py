"""Benchmark 5: each function's deployment package (sam build output) with its layer,
minus what the Lambda Python runtime already provides."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from bench import ROOT, Row

BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "DomainLayer" / "python"
TARGET = 5 * 1024 * 1024
#: Provided by the Lambda Python runtime: not counted (with their dist-info).
RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
RUNTIME_DISTS = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python_dateutil", "six")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _provided(entry: Path) -> bool:
    name = entry.name
    if name.endswith(".dist-info"):
        return name.split("-")[0].lower() in RUNTIME_DISTS
    return name.removesuffix(".py") in RUNTIME


def _build() -> None:
    # The Makefile finds the runtime's Python (a pyenv 3.12, whatever its patch version).
    subprocess.run(["make", "build"], cwd=ROOT, check=True)  # noqa: S607


def _stale() -> bool:
    """No build yet, or the template or a function's source changed since the last one
    (a package measured from an old build would leave out a new function)."""
    built = BUILD / "template.yaml"
    if not LAYER.is_dir() or not built.is_file():
        return True
    sources = [ROOT / "template.yaml", *(ROOT / "functions").rglob("*.py")]
    return max(path.stat().st_mtime for path in sources) > built.stat().st_mtime


def run(out: Callable[[str], None] = print) -> list[Row]:
    if _stale():
        _build()
    entries = [e for e in LAYER.iterdir() if not _provided(e)]
    layer = sum(_size(e) for e in entries)
    excluded = sum(_size(e) for e in LAYER.iterdir() if _provided(e))
    out(f"  DomainLayer: {layer / 1e6:.2f} MB counted, {excluded / 1e6:.2f} MB runtime-provided")
    for entry in sorted(entries, key=_size, reverse=True)[:6]:
        out(f"      {_size(entry) / 1e6:6.2f} MB  python/{entry.name}")
    rows = []
    for function in sorted(BUILD.glob("*Function")):
        total = _size(function) + layer
        out(f"  {function.name:<28} {total / 1e6:.2f} MB (code {_size(function) / 1e3:.1f} kB)")
        rows.append(
            Row(
                figure=f"package {function.name}",
                median=f"{total / 1e6:.2f} MB",
                spread=f"code {_size(function) / 1e3:.1f} kB",
                target="≤ 5 MB",  # 5 MiB
                met=total <= TARGET,
            )
        )
    return rows
