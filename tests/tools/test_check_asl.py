"""Tests for tools/check_asl.py: one failing definition per check, and a clean one.

What the ASL validators (tools/asl) check instead (transitions, reachability, Next/End, the
form of fields) is tested in test_asl_validators.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tools.check_asl import (
    TemplateError,
    check_definition,
    definition_substitutions,
    main,
)

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "check_asl.py"

SUBSTITUTIONS = {"ApprovalsTable", "AskApproversFunctionArn", "RemindFunctionArn"}

RETRY_LAMBDA: dict[str, Any] = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}

CLEAN_STATE_COUNT = 9


def clean_definition() -> dict[str, Any]:
    """A small JSONata flow that passes every check: callback task, Parallel, Map, Choice."""
    return {
        "Comment": "Ask for an approval and report the decision.",
        "QueryLanguage": "JSONata",
        "StartAt": "Record Request",
        "States": {
            "Record Request": {
                "Type": "Task",
                "Comment": "Store the request in the approvals table.",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Arguments": {"TableName": "${ApprovalsTable}", "Item": {}},
                "TimeoutSeconds": 10,
                "Retry": [dict(RETRY_LAMBDA, ErrorEquals=["DynamoDB.InternalServerError"])],
                "Next": "Ask Approvers",
            },
            "Ask Approvers": {
                "Type": "Task",
                "Comment": "Post the request in Slack and wait for the decision.",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Arguments": {
                    "FunctionName": "${AskApproversFunctionArn}",
                    "Payload": {"token": "{% $states.context.Task.Token %}"},
                },
                "TimeoutSeconds": "{% $secondsLeft %}",
                "HeartbeatSeconds": 3600,
                "Retry": [dict(RETRY_LAMBDA)],
                "Catch": [
                    {"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Remind In Thread"},
                    {"ErrorEquals": ["States.Timeout"], "Next": "Expire Votes"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Fail Approval"},
                ],
                "Next": "Approved?",
            },
            "Remind In Thread": {
                "Type": "Parallel",
                "Comment": "Remind the approvers, then ask again.",
                "Branches": [
                    {
                        "StartAt": "Post Reminder",
                        "States": {
                            "Post Reminder": {
                                "Type": "Task",
                                "Comment": "Reply in the request's thread.",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Arguments": {"FunctionName": "${RemindFunctionArn}"},
                                "TimeoutSeconds": 30,
                                "Retry": [dict(RETRY_LAMBDA)],
                                "End": True,
                            }
                        },
                    }
                ],
                "Retry": [dict(RETRY_LAMBDA, ErrorEquals=["States.BranchFailed"])],
                "Next": "Ask Approvers",
            },
            "Expire Votes": {
                "Type": "Map",
                "Comment": "Note the deadline on every open vote.",
                "Items": "{% $states.input.votes %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Note Expiry",
                    "States": {
                        "Note Expiry": {"Type": "Pass", "Comment": "Mark expired.", "End": True}
                    },
                },
                "Next": "Approved?",
            },
            "Approved?": {
                "Type": "Choice",
                "Comment": "Did the approvers approve?",
                "Choices": [
                    {
                        "Condition": "{% $states.input.decision = 'Approved' %}",
                        "Next": "Report Approval",
                    }
                ],
                "Default": "Fail Approval",
            },
            "Report Approval": {"Type": "Succeed", "Comment": "Approved."},
            "Fail Approval": {
                "Type": "Fail",
                "Comment": "Rejected or expired.",
                "Error": "Rejected",
            },
        },
    }


def states(definition: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = definition["States"]
    return result


def branch_states(definition: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = states(definition)["Remind In Thread"]["Branches"][0]["States"]
    return result


def assert_finding(findings: list[str], state: str, fragment: str) -> None:
    matching = [f for f in findings if f.startswith(f"{state}: ") and fragment in f]
    assert matching, f"no finding for {state!r} containing {fragment!r} in {findings}"


# The clean definition.


def test_clean_definition_has_no_findings() -> None:
    assert check_definition(clean_definition(), SUBSTITUTIONS) == []


def test_clean_definition_without_substitutions_has_no_findings() -> None:
    assert check_definition(clean_definition()) == []


# 1. Every state has a Comment.


@pytest.mark.parametrize("comment", [None, "", "   ", 42])
def test_state_without_comment_is_a_finding(comment: Any) -> None:
    definition = clean_definition()
    note = states(definition)["Expire Votes"]["ItemProcessor"]["States"]["Note Expiry"]
    if comment is None:
        del note["Comment"]
    else:
        note["Comment"] = comment
    assert check_definition(definition) == ["Note Expiry: every state needs a non-empty Comment"]


# 2. Tasks: Retry and TimeoutSeconds; HeartbeatSeconds below TimeoutSeconds.


@pytest.mark.parametrize("retry", [None, []])
def test_task_without_retry_is_a_finding(retry: list[Any] | None) -> None:
    definition = clean_definition()
    if retry is None:
        del states(definition)["Record Request"]["Retry"]
    else:
        states(definition)["Record Request"]["Retry"] = retry
    assert check_definition(definition) == ["Record Request: a Task needs a non-empty Retry list"]


@pytest.mark.parametrize("state", ["Record Request", "Ask Approvers"])
def test_task_without_timeout_is_a_finding(state: str) -> None:
    definition = clean_definition()
    del states(definition)[state]["TimeoutSeconds"]
    assert_finding(check_definition(definition), state, "a Task needs TimeoutSeconds")


def test_heartbeat_must_be_shorter_than_timeout() -> None:
    definition = clean_definition()
    ask = states(definition)["Ask Approvers"]
    ask["TimeoutSeconds"] = 3600
    assert check_definition(definition) == [
        "Ask Approvers: HeartbeatSeconds must be smaller than TimeoutSeconds"
    ]


def test_heartbeat_expression_is_not_compared() -> None:
    definition = clean_definition()
    ask = states(definition)["Ask Approvers"]
    ask["TimeoutSeconds"] = 60
    ask["HeartbeatSeconds"] = "{% $states.input.heartbeat %}"
    assert check_definition(definition) == []


def test_timeout_seconds_path_will_do_in_a_jsonpath_task() -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Comment": "Do the work.",
                "Resource": "arn:aws:states:::lambda:invoke",
                "TimeoutSecondsPath": "$.seconds",
                "Retry": [dict(RETRY_LAMBDA)],
                "End": True,
            }
        },
    }
    assert check_definition(definition) == []
    definition["QueryLanguage"] = "JSONata"
    assert_finding(check_definition(definition), "Work", "a Task needs TimeoutSeconds")


# 3. A waiting task never retries its timeouts.


@pytest.mark.parametrize("error", ["States.ALL", "States.Timeout", "States.HeartbeatTimeout"])
def test_waiting_task_must_not_retry_timeouts(error: str) -> None:
    definition = clean_definition()
    states(definition)["Ask Approvers"]["Retry"].append(dict(RETRY_LAMBDA, ErrorEquals=[error]))
    assert_finding(
        check_definition(definition),
        "Ask Approvers",
        f"Retry[1] retries {error} on a task that waits for a task token",
    )


def test_waiting_task_may_list_timeouts_with_zero_attempts() -> None:
    definition = clean_definition()
    states(definition)["Ask Approvers"]["Retry"].insert(
        0, {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0}
    )
    assert check_definition(definition) == []


def test_task_that_does_not_wait_may_retry_timeouts() -> None:
    definition = clean_definition()
    states(definition)["Record Request"]["Retry"].append(
        dict(RETRY_LAMBDA, ErrorEquals=["States.Timeout"])
    )
    assert check_definition(definition) == []


# 4. Order of error handlers; States.ALL alone and last.


def test_heartbeat_catcher_after_timeout_catcher_is_a_finding() -> None:
    definition = clean_definition()
    catchers = states(definition)["Ask Approvers"]["Catch"]
    catchers[0], catchers[1] = catchers[1], catchers[0]
    assert check_definition(definition) == [
        "Ask Approvers: Catch[1] handles States.HeartbeatTimeout after Catch[0] already "
        "matched it (States.Timeout and States.ALL also match a heartbeat timeout); put it first"
    ]


def test_heartbeat_and_timeout_in_one_catcher_is_fine() -> None:
    definition = clean_definition()
    catchers = states(definition)["Ask Approvers"]["Catch"]
    catchers[0]["ErrorEquals"] = ["States.Timeout", "States.HeartbeatTimeout"]
    assert check_definition(definition) == []


def test_states_all_must_be_last() -> None:
    definition = clean_definition()
    catchers = states(definition)["Ask Approvers"]["Catch"]
    catchers.insert(0, catchers.pop())
    findings = check_definition(definition)
    assert_finding(findings, "Ask Approvers", "Catch[0]: States.ALL must be in the last Catch")
    assert_finding(findings, "Ask Approvers", "Catch[1] handles States.HeartbeatTimeout after")


def test_states_all_must_be_alone() -> None:
    definition = clean_definition()
    states(definition)["Ask Approvers"]["Catch"][2]["ErrorEquals"] = ["States.ALL", "Oops"]
    assert check_definition(definition) == [
        "Ask Approvers: Catch[2]: States.ALL must be alone in its ErrorEquals"
    ]


def test_states_all_must_be_the_last_retrier() -> None:
    definition = clean_definition()
    states(definition)["Record Request"]["Retry"].insert(
        0, dict(RETRY_LAMBDA, ErrorEquals=["States.ALL"])
    )
    assert check_definition(definition) == [
        "Record Request: Retry[0]: States.ALL must be in the last Retry entry"
    ]


# 5. DefinitionSubstitutions.


def test_placeholder_without_substitution_is_a_finding() -> None:
    assert check_definition(clean_definition(), SUBSTITUTIONS - {"RemindFunctionArn"}) == [
        "Post Reminder: ${RemindFunctionArn} has no key in DefinitionSubstitutions"
    ]


def test_unused_substitution_is_a_finding() -> None:
    assert check_definition(clean_definition(), SUBSTITUTIONS | {"OldTable"}) == [
        "(definition): DefinitionSubstitutions key 'OldTable' is never used"
    ]


def test_placeholder_in_top_level_comment_counts() -> None:
    definition = clean_definition()
    definition["Comment"] = "Deployed by ${StackName}."
    assert check_definition(definition, SUBSTITUTIONS) == [
        "(definition): ${StackName} has no key in DefinitionSubstitutions"
    ]
    assert check_definition(definition, SUBSTITUTIONS | {"StackName"}) == []


# 6. Retriers: JitterStrategy FULL.


@pytest.mark.parametrize("jitter", [None, "NONE"])
def test_retrier_without_full_jitter_is_a_finding(jitter: str | None) -> None:
    definition = clean_definition()
    retrier = branch_states(definition)["Post Reminder"]["Retry"][0]
    if jitter is None:
        del retrier["JitterStrategy"]
    else:
        retrier["JitterStrategy"] = jitter
    assert check_definition(definition) == [
        'Post Reminder: Retry[0] must set JitterStrategy: "FULL"'
    ]


def test_default_max_attempts_needs_jitter_but_zero_does_not() -> None:
    definition = clean_definition()
    retrier = states(definition)["Record Request"]["Retry"][0]
    del retrier["MaxAttempts"], retrier["JitterStrategy"]
    assert check_definition(definition) == [
        'Record Request: Retry[0] must set JitterStrategy: "FULL"'
    ]
    retrier["MaxAttempts"] = 0
    assert check_definition(definition) == []


# 7. Fields match the query language.


@pytest.mark.parametrize(
    "field", ["InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath"]
)
def test_jsonpath_field_in_a_jsonata_definition_is_a_finding(field: str) -> None:
    definition = clean_definition()
    states(definition)["Record Request"][field] = "$.x"
    assert check_definition(definition) == [f"Record Request: {field} is not a JSONata field"]


def test_jsonpath_fields_in_catchers_and_choice_rules_are_findings() -> None:
    definition = clean_definition()
    states(definition)["Ask Approvers"]["Catch"][2]["ResultPath"] = "$.error"
    states(definition)["Approved?"]["Choices"].append(
        {"Variable": "$.decision", "StringEquals": "Approved", "Next": "Report Approval"}
    )
    assert check_definition(definition) == [
        "Ask Approvers: Catch[2].ResultPath is not a JSONata field",
        "Approved?: Choices[1].Variable is not a JSONata field",
    ]


def test_state_opting_back_into_jsonpath_is_reported_once() -> None:
    definition = clean_definition()
    record = states(definition)["Record Request"]
    record["QueryLanguage"] = "JSONPath"
    record["ResultPath"] = "$.record"
    record["TimeoutSeconds"] = 10
    del record["Arguments"]
    # The JSONPath field is fine for a JSONPath state, but AWS forbids the switch itself.
    assert check_definition(definition) == [
        "Record Request: QueryLanguage JSONPath inside a JSONata scope: Step Functions cannot "
        "switch a JSONata state machine back to JSONPath"
    ]


def test_jsonata_fields_in_a_jsonpath_definition_are_findings() -> None:
    definition = clean_definition()
    del definition["QueryLanguage"]
    findings = check_definition(definition)
    assert_finding(findings, "Record Request", "Arguments is not a JSONPath field")
    assert_finding(findings, "Expire Votes", "Items is not a JSONPath field")
    assert_finding(findings, "Approved?", "Choices[0].Condition is not a JSONPath field")


def test_jsonata_state_in_a_jsonpath_definition_is_allowed() -> None:
    definition = clean_definition()
    definition["QueryLanguage"] = "JSONPath"
    for state in states(definition).values():
        state["QueryLanguage"] = "JSONata"
    assert check_definition(definition) == []


# What the ASL validators check is no finding here; malformed input never crashes the checker.


Change = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Change:
    """A change to the clean definition: the value at path (keys and list indexes) replaced."""

    def change(definition: dict[str, Any]) -> None:
        target: Any = definition
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


LEFT_TO_AWS_VALIDATORS = {
    "Next to a missing state": _set(("States", "Record Request", "Next"), "Nowhere"),
    "unreachable state": _set(("States", "Stray"), {"Type": "Succeed", "Comment": "Never."}),
    "End false": _set(
        ("States", "Remind In Thread", "Branches", 0, "States", "Post Reminder", "End"), False
    ),
    "Type not a state type": _set(("States", "Record Request", "Type"), "Sleep"),
    "TimeoutSeconds zero": _set(("States", "Record Request", "TimeoutSeconds"), 0),
    "HeartbeatSeconds a string": _set(("States", "Ask Approvers", "HeartbeatSeconds"), "soon"),
    "MaxAttempts negative": _set(("States", "Record Request", "Retry", 0, "MaxAttempts"), -1),
    "BackoffRate below 1": _set(("States", "Record Request", "Retry", 0, "BackoffRate"), 0.5),
    "ErrorEquals a string": _set(("States", "Ask Approvers", "Catch", 2, "ErrorEquals"), "x"),
    "Retry not a list": _set(("States", "Remind In Thread", "Retry"), {"ErrorEquals": []}),
    "Catch not a list": _set(("States", "Ask Approvers", "Catch"), {"Next": "Approved?"}),
    "state not an object": _set(("States", "Report Approval"), "x"),
    "Branches not a list": _set(("States", "Remind In Thread", "Branches"), "x"),
    "ItemProcessor not an object": _set(("States", "Expire Votes", "ItemProcessor"), "x"),
    "States not an object": _set(("States",), []),
    "QueryLanguage not a language": _set(("States", "Record Request", "QueryLanguage"), "XPath"),
}


@pytest.mark.parametrize("change", LEFT_TO_AWS_VALIDATORS.values(), ids=LEFT_TO_AWS_VALIDATORS)
def test_what_aws_validators_check_is_no_finding_here(change: Change) -> None:
    definition = clean_definition()
    change(definition)
    assert check_definition(definition) == []


def test_a_definition_that_is_not_an_object_has_no_findings() -> None:
    assert check_definition([]) == []  # type: ignore[arg-type]


# Finding the state machine in the template.

SAM_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  AskFn:
    Type: AWS::Serverless::Function
  RemindFn:
    Type: AWS::Serverless::Function
  OtherMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine/other.asl.json
      DefinitionSubstitutions:
        Unrelated: !Ref Table
  ApprovalStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: ./statemachine/../statemachine/approval.asl.json
      DefinitionSubstitutions:
        ApprovalsTable: !Ref Table
        AskApproversFunctionArn: !GetAtt AskFn.Arn
        RemindFunctionArn: !Sub "${RemindFn.Arn}"
"""


def write_project(tmp_path: Path, definition: object, template: str = SAM_TEMPLATE) -> Path:
    (tmp_path / "statemachine").mkdir()
    asl = tmp_path / "statemachine" / "approval.asl.json"
    asl.write_text(json.dumps(definition, indent=2), encoding="utf-8")
    (tmp_path / "template.yaml").write_text(template, encoding="utf-8")
    return asl


def test_substitutions_come_from_the_machine_that_uses_the_file(tmp_path: Path) -> None:
    asl = write_project(tmp_path, clean_definition())
    assert definition_substitutions(tmp_path / "template.yaml", asl) == SUBSTITUTIONS


def test_cloudformation_state_machine_with_s3_location(tmp_path: Path) -> None:
    template = """\
Resources:
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      DefinitionS3Location: statemachine/approval.asl.json
      RoleArn: !GetAtt Role.Arn
"""
    asl = write_project(tmp_path, clean_definition(), template)
    assert definition_substitutions(tmp_path / "template.yaml", asl) == set()


def test_no_machine_for_the_file_gives_none(tmp_path: Path) -> None:
    write_project(tmp_path, clean_definition())
    other = tmp_path / "statemachine" / "unknown.asl.json"
    assert definition_substitutions(tmp_path / "template.yaml", other) is None


def test_unreadable_template_raises(tmp_path: Path) -> None:
    asl = write_project(tmp_path, clean_definition(), "Resources: [unclosed\n")
    with pytest.raises(TemplateError):
        definition_substitutions(tmp_path / "template.yaml", asl)


# The command line.


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_passes_a_clean_definition(tmp_path: Path) -> None:
    write_project(tmp_path, clean_definition())
    result = run_cli("--template", "template.yaml", "statemachine/approval.asl.json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"ok: {CLEAN_STATE_COUNT} states checked in statemachine/approval.asl.json\n"
    )


def test_cli_reports_findings_and_fails(tmp_path: Path) -> None:
    definition = clean_definition()
    del states(definition)["Record Request"]["Comment"]
    states(definition)["Ask Approvers"]["Arguments"]["FunctionName"] = "${AskFunctionArn}"
    write_project(tmp_path, definition)
    result = run_cli("--template", "template.yaml", "statemachine/approval.asl.json", cwd=tmp_path)
    assert result.returncode == 1
    file = "statemachine/approval.asl.json"
    assert result.stdout.splitlines() == [
        f"{file}: Record Request: every state needs a non-empty Comment",
        f"{file}: Ask Approvers: ${{AskFunctionArn}} has no key in DefinitionSubstitutions",
        f"{file}: (definition): DefinitionSubstitutions key 'AskApproversFunctionArn' is "
        "never used",
    ]


def test_cli_reports_a_template_without_the_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asl = write_project(tmp_path, clean_definition(), "Resources: {}\n")
    assert main(["--template", str(tmp_path / "template.yaml"), str(asl)]) == 1
    assert capsys.readouterr().out == (
        f"{asl}: (definition): template {tmp_path / 'template.yaml'} has no state machine "
        "whose DefinitionUri or DefinitionS3Location names this file\n"
    )


def test_cli_reports_unparsable_json_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.asl.json"
    broken.write_text("{", encoding="utf-8")
    clean = tmp_path / "clean.asl.json"
    clean.write_text(json.dumps(clean_definition()), encoding="utf-8")
    assert main([str(broken), str(clean)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{broken}: (definition): cannot read the definition: ")
    assert lines[1:] == [f"ok: {CLEAN_STATE_COUNT} states checked in {clean}"]
