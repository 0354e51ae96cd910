"""Prove the trimmed DomainLayer still holds everything the functions import.

``functions/approval_gate/Makefile`` removes from the layer what our code never imports
(its ``LAYER_TRIM`` list), to keep each function's package under 5 MB. ``make build`` runs
this tool after ``sam build``, so a wrong removal fails the build, not the first
invocation after a deploy.

Usage::

    python -m tools.check_layer [BUILD_DIR]        # default: .aws-sam/build

Checks (a finding per line, exit 1; ``ok: ...`` lines and exit 0 when clean):
 1. Every ``LAYER_TRIM`` entry says why it is safe and stays inside the layer's python/;
    nothing in the built layer still matches one (the trim ran).
 2. Static: no module left in the layer imports a module the trim removed. Imports inside
    a ``try`` that catches ImportError (optional features) and under ``if TYPE_CHECKING:``
    do not count; the few left whose removal changes nothing are listed in ``HARMLESS``,
    each with its reason.
 3. Isolated import, in one fresh ``python -I -S -B`` (python3.12, the Lambda runtime's
    version, when it is on PATH). ``sys.path`` is exactly: the built function folder, the
    layer's python/, a folder holding only what the Lambda runtime provides (boto3,
    botocore, s3transfer, jmespath, urllib3, dateutil, six), then the standard library, so
    the dev venv's complete slack_sdk or Powertools cannot hide a missing module. For each
    function in turn (its folder first, its modules fresh): ``import app`` and
    ``app.handler`` is callable; every module named by an import statement in the function
    folder and in the layer's approval_gate, the lazy ones inside function bodies included,
    imports, and every name of a ``from X import name`` resolves. Then the shipped policy
    (config/policy.yaml) parses with the layer's PyYAML and Powertools writes one log line.
    Every module loaded must come from those folders or the standard library.
 4. Every message catalog (locale/*/LC_MESSAGES/*.po) is in the layer, compiled to .mo.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "functions" / "approval_gate" / "Makefile"
BUILD = ROOT / ".aws-sam" / "build"
POLICY = ROOT / "config" / "policy.yaml"
LAYER = "DomainLayer"

#: What the Lambda Python runtime puts on sys.path (/var/runtime) besides the stdlib.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")

#: Imports of removed modules left in kept ones, each with why the removal changes nothing:
#: (importing module, imported module or prefix) -> reason.
HARMLESS: dict[tuple[str, str], str] = {
    (
        "aws_lambda_powertools.shared.functions",
        "aws_lambda_powertools.event_handler",
    ): (
        "pydantic_to_dict() imports event_handler.openapi.compat, which imports pydantic at"
        " its top; pydantic was never in the layer, so that call failed before the trim too"
    ),
}

_TRIM_LINE = re.compile(r"^LAYER_TRIM\s*[+:]?=\s*(?P<patterns>[^#]*?)\s*(?:#\s*(?P<reason>.*))?$")
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


# --------------------------------------------------------------------------- the trim list


@dataclass(frozen=True)
class TrimEntry:
    pattern: str  # a shell glob under the layer's python/
    reason: str
    line: int

    @property
    def module(self) -> str:
        """The module (or module glob) this entry removes: ``yaml/_yaml.*.so`` -> ``yaml._yaml``."""
        *parents, last = self.pattern.rstrip("/").split("/")
        if last.endswith(".py"):
            last = last.removesuffix(".py")
        elif last.endswith((".so", ".pyd")):
            last = last.split(".")[0]
        return ".".join([*parents, last])


def trim_entries(makefile: Path = MAKEFILE) -> list[TrimEntry]:
    """``LAYER_TRIM += pattern ...  # reason`` lines of the layer's Makefile, in order."""
    entries = []
    for number, line in enumerate(makefile.read_text().splitlines(), start=1):
        found = _TRIM_LINE.match(line)
        if found is None:
            continue
        reason = (found.group("reason") or "").strip()
        for pattern in found.group("patterns").split():
            entries.append(TrimEntry(pattern, reason, number))
    return entries


def trim_problems(entries: Sequence[TrimEntry], where: str = "Makefile") -> list[str]:
    """Entries without a reason, or reaching outside python/; an empty list."""
    problems = []
    if not entries:
        problems.append(f"{where}: no LAYER_TRIM entries found")
    for entry in entries:
        at = f"{where}:{entry.line}: {entry.pattern}"
        if not entry.reason:
            problems.append(f"{at}: says not why it is safe (add '# reason')")
        parts = entry.pattern.split("/")
        if entry.pattern.startswith("/") or ".." in parts or "" in parts[:-1]:
            problems.append(f"{at}: must be a relative path inside the layer's python/")
        if entry.pattern in {"*", "."} or parts[0] == "approval_gate":
            problems.append(f"{at}: would remove the layer itself or our own package")
    return problems


def matches(root: Path, entry: TrimEntry) -> list[Path]:
    """What ``rm -rf PATTERN`` run in ``root`` removes (shell globs: ``*`` stops at ``/``)."""
    return sorted(root.glob(entry.pattern))


def kept_files(root: Path, files: Iterable[Path], entries: Sequence[TrimEntry]) -> list[Path]:
    """``files`` (under ``root``) that the trim leaves in place."""
    removed = {path for entry in entries for path in matches(root, entry)}
    return [f for f in files if not ({f, *f.parents} & removed)]


def is_trimmed(module: str, entries: Sequence[TrimEntry]) -> TrimEntry | None:
    """The entry that removes ``module`` (itself or a package above it), if any."""
    for entry in entries:
        pattern = entry.module
        if fnmatchcase(module, pattern) or fnmatchcase(module, pattern + ".*"):
            return entry
    return None


# --------------------------------------------------------------------------- import statements


@dataclass(frozen=True)
class Import:
    module: str  # absolute
    names: tuple[str, ...]  # `from module import a, b`; empty for `import module`
    where: str  # file:line
    importer: str  # the module the statement is in
    optional: bool = False  # in a try that catches ImportError, or under TYPE_CHECKING

    def targets(self) -> list[str]:
        """The module and every name that may be a submodule of it."""
        return [self.module, *(f"{self.module}.{name}" for name in self.names if name != "*")]


def module_name(relative: Path) -> tuple[str, bool]:
    """``a/b/c.py`` -> (``a.b.c``, False); ``a/b/__init__.py`` -> (``a.b``, True)."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(kind, ast.Name) and kind.id in _IMPORT_ERRORS)
        or (isinstance(kind, ast.Attribute) and kind.attr in _IMPORT_ERRORS)
        for kind in kinds
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(source: str, module: str, is_package: bool, filename: str) -> list[Import]:
    """Every import statement of one module, at any depth, with relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                where = f"{filename}:{node.lineno}"
                found.append(Import(alias.name, (), where, module, optional))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, *([base] if base else [])])
            if base != "__future__":
                names = tuple(alias.name for alias in node.names)
                found.append(Import(base, names, f"{filename}:{node.lineno}", module, optional))
        elif isinstance(node, ast.Try | ast.TryStar):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
            for statement in node.body:
                visit(statement, guarded)
            for child in rest:
                visit(child, optional)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, True)
            for statement in node.orelse:
                visit(statement, optional)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child, optional)

    visit(ast.parse(source, filename=filename), False)
    return found


def imports_under(root: Path, files: Iterable[Path]) -> list[Import]:
    """Import statements of ``files``, named as modules relative to ``root``."""
    found: list[Import] = []
    for path in files:
        if path.suffix != ".py":
            continue
        relative = path.relative_to(root)
        module, is_package = module_name(relative)
        found += imports_in(path.read_text(encoding="utf-8"), module, is_package, str(relative))
    return found


def trimmed_imports(
    imports: Iterable[Import],
    entries: Sequence[TrimEntry],
    harmless: Mapping[tuple[str, str], str] = HARMLESS,
) -> list[str]:
    """Findings: a non-optional import of something the trim removes."""
    findings = []
    for statement in imports:
        if statement.optional:
            continue
        for target in statement.targets():
            entry = is_trimmed(target, entries)
            if entry is None or _allowed(statement.importer, target, harmless):
                continue
            findings.append(
                f"{statement.where}: imports {target}, removed by LAYER_TRIM {entry.pattern}"
                f" (Makefile line {entry.line})"
            )
            break
    return findings


def _allowed(importer: str, target: str, harmless: Mapping[tuple[str, str], str]) -> bool:
    return any(
        importer == who and (target == what or target.startswith(what + "."))
        for who, what in harmless
    )


# --------------------------------------------------------------------------- isolated import

_PROBE = r"""
import importlib, io, json, logging, os, sys, sysconfig
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["path"]
failures = []

def attempt(who, what, action):
    try:
        return action()
    except BaseException as exc:
        failures.append([who, f"{what}: {type(exc).__name__}: {exc}"])

def inside(origin, roots):
    return any(origin == r or origin.startswith(r + os.sep) for r in roots)

folders = [os.path.abspath(f) for _, f, _ in spec["functions"]]
for name, folder, imports in spec["functions"]:
    # Each function in turn, as its own /var/task: first on sys.path, its modules fresh.
    for key, module in list(sys.modules.items()):
        if inside(os.path.abspath(getattr(module, "__file__", None) or "-"), folders):
            del sys.modules[key]
    sys.path.insert(0, folder)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = name
    app = attempt(name, "import app", lambda: importlib.import_module("app"))
    if app is not None and not callable(getattr(app, "handler", None)):
        failures.append([name, "app.handler: missing or not callable"])
    for module, names, where in imports:
        imported = attempt(
            name, f"{where}: import {module}", lambda: importlib.import_module(module)
        )
        if imported is None:
            continue
        for attr in names:
            if attr != "*" and not hasattr(imported, attr):
                attempt(
                    name,
                    f"{where}: from {module} import {attr}",
                    lambda: importlib.import_module(f"{module}.{attr}"),
                )
    sys.path.remove(folder)

libyaml = None
if spec["policy"]:
    def load_policy():
        from approval_gate.policy import load_policy_file
        return load_policy_file(spec["policy"])
    attempt("layer", "the shipped policy", load_policy)
    libyaml = attempt(
        "layer", "import yaml", lambda: importlib.import_module("yaml").__with_libyaml__
    )

    def log_line():
        from aws_lambda_powertools import Logger
        stream = io.StringIO()
        Logger(service="layer-check", logger_handler=logging.StreamHandler(stream)).info("ok")
        json.loads(stream.getvalue())
    attempt("layer", "a Powertools log line", log_line)

stdlib = {os.path.abspath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
allowed = folders + [os.path.abspath(p) for p in spec["path"]]
for key, module in sorted(sys.modules.items()):
    origin = getattr(module, "__file__", None)
    if not origin:
        continue
    origin = os.path.abspath(origin)
    if inside(origin, allowed):
        continue
    if inside(origin, stdlib) and "site-packages" not in origin and "dist-packages" not in origin:
        continue
    failures.append(["layer", f"{key}: loaded from {origin}, not the function, layer or runtime"])
print(json.dumps({
    "failures": failures,
    "python": sys.version.split()[0],
    "modules": len(sys.modules),
    "libyaml": libyaml,
}))
"""


@dataclass(frozen=True)
class ProbeResult:
    failures: list[str]  # "Who: what failed", who a function or "layer"
    python: str
    modules: int
    libyaml: bool | None


def runtime_folder(dest: Path, names: Sequence[str] = RUNTIME_PROVIDED) -> Path:
    """A folder holding links to only the Lambda runtime's libraries, found in this Python."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"check_layer: {name} is not installed here (run `make venv`)")
        origin = Path(spec.origin)
        # By file name: six, once imported, sets __path__ and looks like a package.
        source = origin.parent if origin.name == "__init__.py" else origin
        (dest / source.name).symlink_to(source)
    return dest


def _wanted(imports: Iterable[Import]) -> list[list[object]]:
    """One entry per module: [module, every name imported from it, where it is first]."""
    wanted: dict[str, tuple[set[str], str]] = {}
    for statement in imports:
        if not statement.optional:
            names, _ = wanted.setdefault(statement.module, (set(), statement.where))
            names.update(statement.names)
    return [[m, sorted(names), where] for m, (names, where) in sorted(wanted.items())]


def probe(
    python: str,
    functions: Sequence[tuple[str, Path, Iterable[Import]]],
    path: Sequence[Path],
    env: Mapping[str, str],
    policy: Path | None = None,
) -> ProbeResult:
    """The isolated import in one fresh ``python -I -S -B``: each function's folder in turn,
    then ``path``, then the stdlib, and nothing else. ``-B``: no bytecode in the build."""
    spec = {
        "path": [os.path.abspath(p) for p in path],
        "functions": [[n, os.path.abspath(f), _wanted(i)] for n, f, i in functions],
        "policy": None if policy is None else str(policy),
    }
    done = subprocess.run(  # noqa: S603 - our own probe, in a chosen interpreter
        [python, "-I", "-S", "-B", "-c", _PROBE, json.dumps(spec)],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        crash = done.stderr.strip()[-2000:]
        return ProbeResult([f"probe: crashed: {crash}"], "?", 0, None)
    result = json.loads(lines[-1])
    failures = [f"{who}: {what}" for who, what in result["failures"]]
    return ProbeResult(failures, result["python"], result["modules"], result["libyaml"])


def lambda_python() -> str:
    """python3.12 (the functions' runtime) when it runs here, else this interpreter."""
    candidate = shutil.which("python3.12")
    if candidate:
        done = subprocess.run(  # noqa: S603
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout.strip() == "True":
            return candidate
    return sys.executable


def function_environment(policy: Path) -> dict[str, str]:
    """What the template gives a function, with placeholders: nothing reaches AWS at import."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "PYENV_VERSION", "HOME"}}
    return {
        **keep,
        "APPROVAL_GATE_TABLE_NAME": "approval-gate-approvals",
        "APPROVAL_GATE_STATE_MACHINE_ARN": (
            "arn:aws:states:us-east-1:123456789012:stateMachine:approval-gate"
        ),
        "APPROVAL_GATE_SLACK_SECRET_ARN": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:approval-gate-slack"
        ),
        "APPROVAL_GATE_POLICY_FILE": str(policy),
        "APPROVAL_GATE_RETENTION_DAYS": "400",
        "POWERTOOLS_SERVICE_NAME": "approval-gate",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# --------------------------------------------------------------------------- the whole check


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def check_trim(layer: Path, makefile: Path = MAKEFILE) -> list[str]:
    """Checks 1 and 2 on a built layer's python/: the trim list, and imports left in it."""
    entries = trim_entries(makefile)
    findings = trim_problems(entries, makefile.name)
    for entry in entries:
        left = matches(layer, entry)
        if left:
            findings.append(f"{left[0]}: still in the layer, LAYER_TRIM {entry.pattern}")
    kept = _python_files(layer)
    findings += trimmed_imports(imports_under(layer, kept), entries)
    if not findings:
        print(
            f"ok: {len(entries)} trim entries; {len(kept)} modules kept; none imports one removed"
        )
    return findings


def check_functions(build: Path, policy: Path = POLICY) -> list[str]:
    """Check 3: every built function imports in isolation with the layer."""
    layer = build / LAYER / "python"
    folders = sorted(p.parent for p in build.glob("*/app.py"))
    if not folders:
        return [f"{build}: no built functions (*/app.py)"]
    ours = imports_under(layer, _python_files(layer / "approval_gate"))
    functions = [(f.name, f, [*ours, *imports_under(f, _python_files(f))]) for f in folders]
    with tempfile.TemporaryDirectory(prefix="check-layer-") as scratch:
        runtime = runtime_folder(Path(scratch) / "runtime")
        env = function_environment(policy)
        result = probe(lambda_python(), functions, [layer, runtime], env, policy)
    if not result.failures:
        named = len({i.module for _, _, imports in functions for i in imports})
        print(
            f"ok: {len(functions)} functions import in isolation on Python {result.python}"
            f" ({named} modules named in code, {result.modules} loaded;"
            f" libyaml {'on' if result.libyaml else 'off'})"
        )
    return result.failures


def check_catalogs(layer: Path, source: Path = MAKEFILE.parent) -> list[str]:
    """Check 4: each message catalog of the source (locale/*/LC_MESSAGES/*.po) is in the
    layer compiled, and holds the translations of the .po (approval_gate.i18n reads them)."""
    import gettext

    findings = []
    sources = sorted(source.glob("locale/*/LC_MESSAGES/*.po"))
    for po in sources:
        relative = po.relative_to(source).with_suffix(".mo")
        compiled = layer / "approval_gate" / relative
        if not compiled.is_file():
            findings.append(f"{compiled}: the compiled catalog of {relative.parts[1]} is missing")
            continue
        with compiled.open("rb") as handle:
            translations = gettext.GNUTranslations(handle)
        header = translations.info()
        if header.get("language") != relative.parts[1]:
            findings.append(f"{compiled}: its header names language {header.get('language')!r}")
    if not findings:
        print(f"ok: {len(sources)} message catalog(s) compiled in the layer")
    return findings


def check(build: Path, makefile: Path = MAKEFILE, policy: Path = POLICY) -> list[str]:
    """Every finding for one ``sam build`` output; prints what passed."""
    layer = build / LAYER / "python"
    if not layer.is_dir():
        return [f"{layer}: no built layer (run `make build`)"]
    return check_trim(layer, makefile) + check_functions(build, policy) + check_catalogs(layer)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", type=Path, default=BUILD, help="sam build output")
    args = parser.parse_args(argv)
    findings = check(args.build)
    for finding in findings:
        print(finding, file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
