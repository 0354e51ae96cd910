"""Deploy windows and freezes in the policy (DESIGN §8.2, issue 20): keys, load errors,
the merge, and the round trip through an approval's stored rules."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from approval_gate.policy import Approvers, Policy, Rules, load_policy
from approval_gate.rules import DeployWindow, Freeze, FreezeOverride

from tests.unit.policy_docs import doc, error_of

#: DESIGN §8.2's example, with the defaults it needs.
DESIGN_EXAMPLE = """\
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE]}
pipelines:
  - match: "prod-*"
    timezone: Asia/Ho_Chi_Minh
    deploy_windows:
      - days: [mon, tue, wed, thu, fri]
        from: "09:00"
        to: "17:00"
    freezes:
      - from: "2026-12-24T00:00:00+07:00"
        to: "2027-01-02T00:00:00+07:00"
        reason: Year-end freeze
      - cron: "0 17 * * FRI"
        duration: 64h
        reason: No weekend deploys
    outside_window: hold
    freeze_override:
      approvers: {groups: [S0SRE]}
      required_approvals: 1
    allow_scheduling: true
"""
SAIGON = timezone(timedelta(hours=7))


def test_the_design_example_loads() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("prod-web")
    assert rules.timezone == "Asia/Ho_Chi_Minh"
    assert rules.deploy_windows == (
        DeployWindow(days=("mon", "tue", "wed", "thu", "fri"), start=9 * 3600, end=17 * 3600),
    )
    assert rules.freezes == (
        Freeze(
            reason="Year-end freeze",
            begins=datetime(2026, 12, 24, tzinfo=SAIGON),
            ends=datetime(2027, 1, 2, tzinfo=SAIGON),
        ),
        Freeze(reason="No weekend deploys", cron="0 17 * * FRI", duration=64 * 3600),
    )
    assert rules.outside_window == "hold"
    assert rules.freeze_override == FreezeOverride(Approvers(groups=("S0SRE",)), 1)
    assert rules.allow_scheduling is True


def test_built_in_defaults() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("dev-web")
    assert rules.timezone == "UTC"
    assert rules.deploy_windows == ()
    assert rules.freezes == ()
    assert rules.outside_window == "hold"
    assert rules.freeze_override is None
    assert rules.allow_scheduling is False


def test_a_rule_replaces_whole_keys_and_keeps_the_defaults_timezone() -> None:
    policy = Policy.from_document(
        doc(
            {
                "timezone": "Europe/Paris",
                "deploy_windows": [{"days": ["mon"], "from": "09:00", "to": "12:00"}],
                "freezes": [{"cron": "0 0 * * SAT", "duration": "2d", "reason": "Weekend"}],
            },
            {
                "match": "prod-*",
                "deploy_windows": [{"days": ["tue"], "from": "22:00", "to": "02:00"}],
            },
            {"match": "dev-*", "deploy_windows": [], "freezes": []},
        )
    )
    prod = policy.resolve("prod-web")
    assert prod.timezone == "Europe/Paris"
    assert prod.deploy_windows == (DeployWindow(("tue",), 22 * 3600, 2 * 3600),)
    assert prod.deploy_windows[0].crosses_midnight
    assert prod.freezes == (Freeze("Weekend", cron="0 0 * * SAT", duration=2 * 86400),)
    dev = policy.resolve("dev-web")
    assert (dev.deploy_windows, dev.freezes) == ((), ())  # an empty list: any time


def test_times_and_days_are_normalised() -> None:
    rules = Policy.from_document(
        doc(
            {
                "deploy_windows": [
                    {"days": ["fri", "mon", "fri"], "from": "08:30:15", "to": "23:59:59"}
                ]
            }
        )
    ).resolve("p")
    assert rules.deploy_windows == (DeployWindow(("mon", "fri"), 8 * 3600 + 1815, 86399),)


def test_yaml_timestamps_are_accepted_as_instants() -> None:
    text = textwrap.dedent(
        """\
        defaults:
          channel: C0DEPLOYS
          approvers: {users: [U0ALICE]}
          freezes:
            - {from: 2026-12-24T00:00:00+07:00, to: 2027-01-02T00:00:00Z, reason: Year-end}
        """
    )
    (freeze,) = load_policy(text).resolve("p").freezes
    assert freeze.begins == datetime(2026, 12, 23, 17, tzinfo=UTC)
    assert freeze.ends == datetime(2027, 1, 2, tzinfo=UTC)


def test_rules_round_trip_through_the_stored_item() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("prod-web")
    stored = json.loads(json.dumps(rules.to_dict()))
    assert stored["deploy_windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
    ]
    assert stored["freezes"][0] == {
        "from": "2026-12-24T00:00:00+07:00",
        "to": "2027-01-02T00:00:00+07:00",
        "reason": "Year-end freeze",
    }
    assert stored["freezes"][1] == {
        "cron": "0 17 * * FRI",
        "duration": 230400,
        "reason": "No weekend deploys",
    }
    assert Rules.from_dict(stored) == rules


def test_seconds_round_trip() -> None:
    rules = Rules(
        channel="C0DEPLOYS",
        approvers=Approvers(users=("U0ALICE",)),
        deploy_windows=(DeployWindow(("sun",), 3600 + 5, 0),),
    )
    stored = json.loads(json.dumps(rules.to_dict()))
    assert stored["deploy_windows"][0]["from"] == "01:00:05"
    assert Rules.from_dict(stored) == rules


def test_an_item_stored_before_windows_gets_the_defaults() -> None:
    rules = load_policy(DESIGN_EXAMPLE).resolve("prod-web")
    stored = rules.to_dict()
    for key in (
        "timezone",
        "deploy_windows",
        "freezes",
        "outside_window",
        "freeze_override",
        "allow_scheduling",
    ):
        del stored[key]
    old = Rules.from_dict(stored)
    assert (old.timezone, old.deploy_windows, old.freezes) == ("UTC", (), ())
    assert (old.outside_window, old.freeze_override, old.allow_scheduling) == ("hold", None, False)


WINDOW = {"days": ["mon"], "from": "09:00", "to": "17:00"}
FREEZE = {
    "from": "2026-12-24T00:00:00+07:00",
    "to": "2027-01-02T00:00:00+07:00",
    "reason": "Year-end",
}
CRON = {"cron": "0 17 * * FRI", "duration": "64h", "reason": "Weekend"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "defaults.timezone: unknown time zone 'Mars/Olympus'"),
        (
            {"timezone": "../../etc/passwd"},
            "defaults.timezone: unknown time zone '../../etc/passwd'",
        ),
        ({"timezone": "America"}, "defaults.timezone: unknown time zone 'America'"),
        ({"timezone": 7}, "defaults.timezone: expected an IANA time zone name"),
        (
            {"deploy_windows": {"days": ["mon"]}},
            "defaults.deploy_windows: expected a list of windows",
        ),
        (
            {"deploy_windows": [WINDOW, {**WINDOW, "to": "9:00"}]},
            "defaults.deploy_windows[1].to: expected a time of day, "
            '"HH:MM" or "HH:MM:SS", got \'9:00\'',
        ),
        (
            {"deploy_windows": [{**WINDOW, "to": 1020}]},
            'defaults.deploy_windows[0].to: expected a time of day in quotes, like "17:00"',
        ),
        (
            {"deploy_windows": [{**WINDOW, "to": "24:00"}]},
            "defaults.deploy_windows[0].to: '24:00' is not a time of day",
        ),
        (
            {"deploy_windows": [{**WINDOW, "from": "12:60"}]},
            "defaults.deploy_windows[0].from: '12:60' is not a time of day",
        ),
        (
            {"deploy_windows": [{**WINDOW, "to": "09:00"}]},
            "defaults.deploy_windows[0].to: '09:00' is the same time as from",
        ),
        (
            {"deploy_windows": [{**WINDOW, "days": ["monday"]}]},
            "defaults.deploy_windows[0].days[0]: "
            "expected one of mon, tue, wed, thu, fri, sat, sun, got 'monday'",
        ),
        (
            {"deploy_windows": [{**WINDOW, "days": []}]},
            "defaults.deploy_windows[0].days: the list is empty, so the window never opens",
        ),
        (
            {"deploy_windows": [{**WINDOW, "day": ["mon"]}]},
            "defaults.deploy_windows[0].day: unknown key (did you mean 'days'?)",
        ),
        (
            {"deploy_windows": [{"days": ["mon"], "from": "09:00"}]},
            "defaults.deploy_windows[0]: missing to",
        ),
        (
            {"freezes": [{**FREEZE, "to": FREEZE["from"]}]},
            "defaults.freezes[0].to: '2026-12-24T00:00:00+07:00' is not after from",
        ),
        (
            {"freezes": [{**FREEZE, "to": "2026-12-23T23:00:00+06:00"}]},
            "defaults.freezes[0].to: '2026-12-23T23:00:00+06:00' is not after from",
        ),
        (
            {"freezes": [{**FREEZE, "from": "2026-12-24T00:00:00"}]},
            "defaults.freezes[0].from: '2026-12-24T00:00:00' has no offset",
        ),
        (
            {"freezes": [{**FREEZE, "from": "Christmas"}]},
            "defaults.freezes[0].from: expected an ISO 8601 date and time with an offset",
        ),
        (
            {"freezes": [{**FREEZE, "reason": ""}]},
            "defaults.freezes[0].reason: expected a non-empty reason",
        ),
        (
            {"freezes": [{**FREEZE, "reason": "<!channel> freeze"}]},
            "defaults.freezes[0].reason: a reason may not contain Slack markup",
        ),
        (
            {"freezes": [{"from": FREEZE["from"], "to": FREEZE["to"]}]},
            "defaults.freezes[0]: missing reason",
        ),
        (
            {"freezes": [{**CRON, "cron": "30 2 30 2 *"}]},
            "defaults.freezes[0].cron: '30 2 30 2 *' never matches",
        ),
        (
            {"freezes": [{**CRON, "cron": "0 0 31 4 *"}]},
            "defaults.freezes[0].cron: '0 0 31 4 *' never matches",
        ),
        (
            {"freezes": [{**CRON, "cron": "0 17 * *"}]},
            "defaults.freezes[0].cron: '0 17 * *' is not a cron expression",
        ),
        (
            {"freezes": [{**CRON, "cron": "61 17 * * *"}]},
            "defaults.freezes[0].cron: '61 17 * * *' is not a cron expression",
        ),
        (
            {"freezes": [{**CRON, "cron": "0 17 * * FRIDAY"}]},
            "defaults.freezes[0].cron: '0 17 * * FRIDAY' is not a cron expression",
        ),
        (
            {"freezes": [{**CRON, "cron": "0 0 * * * 0"}]},
            "defaults.freezes[0].cron: '0 0 * * * 0' is not a cron expression (five fields",
        ),
        (
            {"freezes": [{**CRON, "duration": "0s"}]},
            "defaults.freezes[0].duration: a duration must be more than 0, got '0s'",
        ),
        (
            {"freezes": [{**CRON, "duration": -5}]},
            "defaults.freezes[0].duration: a duration must be more than 0, got -5",
        ),
        (
            {"freezes": [{**CRON, "duration": "1w"}]},
            "defaults.freezes[0].duration: '1w' is not a duration",
        ),
        ({"freezes": [{**CRON, "from": FREEZE["from"]}]}, "defaults.freezes[0].from: unknown key"),
        ({"freezes": [{"duration": "1h", "reason": "x"}]}, "defaults.freezes[0]: missing cron"),
        (
            {"outside_window": "queue"},
            "defaults.outside_window: expected 'hold' or 'reject', got 'queue'",
        ),
        (
            {"allow_scheduling": "yes"},
            "defaults.allow_scheduling: expected true or false, got 'yes'",
        ),
        (
            {"freeze_override": {"required_approvals": 1}},
            "defaults.freeze_override: missing approvers",
        ),
        (
            {"freeze_override": {"approvers": {}}},
            "defaults.freeze_override.approvers: no one is listed",
        ),
        (
            {"freeze_override": {"approvers": {"users": ["U0SRE"]}, "required_approvals": 0}},
            "defaults.freeze_override.required_approvals: expected an integer >= 1, got 0",
        ),
        (
            {"freeze_override": {"approvers": {"users": ["U0SRE"]}, "required_approvals": 2}},
            "defaults.freeze_override.required_approvals: "
            "2 required but approvers lists only 1 user(s)",
        ),
        (
            {"freeze_override": {"approvers": {"users": ["@sre"]}}},
            "defaults.freeze_override.approvers.users[0]: expected a Slack user id",
        ),
    ],
)
def test_errors_name_the_key_and_the_value(settings: dict[str, Any], message: str) -> None:
    assert error_of(doc(settings)).startswith(message)


def test_errors_in_a_rule_name_the_rule() -> None:
    message = error_of(
        doc(
            {},
            {"match": "prod-*"},
            {"match": "dev-*", "deploy_windows": [WINDOW, {**WINDOW, "to": "09:00"}]},
        )
    )
    assert message.startswith("pipelines[1].deploy_windows[1].to: '09:00' is the same time as from")


def test_cron_aliases_and_names() -> None:
    freezes = [
        {**CRON, "cron": cron, "duration": "1h"}
        for cron in ("@daily", "0 17 * * fri", "0 9-17/2 * * MON-FRI")
    ]
    rules = Policy.from_document(doc({"freezes": freezes})).resolve("p")
    assert [freeze.cron for freeze in rules.freezes] == [
        "@daily",
        "0 17 * * fri",
        "0 9-17/2 * * MON-FRI",
    ]


def test_a_leap_day_cron_matches_within_the_horizon() -> None:
    rules = Policy.from_document(doc({"freezes": [{**CRON, "cron": "0 0 29 2 *"}]})).resolve("p")
    assert rules.freezes[0].cron == "0 0 29 2 *"


def test_override_with_groups_may_require_more_than_its_users() -> None:
    override = {"approvers": {"users": ["U0SRE"], "groups": ["S0SRE"]}, "required_approvals": 3}
    rules = Policy.from_document(doc({"freeze_override": override})).resolve("p")
    assert rules.freeze_override == FreezeOverride(Approvers(("U0SRE",), ("S0SRE",)), 3)


@pytest.mark.parametrize(
    "settings",
    [
        {"freezes": [{"cron": "0 0 * * *", "duration": "24h", "reason": "Always"}]},
        {"freezes": [{"cron": "0 */6 * * *", "duration": "6h", "reason": "Always"}]},
        {
            "deploy_windows": [{"days": ["sat", "sun"], "from": "09:00", "to": "17:00"}],
            "freezes": [{"cron": "0 17 * * FRI", "duration": "64h", "reason": "Weekend"}],
        },
    ],
)
def test_freezes_that_leave_no_time_to_deploy_are_refused(settings: dict[str, Any]) -> None:
    message = error_of(doc({}, {"match": "prod-*", **settings}))
    assert message.startswith('pipelines[0] (match "prod-*"): freezes: the recurring freezes')
    assert "leave no time in the next year when deploys may go on" in message


def test_freezes_that_leave_a_gap_are_accepted() -> None:
    settings = {"freezes": [{"cron": "0 0 * * *", "duration": "1439m", "reason": "Nearly"}]}
    rules = Policy.from_document(doc(settings)).resolve("p")
    assert rules.freezes[0].duration == 1439 * 60


def test_croniter_is_imported_only_for_a_policy_with_cron_freezes() -> None:
    code = (
        "import sys; from approval_gate import windows; from approval_gate.policy import "
        "load_policy; load_policy(sys.argv[1]); assert 'croniter' not in sys.modules"
    )
    functions = Path(__file__).resolve().parents[2] / "functions"
    text = DESIGN_EXAMPLE.split("      - cron:")[0] + "    allow_scheduling: true\n"
    subprocess.run([sys.executable, "-c", code, text], cwd=functions, check=True, timeout=60)
