"""CodePipeline's approval notification over SNS: parsed, validated, identified."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_gate.request import (
    ApprovalRequest,
    InvalidNotification,
    parse_approval_message,
    sns_messages,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.events import SAMPLE_APPROVAL_ID, SAMPLE_TOKEN, load_event

OTHER_TOKEN = "0b7e4d2c-61a9-4f3e-9c58-7d2a1e6f3b90"


def notification() -> dict[str, Any]:
    """The sample's notification as a document (a fresh copy)."""
    body: dict[str, Any] = json.loads(load_event("sns_approval")["Records"][0]["Sns"]["Message"])
    return body


def parse(document: Any) -> ApprovalRequest:
    return parse_approval_message(json.dumps(document))


def with_approval(**changes: Any) -> dict[str, Any]:
    document = notification()
    document["approval"].update(changes)
    return document


def error_of(message: Any) -> str:
    with pytest.raises(InvalidNotification) as caught:
        parse_approval_message(message)
    return str(caught.value)


# --------------------------------------------------------------------------- SNS events


def test_the_documented_notification_parses() -> None:
    (message,) = sns_messages(load_event("sns_approval"))
    request = parse_approval_message(message.body)

    assert message.message_id == "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
    assert message.timestamp == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert request.pipeline == "prod-web"
    assert request.stage == "Approve"
    assert request.action == "ProductionGate"
    assert request.token == SAMPLE_TOKEN
    assert request.region == "us-east-2"
    assert request.console_link == (
        "https://console.aws.amazon.com/codepipeline/home?region=us-east-2#/view/prod-web"
    )
    assert request.external_entity_link == (
        "https://github.com/example-org/web/compare/v1.41.0...v1.42.0"
    )
    assert request.custom_data == "Release 1.42.0: check the canary dashboard before approving."
    assert request.approval_id == SAMPLE_APPROVAL_ID


def test_expires_with_minute_precision_becomes_an_aware_utc_time() -> None:
    request = parse(notification())

    assert request.expires == datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    assert request.expires.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("expires", "moment"),
    [
        ("2026-12-04T18:00:30Z", datetime(2026, 12, 4, 18, 0, 30, tzinfo=UTC)),
        ("2026-12-04T18:00:30.250Z", datetime(2026, 12, 4, 18, 0, 30, 250000, tzinfo=UTC)),
        ("2026-12-04T18:00+00:00", datetime(2026, 12, 4, 18, 0, tzinfo=UTC)),
    ],
)
def test_expires_also_accepts_seconds_and_a_zero_offset(expires: str, moment: datetime) -> None:
    assert parse(with_approval(expires=expires)).expires == moment


def test_optional_links_and_custom_data_may_be_absent() -> None:
    document = notification()
    del document["consoleLink"]
    for key in ("externalEntityLink", "customData", "approvalReviewLink"):
        del document["approval"][key]

    request = parse(document)

    assert (request.console_link, request.external_entity_link, request.custom_data) == (
        None,
        None,
        None,
    )


def test_the_review_link_with_the_token_is_not_kept() -> None:
    request = parse(notification())
    assert "approve/" not in repr(request)
    assert SAMPLE_TOKEN not in repr(request)


def test_two_records_give_two_messages_in_order() -> None:
    messages = sns_messages(load_event("sns_two_records"))
    requests = [parse_approval_message(m.body) for m in messages]

    assert [m.message_id for m in messages] == [
        "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "6f1c2d3e-4b5a-5968-8776-a5b4c3d2e1f0",
    ]
    assert messages[1].timestamp == datetime(2026, 12, 1, 17, 0, 1, 250000, tzinfo=UTC)
    assert [(r.pipeline, r.token) for r in requests] == [
        ("prod-web", SAMPLE_TOKEN),
        ("staging-api", OTHER_TOKEN),
    ]


def test_a_hand_published_test_message_is_rejected_as_not_json() -> None:
    (message,) = sns_messages(load_event("sns_not_approval"))
    assert message.body == "hello"
    assert error_of(message.body).startswith("the SNS message is not JSON")


def test_an_unparsable_sns_timestamp_is_dropped_not_fatal() -> None:
    event = load_event("sns_approval")
    event["Records"][0]["Sns"]["Timestamp"] = "yesterday"
    (message,) = sns_messages(event)
    assert message.timestamp is None


@pytest.mark.parametrize(
    "event",
    [None, [], "Records", {}, {"Records": []}, {"Records": "x"}, {"Records": [{"body": "x"}]}],
)
def test_an_event_that_is_not_from_sns_is_rejected(event: Any) -> None:
    with pytest.raises(InvalidNotification, match="SNS"):
        sns_messages(event)


# --------------------------------------------------------------------------- validation

Change = Callable[[dict[str, Any]], None]


def drop_approval(d: dict[str, Any]) -> None:
    del d["approval"]


def set_approval(key: str, value: Any) -> Change:
    return lambda d: d["approval"].__setitem__(key, value)


def drop_from_approval(key: str) -> Change:
    return lambda d: d["approval"].pop(key)


def set_top(key: str, value: Any) -> Change:
    return lambda d: d.__setitem__(key, value)


def drop_top(key: str) -> Change:
    return lambda d: d.pop(key)


INVALID: list[tuple[str, Change, str]] = [
    ("no approval", drop_approval, "approval is missing"),
    ("approval not an object", set_top("approval", [SAMPLE_TOKEN]), "approval is missing"),
    ("token missing", drop_from_approval("token"), "approval.token"),
    ("token empty", set_approval("token", ""), "approval.token"),
    ("token a number", set_approval("token", 42), "approval.token"),
    ("token not a uuid", set_approval("token", "1a2b3c4d-573f-4ea7-a67E-XAMPLETOKEN"), "token"),
    ("token with extra", set_approval("token", SAMPLE_TOKEN + "0"), "approval.token"),
    ("token in braces", set_approval("token", "{" + SAMPLE_TOKEN + "}"), "approval.token"),
    ("expires missing", drop_from_approval("expires"), "approval.expires"),
    ("expires with a space", set_approval("expires", "2026-12-04 18:00Z"), "approval.expires"),
    ("expires in words", set_approval("expires", "tomorrow"), "approval.expires"),
    ("expires not UTC", set_approval("expires", "2026-12-04T18:00+02:00"), "approval.expires"),
    ("expires no zone", set_approval("expires", "2026-12-04T18:00"), "approval.expires"),
    ("expires impossible", set_approval("expires", "2026-13-45T18:00Z"), "approval.expires"),
    ("expires a number", set_approval("expires", 1796148000), "approval.expires"),
    ("region missing", drop_top("region"), "region"),
    ("region upper case", set_top("region", "US-EAST-2"), "region"),
    ("region underscore", set_top("region", "us_east_2"), "region"),
    ("region with shell", set_top("region", "us-east-2; rm -rf /"), "region"),
    ("pipeline missing", drop_from_approval("pipelineName"), "approval.pipelineName"),
    ("pipeline space", set_approval("pipelineName", "prod web"), "approval.pipelineName"),
    ("pipeline slash", set_approval("pipelineName", "prod/web"), "approval.pipelineName"),
    ("pipeline mention", set_approval("pipelineName", "<!channel>"), "approval.pipelineName"),
    ("pipeline unicode", set_approval("pipelineName", "prod-wéb"), "approval.pipelineName"),
    ("pipeline 101 chars", set_approval("pipelineName", "p" * 101), "approval.pipelineName"),
    ("pipeline a list", set_approval("pipelineName", ["prod"]), "approval.pipelineName"),
    ("stage colon", set_approval("stageName", "Approve:now"), "approval.stageName"),
    ("stage 101 chars", set_approval("stageName", "s" * 101), "approval.stageName"),
    ("action newline inside", set_approval("actionName", "Gate\nx"), "approval.actionName"),
    ("action empty", set_approval("actionName", ""), "approval.actionName"),
    ("custom data 501", set_approval("customData", "x" * 501), "approval.customData"),
    ("custom data object", set_approval("customData", {"a": 1}), "approval.customData"),
    ("console link js", set_top("consoleLink", "javascript:alert(1)"), "consoleLink"),
    ("console link ftp", set_top("consoleLink", "ftp://example.com/x"), "consoleLink"),
    (
        "entity link space",
        set_approval("externalEntityLink", "https://example.com/a b"),
        "approval.externalEntityLink",
    ),
    (
        "entity link markup",
        set_approval("externalEntityLink", "https://example.com/|<!channel>"),
        "approval.externalEntityLink",
    ),
]


@pytest.mark.parametrize(
    ("change", "field"), [(c, f) for _, c, f in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_an_invalid_field_is_named_and_the_token_never_echoed(change: Change, field: str) -> None:
    document = notification()
    change(document)

    message = error_of(json.dumps(document))

    assert field in message
    assert SAMPLE_TOKEN not in message


def test_names_at_the_limit_and_with_every_allowed_character_parse() -> None:
    name = ("Prod.web@team_1-" * 7)[:100]
    request = parse(with_approval(pipelineName=name, stageName=name, actionName=name))
    assert (request.pipeline, request.stage, request.action) == (name, name, name)


def test_custom_data_of_exactly_500_characters_parses() -> None:
    assert parse(with_approval(customData="x" * 500)).custom_data == "x" * 500


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("hello", "not JSON"),
        ('{"approval": ', "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"just a string"', "not a JSON object"),
        ("null", "not a JSON object"),
        (None, "not text"),
        ({"approval": {}}, "not text"),
        (b'{"approval": {}}', "not text"),
        (" " * 262_145, "larger than SNS allows"),
    ],
    ids=["text", "truncated", "array", "string", "null", "none", "dict", "bytes", "huge"],
)
def test_a_message_that_is_not_a_notification_is_rejected(message: Any, says: str) -> None:
    assert says in error_of(message)


@pytest.mark.parametrize(
    "change",
    [
        set_approval("pipelineName", "prod-web\n"),
        set_approval("token", SAMPLE_TOKEN + "\n"),
        set_top("region", "us-east-2\n"),
        set_top("consoleLink", "https://console.aws.amazon.com/x\n"),
    ],
    ids=["pipeline", "token", "region", "link"],
)
def test_a_trailing_newline_is_an_illegal_character(change: Change) -> None:
    document = notification()
    change(document)
    error_of(json.dumps(document))


def test_a_deeply_nested_hostile_body_is_rejected_as_invalid() -> None:
    error_of("[" * 50_000 + "]" * 50_000)


def test_text_that_is_not_valid_unicode_is_rejected() -> None:
    message = json.dumps(with_approval(customData="deploy \ud800 now"))
    assert "approval.customData" in error_of(message)


# --------------------------------------------------------------------------- identity


def test_the_approval_id_is_stable_for_the_same_request() -> None:
    first = parse(notification())
    again = parse_approval_message(load_event("sns_approval")["Records"][0]["Sns"]["Message"])
    assert first.approval_id == again.approval_id == SAMPLE_APPROVAL_ID


@pytest.mark.parametrize(
    "changes",
    [
        {"token": OTHER_TOKEN},
        {"stageName": "Approve2"},
        {"actionName": "ProductionGate2"},
        {"pipelineName": "prod-web2"},
    ],
    ids=["token", "stage", "action", "pipeline"],
)
def test_the_approval_id_differs_per_request(changes: dict[str, str]) -> None:
    assert parse(with_approval(**changes)).approval_id != SAMPLE_APPROVAL_ID


def test_the_approval_id_is_32_hex_and_reveals_nothing_of_the_token() -> None:
    approval_id = parse(notification()).approval_id

    assert re.fullmatch(r"[0-9a-f]{32}", approval_id)
    assert SAMPLE_TOKEN not in approval_id
    for part in SAMPLE_TOKEN.split("-"):
        assert part not in approval_id


def test_the_approval_id_does_not_depend_on_links_or_custom_data() -> None:
    # A redelivery is the same request even if it were rendered differently.
    changed = parse(with_approval(customData="other", externalEntityLink="https://x.example/"))
    assert changed.approval_id == SAMPLE_APPROVAL_ID


def test_the_execution_name_is_safe_for_step_functions_even_for_odd_pipeline_names() -> None:
    pipeline = ("team@example.com.prod-" * 5)[:100]
    request = parse(with_approval(pipelineName=pipeline))

    name = request.execution_name

    assert len(pipeline) == 100
    assert len(name) <= 80
    assert re.fullmatch(r"[0-9A-Za-z_-]+", name)
    assert name.endswith("-" + request.approval_id)
    assert name.startswith("team_example_com_prod-")


def test_the_execution_name_is_the_same_for_a_duplicate_delivery() -> None:
    assert parse(notification()).execution_name == parse(notification()).execution_name


def test_requests_differing_only_in_token_get_different_execution_names() -> None:
    first = parse(notification())
    second = parse(with_approval(token=OTHER_TOKEN))
    assert first.execution_name != second.execution_name


names = st.from_regex(r"[A-Za-z0-9.@_-]{1,100}", fullmatch=True)


@given(names)
def test_every_valid_pipeline_name_gives_a_valid_execution_name(pipeline: str) -> None:
    name = parse(with_approval(pipelineName=pipeline)).execution_name
    assert re.fullmatch(r"[0-9A-Za-z_-]{1,80}", name)


# --------------------------------------------------------------------------- robustness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def parses_or_is_rejected(message: str) -> None:
    try:
        result = parse_approval_message(message)
    except InvalidNotification:
        return
    assert isinstance(result, ApprovalRequest)


@given(json_values)
def test_any_json_document_parses_or_is_rejected_never_crashes(document: Any) -> None:
    parses_or_is_rejected(json.dumps(document))


FIELDS = [
    ("region",),
    ("consoleLink",),
    ("approval",),
    ("approval", "pipelineName"),
    ("approval", "stageName"),
    ("approval", "actionName"),
    ("approval", "token"),
    ("approval", "expires"),
    ("approval", "externalEntityLink"),
    ("approval", "customData"),
]


@given(st.sampled_from(FIELDS), json_values | st.text(alphabet="0123456789-T:Z.+ ", max_size=30))
def test_any_value_in_any_field_parses_or_is_rejected(path: tuple[str, ...], value: Any) -> None:
    document = notification()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    parses_or_is_rejected(json.dumps(document))
