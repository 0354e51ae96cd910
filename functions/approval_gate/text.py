"""Text that leaves the gate: Slack mrkdwn escaping and one-line plain summaries."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from approval_gate.i18n import tr

#: CodePipeline's PutApprovalResult summary holds at most 512 characters.
MAX_SUMMARY = 512

_SLACK_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>")
_SLACK_SPECIAL = re.compile(r"<[!@#]([^<>|]*)(\|[^<>]*)?>")
_SLACK_BARE = re.compile(r"<([^<>]*)>")
_SPACE = re.compile(r"\s+")
_BROADCAST = re.compile(r"@+(channel|here|everyone)", re.IGNORECASE)


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as markup, so user text stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_link(url: str, label: str) -> str:
    """A Slack link to `url` showing `label` (mrkdwn already): the URL escaped as Slack asks,
    and a `|` or `>` in it kept out of the markup, so a link from elsewhere (a check
    function's answer, a revision URL) cannot end early and add markup of its own."""
    return f"<{escape_mrkdwn(url).replace('|', '%7C')}|{label}>"


def plain(text: str) -> str:
    """Slack markup and control characters out: links become their label, mentions lose
    their power (`<!channel>` → `channel`), and white space folds to single spaces."""
    text = _SLACK_LINK.sub(lambda m: m.group(2), text)
    text = _SLACK_SPECIAL.sub(lambda m: m.group(1), text)
    text = _SLACK_BARE.sub(lambda m: m.group(1), text)
    text = text.replace("<", "").replace(">", "")
    text = _BROADCAST.sub(r"\1", text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


def cut_at_word(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut falls inside a word: drop that word
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
    return cut.rstrip() + "…"


def one_line(text: str, limit: int = MAX_SUMMARY) -> str:
    return cut_at_word(plain(text), limit)


def human_duration(seconds: float, language: str) -> str:
    """A short human duration in ``language``: 45s, 12m, 3h 20m, 4d 2h (Vietnamese:
    45 giây, 12 phút, 3 giờ 20 phút, 4 ngày 2 giờ)."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return tr(language, "%(seconds)ds", seconds=seconds)
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        if sec:
            return tr(language, "%(minutes)dm %(seconds)ds", minutes=minutes, seconds=sec)
        return tr(language, "%(minutes)dm", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if minutes:
            return tr(language, "%(hours)dh %(minutes)dm", hours=hours, minutes=minutes)
        return tr(language, "%(hours)dh", hours=hours)
    days, hours = divmod(hours, 24)
    if hours:
        return tr(language, "%(days)dd %(hours)dh", days=days, hours=hours)
    return tr(language, "%(days)dd", days=days)


def slack_date(moment: datetime, language: str) -> str:
    """A time Slack renders in each reader's own time zone (its words in ``language``), with
    a UTC fallback in that language's order for clients that cannot."""
    epoch = int(moment.timestamp())
    utc = moment.astimezone(UTC)
    # Translators: Slack's date tokens in braces stay as they are; reorder and reword the
    # rest. Slack fills {date_short_pretty} (today, yesterday or "Dec 6") and {time}.
    shown = tr(language, "{date_short_pretty} at {time}")
    # Translators: the text shown where Slack cannot render a date, in UTC.
    fallback = tr(
        language,
        "%(year)s-%(month)s-%(day)s %(time)s UTC",
        year=f"{utc.year:04d}",
        month=f"{utc.month:02d}",
        day=f"{utc.day:02d}",
        time=f"{utc.hour:02d}:{utc.minute:02d}",
    )
    return f"<!date^{epoch}^{shown}|{fallback}>"
