"""Approval steps (DESIGN §8.1): which step an approve vote counts in, and how far each got.

A rule's steps ("QA, then two of Release") each need their own distinct approvals. With
``sequence`` only the first open step takes approvals; with ``any``, a vote counts in the
first open step, in policy order, that lists the voter. A person counts in one step only.
Everything here is pure: the votes say which step each approval counted in (``Vote.step``),
and the caller resolves group membership (``listed``) and writes the vote conditionally on
the votes it read, so two clicks can never both fill the last place of a step.

A rule without ``steps`` is one step, ``Approvers``: its votes carry no step and count
there, so items written before steps existed read the same.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import combinations
from typing import Any, NamedTuple

from approval_gate.clock import iso
from approval_gate.i18n import tr, trp
from approval_gate.rules import SINGLE_STEP, Rules, Step


class StepProgress(NamedTuple):
    """One step as the votes left it: who counted in it, and when it completed."""

    step: Step
    approved_by: tuple[str, ...] = ()
    completed_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def complete(self) -> bool:
        return len(self.approved_by) >= self.step.required_approvals

    def record(self) -> dict[str, Any]:
        """The decision record's entry (DESIGN §8.1)."""
        return {
            "name": self.step.name,
            "required": self.step.required_approvals,
            "approved_by": list(self.approved_by),
            "completed_at": iso(self.completed_at) if self.completed_at else None,
        }


def progress(rules: Rules, votes: Iterable[Any]) -> tuple[StepProgress, ...]:
    """Each step with the approve votes counted in it, in vote order. A vote names its step
    (``Vote.step``); one that names none, or a step the rules no longer have, counts in
    the first step. Rejections count nowhere."""
    steps = rules.effective_steps
    names = {step.name for step in steps}
    counted: dict[str, list[tuple[str, datetime]]] = {step.name: [] for step in steps}
    for vote in votes:
        if vote.vote != "approve":
            continue
        name = vote.step if vote.step in names else steps[0].name
        counted[name].append((vote.user_id, vote.at))
    result = []
    for step in steps:
        voters = counted[step.name]
        done = (
            voters[step.required_approvals - 1][1]
            if len(voters) >= step.required_approvals
            else None
        )
        result.append(StepProgress(step, tuple(user for user, _ in voters), done))
    return tuple(result)


def all_complete(states: Iterable[StepProgress]) -> bool:
    return all(state.complete for state in states)


def open_steps(rules: Rules, states: tuple[StepProgress, ...]) -> tuple[StepProgress, ...]:
    """The steps that take approvals now: the first incomplete one in ``sequence`` order;
    every incomplete one in ``any`` order."""
    waiting = tuple(state for state in states if not state.complete)
    if rules.steps_order == "sequence":
        return waiting[:1]
    return waiting


class Placement(NamedTuple):
    """Where an approve vote goes: ``step`` (it counts there), or why it counts nowhere.

    ``why``: ``later`` (sequence: the voter is listed only in a step whose turn has not
    come; ``waiting`` names the step whose turn it is), ``needed_later`` (counting the
    voter now would leave ``waiting``, a later step, without enough people to complete),
    ``done`` (every step listing the voter is complete), ``not_listed`` (no step lists the
    voter).
    """

    step: StepProgress | None
    why: str | None = None
    waiting: StepProgress | None = None


def still_possible(states: tuple[StepProgress, ...], used: frozenset[str]) -> StepProgress | None:
    """The first incomplete step that can no longer complete, now that the ``used`` people
    count elsewhere; None when every one still can. Each step needs its missing approvals
    from distinct people it lists who count nowhere yet; Hall's condition over every set
    of incomplete steps without groups (a group may bring anyone) decides it."""
    waiting = [s for s in states if not s.complete and not s.step.approvers.groups]
    for size in range(1, len(waiting) + 1):
        for chosen in combinations(waiting, size):
            need = sum(s.step.required_approvals - len(s.approved_by) for s in chosen)
            pool = {u for s in chosen for u in s.step.approvers.users} - used
            if len(pool) < need:
                return chosen[-1]
    return None


def place(
    rules: Rules,
    states: tuple[StepProgress, ...],
    listed: Callable[[Step], bool],
    *,
    voter: str,
    escalation_approver: bool = False,
) -> Placement:
    """The step an approve vote by ``voter`` counts in. ``listed(step)`` says whether the
    voter is one of the step's approvers (users or groups; it may raise when a group cannot
    be read). Of the open steps listing the voter, the first that leaves every other step
    able to complete; an escalation approver, once escalated, approves for the first open
    step."""
    current = open_steps(rules, states)
    if not current:
        return Placement(None, "done")
    candidates = [state for state in current if listed(state.step)]
    counted = frozenset(u for state in states for u in state.approved_by)
    if candidates and still_possible(states, counted) is not None:
        return Placement(candidates[0])  # past saving already: do not hold anyone up
    used = counted | {voter}
    blocked = None
    for state in candidates:
        after = tuple(
            s._replace(approved_by=(*s.approved_by, voter)) if s is state else s for s in states
        )
        blocked = still_possible(after, used)
        if blocked is None:
            return Placement(state)
    if blocked is not None:
        return Placement(None, "needed_later", waiting=blocked)
    if escalation_approver:
        return Placement(current[0])
    others = [state for state in states if state not in current and listed(state.step)]
    if not others:
        return Placement(None, "not_listed")
    if any(not state.complete for state in others):
        return Placement(None, "later", waiting=current[0])
    return Placement(None, "done", waiting=current[0])


def approvers_of(states: Iterable[StepProgress]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The users and groups the given steps list, each once, in policy order."""
    users: list[str] = []
    groups: list[str] = []
    for state in states:
        users += [u for u in state.step.approvers.users if u not in users]
        groups += [g for g in state.step.approvers.groups if g not in groups]
    return tuple(users), tuple(groups)


def step_name(name: str, language: str) -> str:
    """A step's name as people read it: the policy's own name, except the one step of a
    rule without steps (rules.SINGLE_STEP, stored in English), which reads in ``language``."""
    if name == SINGLE_STEP:
        # Translators: the name of the one approval step of a rule that lists no steps
        # (everyone the rule lists as approvers), shown in the steps' progress.
        return trp(language, "step", "Approvers")
    return name


def progress_line(states: Iterable[StepProgress], language: str) -> str:
    """Each step's progress on one line: "QA ✅ <@U0DAN> · Release 1 of 2 (<@U0ALICE>)"."""
    parts = []
    for state in states:
        name = step_name(state.name, language)
        who = ", ".join(f"<@{user}>" for user in state.approved_by)
        if state.complete:
            parts.append(f"{name} ✅ {who}")
            continue
        # Translators: an incomplete step: its name, approvals so far of those it needs.
        count = tr(
            language,
            "%(step)s %(approved)d of %(required)d",
            step=name,
            approved=len(state.approved_by),
            required=state.step.required_approvals,
        )
        parts.append(f"{count} ({who})" if who else count)
    return " · ".join(parts)
