"""Tests for tools/asl/validate.js: the ASL validators catch what tools/check_asl.py leaves them.

Each test writes broken variants of statemachine/approval.asl.json (or of a small definition
with a Parallel and a Map, to break a nested scope), runs validate.js once on them, and asserts
that it fails and names each problem. A language-service diagnostic must also point at the
line of the offending field. If these fail after an upgrade of tools/asl, the rule belongs in
tools/check_asl.py again.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_TOOLS = ROOT / "tools" / "asl"
VALIDATE = ASL_TOOLS / "validate.js"
APPROVAL = ROOT / "statemachine" / "approval.asl.json"
VALIDATOR_PACKAGES = ("amazon-states-language-service", "asl-validator")

ASK = "Ask Approvers In Slack"
REMIND = "Remind Approvers"
KEEP_WAITING = "Keep Waiting?"
CLOSE = "Close Request In Slack"

BRANCH = ("States", "Fan Out", "Branches", 0, "States")
PROCESSOR = ("States", "Each Item", "ItemProcessor", "States")
DELETE = object()  # as a value in changed(): remove the key

RETRY: dict[str, Any] = {
    "ErrorEquals": ["States.ALL"],
    "IntervalSeconds": 2,
    "MaxAttempts": 3,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}


def approval() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(APPROVAL.read_text(encoding="utf-8"))
    return definition


def lambda_task(function: str, **transition: Any) -> dict[str, Any]:
    return {
        "Comment": "Call a function.",
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {
            "FunctionName": f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
            "Payload": "{% $states.input %}",
        },
        "TimeoutSeconds": 60,
        "Retry": [dict(RETRY)],
        **transition,
    }


def nested() -> dict[str, Any]:
    """A JSONata definition, clean for both validators, with a Parallel branch and a Map."""
    return {
        "Comment": "Nested scopes.",
        "QueryLanguage": "JSONata",
        "StartAt": "Fan Out",
        "States": {
            "Fan Out": {
                "Comment": "One branch.",
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Branch Work",
                        "States": {
                            "Branch Work": lambda_task("a", Next="Branch Done"),
                            "Branch Done": {"Comment": "Done.", "Type": "Succeed"},
                        },
                    }
                ],
                "Retry": [dict(RETRY)],
                "Next": "Each Item",
            },
            "Each Item": {
                "Comment": "One run per item.",
                "Type": "Map",
                "Items": "{% $states.input.items %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item Work",
                    "States": {
                        "Item Work": lambda_task("b", Next="Item Choice"),
                        "Item Choice": {
                            "Comment": "Is it one?",
                            "Type": "Choice",
                            "Choices": [
                                {"Condition": "{% $states.input.x = 1 %}", "Next": "Item Done"}
                            ],
                            "Default": "Item Done",
                        },
                        "Item Done": {"Comment": "Done.", "Type": "Succeed"},
                    },
                },
                "End": True,
            },
        },
    }


def jsonpath() -> dict[str, Any]:
    """A JSONPath definition, clean for both validators, with a Parallel branch."""
    task = {
        "Comment": "Call a function.",
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:a"},
        "TimeoutSeconds": 60,
        "Retry": [dict(RETRY)],
        "End": True,
    }
    return {
        "Comment": "JSONPath.",
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Comment": "One branch.",
                "Type": "Parallel",
                "Branches": [{"StartAt": "Work", "States": {"Work": task}}],
                "End": True,
            }
        },
    }


def changed(definition: dict[str, Any], changes: Mapping[tuple[Any, ...], Any]) -> Any:
    """A copy of the definition with each path (keys and list indexes) set, or deleted."""
    result = copy.deepcopy(definition)
    for path, value in changes.items():
        target: Any = result
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return result


@dataclass(frozen=True)
class Broken:
    """One broken definition and what a diagnostic about it must say."""

    name: str  # the file's stem: what is broken, and where
    definition: object  # a str is written as it is
    says: str
    # Keys leading to the line the diagnostic points at ("Keep Waiting?", "End"): the first
    # line with the first key, then the next line with the next key, and so on.
    at: tuple[str, ...] = ()
    also: str | None = None  # a second diagnostic the file must get

    def text(self) -> str:
        if isinstance(self.definition, str):
            return self.definition
        return json.dumps(self.definition, indent=2)


def line_of(text: str, keys: Sequence[str]) -> int:
    lines = text.splitlines()
    number = 0
    for key in keys:
        while not lines[number].lstrip().startswith(f'"{key}":'):
            number += 1
    return number + 1


def run_validate(*files: Path) -> subprocess.CompletedProcess[str]:
    # Fail, not skip: a missing validator would silently leave rules unchecked.
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: install Node.js 18 or later with npm, then run `make lint`, "
            "which installs the ASL validators in tools/asl/node_modules"
        )
    missing = [p for p in VALIDATOR_PACKAGES if not (ASL_TOOLS / "node_modules" / p).is_dir()]
    if missing:
        pytest.fail(
            f"The ASL validators are not installed (missing: {', '.join(missing)}): run "
            "`make lint`, which installs tools/asl/node_modules from its lockfile"
        )
    return subprocess.run(
        [node, str(VALIDATE), *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_each_named(tmp_path: Path, broken: Sequence[Broken]) -> None:
    paths = []
    for variant in broken:
        path = tmp_path / f"{variant.name}.asl.json"
        path.write_text(variant.text(), encoding="utf-8")
        paths.append(path)
    result = run_validate(*paths)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    for variant, path in zip(broken, paths, strict=True):
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]
        where = f"{path}:{line_of(variant.text(), variant.at)}:" if variant.at else f"{path}:"
        expected = [(where, variant.says)]
        if variant.also is not None:
            expected.append((f"{path}:", variant.also))
        for prefix, fragment in expected:
            assert any(line.startswith(prefix) and fragment in line for line in lines), (
                f"{variant.name}: no diagnostic {prefix} ... {fragment!r} in:\n" + "\n".join(lines)
            )


def test_the_approval_definition_passes_both_validators(tmp_path: Path) -> None:
    # The small definitions the other tests break are clean too, so a diagnostic about a
    # variant is about what the variant broke.
    bases = {"nested": nested(), "jsonpath": jsonpath()}
    for name, definition in bases.items():
        (tmp_path / f"{name}.asl.json").write_text(json.dumps(definition), encoding="utf-8")
    result = run_validate(
        APPROVAL.relative_to(ROOT), *(tmp_path / f"{name}.asl.json" for name in bases)
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "ok: statemachine/approval.asl.json: 0 diagnostics from both validators",
        *(f"ok: {tmp_path / name}.asl.json: 0 diagnostics from both validators" for name in bases),
    ]


def test_a_file_that_cannot_be_read_is_a_finding(tmp_path: Path) -> None:
    missing = tmp_path / "missing.asl.json"
    result = run_validate(missing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"{missing}: cannot read the definition: ENOENT")


def test_transitions_name_a_state_of_the_same_scope(tmp_path: Path) -> None:
    must_name_a_state = "property must be the name of an existing state"
    item_choice = (*PROCESSOR, "Item Choice")
    assert_each_named(
        tmp_path,
        [
            Broken(
                "start-at-names-no-state",
                changed(approval(), {("StartAt",): "Nowhere"}),
                f'The value of "StartAt" {must_name_a_state}',
                at=("StartAt",),
            ),
            Broken(
                "next-names-no-state",
                changed(approval(), {("States", REMIND, "Next"): "Nowhere"}),
                f'The value of "Next" {must_name_a_state}',
                at=(REMIND, "Next"),
            ),
            Broken(
                "default-names-no-state",
                changed(approval(), {("States", KEEP_WAITING, "Default"): "Nowhere"}),
                f'The value of "Default" {must_name_a_state}',
                at=(KEEP_WAITING, "Default"),
            ),
            Broken(
                "choice-rule-next-names-no-state",
                changed(approval(), {("States", KEEP_WAITING, "Choices", 0, "Next"): "Nowhere"}),
                f'The value of "Next" {must_name_a_state}',
                at=(KEEP_WAITING, "Next"),
            ),
            Broken(
                "catch-next-names-no-state",
                changed(approval(), {("States", ASK, "Catch", 0, "Next"): "Nowhere"}),
                f'The value of "Next" {must_name_a_state}',
                at=(ASK, "Next"),
            ),
            Broken(
                "branch-state-leaves-its-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "Next"): "Each Item"}),
                "BRANCH_OUTBOUND_TRANSITION_TARGET: Parallel branch state cannot transition "
                "to target: Each Item",
            ),
            Broken(
                "map-state-leaves-its-processor",
                changed(nested(), {(*item_choice, "Default"): "Fan Out"}),
                f'The value of "Default" {must_name_a_state}',
                at=("Item Choice", "Default"),
            ),
            Broken(
                "catch-without-next",
                changed(approval(), {("States", ASK, "Catch", 0, "Next"): DELETE}),
                f"/States/{ASK}/Catch/0 is invalid. must have required property 'Next'",
            ),
            Broken(
                "choice-rule-without-next-in-a-map",
                changed(nested(), {(*item_choice, "Choices", 0, "Next"): DELETE}),
                'Missing property "Next"',
            ),
        ],
    )


def test_every_state_is_reachable_and_named_once(tmp_path: Path) -> None:
    stray = {"Comment": "Never runs.", "Type": "Pass", "End": True}
    two_branches = nested()
    branches = two_branches["States"]["Fan Out"]["Branches"]
    branches.append(copy.deepcopy(branches[0]))
    assert_each_named(
        tmp_path,
        [
            Broken(
                "unreachable-state",
                changed(approval(), {("States", "Stray"): stray}),
                "MISSING_TRANSITION_TARGET: State Stray is not reachable",
            ),
            Broken(
                "unreachable-state-in-a-branch",
                changed(nested(), {(*BRANCH, "Stray"): stray}),
                "MISSING_TRANSITION_TARGET: State Stray is not reachable",
            ),
            Broken(
                "unreachable-state-in-a-map",
                changed(nested(), {(*PROCESSOR, "Stray"): stray}),
                "The state cannot be reached",
                at=("Stray",),
            ),
            Broken(
                "state-name-in-two-branches",
                two_branches,
                "DUPLICATE_STATE_NAMES: A state with this name already exists: Branch Work",
            ),
            Broken(
                "map-state-named-like-a-top-level-state",
                changed(
                    nested(),
                    {
                        (*PROCESSOR, "Item Choice", "Default"): "Fan Out",
                        (*PROCESSOR, "Fan Out"): {"Comment": "Done.", "Type": "Succeed"},
                    },
                ),
                "DUPLICATE_STATE_NAMES: A state with this name already exists: Fan Out",
            ),
        ],
    )


def test_exactly_one_of_next_or_end(tmp_path: Path) -> None:
    exactly_one = 'MUST contain exactly one of "End", "Next"'
    assert_each_named(
        tmp_path,
        [
            Broken(
                "next-and-end",
                changed(approval(), {("States", REMIND, "End"): True}),
                f'TERMINAL_STATE_WITH_NEXT: State "{REMIND}" {exactly_one}',
            ),
            Broken(
                "neither-next-nor-end-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "Next"): DELETE}),
                f'TERMINAL_STATE_WITH_NEXT: State "Branch Work" {exactly_one}',
            ),
            Broken(
                "end-false-in-a-map",
                changed(
                    nested(),
                    {
                        (*PROCESSOR, "Item Work", "Next"): DELETE,
                        (*PROCESSOR, "Item Work", "End"): False,
                    },
                ),
                "/States/Each Item/ItemProcessor/States/Item Work/End is invalid. "
                "must be equal to one of the allowed values",
            ),
            Broken(
                "choice-with-end",
                changed(approval(), {("States", KEEP_WAITING, "End"): True}),
                "Field is not supported",
                at=(KEEP_WAITING, "End"),
            ),
            Broken(
                "succeed-with-next-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Done", "Next"): "Branch Work"}),
                "Field is not supported",
                at=("Branch Done", "Next"),
            ),
            Broken(
                "fail-with-end-in-a-map",
                changed(
                    nested(),
                    {
                        (*PROCESSOR, "Item Done"): {
                            "Comment": "Failed.",
                            "Type": "Fail",
                            "Error": "Failed",
                            "End": True,
                        }
                    },
                ),
                "Field is not supported",
                at=("Item Done", "End"),
            ),
        ],
    )


def test_states_have_a_type_and_the_fields_it_needs(tmp_path: Path) -> None:
    inner_map = {
        "Comment": "No processor.",
        "Type": "Map",
        "Items": "{% [1] %}",
        "Next": "Branch Done",
    }
    assert_each_named(
        tmp_path,
        [
            Broken(
                "type-not-a-state-type-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "Type"): "Sleep"}),
                'Value is not accepted. Valid values: "Pass", "Succeed", "Fail", "Task", '
                '"Choice", "Wait", "Parallel", "Map"',
                at=("Branch Work", "Type"),
            ),
            Broken(
                "choice-without-choices-in-a-map",
                changed(nested(), {(*PROCESSOR, "Item Choice", "Choices"): DELETE}),
                'Missing property "Choices"',
                at=("Item Choice",),
            ),
            Broken(
                "parallel-without-branches",
                changed(nested(), {("States", "Fan Out", "Branches"): []}),
                "Array has too few items. Expected 1 or more.",
                at=("Fan Out", "Branches"),
            ),
            Broken(
                "map-without-item-processor-in-a-branch",
                changed(
                    nested(),
                    {
                        (*BRANCH, "Branch Work", "Next"): "Inner Map",
                        (*BRANCH, "Inner Map"): inner_map,
                    },
                ),
                'MAP_ITEM_PROCESSOR: State "Inner Map" MUST contain exactly one of '
                '"ItemProcessor", "Iterator"',
            ),
            Broken(
                "state-not-an-object",
                changed(approval(), {("States", REMIND): "Remind"}),
                'Incorrect type. Expected "object".',
                at=(REMIND,),
                # asl-validator throws on it; validate.js reports that and goes on.
                also="[asl-validator] cannot check this definition: Cannot create property",
            ),
            Broken(
                "definition-not-an-object",
                [],
                "[asl-validator] SCHEMA_VALIDATION_FAILED:  is invalid. must be object",
            ),
            Broken(
                "retry-not-a-list-in-a-map",
                changed(nested(), {(*PROCESSOR, "Item Work", "Retry"): dict(RETRY)}),
                "/States/Each Item/ItemProcessor/States/Item Work/Retry is invalid. must be array",
            ),
            Broken(
                "catch-not-a-list",
                changed(
                    approval(), {("States", ASK, "Catch"): {"ErrorEquals": ["X"], "Next": CLOSE}}
                ),
                f"/States/{ASK}/Catch is invalid. must be array",
            ),
            Broken(
                "error-equals-empty-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "Retry", 0, "ErrorEquals"): []}),
                "Array has too few items. Expected 1 or more.",
                at=("Branch Work", "ErrorEquals"),
            ),
            Broken(
                "error-equals-not-names",
                changed(approval(), {("States", ASK, "Catch", 2, "ErrorEquals"): [42]}),
                f"/States/{ASK}/Catch/2/ErrorEquals/0 is invalid. must be string",
            ),
        ],
    )


def test_timeout_and_heartbeat_are_positive_integers_or_jsonata(tmp_path: Path) -> None:
    integer_or_jsonata = "Incorrect type. Expected one of integer, JSONata expression."
    assert_each_named(
        tmp_path,
        [
            Broken(
                "timeout-zero",
                changed(approval(), {("States", REMIND, "TimeoutSeconds"): 0}),
                f"/States/{REMIND}/TimeoutSeconds is invalid.",
            ),
            Broken(
                "timeout-a-string-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "TimeoutSeconds"): "3600"}),
                integer_or_jsonata,
                at=("Branch Work", "TimeoutSeconds"),
            ),
            Broken(
                "timeout-not-quite-jsonata",
                changed(approval(), {("States", REMIND, "TimeoutSeconds"): "{% $seconds"}),
                integer_or_jsonata,
                at=(REMIND, "TimeoutSeconds"),
            ),
            Broken(
                "heartbeat-negative",
                changed(approval(), {("States", REMIND, "HeartbeatSeconds"): -5}),
                "Value is below the minimum of 0.",
                at=(REMIND, "HeartbeatSeconds"),
            ),
            Broken(
                "heartbeat-a-fraction-in-a-map",
                changed(nested(), {(*PROCESSOR, "Item Work", "HeartbeatSeconds"): 1.5}),
                integer_or_jsonata,
                at=("Item Work", "HeartbeatSeconds"),
            ),
            Broken(
                "jsonata-timeout-in-a-jsonpath-branch",
                changed(
                    jsonpath(),
                    {
                        (
                            "States",
                            "Fan",
                            "Branches",
                            0,
                            "States",
                            "Work",
                            "TimeoutSeconds",
                        ): "{% 5 %}"
                    },
                ),
                "/States/Fan/Branches/0/States/Work/TimeoutSeconds is invalid. must be integer",
            ),
        ],
    )


def test_retriers_attempt_at_least_zero_times_and_back_off(tmp_path: Path) -> None:
    assert_each_named(
        tmp_path,
        [
            Broken(
                "max-attempts-negative",
                changed(approval(), {("States", REMIND, "Retry", 0, "MaxAttempts"): -1}),
                "Value is below the minimum of 0.",
                at=(REMIND, "MaxAttempts"),
            ),
            Broken(
                "max-attempts-a-fraction-in-a-branch",
                changed(nested(), {(*BRANCH, "Branch Work", "Retry", 0, "MaxAttempts"): 1.5}),
                'Incorrect type. Expected "integer".',
                at=("Branch Work", "MaxAttempts"),
            ),
            Broken(
                "backoff-rate-below-one",
                changed(approval(), {("States", REMIND, "Retry", 0, "BackoffRate"): 0.5}),
                "Value is below the minimum of 1.",
                at=(REMIND, "BackoffRate"),
            ),
            Broken(
                "backoff-rate-zero-in-a-map",
                changed(nested(), {(*PROCESSOR, "Item Work", "Retry", 0, "BackoffRate"): 0}),
                "Value is below the minimum of 1.",
                at=("Item Work", "BackoffRate"),
            ),
        ],
    )


def test_query_language_values_and_duplicate_keys(tmp_path: Path) -> None:
    not_a_language = 'Value is not accepted. Valid values: "JSONata", "JSONPath".'
    assert_each_named(
        tmp_path,
        [
            Broken(
                "query-language-not-a-language",
                changed(approval(), {("QueryLanguage",): "XPath"}),
                not_a_language,
                at=("QueryLanguage",),
            ),
            Broken(
                "state-query-language-not-a-language-in-a-map",
                changed(nested(), {(*PROCESSOR, "Item Work", "QueryLanguage"): "jsonata"}),
                not_a_language,
                at=("Item Work", "QueryLanguage"),
            ),
            Broken(
                "duplicate-json-key",
                '{\n"StartAt": "A",\n"States": {\n'
                '"A": {"Type": "Succeed", "Comment": "One."},\n'
                '"A": {"Type": "Succeed", "Comment": "Two."}\n}\n}\n',
                "Duplicate object key",
                at=("A",),
            ),
        ],
    )
