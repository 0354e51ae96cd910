"""The Makefiles on machines unlike ours (issue 24, defects 1 and 6), without sam or network.

- The layer's build runs pip with `python3` when the machine has no `python` (stock macOS,
  Debian without python-is-python3): a PATH holding only `python3` and the shell tools the
  recipe needs, with a stand-in `python3` that records how it was called.
- The top Makefile finds a pyenv Python 3.12 whatever its patch version: a stand-in
  `pyenv` lists the versions a user might have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "functions" / "approval_gate"
#: What the layer's recipe runs besides Python (make runs it with /bin/sh).
SHELL_TOOLS = ("sh", "mkdir", "cp", "test", "rm")
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _bin_with(tmp_path: Path, scripts: dict[str, str]) -> Path:
    """A directory for PATH: links to the shell tools, and `scripts` (name → sh body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in SHELL_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return bin_dir


def test_the_layer_builds_with_python3_on_a_machine_without_python(tmp_path: Path) -> None:
    calls = tmp_path / "python3-calls"
    bin_dir = _bin_with(tmp_path, {"python3": f'echo "$@" >> "{calls}"'})
    artifacts = tmp_path / "artifacts"
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    assert shutil.which("python", path=env["PATH"]) is None

    # LAYER_TRIM empty: the trim list needs the real packages (tests/tools/test_check_layer).
    build = ["build-DomainLayer", f"ARTIFACTS_DIR={artifacts}", "LAYER_TRIM="]
    done = subprocess.run(
        [MAKE, "--no-print-directory", *build],
        cwd=LAYER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    pip = calls.read_text().split()
    assert pip[:3] == ["-m", "pip", "install"]
    assert pip[pip.index("--python-version") + 1] == "3.12"
    assert pip[pip.index("--target") + 1] == str(artifacts / "python")
    assert (artifacts / "python" / "approval_gate" / "records.py").is_file()
    assert (artifacts / "python" / "approval_gate" / "feed" / "handle.py").is_file()


def _pyenv_version(tmp_path: Path, versions: list[str], in_use: str) -> str:
    listing = "\\n".join(versions)
    body = (
        'case "$1" in\n'
        f'  versions) printf "{listing}\\n" ;;\n'
        f'  version-name) echo "{in_use}" ;;\n'
        "esac"
    )
    bin_dir = _bin_with(tmp_path, {"pyenv": body})
    for tool in ("grep", "sort", "tail", "cat", "cksum", "cut"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k != "PYENV_VERSION"}
    env["PATH"] = str(bin_dir)
    done = subprocess.run(
        [
            MAKE,
            "-s",
            "--no-print-directory",
            "--eval",
            '__pyenv: ; @echo "$(PYENV_VERSION)"',
            "__pyenv",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_makefile_finds_a_pyenv_312_of_any_patch_version(tmp_path: Path) -> None:
    versions = ["3.11.9", "3.12.5", "3.12.10", "3.13.1", "3.12-dev"]
    assert _pyenv_version(tmp_path, versions, in_use="3.11.9") == "3.11.9:3.12.10"


def test_without_a_pyenv_312_the_makefile_leaves_pyenv_alone(tmp_path: Path) -> None:
    assert _pyenv_version(tmp_path, ["3.11.9", "3.13.1"], in_use="3.11.9") == ""
