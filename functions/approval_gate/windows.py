"""When may deploys next go on? Deploy windows and freezes as one pure function.

:func:`next_allowed` answers, from an instant, when deploys may next go on and why not
now (DESIGN §8.2). Everything follows the wall clock of the policy's time zone:

- A window is open while the wall clock reads a listed day and a time in ``[from, to)``;
  with ``to < from`` the window runs from ``from`` to midnight on a listed day and on
  from midnight to ``to`` the next day.
- A cron freeze begins at each instant the wall clock reads a matching minute, and lasts
  ``duration`` seconds of real time. A one-off freeze holds from ``from`` up to ``to``.
  A freeze that began before the instant asked about still holds.
- Daylight saving: on a spring-forward day the wall clock skips an hour, so a window that
  opens (or a freeze that begins) in the skipped hour opens at the first instant after
  it (02:30 in New York on 2026-03-08 is 03:00 EDT); a window lying wholly inside the gap
  does not open that day. On a fall-back day the wall clock reads an hour twice: a window
  is open both times it reads a time inside it, and a cron freeze begins both times
  (croniter's own tz-aware iteration does the same).

All instants are exact to the second; windows and freezes on whole minutes give answers
on whole minutes. A zone's offset is assumed to change at most once in 12 hours (true of
every zone's 2026 rules). This module does no I/O and reads no clock: ``at`` is a
parameter, and so is ``limit`` (a hold will ask up to ``expires - deadline_margin``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, NamedTuple

from approval_gate.rules import WEEKDAYS, DeployWindow, Freeze, Rules

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

#: Why deploys may not go on now: outside every window, or a freeze holds.
WHY_WINDOW = "window"
WHY_FREEZE = "freeze"

_SECOND = timedelta(seconds=1)
#: Offsets change at most once within this span (a zone's transitions are months apart),
#: so probing the offset at this step finds every transition.
_PROBE = timedelta(hours=12)


class Allowed(NamedTuple):
    """The answer: when deploys may next go on (None: not before the limit), and why not
    now (None when ``at`` itself is allowed; ``reason`` is the freeze's, for a freeze).

    ``at`` is in UTC: two aware datetimes in one ZoneInfo zone compare and subtract by
    their wall clocks, which is wrong across a change of offset.
    """

    at: datetime | None
    why: str | None = None
    reason: str | None = None

    @property
    def now(self) -> bool:
        return self.why is None and self.at is not None


def next_allowed_for(rules: Rules, at: datetime, limit: datetime) -> Allowed:
    """:func:`next_allowed` with a stored approval's rules."""
    return next_allowed(
        at,
        timezone=rules.timezone,
        windows=rules.deploy_windows,
        freezes=rules.freezes,
        limit=limit,
    )


def next_allowed(
    at: datetime,
    *,
    timezone: str,
    windows: Sequence[DeployWindow],
    freezes: Sequence[Freeze],
    limit: datetime,
) -> Allowed:
    """From ``at`` (aware), the first instant ``>= at`` and ``< limit`` when some window is
    open (or there are no windows) and no freeze holds; ``Allowed(None, why, reason)``
    when there is none before ``limit``.

    ``why`` says why not at ``at``: ``freeze`` when a freeze holds then (``reason`` is the
    reason of the one that ends last, the first listed on a tie), else ``window``.
    """
    if at.tzinfo is None or limit.tzinfo is None:
        raise ValueError("next_allowed needs aware datetimes")
    # zoneinfo is imported when a calendar is read, not by every function that imports
    # this module (the click path does, and most policies have no windows or freezes).
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    start = at.astimezone(UTC)
    end = limit.astimezone(UTC)
    calendar = _Calendar(zone, tuple(windows), tuple(freezes))
    why: str | None = None
    reason: str | None = None
    holding = calendar.freeze_holding(start)
    if holding is not None:
        why, reason = WHY_FREEZE, holding[1].reason
    elif not calendar.window_open(start):
        why = WHY_WINDOW
    instant = start
    while instant < end:
        if not calendar.window_open(instant):
            instant = calendar.next_window_step(instant)
            continue
        holding = calendar.freeze_holding(instant)
        if holding is None:
            return Allowed(instant.astimezone(UTC), why, reason)
        instant = holding[0]
    return Allowed(None, why, reason)


class _Calendar:
    def __init__(
        self, zone: ZoneInfo, windows: tuple[DeployWindow, ...], freezes: tuple[Freeze, ...]
    ) -> None:
        self.zone = zone
        self.windows = windows
        self.freezes = freezes

    # ----------------------------------------------------------------- the wall clock

    def wall(self, instant: datetime) -> datetime:
        """What the wall clock reads at this instant (naive local time)."""
        return instant.astimezone(self.zone).replace(tzinfo=None)

    def offset(self, instant: datetime) -> timedelta:
        offset = instant.astimezone(self.zone).utcoffset()
        assert offset is not None
        return offset

    def first_transition(self, after: datetime, until: datetime) -> datetime | None:
        """The first instant in ``(after, until]`` whose UTC offset differs from ``after``'s.

        Offsets change on whole seconds, so the search runs over whole seconds.
        """
        before = self.offset(after)
        low = after.replace(microsecond=0)
        while low < until:
            high = min(low + _PROBE, until)
            if self.offset(high) != before:
                # the offset changes in (low, high]: the first whole second that has it
                lowest, highest = 0, math.ceil((high - low).total_seconds())
                while highest - lowest > 1:
                    middle = (lowest + highest) // 2
                    if self.offset(low + timedelta(seconds=middle)) != before:
                        highest = middle
                    else:
                        lowest = middle
                return low + timedelta(seconds=highest)
            low = high
        return None

    # ----------------------------------------------------------------- windows

    def window_open(self, instant: datetime) -> bool:
        if not self.windows:
            return True
        wall = self.wall(instant)
        return any(_reads_open(window, wall) for window in self.windows)

    def next_window_step(self, instant: datetime) -> datetime:
        """A later instant no later than the next opening of a window after ``instant``
        (outside every window): the next ``from`` the wall clock reaches, or the first
        change of offset before it, where the wall clock jumps and is looked at again."""
        wall = self.wall(instant)
        opening = min(
            (_next_opening(window, wall) for window in self.windows if window.days),
            default=None,
        )
        if opening is None:
            return datetime.max.replace(tzinfo=UTC)
        reached = instant + (opening - wall)
        jump = self.first_transition(instant, reached)
        return reached if jump is None else jump

    # ----------------------------------------------------------------- freezes

    def freeze_holding(self, instant: datetime) -> tuple[datetime, Freeze] | None:
        """(when it ends, the freeze) for the freeze holding at ``instant`` that ends last."""
        found: tuple[datetime, Freeze] | None = None
        for freeze in self.freezes:
            ends = self.freeze_end(freeze, instant)
            if ends is not None and (found is None or ends > found[0]):
                found = (ends, freeze)
        return found

    def freeze_end(self, freeze: Freeze, instant: datetime) -> datetime | None:
        """When this freeze, holding at ``instant``, ends; None when it does not hold."""
        if freeze.cron is None:
            assert freeze.begins is not None and freeze.ends is not None
            return freeze.ends if freeze.begins <= instant < freeze.ends else None
        began = self.last_begin(freeze.cron, instant)
        if began is None:
            return None
        ends = began + timedelta(seconds=freeze.duration)
        return ends if ends > instant else None

    def last_begin(self, cron: str, instant: datetime) -> datetime | None:
        """The latest instant ``<= instant`` when the cron freeze began (croniter iterates
        by the zone's wall clock when given an aware start)."""
        from croniter import croniter  # only for a policy with cron freezes

        # get_prev is strictly before its start, and a begin is on a whole minute: from the
        # next whole second, it finds a begin at the instant itself, and none after it
        start = (instant.replace(microsecond=0) + _SECOND).astimezone(self.zone)
        began: datetime = croniter(cron, start).get_prev(datetime)
        return began.astimezone(UTC)


def _reads_open(window: DeployWindow, wall: datetime) -> bool:
    """Is the window open while the wall clock reads ``wall``?"""
    seconds = wall.hour * 3600 + wall.minute * 60 + wall.second
    today = WEEKDAYS[wall.weekday()]
    if not window.crosses_midnight:
        return today in window.days and window.start <= seconds < window.end
    yesterday = WEEKDAYS[(wall.weekday() - 1) % 7]
    return (today in window.days and seconds >= window.start) or (
        yesterday in window.days and seconds < window.end
    )


def _next_opening(window: DeployWindow, wall: datetime) -> datetime:
    """The first wall-clock reading ``> wall`` at which this window opens."""
    for ahead in range(8):
        day: date = wall.date() + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        opening = datetime.combine(day, time()) + timedelta(seconds=window.start)
        if opening > wall:
            return opening
    raise AssertionError("a window with days opens within 8 days")
