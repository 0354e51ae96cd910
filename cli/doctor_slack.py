"""`doctor`'s Slack checks: the bot token and its scopes, the bot in each channel the policy
names, the policy's user groups. They ask Slack's Web API (or the sandbox's fake, at the
target's ``slack_api_url``) with the bot token of the gate's secret, which never reaches
a detail, a fix or an error text: a Slack failure is shown by its error code only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.doctor_checks import Check, count, failed, passed, skipped

if TYPE_CHECKING:
    from cli.doctor import Facts

#: The Slack app manifest whose bot scopes the token must have (the repository's root).
MANIFEST = Path(__file__).resolve().parent.parent / "slack-app-manifest.yaml"
#: How long one Slack call may take (slack_sdk's default is 30 s).
SLACK_TIMEOUT = 10.0
#: auth.test's errors that mean the secret's bot_token is not a working bot token.
BAD_TOKEN = ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive")

SLACK_TOKEN = "Slack token"  # noqa: S105 - a check's name
CHANNELS = "bot in every policy channel"
GROUPS = "user groups resolve"


def manifest_scopes(path: Path = MANIFEST) -> list[str]:
    """The bot scopes slack-app-manifest.yaml asks for, in its order."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise ValueError(f"cannot read {path.name} at {path.parent}") from None
    scopes = (((document or {}).get("oauth_config") or {}).get("scopes") or {}).get("bot")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"{path.name} lists no oauth_config.scopes.bot")
    return scopes


def granted_scopes(headers: Any) -> list[str] | None:
    """The scopes of auth.test's ``x-oauth-scopes`` header (any case); None without it."""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "x-oauth-scopes":
            text = ",".join(value) if isinstance(value, list | tuple) else str(value)
            return [scope.strip() for scope in text.split(",") if scope.strip()]
    return None


def slack_error(exc: Exception) -> str:
    """What Slack said (its error code), or why it could not be asked; never a token."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        response = getattr(exc, "response", None)
        code = response.get("error") if response is not None else None
        return str(code or "an error")
    return f"Slack could not be reached ({type(exc).__name__})"


def _slack_failures() -> tuple[type[Exception], ...]:
    from slack_sdk.errors import SlackClientError

    return (SlackClientError, OSError)


def _scope_fix(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    needed = response.get("needed") if response is not None else None
    return f"add the scope {needed or 'it names'} under OAuth & Permissions and reinstall the app"


def _fixes(fixes: list[str]) -> str:
    return "; ".join(dict.fromkeys(fixes)) or "run doctor again once Slack answers"


def check_token(facts: Facts) -> Check:
    """auth.test answers for the secret's bot token, with every scope of the manifest."""
    if facts.credentials is None:
        return skipped(SLACK_TOKEN, "no Slack token", "signing secret set")
    from slack_sdk import WebClient

    options: dict[str, Any] = {"token": facts.credentials.bot_token, "timeout": SLACK_TIMEOUT}
    if facts.deployment.slack_api_url:
        options["base_url"] = facts.deployment.slack_api_url
    client = WebClient(**options)
    try:
        answer = client.auth_test()
    except _slack_failures() as exc:
        error = slack_error(exc)
        fix = (
            "put the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions) in the secret's "
            "bot_token"
            if error in BAD_TOKEN
            else "check that Slack's Web API can be reached from here, then run doctor again"
        )
        return failed(SLACK_TOKEN, f"auth.test answered {error}", fix)
    facts.slack = client
    facts.bot_name = str(answer.get("user") or "") or None
    who = f"team {answer.get('team') or '?'}, bot @{facts.bot_name or '?'}"
    wanted = manifest_scopes()
    granted = granted_scopes(answer.headers)
    if granted is None:
        return failed(
            SLACK_TOKEN,
            f"{who}: Slack did not list the token's scopes (x-oauth-scopes)",
            "use a bot token (xoxb-…) in the secret's bot_token, not a user or app token",
        )
    missing = [scope for scope in wanted if scope not in granted]
    if missing:
        return failed(
            SLACK_TOKEN,
            f"{who}: the token lacks {', '.join(missing)}",
            f"add {', '.join(missing)} under OAuth & Permissions → Bot Token Scopes (as "
            "slack-app-manifest.yaml lists them) and reinstall the app",
        )
    return passed(SLACK_TOKEN, f"{who}: every scope of {MANIFEST.name} ({len(wanted)})")


def check_channels(facts: Facts) -> Check:
    """conversations.info of each channel the policy names says the bot is a member."""
    from approval_gate.policy import policy_channels

    if facts.policy is None:
        return skipped(CHANNELS, "the policy does not load", "the deployed policy loads")
    if facts.slack is None:
        return skipped(CHANNELS, "no working Slack token", SLACK_TOKEN)
    channels = sorted(policy_channels(facts.policy))
    problems: list[str] = []
    fixes: list[str] = []
    shown: list[str] = []
    bot = facts.bot_name or "Approval Gate"
    for channel in channels:
        try:
            info = facts.slack.conversations_info(channel=channel)["channel"]
        except _slack_failures() as exc:
            error = slack_error(exc)
            problems.append(f"{channel}: {error}")
            if error == "channel_not_found":
                fixes.append(
                    f"check the id {channel} in the policy; a private channel: /invite @{bot} "
                    "there first"
                )
            elif error == "missing_scope":
                fixes.append(_scope_fix(exc))
            continue
        name = str(info.get("name") or channel)
        shown.append(f"{channel} (#{name})")
        if not info.get("is_member"):
            problems.append(f"{channel} (#{name}): the bot is not a member")
            fixes.append(f"/invite @{bot} in #{name}")
    if problems:
        return failed(CHANNELS, "; ".join(problems), _fixes(fixes))
    return passed(CHANNELS, f"a member of {count(len(channels), 'channel')}: {', '.join(shown)}")


def check_groups(facts: Facts) -> Check:
    """usergroups.users.list answers for each user group the policy names."""
    from approval_gate.policy import policy_ids

    if facts.policy is None:
        return skipped(GROUPS, "the policy does not load", "the deployed policy loads")
    _, groups = policy_ids(facts.policy)
    if not groups:
        return passed(GROUPS, "the policy names no user groups")
    if facts.slack is None:
        return skipped(GROUPS, "no working Slack token", SLACK_TOKEN)
    problems: list[str] = []
    fixes: list[str] = []
    for group in sorted(groups):
        try:
            facts.slack.usergroups_users_list(usergroup=group)
        except _slack_failures() as exc:
            error = slack_error(exc)
            if error == "plan_upgrade_required":
                problems.append(f"{group}: plan_upgrade_required (a free workspace has no groups)")
                fixes.append("name the approvers as users (approvers.users) in the policy")
            elif error == "no_such_subteam":
                problems.append(f"{group}: no such user group")
                fixes.append(
                    f"replace {group} in the policy with an existing group's id (S…; Slack → "
                    "People → User groups)"
                )
            elif error == "missing_scope":
                problems.append(f"{group}: missing_scope")
                fixes.append(_scope_fix(exc))
            else:
                problems.append(f"{group}: {error}")
    if problems:
        return failed(GROUPS, "; ".join(problems), _fixes(fixes))
    return passed(GROUPS, f"all {len(groups)} resolve: {', '.join(sorted(groups))}")
