"""Slack user-group membership, for approvers named by group.

Membership comes from `usergroups.users.list`, cached briefly per Lambda container. When
Slack cannot answer (an error, `plan_upgrade_required` on a free workspace, a timeout),
the lookup fails closed: nobody is let in on a group whose members are unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

#: Seconds a group's members are trusted before Slack is asked again.
GROUP_CACHE_SECONDS = 60


class GroupLookupFailed(Exception):
    """Slack did not say who is in a group: what Slack said (its error code, None when it
    gave none), or that it did not answer (``answered`` False; ``error`` then names the
    exception). ``reason`` says it in English for the logs; the clicker reads it in the
    rule's language (clicks.group_lookup_reason). No secrets in either."""

    def __init__(self, group_id: str, *, error: str | None, answered: bool = True) -> None:
        self.group_id = group_id
        self.error = error
        self.answered = answered
        if answered:
            self.reason = f"Slack said: {error or 'an error'}"
        else:
            self.reason = f"Slack did not answer: {error}"
        super().__init__(f"could not read the members of {group_id}: {self.reason}")


class GroupDirectory:
    def __init__(
        self,
        slack: Any,
        ttl: float = GROUP_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slack = slack
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, group_id: str) -> frozenset[str]:
        now = self._monotonic()
        cached = self._cache.get(group_id)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = self.slack.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise GroupLookupFailed(group_id, error=error) from None
        except (SlackClientError, OSError) as exc:
            raise GroupLookupFailed(group_id, error=type(exc).__name__, answered=False) from None
        users = frozenset(str(u) for u in response.get("users") or [])
        self._cache[group_id] = (now, users)
        return users


def in_approvers(approvers: Any, user_id: str, directory: GroupDirectory | None) -> bool:
    """Listed by id in `approvers` (a rules.Approvers), or a member of one of its groups;
    False when groups matter and there is no directory. Raises GroupLookupFailed as
    `is_member` does (fail closed)."""
    if user_id in approvers.users:
        return True
    return (
        bool(approvers.groups)
        and directory is not None
        and is_member(directory, user_id, approvers.groups)
    )


def is_member(directory: GroupDirectory, user_id: str, groups: tuple[str, ...]) -> bool:
    """True if the user is in any of the groups. Raises GroupLookupFailed when a group
    that could matter cannot be read (fail closed): groups are tried in order and the
    first failure stops the check unless an earlier group already answered yes."""
    return any(user_id in directory.members(group) for group in groups)
