"""The health checks as the request and the held request show them (DESIGN §8.3): one line
per check, and why Approve is blocked."""

from __future__ import annotations

from approval_gate.checks import ERROR, FAILED, MISSING, PASSED, UNREADABLE, CheckResult, failing
from approval_gate.i18n import tr, trp
from approval_gate.records import Approval
from approval_gate.text import cut_at_word, escape_mrkdwn, mrkdwn_link, slack_date

#: Slack's limit on a section's text.
_SECTION_LIMIT = 3000

_CHECK_SYMBOLS = {"OK": ":white_check_mark:", "PASSED": ":white_check_mark:"}


def check_state(state: str, language: str) -> str:
    """A check's state as people read it: CloudWatch's own states (OK, ALARM,
    INSUFFICIENT_DATA) as CloudWatch names them, the gate's own ones in ``language``."""
    # Translators: the state of a health check, after its name, in capitals like
    # CloudWatch's OK / ALARM (kept in English): the alarm does not exist.
    if state == MISSING:
        return trp(language, "check state", "MISSING")
    # Translators: a check's state: the alarm could not be read.
    if state == UNREADABLE:
        return trp(language, "check state", "UNREADABLE")
    # Translators: a check's state: the check function said the check passed.
    if state == PASSED:
        return trp(language, "check state", "PASSED")
    # Translators: a check's state: the check function said the check failed.
    if state == FAILED:
        return trp(language, "check state", "FAILED")
    # Translators: a check's state: the check function gave no usable answer.
    if state == ERROR:
        return trp(language, "check state", "ERROR")
    return state


def check_line(result: CheckResult, language: str) -> str:
    """ "✅ prod-db-cpu OK", "❌ prod-api-5xx ALARM: Threshold Crossed …", "⚠️ prod-db-cpu
    INSUFFICIENT_DATA" (blocking or not: an alarm without data says so), with its link."""
    if result.state == "INSUFFICIENT_DATA":
        symbol = ":warning:"
    elif result.passed:
        symbol = _CHECK_SYMBOLS.get(result.state, ":white_check_mark:")
    else:
        symbol = ":x:"
    name = escape_mrkdwn(result.name)
    shown = mrkdwn_link(result.url, name) if result.url else name
    summary = (
        "" if result.passed and result.summary == "ok" else f": {escape_mrkdwn(result.summary)}"
    )
    return f"{symbol} {shown} {check_state(result.state, language)}{summary}"


def checks_text(approval: Approval) -> str:
    """The health checks as last read (DESIGN §8.3) and, while one fails, why there is no
    Approve: "Approve is blocked while prod-api-5xx is ALARM (since …). Reject still works." """
    language = approval.rules.language
    # Translators: the title of the section listing the health checks' results.
    title = tr(language, "Health checks")
    lines = [f"*{title}*", *(check_line(result, language) for result in approval.checks)]
    blocking = failing(approval.checks)
    if blocking:
        first = blocking[0]
        values = {
            "check": f"*{escape_mrkdwn(first.name)}*",
            "state": check_state(first.state, language),
            "when": slack_date(first.at, language),
        }
        if first.kind == "alarm":
            # Translators: %(check)s: the alarm's name (bold); %(state)s: its state (ALARM);
            # %(when)s: a date. Approve and Reject are the request's buttons.
            blocked = tr(
                language,
                "Approve is blocked while %(check)s is %(state)s (since %(when)s). "
                "Reject still works.",
                **values,
            )
        else:
            # Translators: %(check)s: the check function's name (bold); %(state)s: FAILED
            # or ERROR; %(when)s: when it last ran. Approve and Reject are the buttons.
            blocked = tr(
                language,
                "Approve is blocked while %(check)s is %(state)s (checked %(when)s). "
                "Reject still works.",
                **values,
            )
        lines.append(f":no_entry_sign: {blocked}")
    return cut_at_word("\n".join(lines), _SECTION_LIMIT)
