"""Approval steps in the policy (DESIGN §8.1, issue 19): keys, load errors, the merge."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
from approval_gate.policy import (
    Approvers,
    Policy,
    PolicyError,
    Rules,
    load_policy,
    policy_ids,
)
from approval_gate.rules import Step
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.policy_docs import error_of

#: DESIGN §8.1's example, with the defaults it needs.
QA_THEN_RELEASE = """\
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE, U0BOB]}
  required_approvals: 2
pipelines:
  - match: "prod-*"
    steps:
      - name: QA
        approvers: {groups: [S0QA]}
        required_approvals: 1
      - name: Release
        approvers: {users: [U0ALICE, U0BOB, U0CAROL]}
        required_approvals: 2
    steps_order: sequence
"""

QA = {"name": "QA", "approvers": {"users": ["U0DAN"], "groups": ["S0QA"]}}
RELEASE = {
    "name": "Release",
    "approvers": {"users": ["U0ALICE", "U0BOB", "U0DAN"]},
    "required_approvals": 2,
}


def doc(defaults: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"defaults": {"channel": "C0DEPLOYS", **defaults}}
    if rules:
        document["pipelines"] = list(rules)
    return document


def steps_rule(*steps: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"match": "prod-*", "steps": list(steps), **more}


ALICE_BOB = {"approvers": {"users": ["U0ALICE", "U0BOB"]}}


# --------------------------------------------------------------------------- resolution


def test_design_example_resolves_to_its_two_steps_in_order() -> None:
    rules = load_policy(QA_THEN_RELEASE).resolve("prod-api")

    assert rules.steps == (
        Step("QA", Approvers(groups=("S0QA",)), 1),
        Step("Release", Approvers(users=("U0ALICE", "U0BOB", "U0CAROL")), 2),
    )
    assert rules.steps_order == "sequence"
    assert rules.effective_steps == rules.steps
    assert rules.rule == 'pipelines[0] (match "prod-*")'


def test_with_steps_approvers_are_everyone_listed_once_and_required_is_the_sum() -> None:
    # Who may reject, and whom a request mentions: every step's users and groups, each
    # once, in the order the steps list them; a decision needs every step's approvals.
    rules = Policy.from_document(doc(ALICE_BOB, steps_rule(QA, RELEASE))).resolve("prod-api")

    assert rules.approvers == Approvers(users=("U0DAN", "U0ALICE", "U0BOB"), groups=("S0QA",))
    assert rules.required_approvals == 3


def test_steps_order_any_is_kept_and_sequence_is_the_default() -> None:
    policy = Policy.from_document(
        doc(
            ALICE_BOB,
            steps_rule(QA, RELEASE, steps_order="any"),
            {"match": "stage-*", "steps": [QA, RELEASE]},
        )
    )

    assert policy.resolve("prod-api").steps_order == "any"
    assert policy.resolve("stage-api").steps_order == "sequence"


def test_a_step_without_required_approvals_needs_one() -> None:
    rules = Policy.from_document(doc({"steps": [QA]})).resolve("any-pipeline")

    assert rules.steps == (Step("QA", Approvers(("U0DAN",), ("S0QA",)), 1),)
    assert rules.required_approvals == 1


def test_a_rule_without_steps_resolves_exactly_as_before() -> None:
    rules = Policy.from_document(
        doc({**ALICE_BOB, "required_approvals": 2}, {"match": "prod-*", "channel": "C0PROD"})
    ).resolve("prod-api")

    assert rules == Rules(
        channel="C0PROD",
        approvers=Approvers(users=("U0ALICE", "U0BOB")),
        required_approvals=2,
        rule='pipelines[0] (match "prod-*")',
    )
    assert rules.steps == ()
    assert rules.effective_steps == (Step("Approvers", rules.approvers, 2),)


def test_resolved_steps_survive_the_round_trip_through_the_stored_item() -> None:
    rules = load_policy(QA_THEN_RELEASE).resolve("prod-api")

    assert Rules.from_dict(rules.to_dict()) == rules


# --------------------------------------------------------------------------- the merge


def test_a_rule_with_steps_replaces_the_defaults_approvers_and_required_approvals() -> None:
    # Defaults ask two of alice and bob; the rule's steps alone decide: bob is in none of
    # them, and the defaults' 2 is not added to (or instead of) the steps' sum.
    policy = Policy.from_document(
        doc(
            {"approvers": {"users": ["U0ALICE", "U0BOB"]}, "required_approvals": 2},
            steps_rule({"name": "QA", "approvers": {"users": ["U0DAN"]}}),
        )
    )

    rules = policy.resolve("prod-api")
    assert rules.approvers == Approvers(users=("U0DAN",))
    assert rules.required_approvals == 1
    assert not rules.may_decide("U0BOB")
    # A pipeline no rule matches still gets the defaults, without steps.
    other = policy.resolve("dev-api")
    assert other.steps == ()
    assert other.approvers == Approvers(users=("U0ALICE", "U0BOB"))
    assert other.required_approvals == 2


@pytest.mark.parametrize(
    "override",
    [
        {"approvers": {"users": ["U0ERIN"]}},
        {"approvers": {"users": ["U0ERIN", "U0FRANK"]}, "required_approvals": 2},
    ],
)
def test_a_rule_with_approvers_replaces_the_defaults_steps(override: dict[str, Any]) -> None:
    policy = Policy.from_document(
        doc({"steps": [QA, RELEASE], "steps_order": "any"}, {"match": "prod-*", **override})
    )

    rules = policy.resolve("prod-api")
    assert rules.steps == ()
    assert rules.approvers.users == tuple(override["approvers"]["users"])
    assert rules.required_approvals == override.get("required_approvals", 1)
    assert rules.effective_steps == (Step("Approvers", rules.approvers, rules.required_approvals),)
    assert not rules.may_decide("U0DAN")


def test_a_rule_with_only_required_approvals_over_default_steps_has_no_approvers() -> None:
    # required_approvals belongs with approvers: it drops the defaults' steps, and the
    # rule then names no one. Refused at load rather than guessed.
    message = error_of(doc({"steps": [QA, RELEASE]}, {"match": "prod-*", "required_approvals": 2}))

    assert (
        message
        == 'pipelines[0] (match "prod-*"): no approvers (set approvers.users or approvers.groups)'
    )


def test_a_rule_that_sets_neither_inherits_the_defaults_steps() -> None:
    policy = Policy.from_document(
        doc({"steps": [QA, RELEASE]}, {"match": "prod-*", "channel": "C0PROD"})
    )

    rules = policy.resolve("prod-api")
    assert [step.name for step in rules.steps] == ["QA", "Release"]
    assert rules.channel == "C0PROD"
    assert rules.required_approvals == 3


def test_steps_order_in_defaults_applies_to_a_rule_with_steps() -> None:
    # steps_order is a key of its own: defaults may set it for every rule with steps, and
    # a rule without steps ignores it (one step has no order).
    policy = Policy.from_document(doc({**ALICE_BOB, "steps_order": "any"}, steps_rule(QA, RELEASE)))

    assert policy.resolve("prod-api").steps_order == "any"
    assert policy.resolve("dev-api").steps == ()
    assert policy.resolve("dev-api").effective_steps[0].name == "Approvers"


def test_policy_ids_include_every_steps_users_and_groups() -> None:
    # The sandbox seeds these into its fake Slack: a step's approver must exist there.
    users, groups = policy_ids(load_policy(QA_THEN_RELEASE))

    assert {"U0ALICE", "U0BOB", "U0CAROL"} <= users
    assert "S0QA" in groups
    users, groups = policy_ids(Policy.from_document(doc({"steps": [QA, RELEASE]})))
    assert users == {"U0DAN", "U0ALICE", "U0BOB"}
    assert groups == {"S0QA"}


# --------------------------------------------------------------------------- load errors


def test_an_empty_steps_list_is_refused() -> None:
    message = error_of(doc(ALICE_BOB, steps_rule()))

    assert message.startswith("pipelines[0].steps: the list is empty"), message


def test_a_step_no_one_could_complete_is_refused_naming_rule_and_step() -> None:
    impossible = {"name": "Release", "approvers": {"users": ["U0ALICE"]}, "required_approvals": 2}

    message = error_of(doc(ALICE_BOB, {"match": "dev-*"}, steps_rule(QA, impossible)))

    assert message == (
        "pipelines[1].steps[1] (Release).required_approvals: 2 required but the step lists "
        "only 1 user(s) and no groups, so it could never complete"
    )


def test_steps_that_need_more_distinct_people_than_they_list_are_refused() -> None:
    # Alice alone in QA, alice and bob in Release asking for two: alice's vote counts in
    # one step only, so QA and Release can never both complete. Each step alone could.
    qa = {"name": "QA", "approvers": {"users": ["U0ALICE"]}}
    release = {"name": "Release", "approvers": {"users": ["U0ALICE", "U0BOB"]}}

    message = error_of(doc(ALICE_BOB, steps_rule(qa, {**release, "required_approvals": 2})))

    assert message == (
        "pipelines[0].steps[0] (QA), pipelines[0].steps[1] (Release): together require 3 "
        "approvals but list only 2 user(s) and no groups, and a person's vote counts in one "
        "step only, so they could never all complete"
    )
    # With one approval in Release, alice approves QA and bob Release.
    Policy.from_document(doc(ALICE_BOB, steps_rule(qa, release)))


def test_the_distinct_people_check_names_only_the_steps_that_clash() -> None:
    # Three steps: the third has a group (its members are unknown here), the first two
    # both list only dan.
    only_dan = {"approvers": {"users": ["U0DAN"]}}
    message = error_of(
        doc(
            {"steps": [QA, {"name": "Build", **only_dan}, {"name": "Deploy", **only_dan}]},
        )
    )

    assert message.startswith(
        "defaults.steps[1] (Build), defaults.steps[2] (Deploy): together require 2 approvals"
    ), message


PEOPLE = ("U0ALICE", "U0BOB", "U0CAROL", "U0DAN")


@settings(max_examples=400)
@given(
    st.lists(
        st.tuples(st.sets(st.sampled_from(PEOPLE), min_size=1, max_size=3), st.integers(1, 2)),
        min_size=1,
        max_size=4,
    )
)
# Two steps clash while the whole set has people enough; then three of four clash.
@example([({"U0ALICE"}, 1), ({"U0ALICE"}, 1), ({"U0BOB", "U0CAROL", "U0DAN"}, 1)])
@example([({"U0ALICE", "U0BOB"}, 1)] * 3 + [({"U0CAROL", "U0DAN"}, 2)])
def test_steps_load_exactly_when_distinct_people_can_complete_them_all(
    shape: list[tuple[set[str], int]],
) -> None:
    # The oracle: try every way of giving each person to at most one step.
    def completes(assignment: tuple[int, ...]) -> bool:
        counts = [0] * len(shape)
        for person, step in zip(PEOPLE, assignment, strict=True):
            if step < len(shape) and person in shape[step][0]:
                counts[step] += 1
        return all(count >= required for count, (_, required) in zip(counts, shape, strict=True))

    possible = any(completes(a) for a in product(range(len(shape) + 1), repeat=len(PEOPLE)))
    steps = [
        {"name": f"S{n}", "approvers": {"users": sorted(users)}, "required_approvals": required}
        for n, (users, required) in enumerate(shape)
    ]
    try:
        Policy.from_document(doc({"steps": steps}))
        loaded = True
    except PolicyError:
        loaded = False

    assert loaded == possible


def test_a_person_in_every_step_is_fine_when_others_can_fill_the_rest() -> None:
    rules = Policy.from_document(
        doc(
            {
                "steps": [
                    {"name": "QA", "approvers": {"users": ["U0DAN", "U0ALICE"]}},
                    {"name": "Release", "approvers": {"users": ["U0DAN", "U0BOB"]}},
                ]
            }
        )
    ).resolve("x")

    assert rules.required_approvals == 2


def test_a_step_with_a_group_may_require_more_than_its_listed_users() -> None:
    # A group's members are known only in Slack: as for approvers today, allowed.
    step = {"name": "QA", "approvers": {"users": ["U0DAN"], "groups": ["S0QA"]}}
    rules = Policy.from_document(doc({"steps": [{**step, "required_approvals": 3}]})).resolve("x")

    assert rules.steps[0].required_approvals == 3


def test_a_repeated_step_name_is_refused_saying_which() -> None:
    message = error_of(
        doc(ALICE_BOB, steps_rule(QA, RELEASE, {**QA, "approvers": ALICE_BOB["approvers"]}))
    )

    assert message == (
        "pipelines[0].steps[2] (QA).name: 'QA' is already the name of "
        "pipelines[0].steps[0]; step names must be unique"
    )


def test_step_names_differing_in_case_are_distinct() -> None:
    rules = Policy.from_document(doc({"steps": [QA, {**RELEASE, "name": "qa"}]})).resolve("x")

    assert [step.name for step in rules.steps] == ["QA", "qa"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "pipelines[0].steps[0].name: expected a non-empty step name, like QA, got ''"),
        ("   ", "pipelines[0].steps[0].name: expected a non-empty step name"),
        (7, "pipelines[0].steps[0].name: expected a non-empty step name, like QA, got 7"),
        (None, "pipelines[0].steps[0].name: expected a non-empty step name"),
        (" QA", "pipelines[0].steps[0].name: a step name may not start or end with a space"),
        ("QA\nRelease", "pipelines[0].steps[0].name: a step name is one line of printable"),
        ("x" * 41, "pipelines[0].steps[0].name: a step name is at most 40 characters, got 41"),
        ("<!channel>", "pipelines[0].steps[0].name: a step name may not contain Slack markup"),
        ("QA *now*", "pipelines[0].steps[0].name: a step name may not contain Slack markup"),
    ],
)
def test_a_step_name_must_be_short_printable_and_not_empty(name: Any, expected: str) -> None:
    message = error_of(doc(ALICE_BOB, steps_rule({**QA, "name": name})))

    assert message.startswith(expected), message


def test_a_step_name_of_forty_characters_is_accepted() -> None:
    rules = Policy.from_document(doc({"steps": [{**QA, "name": "x" * 40}]})).resolve("x")

    assert rules.steps[0].name == "x" * 40


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"approvers": {"users": ["U0DAN"]}}, "pipelines[0].steps[1]: missing name"),
        ({"name": "QA2"}, "pipelines[0].steps[1] (QA2): missing approvers"),
        (
            {"name": "QA2", "approvers": {}},
            "pipelines[0].steps[1] (QA2).approvers: no one is listed",
        ),
        (
            {"name": "QA2", "approvers": {"users": ["alice"]}},
            "pipelines[0].steps[1] (QA2).approvers.users[0]: expected a Slack user id",
        ),
        (
            {"name": "QA2", "approvers": {"groups": ["@qa"]}},
            "pipelines[0].steps[1] (QA2).approvers.groups[0]: expected a Slack user-group id",
        ),
        (
            {"name": "QA2", "approvers": {"users": ["U0DAN"]}, "required_approvals": 0},
            "pipelines[0].steps[1] (QA2).required_approvals: expected an integer >= 1, got 0",
        ),
        (
            {"name": "QA2", "approvers": {"users": ["U0DAN"]}, "required": 1},
            "pipelines[0].steps[1].required: unknown key (did you mean 'required_approvals'?)",
        ),
        ("QA2", "pipelines[0].steps[1]: expected a step (a mapping"),
    ],
)
def test_each_step_is_checked_like_approvers_are(step: Any, expected: str) -> None:
    message = error_of(doc(ALICE_BOB, steps_rule(QA, step)))

    assert message.startswith(expected), message


def test_at_most_ten_steps() -> None:
    many = [{"name": f"S{n}", "approvers": {"users": [f"U0P{n}"]}} for n in range(11)]

    assert Policy.from_document(doc({"steps": many[:10]})).resolve("x").required_approvals == 10
    assert error_of(doc({"steps": many})) == "defaults.steps: at most 10 steps, got 11"


def test_steps_must_be_a_list() -> None:
    message = error_of(doc(ALICE_BOB, {"match": "prod-*", "steps": QA}))

    assert message.startswith("pipelines[0].steps: expected a list of steps"), message


@pytest.mark.parametrize("key", ["approvers", "required_approvals"])
def test_steps_with_approvers_in_one_rule_is_refused(key: str) -> None:
    value = {"approvers": {"users": ["U0ERIN"]}, "required_approvals": 1}[key]

    message = error_of(doc(ALICE_BOB, steps_rule(QA, **{key: value})))

    assert message == (
        f"pipelines[0].{key}: set either steps or approvers and required_approvals, "
        "not both (each step has its own)"
    )


def test_steps_with_approvers_in_defaults_is_refused() -> None:
    message = error_of(doc({**ALICE_BOB, "steps": [QA]}))

    assert message.startswith("defaults.approvers: set either steps or approvers"), message


def test_steps_order_takes_sequence_or_any() -> None:
    message = error_of(doc(ALICE_BOB, steps_rule(QA, steps_order="parallel")))

    assert message == "pipelines[0].steps_order: expected 'sequence' or 'any', got 'parallel'"


def test_steps_order_without_steps_is_allowed_and_does_nothing() -> None:
    rules = Policy.from_document(
        doc({**ALICE_BOB, "required_approvals": 2, "steps_order": "any"})
    ).resolve("x")

    assert rules.steps == ()
    assert rules.effective_steps == (Step("Approvers", rules.approvers, 2),)


def test_a_yaml_policy_with_an_impossible_step_names_it() -> None:
    text = QA_THEN_RELEASE.replace(
        "required_approvals: 2\n    steps_order", "required_approvals: 4\n    steps_order"
    )

    with pytest.raises(PolicyError) as caught:
        load_policy(text)

    assert str(caught.value).startswith(
        "pipelines[0].steps[1] (Release).required_approvals: 4 required but the step lists "
        "only 3 user(s)"
    )
