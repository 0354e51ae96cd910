"""`approval-gate audit`: decision records from the audit index, oldest first, filtered,
in each format, streamed; and its one-line errors."""

from __future__ import annotations

import csv
import io
import json
import socket
from typing import Any

import boto3
import pytest
from approval_gate.approval_items import AUDIT_INDEX, AUDIT_MONTH, new_item
from approval_gate.store import ApprovalStore

from tests.cli.conftest import NOW, TABLE, Gate, Ran, write_history
from tests.unit.fakes import approvals_table_properties, make_approval

SINCE_SEPTEMBER = ("--since", "2026-09-01")


def expected(store: ApprovalStore, approval_id: str) -> dict[str, Any]:
    """What the audit must say of an approval: the domain's record and the console link."""
    approval = store.get(approval_id)
    assert approval is not None
    return {**approval.decision_record(), "console_link": approval.console_link}


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_the_template_declares_the_audit_index() -> None:
    indexes = {i["IndexName"]: i for i in approvals_table_properties()["GlobalSecondaryIndexes"]}
    assert indexes[AUDIT_INDEX]["KeySchema"] == [
        {"AttributeName": AUDIT_MONTH, "KeyType": "HASH"},
        {"AttributeName": "requested_at", "KeyType": "RANGE"},
    ]
    # Keys only: written once per request, no token in it; the items come by BatchGetItem.
    assert indexes[AUDIT_INDEX]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert approvals_table_properties()["BillingMode"] == "PAY_PER_REQUEST"


def test_records_come_oldest_first_across_months_each_with_its_console_link(gate: Gate) -> None:
    ids = write_history(gate.store)
    gate.add_feed_and_watch_items(NOW)

    ran = gate.run("audit", *SINCE_SEPTEMBER, "--format", "jsonl", now=NOW)

    assert (ran.code, ran.err) == (0, "")
    rows = jsonl(ran.out)
    assert rows == [expected(gate.store, approval_id) for approval_id in ids.values()]
    assert [r["requested_at"] for r in rows] == sorted(r["requested_at"] for r in rows)
    assert rows[0]["console_link"] == "https://console.example/prod-web/a1"
    assert [r["outcome"] for r in rows] == [
        "approved",
        "rejected",
        "expired",
        "decided_elsewhere",
        "approved",
        None,
        None,
        None,
    ]


def test_by_default_the_last_30_days(gate: Gate) -> None:
    ids = write_history(gate.store)

    rows = jsonl(gate.run("audit", "--format", "jsonl", now=NOW).out)

    # 30 days before 2026-12-01T17:00 is 2026-11-01T17:00: September and Oct 31 are out.
    assert [r["approval_id"] for r in rows] == list(ids.values())[2:]


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (("--since", "2026-09-01", "--until", "2026-11-01"), ["approved_sep", "rejected_oct"]),
        (
            ("--since", "2026-10-31T23:30:00Z", "--until", "2026-11-10T12:00:00+00:00"),
            ["rejected_oct", "expired_nov", "elsewhere_nov"],
        ),
        (("--since", "48h"), ["held_now", "open_steps"]),
        (("--since", "2d"), ["held_now", "open_steps"]),
        (
            (*SINCE_SEPTEMBER, "--pipeline", "prod-*"),
            [
                "approved_sep",
                "rejected_oct",
                "expired_nov",
                "held_then_approved",
                "open_escalated",
                "held_now",
                "open_steps",
            ],
        ),
        ((*SINCE_SEPTEMBER, "--pipeline", "*-api"), ["rejected_oct", "held_now"]),
        ((*SINCE_SEPTEMBER, "--outcome", "approved"), ["approved_sep", "held_then_approved"]),
        ((*SINCE_SEPTEMBER, "--outcome", "expired"), ["expired_nov"]),
        ((*SINCE_SEPTEMBER, "--outcome", "decided_elsewhere"), ["elsewhere_nov"]),
        (
            (*SINCE_SEPTEMBER, "--outcome", "pending"),
            ["open_escalated", "held_now", "open_steps"],
        ),
        (
            (*SINCE_SEPTEMBER, "--pipeline", "prod-web", "--outcome", "pending"),
            ["open_escalated", "open_steps"],
        ),
    ],
)
def test_the_range_and_the_filters_choose_the_records(
    gate: Gate, options: tuple[str, ...], names: list[str]
) -> None:
    ids = write_history(gate.store)

    ran = gate.run("audit", *options, "--format", "jsonl", now=NOW)

    assert ran.code == 0, ran.err
    assert [r["approval_id"] for r in jsonl(ran.out)] == [ids[name] for name in names]


def test_csv_has_a_header_and_one_line_per_record_nested_values_as_json(gate: Gate) -> None:
    ids = write_history(gate.store)

    ran = gate.run("audit", *SINCE_SEPTEMBER, "--format", "csv", now=NOW)

    assert ran.code == 0
    assert len(ran.out.splitlines()) == 1 + len(ids)
    rows = list(csv.DictReader(io.StringIO(ran.out)))
    for row, approval_id in zip(rows, ids.values(), strict=True):
        record = expected(gate.store, approval_id)
        assert list(row) == list(record)
        for key, value in record.items():
            if isinstance(value, list | dict | bool):
                assert json.loads(row[key]) == value, key
            elif value is None:
                assert row[key] == "", key
            else:
                assert row[key] == str(value), key


def test_csv_without_records_is_the_header_alone(gate: Gate) -> None:
    ran = gate.run("audit", "--format", "csv", now=NOW)

    assert ran.code == 0
    assert ran.out.splitlines()[0].startswith("approval_id,pipeline,stage,action,")
    assert len(ran.out.splitlines()) == 1


def test_the_table_has_aligned_columns_and_cuts_long_values(gate: Gate) -> None:
    ids = write_history(gate.store)
    long_reason = "the canary dashboard stayed green for the whole soak " * 3
    assert gate.store.create(make_approval(approval_id="f" * 32, requested_at=NOW))
    gate.store.decide(
        "f" * 32,
        status="REJECTED",
        decided_by=("U0BOB",),
        reason=long_reason,
        at=NOW,
    )

    ran = gate.run("audit", *SINCE_SEPTEMBER, now=NOW)

    lines = ran.out.splitlines()
    assert len(lines) == 1 + len(ids) + 1
    header = lines[0]
    starts = [header.index(name) for name in ("pipeline", "outcome", "reason", "console_link")]
    for line in lines[1:]:
        # every column starts where its heading does: a cut value never shifts the next one
        assert line[starts[-1] :].startswith("https://console"), line
        assert line[starts[0] - 2 : starts[0]] == "  "
    # the reason column is 30 wide: 29 characters and an ellipsis
    assert "  the canary dashboard stayed g…  https://" in lines[-1]


class RecordingClient:
    """The DynamoDB client, noting each Query in a shared log."""

    def __init__(self, client: Any, log: list[str]) -> None:
        self._client = client
        self._log = log

    def query(self, **kwargs: Any) -> Any:
        page = self._client.query(**kwargs)
        self._log.append("query" if page.get("LastEvaluatedKey") else "last query")
        return page

    def batch_get_item(self, **kwargs: Any) -> Any:
        return self._client.batch_get_item(**kwargs)


class RecordingOut(io.StringIO):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self._log = log

    def write(self, text: str) -> int:
        self._log.append("write")
        return super().write(text)


def test_records_are_written_as_they_are_read_not_collected_first(gate: Gate) -> None:
    write_history(gate.store)
    log: list[str] = []
    target = gate.target(dynamodb=RecordingClient(gate.dynamodb, log), page_size=1)
    out = RecordingOut(log)
    from cli.main import main

    code = main(
        ["audit", *SINCE_SEPTEMBER, "--format", "jsonl"],
        target=target,
        stdout=out,
        stderr=io.StringIO(),
        clock=lambda: NOW,
    )

    assert code == 0
    assert len(out.getvalue().splitlines()) == 8
    # One record per page: the first record is out before the second page is asked for.
    assert log.index("write") < log.index("query", log.index("query") + 1)
    assert log.index("write") < len(log) - 1 - log[::-1].index("last query")


def test_feed_and_watch_items_carry_no_audit_month(gate: Gate) -> None:
    gate.add_feed_and_watch_items(NOW)
    items = gate.dynamodb.scan(TableName=TABLE)["Items"]
    assert len(items) == 2
    assert all(AUDIT_MONTH not in item for item in items)
    assert new_item(make_approval(), 400)[AUDIT_MONTH] == {"S": "2026-12"}


# --------------------------------------------------------------------------- errors


def assert_one_line_error(ran: Any, *words: str) -> None:
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.count("\n") == 1 and ran.err.startswith("approval-gate audit: "), ran.err
    assert "Traceback" not in ran.err
    for word in words:
        assert word in ran.err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--since", "yesterday"),
        ("--since", "30 days"),
        ("--since", "2026-13-01"),
        ("--until", "soon"),
        ("--since", "-5d"),
    ],
)
def test_a_malformed_time_is_one_line_and_exit_2(gate: Gate, option: str, value: str) -> None:
    ran = gate.run("audit", f"{option}={value}", now=NOW)
    assert_one_line_error(ran, option, value)


def test_until_before_since_is_one_line_and_exit_2(gate: Gate) -> None:
    ran = gate.run("audit", "--since", "2026-11-01", "--until", "2026-10-01", now=NOW)
    assert_one_line_error(ran, "--until")


def test_a_table_without_the_index_says_the_stack_predates_it(gate: Gate) -> None:
    properties = approvals_table_properties()
    gate.dynamodb.create_table(
        TableName="older-table",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=properties["AttributeDefinitions"][:2],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=[
            i for i in properties["GlobalSecondaryIndexes"] if i["IndexName"] != AUDIT_INDEX
        ],
    )

    ran = gate.run("audit", now=NOW, target=gate.target(table="older-table"))

    assert_one_line_error(ran, AUDIT_INDEX, "update the stack")


def test_no_target_given_is_one_line_and_exit_2(gate: Gate) -> None:
    from cli.main import main

    err = io.StringIO()
    code = main(["audit"], stdout=io.StringIO(), stderr=err)
    assert code == 2
    assert (
        err.getvalue()
        == "approval-gate audit: say where the gate is: --stack NAME or --sandbox URL\n"
    )


STACK_TEMPLATE = {
    "Parameters": {"SlackSecretArn": {"Type": "String"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"ApprovalsTableName": {"Value": TABLE}},
}


def test_stack_outputs_name_the_table(gate: Gate) -> None:
    ids = write_history(gate.store)
    boto3.client("cloudformation", region_name="us-east-2").create_stack(
        StackName="approval-gate",
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[{"ParameterKey": "SlackSecretArn", "ParameterValue": "slack-secret"}],
    )
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["audit", "--stack", "approval-gate", "--region", "us-east-2", "--format", "jsonl"],
        stdout=out,
        stderr=err,
        clock=lambda: NOW,
    )

    assert (code, err.getvalue()) == (0, "")
    assert [r["approval_id"] for r in jsonl(out.getvalue())] == list(ids.values())[2:]


def test_an_unknown_stack_is_one_line_and_exit_2(gate: Gate) -> None:
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["audit", "--stack", "no-such-stack", "--region", "us-east-2"], stdout=out, stderr=err
    )

    assert_one_line_error(
        Ran(code, out.getvalue(), err.getvalue()), "no-such-stack", "does not exist"
    )


def test_no_credentials_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["audit", "--stack", "gate", "--region", "us-east-2"], stdout=out, stderr=err)

    assert code == 2
    assert err.getvalue() == (
        "approval-gate audit: no AWS credentials: set a profile (--profile) or the AWS_* "
        "variables\n"
    )


def test_a_sandbox_that_does_not_answer_is_one_line_and_exit_2() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["audit", "--sandbox", f"http://127.0.0.1:{port}"], stdout=out, stderr=err)

    assert code == 2
    assert err.getvalue().startswith(
        f"approval-gate audit: the sandbox at http://127.0.0.1:{port} does not answer"
    )
    assert err.getvalue().count("\n") == 1


class ThrottledOnce:
    """The DynamoDB client, whose first BatchGetItem leaves every key unprocessed."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batches = 0

    def query(self, **kwargs: Any) -> Any:
        return self._client.query(**kwargs)

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.batches += 1
        if self.batches == 1:
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
        return self._client.batch_get_item(**kwargs)


def test_keys_dynamodb_left_unprocessed_are_read_again_and_none_is_lost(gate: Gate) -> None:
    write_history(gate.store)
    from cli.main import main

    def audit(dynamodb: Any) -> list[dict[str, Any]]:
        out = io.StringIO()
        code = main(
            ["audit", *SINCE_SEPTEMBER, "--format", "jsonl"],
            target=gate.target(dynamodb=dynamodb),
            stdout=out,
            stderr=io.StringIO(),
            clock=lambda: NOW,
        )
        assert code == 0
        return jsonl(out.getvalue())

    throttled = ThrottledOnce(gate.dynamodb)
    records = audit(throttled)
    assert throttled.batches >= 2
    assert len(records) == 8
    assert records == audit(gate.dynamodb)
