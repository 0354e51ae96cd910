"""The layers (docs/architecture.md#layers): who may import whom, and how big a module gets.

import-linter checks the packages (``[tool.importlinter]`` in pyproject.toml, run by
``make lint-fast``); the tests here show that each of its contracts breaks when a copy of
the code breaks it. The handlers are not packages (each is a module named ``app`` in a
folder of its own), so import-linter cannot name them: their imports are read here with
``ast``. The size limits keep handlers thin and domain modules readable (issue 16).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
DOMAIN = FUNCTIONS / "approval_gate"
HANDLERS = sorted(FUNCTIONS.glob("*/app.py"))
#: The packages a Lambda has at run time besides the standard library: the runtime's boto3,
#: and the layer's requirements (functions/approval_gate/requirements.txt).
RUNTIME_PACKAGES = frozenset({"boto3", "botocore", "slack_sdk", "aws_lambda_powertools", "yaml"})
HANDLER_MAY_IMPORT = frozenset(sys.stdlib_module_names) | RUNTIME_PACKAGES | {"approval_gate"}
MAX_HANDLER_LINES = 40
MAX_DOMAIN_MODULE_LINES = 500
#: Where import-linter's root packages live (pyproject.toml's root_packages).
PACKAGE_FOLDERS = ("functions/approval_gate", "sandbox", "cli", "bench", "reliability", "tools")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: The contracts' names in pyproject.toml, as lint-imports reports them.
DOMAIN_CONTRACT = "The domain imports nothing around it"
SANDBOX_CONTRACT = "The sandbox imports no bench, reliability or cli"
ACYCLIC_CONTRACT = "The sandbox's modules import one another without cycles"
LEAN_RUNTIME_CONTRACT = "What every handler imports loads no metrics code"


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


# ---------------------------------------------------------------------- the handlers


def imported_modules(source: str) -> list[str]:
    """Every module a source imports, by its absolute name (a relative one keeps its dots),
    including imports inside functions and under ``if TYPE_CHECKING:``."""
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
    return modules


def handler_import_problems(source: str) -> list[str]:
    """What a handler imports that a handler may not: anything but the standard library,
    the runtime packages and the domain (another handler, the sandbox, a relative import)."""
    return [m for m in imported_modules(source) if m.split(".")[0] not in HANDLER_MAY_IMPORT]


def test_there_are_handlers_to_check():
    assert len(HANDLERS) >= 5, HANDLERS


@pytest.mark.parametrize("app", HANDLERS, ids=lambda app: app.parent.name)
def test_a_handler_imports_the_domain_and_only_the_standard_library_and_runtime_packages(app):
    source = app.read_text(encoding="utf-8")
    assert handler_import_problems(source) == []
    assert "approval_gate" in {module.split(".")[0] for module in imported_modules(source)}


@pytest.mark.parametrize(
    "line",
    [
        "import sandbox",
        "from sandbox.fake_slack import FakeSlack",
        "import bench.run",
        "from reliability import soak",
        "import tools",
        "from cli.main import main",
        "import app",
        "from start_approval import app",
        "from . import settings",
        "import moto",
        "def handler():\n    import sandbox.engine",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sandbox",
    ],
)
def test_the_handler_import_check_refuses_what_a_handler_may_not_import(line):
    allowed = "import json\nimport boto3\nfrom approval_gate.settings import Settings\n"
    assert handler_import_problems(allowed) == []
    assert handler_import_problems(allowed + line + "\n") != []


@pytest.mark.parametrize("app", HANDLERS, ids=lambda app: app.parent.name)
def test_a_handler_is_thin(app):
    assert _lines(app) <= MAX_HANDLER_LINES


def test_no_domain_module_is_over_the_size_limit():
    modules = sorted(DOMAIN.rglob("*.py"))
    lines = {str(module.relative_to(FUNCTIONS)): _lines(module) for module in modules}
    assert modules
    assert {name: n for name, n in lines.items() if n > MAX_DOMAIN_MODULE_LINES} == {}


# ---------------------------------------------------------------------- import-linter


def _copy_of_the_code(into: Path) -> Path:
    """The root packages' Python files and pyproject.toml, laid out as in the repository."""

    def not_python(folder: str, names: list[str]) -> list[str]:
        return [
            n
            for n in names
            if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))
        ]

    for source in PACKAGE_FOLDERS:
        shutil.copytree(ROOT / source, into / source, ignore=not_python)
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy at ``root``, as ``make lint-fast`` runs it."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache", "--no-logo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root / 'functions'}{os.pathsep}{root}"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_code_keeps_the_import_contracts(tmp_path):
    done = _lint_imports(_copy_of_the_code(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "added", "broken"),
    [
        ("functions/approval_gate/__init__.py", "import sandbox", DOMAIN_CONTRACT),
        (
            "functions/approval_gate/__init__.py",
            "from cli import main",
            DOMAIN_CONTRACT,
        ),
        (
            "functions/approval_gate/__init__.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bench",
            DOMAIN_CONTRACT,
        ),
        ("sandbox/engine.py", "import bench.run", SANDBOX_CONTRACT),
        ("sandbox/client.py", "from reliability import soak", SANDBOX_CONTRACT),
        ("sandbox/demo.py", "import cli.main", SANDBOX_CONTRACT),
        # fake_slack imports faults under TYPE_CHECKING: that import closes the cycle.
        ("sandbox/faults.py", "from sandbox import fake_slack", ACYCLIC_CONTRACT),
        ("sandbox/services.py", "import sandbox.faults", ACYCLIC_CONTRACT),
        # The click path's cold start: only close_request and remind_approvers measure.
        (
            "functions/approval_gate/runtime.py",
            "from approval_gate.metering import emit_metrics",
            LEAN_RUNTIME_CONTRACT,
        ),
    ],
)
def test_each_import_contract_breaks_when_the_code_breaks_it(tmp_path, module, added, broken):
    root = _copy_of_the_code(tmp_path)
    with (root / module).open("a", encoding="utf-8") as source:
        source.write(f"\n{added}\n")

    done = _lint_imports(root)

    assert done.returncode == 1, done.stdout + done.stderr
    broken_lines = [line for line in done.stdout.splitlines() if line.endswith(" BROKEN")]
    assert broken_lines == [f"{broken} BROKEN"], done.stdout
