"""Tests for tools/check_layer.py and the layer's trim list, without sam and without network.

The dev venv holds the same pinned packages as the layer (requirements/lambda.txt), so the
trim list is checked against them: every entry still matches something, nothing kept
imports what it removes, and the Makefile's own trim recipe, run on a copy of them, leaves
a layer every handler imports in isolation.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from tools.check_layer import (
    HARMLESS,
    MAKEFILE,
    RUNTIME_PROVIDED,
    TrimEntry,
    check,
    check_catalogs,
    check_trim,
    imports_in,
    imports_under,
    is_trimmed,
    kept_files,
    matches,
    probe,
    trim_entries,
    trim_problems,
    trimmed_imports,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
REQUIREMENTS = FUNCTIONS / "approval_gate" / "requirements.txt"
MAKE = shutil.which("make") or "make"
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def pins() -> dict[str, str]:
    found = (_PIN.match(line.strip()) for line in REQUIREMENTS.read_text().splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def layer_distributions() -> list[metadata.Distribution]:
    """The requirements and what they need (not the Lambda runtime's), as installed here."""
    runtime = {name.replace("_", "-") for name in RUNTIME_PROVIDED} | {"python-dateutil"}
    todo, seen, dists = list(pins()), set(), []
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name in runtime:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        dists.append(dist)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])
    return dists


def site_packages() -> Path:
    return Path(str(metadata.distribution("slack-sdk").locate_file("")))


def installed_files(dists: list[metadata.Distribution]) -> list[Path]:
    files = []
    for dist in dists:
        for file in dist.files or []:
            if "__pycache__" not in file.parts:
                files.append(Path(str(dist.locate_file(file))))
    return files


# --------------------------------------------------------------------------- the real list


def test_the_dev_venv_has_the_layer_pins() -> None:
    """The checks below read the venv's packages: they must be the ones the layer ships."""
    for name, version in pins().items():
        assert metadata.version(name) == version, f"{name}: run `make venv`"


def test_every_trim_entry_says_why_and_stays_in_the_layer() -> None:
    entries = trim_entries()
    assert len(entries) >= 10
    assert trim_problems(entries) == []


def test_every_trim_entry_still_matches_the_pinned_packages() -> None:
    stale = [e.pattern for e in trim_entries() if not matches(site_packages(), e)]
    assert stale == [], "these match nothing: the build would fail; update LAYER_TRIM"


def test_nothing_kept_imports_what_the_trim_removes() -> None:
    entries = trim_entries()
    files = installed_files(layer_distributions())
    kept = [f for f in kept_files(site_packages(), files, entries) if f.suffix == ".py"]
    assert len(kept) > 100
    assert trimmed_imports(imports_under(site_packages(), kept), entries) == []


def test_every_harmless_excuse_is_needed_and_true() -> None:
    entries = trim_entries()
    files = installed_files(layer_distributions())
    kept = [f for f in kept_files(site_packages(), files, entries) if f.suffix == ".py"]
    unexcused = trimmed_imports(imports_under(site_packages(), kept), entries, harmless={})
    for importer, _ in HARMLESS:
        where = importer.replace(".", "/") + ".py:"
        assert any(f.startswith(where) for f in unexcused), f"{importer}: excuse no longer needed"
    # Powertools' pydantic_to_dict() could never work here: compat needs pydantic.
    compat = site_packages() / "aws_lambda_powertools/event_handler/openapi/compat.py"
    statements = imports_in(compat.read_text(), "compat", False, "compat.py")
    assert any(s.module == "pydantic" and not s.optional for s in statements)
    assert "pydantic" not in {d.metadata["Name"].lower() for d in layer_distributions()}


def test_the_functions_import_nothing_the_trim_removes() -> None:
    """Lazy imports inside function bodies included; no HARMLESS excuses for our code."""
    code = sorted(FUNCTIONS.rglob("*.py"))
    statements = imports_under(FUNCTIONS, code)
    assert any(s.module == "aws_lambda_powertools.utilities.parameters" for s in statements)
    assert trimmed_imports(statements, trim_entries(), harmless={}) == []


def test_the_trim_removes_the_big_unused_parts() -> None:
    entries = trim_entries()
    for module in ("yaml._yaml", "aws_lambda_powertools.event_handler", "slack_sdk.oauth"):
        assert is_trimmed(module, entries), module
    for module in (
        "yaml",
        "slack_sdk.web.client",
        "slack_sdk.models.blocks",
        "slack_sdk.signature",
        "aws_lambda_powertools.logging",
        "aws_lambda_powertools.utilities.parameters",
        "approval_gate.policy",
    ):
        assert is_trimmed(module, entries) is None, module


# --------------------------------------------------------------------------- end to end


def _function_folder(name: str) -> str:
    return "".join(part.title() for part in name.split("_")) + "Function"


@pytest.fixture(scope="module")
def fake_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `sam build` output made from the dev venv's packages and the Makefile's trim."""
    build = tmp_path_factory.mktemp("build")
    layer = build / "DomainLayer"
    site = site_packages()
    for file in installed_files(layer_distributions()):
        target = layer / "python" / file.relative_to(site)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    shutil.copytree(
        FUNCTIONS / "approval_gate",
        layer / "python" / "approval_gate",
        ignore=shutil.ignore_patterns("__pycache__", "Makefile", "*.txt"),
    )
    for app in sorted(FUNCTIONS.glob("*/app.py")):
        folder = build / _function_folder(app.parent.name)
        folder.mkdir()
        shutil.copy2(app, folder / "app.py")
    subprocess.run(
        [MAKE, "-s", "-f", str(MAKEFILE), "trim-DomainLayer", f"ARTIFACTS_DIR={layer}"],
        check=True,
        cwd=MAKEFILE.parent,
    )
    return build


def test_the_trimmed_layer_passes_the_whole_check(
    fake_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not (
        fake_build / "DomainLayer" / "python" / "aws_lambda_powertools" / "event_handler"
    ).exists()
    assert check(fake_build) == []
    printed = capsys.readouterr().out
    functions = len(list(FUNCTIONS.glob("*/app.py")))
    assert f"ok: {functions} functions import in isolation" in printed
    assert "libyaml off" in printed


def test_the_check_fails_when_the_trim_takes_too_much(fake_build: Path, tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        MAKEFILE.read_text()
        + "LAYER_TRIM += aws_lambda_powertools/utilities/parameters  # wrong on purpose\n"
    )
    findings = check_trim(fake_build / "DomainLayer" / "python", makefile)
    # Our lazy import of SecretsProvider (inside a function body) is what it catches.
    assert any(
        f.startswith("approval_gate/slack.py:") and "utilities.parameters" in f for f in findings
    ), findings
    # The layer was trimmed without that entry, so the check also says it was never applied.
    assert any("still in the layer, LAYER_TRIM aws_lambda_powertools/util" in f for f in findings)


def test_the_trim_recipe_fails_on_an_entry_that_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()
    done = subprocess.run(
        [MAKE, "-s", "-f", str(MAKEFILE), "trim-DomainLayer", f"ARTIFACTS_DIR={tmp_path}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=MAKEFILE.parent,
    )
    assert done.returncode != 0
    assert "LAYER_TRIM: nothing matches" in done.stderr


# --------------------------------------------------------------------------- isolation


def _write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_the_probe_sees_only_its_path_not_the_callers(tmp_path: Path) -> None:
    """A complete copy of a package elsewhere (like the dev venv's) cannot hide a gap."""
    function, layer, runtime, decoy = (tmp_path / d for d in ("fn", "layer", "rt", "decoy"))
    _write(function / "app.py", "import lib\n\ndef handler(event, context):\n    import lib.lazy\n")
    _write(layer / "lib" / "__init__.py")
    _write(decoy / "lib" / "__init__.py")
    _write(decoy / "lib" / "lazy.py")
    runtime.mkdir()
    statements = imports_under(function, [function / "app.py"])
    env = {"PYTHONPATH": str(decoy), "PATH": "/usr/bin:/bin"}

    result = probe(sys.executable, [("Fn", function, statements)], [layer, runtime], env)
    assert result.failures == [
        "Fn: app.py:4: import lib.lazy: ModuleNotFoundError: No module named 'lib.lazy'"
    ]

    _write(layer / "lib" / "lazy.py")
    result = probe(sys.executable, [("Fn", function, statements)], [layer, runtime], env)
    assert result.failures == []


def test_the_probe_gives_each_function_a_fresh_folder(tmp_path: Path) -> None:
    """A module of one function's folder is not importable by the next function."""
    first, second, layer = tmp_path / "a", tmp_path / "b", tmp_path / "layer"
    for folder in (first, second):
        _write(folder / "app.py", "import helper\n\ndef handler(event, context):\n    pass\n")
    _write(first / "helper.py", "")
    layer.mkdir()
    functions = [
        (name, folder, imports_under(folder, [folder / "app.py"]))
        for name, folder in (("A", first), ("B", second))
    ]
    result = probe(sys.executable, functions, [layer], {"PATH": "/usr/bin:/bin"})
    assert result.failures == [
        "B: import app: ModuleNotFoundError: No module named 'helper'",
        "B: app.py:1: import helper: ModuleNotFoundError: No module named 'helper'",
    ]


def test_the_probe_reports_a_missing_name_and_a_missing_handler(tmp_path: Path) -> None:
    function, layer = tmp_path / "fn", tmp_path / "layer"
    _write(function / "app.py", "def helper():\n    from lib import present, absent\n")
    _write(layer / "lib" / "__init__.py", "present = 1\n")
    statements = imports_under(function, [function / "app.py"])
    env = {"PATH": "/usr/bin:/bin"}
    result = probe(sys.executable, [("Fn", function, statements)], [layer], env)
    assert "Fn: app.handler: missing or not callable" in result.failures
    assert any("from lib import absent" in f for f in result.failures)
    assert not any("present" in f for f in result.failures)


# --------------------------------------------------------------------------- the pieces


def test_trim_entries_read_the_makefile_lines(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "# LAYER_TRIM += commented/out  # not an entry\n"
        "LAYER_TRIM += a/b c/d.py  # both unused\n"
        "LAYER_TRIM += e\n"
        "LAYER_TRIM += ../up  # escapes\n"
        "LAYER_TRIM += approval_gate/x.py  # ours\n"
        "build-DomainLayer:\n"
    )
    entries = trim_entries(makefile)
    assert [(e.pattern, e.reason, e.line) for e in entries] == [
        ("a/b", "both unused", 2),
        ("c/d.py", "both unused", 2),
        ("e", "", 3),
        ("../up", "escapes", 4),
        ("approval_gate/x.py", "ours", 5),
    ]
    problems = trim_problems(entries, "Makefile")
    assert problems == [
        "Makefile:3: e: says not why it is safe (add '# reason')",
        "Makefile:4: ../up: must be a relative path inside the layer's python/",
        "Makefile:5: approval_gate/x.py: would remove the layer itself or our own package",
    ]


def test_entries_name_the_modules_they_remove() -> None:
    entries = [
        TrimEntry("yaml/_yaml.*.so", "binding", 1),
        TrimEntry("pkg/web/async_*.py", "asyncio", 2),
        TrimEntry("pkg/oauth", "unused", 3),
    ]
    assert [e.module for e in entries] == ["yaml._yaml", "pkg.web.async_*", "pkg.oauth"]
    assert is_trimmed("yaml._yaml", entries) == entries[0]
    assert is_trimmed("pkg.web.async_client", entries) == entries[1]
    assert is_trimmed("pkg.oauth.state_store.file", entries) == entries[2]
    assert is_trimmed("pkg.web.client", entries) is None
    assert is_trimmed("pkg.oauthlike", entries) is None
    assert is_trimmed("yaml", entries) is None


def test_kept_files_follow_rm_rf_with_shell_globs(tmp_path: Path) -> None:
    for name in (
        "pkg/web/async_client.py",
        "pkg/web/async/deep.py",
        "pkg/web/client.py",
        "pkg/oauth/__init__.py",
        "pkg/oauth/store/file.py",
    ):
        _write(tmp_path / name)
    files = sorted(p for p in tmp_path.rglob("*.py"))
    entries = [TrimEntry("pkg/web/async_*.py", "asyncio", 1), TrimEntry("pkg/oauth", "x", 2)]
    kept = {str(p.relative_to(tmp_path)) for p in kept_files(tmp_path, files, entries)}
    # `*` stops at `/`, as in the shell: async/deep.py is not an `async_*.py`.
    assert kept == {"pkg/web/async/deep.py", "pkg/web/client.py"}


def test_imports_in_finds_lazy_optional_and_relative_imports() -> None:
    source = textwrap.dedent(
        """
        from __future__ import annotations
        import os, a.b
        from typing import TYPE_CHECKING
        from . import sibling
        from ..up import thing
        if TYPE_CHECKING:
            from typed import Only
        try:
            from .cyaml import *
        except ImportError:
            pass
        def later():
            from lazy.mod import name as alias
        """
    )
    found = {(i.module, i.names, i.optional) for i in imports_in(source, "p.q.m", False, "m.py")}
    assert found == {
        ("os", (), False),
        ("a.b", (), False),
        ("typing", ("TYPE_CHECKING",), False),
        ("p.q", ("sibling",), False),
        ("p.up", ("thing",), False),
        ("typed", ("Only",), True),
        ("p.q.cyaml", ("*",), True),
        ("lazy.mod", ("name",), False),
    }
    in_package = imports_in("from .sub import x\n", "p.q", True, "p/q/__init__.py")
    assert [(i.module, i.where) for i in in_package] == [("p.q.sub", "p/q/__init__.py:1")]


def test_trimmed_imports_reports_where_and_honours_harmless() -> None:
    entries = [TrimEntry("pkg/oauth", "unused", 7)]
    statements = imports_in(
        "from pkg import oauth\nimport pkg.web\ntry:\n    import pkg.oauth.x\nexcept ImportError:\n"
        "    pass\n",
        "pkg.client",
        False,
        "pkg/client.py",
    )
    assert trimmed_imports(statements, entries, harmless={}) == [
        "pkg/client.py:1: imports pkg.oauth, removed by LAYER_TRIM pkg/oauth (Makefile line 7)"
    ]
    excused = {("pkg.client", "pkg.oauth"): "only for OAuth installs"}
    assert trimmed_imports(statements, entries, harmless=excused) == []


def test_a_layer_without_its_compiled_catalogs_is_named(tmp_path: Path) -> None:
    layer = tmp_path / "python"
    found = check_catalogs(layer)
    assert found and "vi" in found[0] and "missing" in found[0]

    compiled = layer / "approval_gate" / "locale" / "vi" / "LC_MESSAGES" / "approval_gate.mo"
    compiled.parent.mkdir(parents=True)
    source = MAKEFILE.parent / "locale" / "vi" / "LC_MESSAGES" / "approval_gate.mo"
    shutil.copyfile(source, compiled)
    assert check_catalogs(layer) == []


def test_the_layer_build_compiles_the_catalogs_with_babel_and_leaves_babel_out(
    tmp_path: Path,
) -> None:
    """The layer's own recipe (what `sam build` runs): Babel, installed for the build from
    requirements-build.txt, compiles each .po; nothing of Babel stays in the layer."""
    done = subprocess.run(
        [
            MAKE,
            "-s",
            "catalogs-DomainLayer",
            f"ARTIFACTS_DIR={tmp_path}",
            f"PYTHON={sys.executable}",
        ],
        cwd=MAKEFILE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert check_catalogs(tmp_path / "python") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["python"]
    assert not list((tmp_path / "python").rglob("babel"))
