"""Fuzzing the gate's edges (issue 8, point 3).

Hypothesis drives the generators of `reliability.generate` against the real handlers in
the sandbox, and every example is held to the invariants of `reliability.fuzz`: no 5xx
and no unhandled exception; no state change without a valid signature from an authorized
approver (and then only to the approval named); no secret in a log line, a response or
Slack; and a policy either loads or fails with a PolicyError naming the key. Then a small
seeded run of the whole runner, proof that the judges catch what they must, and one
regression test per defect the fuzz found.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from approval_gate.interactions import BadRequest, http_request, parse_click
from approval_gate.policy import Policy, PolicyError, load_policy
from approval_gate.request import InvalidNotification, parse_approval_message, sns_messages
from approval_gate.slack import signature_is_valid
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reliability.fuzz import (
    FUZZ_POLICY,
    SLACK_FUNCTION,
    FuzzSession,
    check_policy,
    policy_corpus,
    run_fuzz,
)
from reliability.generate import (
    POLICY,
    SLACK,
    START,
    Case,
    PolicyCase,
    policy_case,
    sign,
    slack_case,
    start_case,
)
from sandbox.fake_slack import form_body
from tests.unit.events import SAMPLE_TOKEN, load_event

T = TypeVar("T")

#: The sandbox of this module runs the fuzz's policy (one approver, two, a group).
SANDBOX_POLICY = FUZZ_POLICY

#: Deterministic in CI: the same examples every run, no example database.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


class HypothesisChooser:
    """The generators' choices drawn from hypothesis, so a failure shrinks to its fewest
    mutations (every draw shrinks to 0: `chance` to False, "leave it as Slack sent it").

    Every draw has the same type and bounds, whatever is chosen from: the pool of open
    approvals changes between examples, and hypothesis insists that the draws of a replayed
    example keep their shapes.
    """

    _ANY = st.integers(0, 2**130)

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def _next(self) -> int:
        return self.data.draw(self._ANY)

    def chance(self, probability: float) -> bool:
        return self._next() % 1000 >= 1000 - round(probability * 1000)

    def integer(self, low: int, high: int) -> int:
        return low + self._next() % (high - low + 1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self._next() % len(options)]

    def text(self, max_size: int) -> str:
        size = self._next() % (max_size + 1)
        return "".join(chr(self._next() % 0x110000) for _ in range(size))  # surrogates too


@pytest.fixture
def session(sandbox_server: Any) -> Iterator[FuzzSession]:
    """A fuzz session of this test: its own approvals, all decided when it closes; the
    checks made at closing (deciders, what Slack was sent) must pass too."""
    with FuzzSession(sandbox_server, pool_size=3) as opened:
        yield opened
    assert opened.report.ok, opened.report.summary()


def _fail_on(failures: Sequence[Any]) -> None:
    assert not failures, "\n".join(str(failure) for failure in failures)


FOLDER = Path(tempfile.mkdtemp(prefix="approval-gate-policy-fuzz-"))
CORPUS = policy_corpus()


# --------------------------------------------------------------------------- properties


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_every_slack_interaction_holds_the_invariants(session: FuzzSession, data: Any) -> None:
    case = slack_case(HypothesisChooser(data), session.slack_world())
    _fail_on(session.run_slack([case]))


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_every_sns_notification_holds_the_invariants(session: FuzzSession, data: Any) -> None:
    # Half the messages carry a token never seen: the path that creates an approval.
    world = replace(session.start_world(), fresh=0.5)
    _fail_on(session.run_start([start_case(HypothesisChooser(data), world)]))


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_every_mutated_policy_loads_or_names_the_bad_key(data: Any) -> None:
    case = policy_case(HypothesisChooser(data), CORPUS)
    _, problem = check_policy(case, FOLDER)
    assert problem is None, f"{case.describe()}: {problem}"


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["C0DEPLOYS", "U0ALICE", "S0RELEASE", "4h", "prod-*", "reject", "allow"])
)
_KEYS = st.sampled_from(
    [
        "channel",
        "approvers",
        "users",
        "groups",
        "deadline",
        "match",
        "required_approvals",
        "escalation",
        "announce",
        "on_deadline",
        "people",
        "stage",
    ]
) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)
_DOCUMENTS = (
    st.fixed_dictionaries(
        {},
        optional={
            "defaults": st.dictionaries(_KEYS, _VALUES, max_size=6),
            "people": st.dictionaries(st.text(max_size=20), _VALUES, max_size=3),
            "pipelines": st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=3),
        },
    )
    | _VALUES
)


@settings(FUZZ, max_examples=200)
@given(document=_DOCUMENTS, as_yaml=st.booleans())
def test_any_policy_document_loads_or_names_the_bad_key(document: Any, as_yaml: bool) -> None:
    if as_yaml:
        case = PolicyCase("yaml", document=document, text=yaml.safe_dump(document))
    else:
        case = PolicyCase("document", document=document)
    _, problem = check_policy(case, FOLDER)
    assert problem is None, f"{document!r}: {problem}"


def _iso(moment: datetime, seconds: bool) -> str:
    """ISO 8601 UTC with four-digit years (strftime writes year 1 as "1")."""
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
    text += f"{moment.minute:02d}"
    return text + (f":{moment.second:02d}.000Z" if seconds else "Z")


_SOON = _iso(datetime.now(UTC) + timedelta(days=3), seconds=False)
_NOW = _iso(datetime.now(UTC), seconds=True)


@settings(FUZZ, max_examples=6)
@given(
    timestamp=st.datetimes().map(lambda m: _iso(m, seconds=True)) | st.text(max_size=30),
    expires=st.datetimes().map(lambda m: _iso(m, seconds=False)),
)
@example(timestamp=_iso(datetime.max, seconds=True), expires=_SOON)
@example(timestamp=_iso(datetime.min, seconds=True), expires=_SOON)
@example(timestamp=_NOW, expires=_iso(datetime.min, seconds=False))
@example(timestamp=_NOW, expires=_iso(datetime.max, seconds=False))
def test_any_times_in_a_new_request_start_it_or_reject_it(
    session: FuzzSession, timestamp: str, expires: str
) -> None:
    event = _sns(expires=expires, pipelineName="fuzz-start-times")
    event["Records"][0]["Sns"]["Timestamp"] = timestamp
    _fail_on(session.run_start([Case(START, event, [f"Timestamp {timestamp}, expires {expires}"])]))


#: Any character, lone surrogates included (and drawn often: they are rare among all).
_ALL_CHARACTERS = st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff"])


def _any_text(max_size: int | None = None) -> st.SearchStrategy[str]:
    """Text of any characters (st.text() never yields a lone surrogate)."""
    return st.lists(_ALL_CHARACTERS, max_size=max_size).map("".join)


@settings(FUZZ, max_examples=200)
@given(body=_any_text(), flag=st.sampled_from([True, False, None, "true"]))
def test_any_body_text_is_read_or_refused_as_a_bad_request(body: str, flag: Any) -> None:
    try:
        request = http_request({"headers": {}, "body": body, "isBase64Encoded": flag})
    except BadRequest:
        return
    assert isinstance(request.body, bytes)


#: The zero of some of Unicode's decimal digit sets (str.isdigit() takes them all).
_ZEROS = [0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xE50, 0xFF10, 0x1D7CE]


@settings(FUZZ, max_examples=100)
@given(now=st.integers(1_000_000_000, 9_999_999_999), zero=st.sampled_from(_ZEROS))
def test_a_signed_timestamp_is_valid_only_in_ascii_digits(now: int, zero: int) -> None:
    timestamp = "".join(chr(zero + int(d)) for d in str(now))
    body = b"payload=%7B%7D"
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign("secret", timestamp, body),
    }
    valid = signature_is_valid("secret", headers, body, now=lambda: float(now))
    assert valid is (zero == 0x30)


@settings(FUZZ, max_examples=200)
@given(
    name=_any_text(max_size=20),
    reason=_any_text(max_size=20),
    channel=_any_text(max_size=12),
    trigger=_any_text(max_size=12),
    submitted=st.booleans(),
)
def test_every_text_a_click_carries_on_is_valid_unicode(
    name: str, reason: str, channel: str, trigger: str, submitted: bool
) -> None:
    payload: dict[str, Any] = {
        "type": "view_submission" if submitted else "block_actions",
        "user": {"id": "U0ALICE", "name": name},
        "team": {"id": "T0SANDBOX"},
        "api_app_id": "A0SANDBOX",
        "channel": {"id": channel},
        "trigger_id": trigger,
        "actions": [{"action_id": "reject", "value": "0" * 32}],
        "view": {
            "callback_id": "approval_gate_reject",
            "private_metadata": "0" * 32,
            "state": {"values": {"reason": {"reason": {"value": reason}}}},
        },
    }
    click = parse_click(payload)
    assert click is not None
    for value in (click.user_name, click.reason, click.channel, click.trigger_id):
        if value is not None:
            value.encode("utf-8")  # raises for a lone surrogate


def test_a_seeded_run_of_the_runner_holds_every_invariant(sandbox_server: Any) -> None:
    # 200 requests: about one in 30 is an approver's valid deciding click, so 100 reached
    # a decision or none depending on how the seed's draws fell on the message's layout.
    report = run_fuzz(200, seed=8, server=sandbox_server)

    assert report.ok, report.summary()
    assert report.total == 200
    assert all(report.requests[target] > 0 for target in (SLACK, START, POLICY))
    assert report.decisions > 0, "no request reached a decision: the fuzz stayed shallow"


# --------------------------------------------------------------------------- the judges


def _approval_of_kind(session: FuzzSession, kind: str) -> Any:
    return next(a for a in session.pool if session._kinds[a.approval_id] == kind)


def _event(session: FuzzSession, payload: dict[str, Any], secret: str) -> dict[str, Any]:
    body = form_body(payload)
    timestamp = str(int(time.time()))
    event = load_event("http_api_slack_interaction")
    event["headers"]["x-slack-request-timestamp"] = timestamp
    event["headers"]["x-slack-signature"] = sign(secret, timestamp, body)
    event["body"] = base64.b64encode(body).decode()
    return event


def test_the_fuzz_reports_a_decision_by_a_forged_request(
    sandbox_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FuzzSession(sandbox_server, pool_size=3) as own:
        handler = own.sandbox._handlers[SLACK_FUNCTION].__wrapped__
        verifying = handler.__globals__["handle"].__globals__  # approval_gate.interactions
        monkeypatch.setitem(verifying, "signature_is_valid", lambda *a, **k: True)
        approval = _approval_of_kind(own, "one")
        click = own._click(approval, approval.approvers[0], "approve")
        forged = Case(SLACK, _event(own, click, "not-the-signing-secret"), ["forged"])

        failures = own.run_slack([forged])
        monkeypatch.undo()

    assert [f.kind for f in failures] == ["unauthorized_change"], failures
    assert approval.approval_id in failures[0].detail


def test_the_fuzz_reports_a_task_token_in_a_log_line(sandbox_server: Any) -> None:
    with FuzzSession(sandbox_server, pool_size=3) as own:
        item = own.reader.get_item(own.pool[0].approval_id)
        assert item is not None
        task_token = item["task_token"]["S"]
        own.sandbox.logs.write(f'{{"message": "oops", "token": "{task_token}"}}\n')
        click = own._click(own.pool[0], "U0MALLORY", "approve")

        failures = own.run_slack([Case(SLACK, _event(own, click, "wrong"), ["any request"])])

    assert [f.kind for f in failures] == ["secret_leaked"], failures


def test_the_fuzz_reports_a_policy_loader_that_raises_something_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(doc: Any) -> Policy:
        raise KeyError("defaults")

    monkeypatch.setattr(Policy, "from_document", staticmethod(broken))

    outcome, problem = check_policy(PolicyCase("document", document={}), FOLDER)

    assert outcome == "KeyError" and problem is not None


# --------------------------------------------------------------------------- regressions
# One per defect the fuzz found; each failed before its fix.


def test_a_text_body_with_a_lone_surrogate_is_refused_not_a_crash(session: FuzzSession) -> None:
    """Defect: `body.encode(..., "surrogateescape")` raised UnicodeEncodeError for a lone
    surrogate that no byte decodes to (\\ud800), so the handler crashed (a 500)."""
    event = load_event("http_api_slack_interaction")
    event.update(body="payload=%7B%7D\ud800", isBase64Encoded=False)

    with pytest.raises(BadRequest):
        http_request(event)
    assert session.sandbox.invoke(SLACK_FUNCTION, event)["statusCode"] == 401


def test_a_timestamp_in_non_ascii_digits_is_no_valid_signature() -> None:
    """Defect: `str.isdigit()` (and int()) accept Arabic-Indic or fullwidth digits, so a
    request whose timestamp Slack could never send passed verification when signed over
    that text."""
    now = 1796144700
    body = b"payload=%7B%7D"
    arabic = "".join(chr(0x0660 + int(d)) for d in str(now))
    headers = {
        "x-slack-request-timestamp": arabic,
        "x-slack-signature": sign("secret", arabic, body),
    }

    assert signature_is_valid("secret", headers, body, now=lambda: float(now)) is False
    ascii_headers = {
        "x-slack-request-timestamp": str(now),
        "x-slack-signature": sign("secret", str(now), body),
    }
    assert signature_is_valid("secret", ascii_headers, body, now=lambda: float(now)) is True


def test_payload_text_that_is_not_unicode_is_cleaned_before_it_is_stored(
    session: FuzzSession,
) -> None:
    """Defect: a lone surrogate in the user's name or the reason (valid JSON, "\\ud83d")
    was stored with the vote: DynamoDB refuses such text (a 500 in AWS), and in the
    sandbox the item could no longer be read at all."""
    payload = copy.deepcopy(session._submission)
    approval = _approval_of_kind(session, "one")
    user = approval.approvers[0]
    payload["user"].update({"id": user, "name": "al\ud83dce"})
    payload["view"]["private_metadata"] = approval.approval_id
    payload["view"]["callback_id"] = "approval_gate_reject"
    payload["view"]["state"]["values"]["reason"]["reason"]["value"] = "red \udfff canary"

    click = parse_click(payload)
    assert click is not None and click.user_name == "al?ce" and click.reason == "red ? canary"

    _fail_on(
        session.run_slack(
            [Case(SLACK, _event(session, payload, session.sandbox.signing_secret), ["surrogates"])]
        )
    )
    stored = session.reader.read(slack=False).approvals[approval.approval_id]
    status, votes, _, _ = json.loads(stored)
    assert status != "PENDING"
    assert votes[user]["name"] == "al?ce" and votes[user]["reason"] == "red ? canary"


def test_policy_yaml_with_an_integer_of_thousands_of_digits_is_a_policy_error() -> None:
    """Defect: PyYAML's int() raised ValueError ("Exceeds the limit (4300 digits)")."""
    with pytest.raises(PolicyError, match=r"^policy: not valid YAML"):
        load_policy("defaults:\n  required_approvals: " + "9" * 5000 + "\n")


def test_policy_yaml_nested_too_deeply_is_a_policy_error() -> None:
    """Defect: PyYAML's composer raised RecursionError on deeply nested flow lists."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Lambda's; the sandbox's JSONata raises it to 10,000
    try:
        with pytest.raises(PolicyError, match=r"^policy: not valid YAML: nested too deeply"):
            load_policy("defaults: {approvers: {users: " + "[" * 600 + "]" * 600 + "}}\n")
    finally:
        sys.setrecursionlimit(limit)


def test_a_duration_with_thousands_of_digits_is_a_policy_error_naming_the_key() -> None:
    """Defect: parse_duration's int() raised ValueError for "999…9s"."""
    document = {"defaults": {"channel": "C0DEPLOYS", "approvers": {"users": ["U0ALICE"]}}}
    document["defaults"]["deadline"] = "9" * 5000 + "s"

    with pytest.raises(PolicyError, match=r"^defaults\.deadline: .* too long to be a duration"):
        Policy.from_document(document)


def test_a_duration_longer_than_a_year_is_refused_naming_the_key() -> None:
    """Defect: `deadline: 106751991167300d` loaded, then every request overflowed the date
    arithmetic of start_approval (OverflowError, a Lambda error SNS retries for ever)."""
    with pytest.raises(PolicyError, match=r"^defaults\.deadline: a duration must be at most"):
        load_policy(
            "defaults: {channel: C0DEPLOYS, approvers: {users: [U0ALICE]}, "
            "deadline: 106751991167300d}"
        )
    loaded = load_policy(
        "defaults: {channel: C0DEPLOYS, approvers: {users: [U0ALICE]}, deadline: 365d}"
    )
    assert loaded.resolve("web").deadline == 365 * 86400


def test_a_count_too_large_to_print_is_refused_naming_the_key() -> None:
    """Defect: 10**5000 loaded as escalate_after_reminders (the rules could then not be
    stored as JSON), and in an error message `repr()` of it raised ValueError."""
    base = {"channel": "C0DEPLOYS", "approvers": {"users": ["U0ALICE"]}}

    with pytest.raises(PolicyError, match=r"^defaults\.escalate_after_reminders: .*<= 1000"):
        Policy.from_document({"defaults": {**base, "escalate_after_reminders": 10**5000}})
    with pytest.raises(PolicyError, match=r"^defaults\.required_approvals: .* digits"):
        Policy.from_document({"defaults": {**base, "required_approvals": -(10**5000)}})


def _sns(**approval: Any) -> dict[str, Any]:
    event = load_event("sns_approval")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["approval"].update({"token": str(uuid.uuid4()), **approval})
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def test_an_sns_timestamp_out_of_range_is_ignored_not_a_crash(session: FuzzSession) -> None:
    """Defect: SNS `Timestamp` 9999-12-31… became the request time, and deadline
    arithmetic overflowed (OverflowError); 0001-01-01… was stored as "1-01-02T…", which no
    later read could parse, so the workflow and every redelivery failed."""
    for moment in ("9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z"):
        event = _sns(pipelineName="fuzz-start-a")
        event["Records"][0]["Sns"]["Timestamp"] = moment
        assert sns_messages(event)[0].timestamp is None

        _fail_on(session.run_start([Case(START, event, [f"Sns.Timestamp {moment}"])]))
        assert session.report.outcomes[START]["records started"] >= 1


def test_expires_out_of_range_is_rejected_not_a_crash(session: FuzzSession) -> None:
    """Defect: `expires` 0001-01-01T00:00Z passed validation, and subtracting the deadline
    margin overflowed (OverflowError in start_approval)."""
    event = _sns(expires="0001-01-01T00:00Z", pipelineName="fuzz-start-a")
    with pytest.raises(InvalidNotification, match=r"approval\.expires is out of range"):
        parse_approval_message(event["Records"][0]["Sns"]["Message"])

    _fail_on(session.run_start([Case(START, event, ["expires 0001"])]))
    assert session.report.outcomes[START]["records rejected"] == 1
    assert SAMPLE_TOKEN  # the sample's own token is never what these events carry
