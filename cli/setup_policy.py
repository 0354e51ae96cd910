"""The policy file `approval-gate setup` writes: one channel and its approvers, and with
``--try`` a rule that lets the example pipeline's trial run be approved by its author.

Setup writes over the shipped placeholder (it names only ``C0DEPLOYS``, ``U0ALICE`` and
``U0BOB``) and over a file it wrote itself (its marker line), keeping the file's leading
comments; it leaves a file that already names that channel and those approvers (and has
the trial rule when asked for); it never writes over any other policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The ids the shipped config/policy.yaml names: a policy naming no others is a placeholder.
PLACEHOLDER_CHANNELS = frozenset({"C0DEPLOYS"})
PLACEHOLDER_USERS = frozenset({"U0ALICE", "U0BOB"})
#: The first line of the body setup writes; a file with it is setup's to rewrite.
MARKER = "# Written by `approval-gate setup`"
#: The example pipeline's generated names (examples/pipeline.yaml in a stack "…-example").
TRIAL_MATCH = "approval-gate-example-Pipeline-*"
TRIAL_PIPELINE = "approval-gate-example-Pipeline-setup"

FOUND, WRITE, FOREIGN = "found", "write", "foreign"


@dataclass(frozen=True)
class Plan:
    """What to do with the policy: leave it (found), write ``text``, or refuse (foreign)."""

    action: str
    text: str
    why: str


def plan_policy(
    current: str | None,
    *,
    channel: str,
    channel_name: str,
    approvers: dict[str, str],
    trial: bool,
    language: str = "en",
) -> Plan:
    """What setup does to the policy ``current`` (None: no file yet). ``approvers`` maps
    each approver's email to their Slack user id, in the order given; ``language`` is the
    defaults' (DESIGN §8.5)."""
    from approval_gate.policy import PolicyError, load_policy, policy_channels, policy_ids

    users = list(dict.fromkeys(approvers.values()))
    text = generated(current, channel, channel_name, approvers, trial, language)
    if current is None or not current.strip():
        return Plan(WRITE, text, "no policy yet")
    try:
        policy = load_policy(current)
    except PolicyError as exc:
        if MARKER in current:
            return Plan(WRITE, text, "setup's own file, which no longer loads")
        return Plan(FOREIGN, current, f"it does not load ({exc})")
    if _serves(policy, channel, users, trial, language):
        return Plan(FOUND, current, "it already names that channel and those approvers")
    ids, groups = policy_ids(policy)
    placeholder = (
        policy_channels(policy) <= PLACEHOLDER_CHANNELS and ids <= PLACEHOLDER_USERS and not groups
    )
    if placeholder:
        return Plan(WRITE, text, "the placeholder policy")
    if MARKER in current:
        return Plan(WRITE, text, "setup's own file, for another channel or approvers")
    return Plan(FOREIGN, current, "it holds another policy")


def _serves(policy: Any, channel: str, users: list[str], trial: bool, language: str) -> bool:
    """Does the policy send the defaults to ``channel`` for exactly ``users``, in
    ``language``, and (with ``trial``) let the example pipeline's author approve?"""
    defaults = policy.resolve("any-pipeline-setup-checks")
    if defaults.channel != channel or set(defaults.approvers.users) != set(users):
        return False
    if defaults.language != language:
        return False
    if defaults.approvers.groups:
        return False
    if trial:
        example = policy.resolve(TRIAL_PIPELINE)
        if example.channel != channel or not example.allow_self_approval:
            return False
    return True


def header(current: str | None) -> str:
    """The file's leading comment lines (the shipped file's explanation), kept as they are;
    none when the file starts with setup's own body."""
    lines: list[str] = []
    for line in (current or "").splitlines():
        if line.startswith(MARKER):
            break
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n\n" if lines else ""


def generated(
    current: str | None,
    channel: str,
    channel_name: str,
    approvers: dict[str, str],
    trial: bool,
    language: str = "en",
) -> str:
    """The policy setup writes: ``current``'s header, then its own body."""
    users = list(dict.fromkeys(approvers.values()))
    emails = ", ".join(approvers)
    people = "".join(f"  {json.dumps(email)}: {user}\n" for email, user in approvers.items())
    body = (
        f"{MARKER} for #{channel_name} and {emails}.\n"
        "# Review it: it stays a file under version control, and each change ships with\n"
        "# `make build` and `sam deploy`. Every key: docs/configuration.md.\n"
        "defaults:\n"
        f"  channel: {channel}  # #{channel_name}\n"
        "  approvers:\n"
        f"    users: [{', '.join(users)}]  # {emails}\n"
        "  required_approvals: 1           # distinct approvers needed; one rejection rejects\n"
        "  allow_self_approval: false      # the change's author may not approve it\n"
        f"  language: {language}                    # what people read in Slack: en or vi\n"
        "\n"
        "people:                           # change authors -> Slack users, for four-eyes\n"
        f"{people}"
        "\n"
        "pipelines:                        # first match wins\n"
    )
    if trial:
        body += (
            "  # Trial only (approval-gate setup --try): you start the example pipeline's run,\n"
            "  # so you are its author, and four-eyes would refuse your own Approve. Remove\n"
            "  # this rule with the example stack; never copy it to a real pipeline.\n"
            f'  - match: "{TRIAL_MATCH}"\n'
            "    allow_self_approval: true\n"
        )
    body += (
        '  - match: "prod-*"\n'
        "    allow_self_approval: false    # pinned, so a change to the defaults cannot loosen it\n"
        "    on_deadline: reject           # production never approves by timeout\n"
    )
    return header(current) + body
