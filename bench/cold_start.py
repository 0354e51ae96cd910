"""Benchmark 1: cold start per function, against its floor (boto3 and the same clients).

Each sample is a fresh `python -c` process with the function's environment as the sandbox
sets it; the process times its own imports (and everything they build) with perf_counter
and prints the seconds. Handler and floor runs are interleaved, so drift hits both alike.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bench import ROOT, Row, median

FUNCTIONS = ROOT / "functions"

#: The boto3 clients each handler creates at import (read from functions/*/app.py), in
#: order; `service:config` is one made with a botocore Config (start_approval's lookup
#: clients, `approval_gate.changes.lookup_clients`). Each run checks these against the
#: clients the handler's import really creates (`handler_clients`).
CLIENTS: dict[str, tuple[str, ...]] = {
    "alarm_events": ("dynamodb", "secretsmanager", "stepfunctions"),
    "ask_approvers": ("dynamodb", "secretsmanager", "sns"),
    "close_request": ("dynamodb", "secretsmanager", "codepipeline"),
    "decide_at_deadline": ("dynamodb",),
    "hold_approval": ("dynamodb", "secretsmanager", "dynamodb"),  # the feed's own table client
    "pipeline_events": ("dynamodb", "codepipeline", "stepfunctions", "secretsmanager"),
    "remind_approvers": ("dynamodb", "secretsmanager"),
    "slack_interactions": ("dynamodb", "stepfunctions", "secretsmanager"),
    "start_approval": (
        "dynamodb",
        "codepipeline",
        "codecommit",
        "codepipeline:config",
        "codecommit:config",
        "stepfunctions",
        "secretsmanager",
    ),
}
#: What the floor passes as a `service:config` client's Config: the lookups' own (short
#: timeouts, no retries).
FLOOR_CONFIG = (
    "Config(connect_timeout=1, read_timeout=2, "
    "retries={'mode': 'standard', 'total_max_attempts': 1})"
)
TARGETS = {"slack_interactions": 1.2}
DEFAULT_TARGET = 1.5

ENVIRONMENT = {
    "APPROVAL_GATE_TABLE_NAME": "approval-gate-approvals",
    "APPROVAL_GATE_STATE_MACHINE_ARN": (
        "arn:aws:states:us-east-1:123456789012:stateMachine:approval-gate"
    ),
    "APPROVAL_GATE_SLACK_SECRET_ARN": (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:approval-gate-slack"
    ),
    "APPROVAL_GATE_SLACK_API_URL": "http://127.0.0.1:9/slack/api/",
    "APPROVAL_GATE_POLICY_FILE": str(ROOT / "tests" / "policies" / "standard.yaml"),
    "APPROVAL_GATE_RETENTION_DAYS": "400",
    "POWERTOOLS_SERVICE_NAME": "approval-gate",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "ApprovalGate",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _environment(function: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "APPROVAL_GATE_"))}
    env.pop("PYTHONPATH", None)
    env.update(ENVIRONMENT, AWS_LAMBDA_FUNCTION_NAME=function)
    return env


def _prelude(function: str, functions: Path = FUNCTIONS) -> str:
    paths = [str(functions / function), str(functions)]
    return f"import sys, time; sys.path[:0] = {paths!r}; t = time.perf_counter(); "


def handler_code(function: str, functions: Path = FUNCTIONS) -> str:
    """`functions`: the functions/ folder of this checkout, or another's (`--against`)."""
    return _prelude(function, functions) + "import app; print(time.perf_counter() - t)"


#: The first Vietnamese text after a cold start: the catalog is read when a `language: vi`
#: rule first renders (approval_gate.i18n), so a cold container answering a Vietnamese click
#: pays it once. A message of the catalog (the duration format every request shows).
VIETNAMESE_FIRST_TEXT = "from approval_gate.i18n import tr; tr('vi', '%(minutes)dm', minutes=5)"


def vietnamese_code(function: str) -> str:
    """Import the handler, then render the first Vietnamese text; prints the whole time,
    then the catalog's own share."""
    return _prelude(function) + (
        "import app; c = time.perf_counter(); "
        f"{VIETNAMESE_FIRST_TEXT}; e = time.perf_counter(); print(e - c); print(e - t)"
    )


def _floor_client(spec: str) -> str:
    service, _, how = spec.partition(":")
    config = ", config=config" if how == "config" else ""
    return f"boto3.client({service!r}{config})"


def floor_code(function: str) -> str:
    specs = CLIENTS[function]
    config = (
        f"from botocore.config import Config; config = {FLOOR_CONFIG}; "
        if any(spec.endswith(":config") for spec in specs)
        else ""
    )
    clients = "; ".join(_floor_client(spec) for spec in specs)
    return _prelude(function) + f"import boto3; {config}{clients}; print(time.perf_counter() - t)"


#: Imports the handler with botocore's client creation watched; prints what it created.
_WATCH = """
import json, botocore.session
made, create = [], botocore.session.Session.create_client
def watched(self, service_name, *args, **kwargs):
    made.append(service_name + (":config" if kwargs.get("config") is not None else ""))
    return create(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = watched
import app
print(json.dumps(made))
"""


def handler_clients(function: str) -> tuple[str, ...]:
    """The clients the handler's import really creates, in order, as `CLIENTS` names them
    (a fresh process; a client given a botocore Config is `service:config`)."""
    code = _prelude(function) + _WATCH
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-c", code],
        env=_environment(function),
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def floor_mismatch(floor: Sequence[str], made: Sequence[str]) -> str | None:
    """How the floor's clients differ from those the handler made (None: the same, in any
    order). A floor short of a client flatters the handler's ratio; one client too many,
    the other way."""
    missing, extra = list(made), []
    for spec in floor:
        if spec in missing:
            missing.remove(spec)
        else:
            extra.append(spec)
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"the floor lacks {', '.join(missing)}")
    if extra:
        parts.append(f"the handler does not create {', '.join(extra)}")
    return "; ".join(parts)


def _lines(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()


def _time(code: str, env: dict[str, str]) -> float:
    return float(_lines(code, env)[-1])


def _imports(code: str, env: dict[str, str]) -> dict[str, float]:
    """Every module a process imports, with its cumulative seconds (python -X importtime)."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    )
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = (p.strip() for p in line[len("import time:") :].split("|"))
            found[name] = int(cumulative) / 1e6
    return found


def dominant_imports(function: str, top: int = 5) -> list[tuple[str, float]]:
    """The heaviest imports the handler adds to its floor: per top-level package, its
    costliest import by cumulative time."""
    env = _environment(function)
    floor = _imports(floor_code(function), env)
    added = {
        name: seconds
        for name, seconds in _imports(handler_code(function), env).items()
        if name not in floor and name != "app"
    }
    heaviest: dict[str, tuple[str, float]] = {}  # per top-level package, its costliest import
    for name, seconds in added.items():
        root = name.split(".")[0]
        if seconds > heaviest.get(root, ("", -1.0))[1]:
            heaviest[root] = (name, seconds)
    return sorted(heaviest.values(), key=lambda item: -item[1])[:top]


def run(
    pairs: int = 15,
    out: Callable[[str], None] = print,
    functions: Iterable[str] | None = None,
) -> tuple[list[Row], float]:
    """Rows per function (`functions`, default every one in `CLIENTS`), and the median floor
    of slack_interactions (a machine baseline; 0 when it is not run). A function whose
    floor is not the clients its handler creates is MISSED, whatever its ratio."""
    rows: list[Row] = []
    baseline = 0.0
    # The layer ships bytecode compiled at build time (functions/approval_gate/Makefile), as
    # boto3's own is; compile ours the same way so no sample pays for compiling source
    # (PYTHONDONTWRITEBYTECODE would otherwise make every process compile edited modules).
    compileall.compile_dir(str(FUNCTIONS), quiet=1)
    for function in CLIENTS if functions is None else functions:
        env = _environment(function)
        stale = floor_mismatch(CLIENTS[function], handler_clients(function))
        _time(handler_code(function), env)  # warm the OS file cache once, uncounted
        _time(floor_code(function), env)
        handler, floor = [], []
        for _ in range(pairs):
            handler.append(_time(handler_code(function), env))
            floor.append(_time(floor_code(function), env))
        ratios = [h / f for h, f in zip(handler, floor, strict=True)]
        target = TARGETS.get(function, DEFAULT_TARGET)
        met = median(ratios) <= target and stale is None
        if function == "slack_interactions":
            baseline = median(floor)
        out(
            f"  {function:<20} handler {median(handler) * 1000:6.0f} ms  "
            f"floor {median(floor) * 1000:6.0f} ms  ratio {median(ratios):.2f}x "
            f"(target ≤ {target}x: {'MET' if met else 'MISSED'})"
        )
        if stale is not None:
            out(f"      floor is not the handler's clients: {stale} (update CLIENTS)")
        if not met:
            for name, seconds in dominant_imports(function):
                out(f"      {seconds * 1000:7.1f} ms cumulative  {name}")
        detail = f"; floor stale: {stale}" if stale else ""
        rows.append(_row(f"cold start {function}", handler, floor, target, met, detail))
    rows += vietnamese_rows(pairs, out, functions)
    return rows, baseline


def vietnamese_rows(
    pairs: int, out: Callable[[str], None], functions: Iterable[str] | None
) -> list[Row]:
    """slack_interactions' cold start with a Vietnamese rule: the handler's import and the
    catalog's first use, against the same floor and target as its English cold start."""
    function = "slack_interactions"
    if functions is not None and function not in functions:
        return []
    env = _environment(function)
    whole, catalog, floor = [], [], []
    for _ in range(pairs):
        lines = _lines(vietnamese_code(function), env)
        catalog.append(float(lines[-2]))
        whole.append(float(lines[-1]))
        floor.append(_time(floor_code(function), env))
    ratios = [w / f for w, f in zip(whole, floor, strict=True)]
    target = TARGETS[function]
    met = median(ratios) <= target
    out(
        f"  {function + ' (vi)':<20} handler {median(whole) * 1000:6.0f} ms  "
        f"floor {median(floor) * 1000:6.0f} ms  ratio {median(ratios):.2f}x "
        f"(catalog {median(catalog) * 1000:.1f} ms; target ≤ {target}x: "
        f"{'MET' if met else 'MISSED'})"
    )
    detail = f"; the catalog's first use {median(catalog) * 1000:.1f} ms"
    figure = f"cold start {function}, first Vietnamese text"
    return [_row(figure, whole, floor, target, met, detail)]


def _row(
    figure: str, handler: list[float], floor: list[float], target: float, met: bool, detail: str
) -> Row:
    """A cold start's row: the median of the pairwise ratios handler/floor, their range,
    and the medians in ms."""
    ratios = [h / f for h, f in zip(handler, floor, strict=True)]
    return Row(
        figure=figure,
        median=f"{median(ratios):.2f}x floor",
        spread=f"{min(ratios):.2f}-{max(ratios):.2f}x",
        target=f"≤ {target}x",
        met=met,
        ratio=f"{median(handler) * 1000:.0f} / {median(floor) * 1000:.0f} ms{detail}",
    )


#: Prints the modules a fresh process has imported, in the order it imported them.
_MODULES = "import json; print(json.dumps(list(sys.modules)))"


def third_party_code(function: str) -> str:
    """The floor plus every module the handler imports that is not ours (slack_sdk,
    Powertools, the stdlib modules they use), in the handler's order: what the handler
    would cost if the gate's own code took no time."""
    env = _environment(function)
    floor = set(json.loads(_lines(f"{floor_code(function)}; {_MODULES}", env)[-1]))
    theirs = [
        name
        for name in json.loads(_lines(_prelude(function) + "import app; " + _MODULES, env)[-1])
        if name not in floor and name != "app" and name.split(".")[0] != "approval_gate"
    ]
    return floor_code(function).replace("import boto3;", f"import boto3, {', '.join(theirs)};")


def compare(function: str, variants: dict[str, str], pairs: int) -> tuple[dict[str, float], float]:
    """Each variant's median ratio to the floor, and the floor's median in seconds; every
    variant interleaved with one floor sample per round."""
    env = _environment(function)
    times: dict[str, list[float]] = {name: [] for name in ("floor", *variants)}
    for _ in range(pairs):
        times["floor"].append(_time(floor_code(function), env))
        for name, code in variants.items():
            times[name].append(_time(code, env))
    ratios = {
        name: median([t / f for t, f in zip(times[name], times["floor"], strict=True)])
        for name in variants
    }
    return ratios, median(times["floor"])


def main(argv: Sequence[str] | None = None) -> None:
    """Where a cold start's time goes (informative; `make bench` runs `run`):
    `--third-party` adds a process importing only the handler's third-party modules, so the
    gap to it is the gate's own code; `--against DIR` adds another checkout's handler (a
    worktree of an older commit), to see what a change did to the same floor."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start")
    parser.add_argument("function", nargs="?", default="slack_interactions", choices=CLIENTS)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--third-party", action="store_true")
    parser.add_argument("--against", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    variants = {"this checkout": handler_code(args.function)}
    compileall.compile_dir(str(FUNCTIONS), quiet=1)
    if args.against is not None:
        compileall.compile_dir(str(args.against / "functions"), quiet=1)
        variants[str(args.against)] = handler_code(args.function, args.against / "functions")
    if args.third_party:
        variants["third-party modules only"] = third_party_code(args.function)
    ratios, floor = compare(args.function, variants, args.pairs)
    for name, ratio in ratios.items():
        print(f"  {name:<32} {ratio:.3f}x floor")
    print(f"  {'floor':<32} {floor * 1000:.1f} ms")


if __name__ == "__main__":
    main()
