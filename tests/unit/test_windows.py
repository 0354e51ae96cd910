"""When may deploys next go on: next_allowed against real calendars and a brute-force scan.

The dates are real: 2026-03-08 and 2026-11-01 are the US changes of daylight saving time,
2026-03-29 and 2026-10-25 the European ones; Lord Howe Island moves its clocks by half an
hour (2026-04-05 and 2026-10-04).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from approval_gate.rules import WEEKDAYS, Approvers, DeployWindow, Freeze, Rules
from approval_gate.windows import WHY_FREEZE, WHY_WINDOW, Allowed, next_allowed, next_allowed_for
from hypothesis import event, given, settings
from hypothesis import strategies as st

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
FAR = datetime(2028, 1, 1, tzinfo=UTC)
WEEKDAYS_ONLY = ("mon", "tue", "wed", "thu", "fri")


def clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def window(days: Sequence[str], start: str, end: str) -> DeployWindow:
    return DeployWindow(tuple(days), clock(start), clock(end))


def local(zone: str, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[arg-type,misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


def ask(
    at: datetime,
    windows: Sequence[DeployWindow] = (),
    freezes: Sequence[Freeze] = (),
    zone: str = NEW_YORK,
    limit: datetime = FAR,
) -> Allowed:
    return next_allowed(at, timezone=zone, windows=windows, freezes=freezes, limit=limit)


def one_off(begins: datetime, ends: datetime, reason: str = "freeze") -> Freeze:
    return Freeze(reason=reason, begins=begins, ends=ends)


# --------------------------------------------------------------------------- plain cases


def test_no_windows_and_no_freezes_allow_any_time() -> None:
    at = utc(2026, 12, 25, 3, 4, 5)
    assert ask(at) == Allowed(at)
    assert ask(at).now


def test_a_weekday_window_is_exact_to_the_second() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    inside = local(NEW_YORK, 2026, 12, 4, 16, 59, 59)  # a Friday
    assert ask(inside, windows) == Allowed(inside)
    closing = local(NEW_YORK, 2026, 12, 4, 17, 0, 0)
    answer = ask(closing, windows)
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 7, 9, 0), WHY_WINDOW)
    assert answer.at is not None and answer.at.tzinfo is UTC
    early = local(NEW_YORK, 2026, 12, 7, 8, 59, 59, 500000)
    assert ask(early, windows).at == local(NEW_YORK, 2026, 12, 7, 9, 0)


def test_the_answer_is_in_utc() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    answer = ask(utc(2026, 12, 5, 12), windows)
    assert answer.at == utc(2026, 12, 7, 14) and answer.at.tzinfo is UTC
    # The end of a one-off freeze written with its own offset comes back in UTC too.
    plus7 = datetime(2026, 12, 24, 9, tzinfo=timezone(timedelta(hours=7)))
    frozen = ask(utc(2026, 12, 23), freezes=[one_off(utc(2026, 12, 22), plus7)])
    assert frozen.at == utc(2026, 12, 24, 2) and frozen.at.tzinfo is UTC


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ask(datetime(2026, 1, 1))


def test_rules_carry_the_calendar() -> None:
    rules = Rules(
        channel="C0DEPLOYS",
        approvers=Approvers(users=("U0ALICE",)),
        timezone=BERLIN,
        deploy_windows=(window(WEEKDAYS_ONLY, "09:00", "17:00"),),
    )
    answer = next_allowed_for(rules, utc(2026, 12, 5, 12), FAR)
    assert answer == Allowed(utc(2026, 12, 7, 8), WHY_WINDOW)


# --------------------------------------------------------------------------- daylight saving


@pytest.mark.parametrize(
    ("day", "opens"),
    [
        ((2026, 3, 7), utc(2026, 3, 7, 14)),  # EST, the day before the change
        ((2026, 3, 8), utc(2026, 3, 8, 13)),  # EDT, the spring-forward day
        ((2026, 10, 31), utc(2026, 10, 31, 13)),  # EDT, the day before
        ((2026, 11, 1), utc(2026, 11, 1, 14)),  # EST, the fall-back day
    ],
)
def test_a_nine_to_five_window_on_the_us_change_days(
    day: tuple[int, int, int], opens: datetime
) -> None:
    windows = [window(WEEKDAYS, "09:00", "17:00")]
    assert ask(local(NEW_YORK, *day, 0, 30), windows) == Allowed(opens, WHY_WINDOW)
    closes = opens + timedelta(hours=8)  # the clocks move at 02:00, outside the window
    assert ask(closes - timedelta(seconds=1), windows).now
    tomorrow = ask(closes, windows).at
    assert tomorrow is not None
    assert tomorrow.astimezone(ZoneInfo(NEW_YORK)).replace(tzinfo=None) == datetime(
        *day, 9
    ) + timedelta(days=1)


def test_a_window_opening_in_the_skipped_hour_opens_when_the_hour_ends() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 never happens that day
    windows = [window(["sun"], "02:30", "04:00")]
    answer = ask(local(NEW_YORK, 2026, 3, 8, 0, 0), windows)
    assert answer == Allowed(utc(2026, 3, 8, 7), WHY_WINDOW)  # 03:00 EDT
    assert answer.at is not None and answer.at.astimezone(ZoneInfo(NEW_YORK)).hour == 3


def test_a_window_inside_the_skipped_hour_does_not_open_that_day() -> None:
    windows = [window(["sun"], "02:00", "02:45")]
    answer = ask(local(NEW_YORK, 2026, 3, 8, 0, 0), windows)
    assert answer.at == local(NEW_YORK, 2026, 3, 15, 2, 0)


def test_a_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    windows = [window(["sun"], "01:00", "02:30")]
    assert ask(utc(2026, 3, 8, 6, 59, 59), windows).now  # 01:59:59 EST
    assert ask(utc(2026, 3, 8, 7), windows).at == local(NEW_YORK, 2026, 3, 15, 1, 0)


def test_a_window_in_the_repeated_hour_opens_each_time_the_clock_reads_it() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice
    windows = [window(["sun"], "01:00", "01:30")]
    assert ask(local(NEW_YORK, 2026, 11, 1, 1, 10), windows).now  # the first time, EDT
    after_first = local(NEW_YORK, 2026, 11, 1, 1, 45)  # EDT
    assert ask(after_first, windows) == Allowed(utc(2026, 11, 1, 6), WHY_WINDOW)  # 01:00 EST


def test_european_changes() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET
    windows = [window(["sun"], "02:30", "03:30")]
    assert ask(local(BERLIN, 2026, 3, 29, 0, 0), windows, zone=BERLIN).at == utc(2026, 3, 29, 1)
    # 03:30 CEST: closed until next Sunday's 02:30 CEST
    assert ask(utc(2026, 3, 29, 1, 30), windows, zone=BERLIN).at == utc(2026, 4, 5, 0, 30)
    # the clock reads 02:30-02:59 CEST, goes back to 02:00 CET, and reads 02:30 again
    assert ask(utc(2026, 10, 25, 0, 0), windows, zone=BERLIN).at == utc(2026, 10, 25, 0, 30)
    assert ask(utc(2026, 10, 25, 0, 59), windows, zone=BERLIN).now  # 02:59 CEST
    assert ask(utc(2026, 10, 25, 1, 0), windows, zone=BERLIN).at == utc(2026, 10, 25, 1, 30)
    assert ask(utc(2026, 10, 25, 2, 29), windows, zone=BERLIN).now  # 03:29 CET


def test_a_half_hour_change_lord_howe() -> None:
    zone = "Australia/Lord_Howe"  # 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    windows = [window(["sun"], "02:10", "02:40")]
    assert ask(local(zone, 2026, 10, 4, 0, 0), windows, zone=zone).at == local(
        zone, 2026, 10, 4, 2, 30
    )


# --------------------------------------------------------------------------- midnight


def test_a_window_crossing_midnight() -> None:
    windows = [window(["fri"], "22:00", "02:00")]
    assert ask(local(NEW_YORK, 2026, 12, 5, 1, 0), windows).now  # Saturday 01:00
    answer = ask(local(NEW_YORK, 2026, 12, 5, 2, 0), windows)
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 11, 22, 0), WHY_WINDOW)
    assert ask(local(NEW_YORK, 2026, 12, 4, 21, 59), windows).at == local(
        NEW_YORK, 2026, 12, 4, 22, 0
    )


def test_a_sunday_night_window_runs_into_monday() -> None:
    windows = [window(["sun"], "22:00", "06:00")]
    assert ask(local(NEW_YORK, 2026, 12, 7, 5, 59), windows).now  # Monday
    assert ask(local(NEW_YORK, 2026, 12, 8, 5, 0), windows).at == local(
        NEW_YORK, 2026, 12, 13, 22, 0
    )


# --------------------------------------------------------------------------- freezes


def test_a_freeze_starting_inside_a_window() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    lunch = one_off(local(NEW_YORK, 2026, 12, 7, 12), local(NEW_YORK, 2026, 12, 7, 13), "Lunch")
    assert ask(local(NEW_YORK, 2026, 12, 7, 11), windows, [lunch]).now
    answer = ask(local(NEW_YORK, 2026, 12, 7, 12, 30), windows, [lunch])
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 7, 13), WHY_FREEZE, "Lunch")
    late = one_off(local(NEW_YORK, 2026, 12, 7, 16), local(NEW_YORK, 2026, 12, 7, 18), "Late")
    answer = ask(local(NEW_YORK, 2026, 12, 7, 16, 30), windows, [late])
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 8, 9), WHY_FREEZE, "Late")


def test_a_freeze_ends_exactly_at_its_to() -> None:
    freeze = one_off(utc(2026, 12, 24), utc(2027, 1, 2), "Year-end freeze")
    assert ask(utc(2026, 12, 23, 23, 59, 59), freezes=[freeze]).now
    assert ask(utc(2026, 12, 24), freezes=[freeze]) == Allowed(
        utc(2027, 1, 2), WHY_FREEZE, "Year-end freeze"
    )


def test_year_end_freeze_then_the_window() -> None:
    # the freeze ends at midnight on a Saturday; the window opens on Monday
    zone = "Asia/Ho_Chi_Minh"
    freeze = Freeze(
        "Year-end freeze",
        begins=datetime.fromisoformat("2026-12-24T00:00:00+07:00"),
        ends=datetime.fromisoformat("2027-01-02T00:00:00+07:00"),
    )
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    answer = ask(local(zone, 2026, 12, 28, 10), windows, [freeze], zone=zone)
    assert answer == Allowed(local(zone, 2027, 1, 4, 9), WHY_FREEZE, "Year-end freeze")


def test_overlapping_freezes_name_the_one_that_ends_last() -> None:
    a = one_off(utc(2026, 6, 1, 10), utc(2026, 6, 1, 12), "A")
    b = one_off(utc(2026, 6, 1, 11), utc(2026, 6, 1, 14), "B")
    assert ask(utc(2026, 6, 1, 11, 30), freezes=[a, b]) == Allowed(
        utc(2026, 6, 1, 14), "freeze", "B"
    )
    assert ask(utc(2026, 6, 1, 10, 30), freezes=[a, b]) == Allowed(
        utc(2026, 6, 1, 14), "freeze", "A"
    )


def test_adjacent_freezes_run_on() -> None:
    a = one_off(utc(2026, 6, 1, 10), utc(2026, 6, 1, 12), "A")
    b = one_off(utc(2026, 6, 1, 12), utc(2026, 6, 1, 13), "B")
    assert ask(utc(2026, 6, 1, 11), freezes=[b, a]) == Allowed(utc(2026, 6, 1, 13), "freeze", "A")


def test_a_weekend_cron_freeze() -> None:
    weekend = Freeze("No weekend deploys", cron="0 17 * * FRI", duration=64 * 3600)
    assert ask(local(NEW_YORK, 2026, 12, 4, 16, 59), freezes=[weekend]).now
    # began on Friday, before the question: it still holds
    answer = ask(local(NEW_YORK, 2026, 12, 6, 12), freezes=[weekend])
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 7, 9), WHY_FREEZE, "No weekend deploys")
    assert ask(local(NEW_YORK, 2026, 12, 7, 9), freezes=[weekend]).now


def test_a_cron_freeze_is_exact_below_the_second() -> None:
    hour = Freeze("Hour", cron="0 17 * * FRI", duration=3600)
    just_before = utc(2026, 12, 4, 16, 59, 59, 999999)
    assert ask(just_before, freezes=[hour], zone="UTC").now
    assert ask(utc(2026, 12, 4, 17, 0, 0, 1), freezes=[hour], zone="UTC").at == utc(2026, 12, 4, 18)
    assert ask(utc(2026, 12, 4, 17, 59, 59, 999999), freezes=[hour], zone="UTC").at == utc(
        2026, 12, 4, 18
    )


def test_a_cron_freeze_lasts_real_time_across_the_change() -> None:
    # Fri 17:00 EST + 64 h = Mon 09:00 EST = 10:00 EDT (the clocks moved on Sunday)
    weekend = Freeze("No weekend deploys", cron="0 17 * * FRI", duration=64 * 3600)
    answer = ask(local(NEW_YORK, 2026, 3, 7, 12), freezes=[weekend])
    assert answer.at == local(NEW_YORK, 2026, 3, 9, 10)


def test_a_cron_freeze_in_the_skipped_hour_begins_when_it_ends() -> None:
    nightly = Freeze("Backups", cron="30 2 * * *", duration=30 * 60)
    assert ask(utc(2026, 3, 8, 6, 59), freezes=[nightly]).now  # 01:59 EST
    assert ask(utc(2026, 3, 8, 7), freezes=[nightly]).at == utc(2026, 3, 8, 7, 30)


def test_a_cron_freeze_in_the_repeated_hour_begins_both_times() -> None:
    nightly = Freeze("Backups", cron="30 1 * * *", duration=10 * 60)
    assert ask(utc(2026, 11, 1, 5, 35), freezes=[nightly]).at == utc(2026, 11, 1, 5, 40)  # EDT
    assert ask(utc(2026, 11, 1, 6, 35), freezes=[nightly]).at == utc(2026, 11, 1, 6, 40)  # EST
    assert ask(utc(2026, 11, 1, 6, 0), freezes=[nightly]).now


def test_frozen_outside_a_window_names_the_freeze() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    weekend = Freeze("No weekend deploys", cron="0 17 * * FRI", duration=64 * 3600)
    answer = ask(local(NEW_YORK, 2026, 12, 5, 12), windows, [weekend])  # Saturday
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 7, 9), WHY_FREEZE, "No weekend deploys")


def test_a_cron_freeze_beginning_as_a_window_opens() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    standup = Freeze("Stand-up", cron="0 9 * * MON", duration=15 * 60)
    answer = ask(local(NEW_YORK, 2026, 12, 5, 12), windows, [standup])
    assert answer == Allowed(local(NEW_YORK, 2026, 12, 7, 9, 15), WHY_WINDOW)
    assert ask(local(NEW_YORK, 2026, 12, 7, 9), windows, [standup]).why == WHY_FREEZE


def test_a_window_and_a_cron_freeze_together() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "18:00")]
    weekend = Freeze("No Friday evening deploys", cron="0 16 * * FRI", duration=65 * 3600)
    answer = ask(local(NEW_YORK, 2026, 12, 4, 16, 30), windows, [weekend])
    assert answer == Allowed(
        local(NEW_YORK, 2026, 12, 7, 9), WHY_FREEZE, "No Friday evening deploys"
    )


# --------------------------------------------------------------------------- the limit


def test_nothing_before_the_limit() -> None:
    windows = [window(WEEKDAYS_ONLY, "09:00", "17:00")]
    friday = local(NEW_YORK, 2026, 12, 4, 18)
    monday = local(NEW_YORK, 2026, 12, 7, 9)
    assert ask(friday, windows, limit=monday) == Allowed(None, WHY_WINDOW)
    assert ask(friday, windows, limit=monday + timedelta(seconds=1)).at == monday
    freeze = one_off(utc(2026, 12, 24), utc(2027, 1, 2), "Year-end freeze")
    assert ask(utc(2026, 12, 25), freezes=[freeze], limit=utc(2026, 12, 31)) == Allowed(
        None, WHY_FREEZE, "Year-end freeze"
    )


def test_the_limit_already_passed() -> None:
    at = utc(2026, 6, 1)
    assert ask(at, limit=at) == Allowed(None)


def test_a_freeze_that_never_ends_stops_at_the_limit() -> None:
    always = Freeze("Always", cron="* * * * *", duration=3600)
    answer = ask(utc(2026, 6, 1), freezes=[always], limit=utc(2026, 6, 15))
    assert answer == Allowed(None, WHY_FREEZE, "Always")


# --------------------------------------------------------------------------- brute force

#: Each zone's changes of offset in 2026 (UTC): the drawn instants fall in the days before
#: one, so that waits run across it. UTC and Ho Chi Minh City have none.
CHANGES = {
    "UTC": [utc(2026, 6, 10)],
    NEW_YORK: [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)],
    BERLIN: [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)],
    "Australia/Lord_Howe": [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)],
    "Asia/Ho_Chi_Minh": [utc(2026, 6, 10)],
    "Pacific/Chatham": [utc(2026, 4, 4, 14), utc(2026, 9, 26, 14)],
}
HORIZON = timedelta(days=14)
MINUTE = timedelta(minutes=1)
DAY_NAMES = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


class Cron:
    """A cron freeze drawn as sets, spelt for croniter; the scan matches the sets."""

    def __init__(
        self, minutes: frozenset[int], hours: frozenset[int] | None, days: frozenset[int] | None
    ) -> None:
        self.minutes, self.hours, self.days = minutes, hours, days

    def spelt(self) -> str:
        hours = "*" if self.hours is None else ",".join(map(str, sorted(self.hours)))
        days = "*" if self.days is None else ",".join(DAY_NAMES[day] for day in sorted(self.days))
        return f"{','.join(map(str, sorted(self.minutes)))} {hours} * * {days}"

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minutes
            and (self.hours is None or wall.hour in self.hours)
            and (self.days is None or wall.weekday() in self.days)
        )


def brute_force(
    at: datetime,
    zone_name: str,
    windows: Sequence[DeployWindow],
    freezes: Sequence[tuple[Freeze, Cron | None]],
    limit: datetime,
) -> tuple[datetime | None, dict[str, datetime]]:
    """(the first allowed whole minute in [at, limit), {reason: end} of freezes at ``at``),
    from the definitions alone: each minute, what the wall clock reads."""
    zone = ZoneInfo(zone_name)

    def wall(instant: datetime) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    def in_window(reading: datetime) -> bool:
        if not windows:
            return True
        seconds = reading.hour * 3600 + reading.minute * 60
        today, yesterday = WEEKDAYS[reading.weekday()], WEEKDAYS[reading.weekday() - 1]
        for item in windows:
            if item.start < item.end:
                if today in item.days and item.start <= seconds < item.end:
                    return True
            elif (today in item.days and seconds >= item.start) or (
                yesterday in item.days and seconds < item.end
            ):
                return True
        return False

    longest = max((f.duration for f, cron in freezes if cron), default=0)
    begins: dict[int, list[datetime]] = {i: [] for i, (_, cron) in enumerate(freezes) if cron}
    instant = at - timedelta(seconds=longest) - MINUTE
    previous = wall(instant - MINUTE)
    found: datetime | None = None
    holding: dict[str, datetime] = {}
    while instant < limit:
        reading = wall(instant)
        for index, (_, cron) in enumerate(freezes):
            if cron is None:
                continue
            skipped = previous + MINUTE
            began = cron.matches(reading)
            while not began and skipped < reading:  # the clock jumped over these minutes
                began = cron.matches(skipped)
                skipped += MINUTE
            if began:
                begins[index].append(instant)
        previous = reading
        if instant >= at:
            ends: dict[str, datetime] = {}
            for index, (freeze, cron) in enumerate(freezes):
                if cron is None:
                    assert freeze.begins is not None and freeze.ends is not None
                    if freeze.begins <= instant < freeze.ends:
                        ends[freeze.reason] = freeze.ends
                elif begins[index]:
                    end = begins[index][-1] + timedelta(seconds=freeze.duration)
                    if end > instant:
                        ends[freeze.reason] = end
            if instant == at:
                holding = ends
            if not ends and in_window(reading):
                found = instant
                break
        instant += MINUTE
    return found, holding


minute_of_day = st.integers(0, 1439)
# Times near the changes (00:00-04:00) are drawn as often as the rest of the day, and
# quarter hours often, so that windows open and freezes begin and end at the same instants.
quarter_hour = st.integers(0, 95).map(lambda quarter: quarter * 15)
time_of_day = st.one_of(st.integers(0, 4 * 60), minute_of_day, quarter_hour)


@st.composite
def windows_strategy(draw: st.DrawFn) -> list[DeployWindow]:
    result = []
    for _ in range(draw(st.integers(0, 3))):
        days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
        start = draw(time_of_day)
        end = draw(time_of_day)
        end = (start + 1) % 1440 if end == start else end  # from == to is refused at load
        ordered = tuple(day for day in WEEKDAYS if day in days)
        result.append(DeployWindow(ordered, start * 60, end * 60))
    return result


@st.composite
def calendar_strategy(
    draw: st.DrawFn,
) -> tuple[datetime, str, list[DeployWindow], list[tuple[Freeze, Cron | None]]]:
    zone = draw(st.sampled_from(sorted(CHANGES)))
    anchor = draw(st.sampled_from(CHANGES[zone])).replace(minute=0) - timedelta(days=8)
    # any minute, a quarter hour (when freezes begin and windows open), the minute before,
    # or in the day and a half before the change
    quarters = st.integers(1, 10 * 96).map(lambda quarter: quarter * 15)
    minutes = (
        st.integers(0, 10 * 1440)
        | quarters
        | quarters.map(lambda minute: minute - 1)
        | st.integers(6 * 1440 + 720, 8 * 1440)
    )
    at = anchor + draw(minutes) * MINUTE
    windows = draw(windows_strategy())
    freezes: list[tuple[Freeze, Cron | None]] = []
    for index in range(draw(st.integers(0, 3))):
        reason = f"freeze {index}"
        length = (
            draw(st.integers(1, 3 * 1440) | st.integers(1, 95).map(lambda quarter: quarter * 15))
            * MINUTE
        )
        if draw(st.booleans()):  # one-off
            begins = (
                at
                + draw(st.integers(-3 * 1440, 14 * 1440) | st.sampled_from([-15, 0, 15])) * MINUTE
            )
            freezes.append((Freeze(reason, begins=begins, ends=begins + length), None))
            continue
        # recurring: mostly a few hours a day, so that most calendars are not frozen for good
        length = min(length, draw(st.integers(1, 12 * 60)) * MINUTE)
        cron = Cron(
            minutes=draw(st.frozensets(st.sampled_from([0, 15, 30, 45, 10]), min_size=1)),
            hours=draw(
                st.frozensets(st.integers(0, 23), min_size=1, max_size=3)
                | st.frozensets(st.integers(0, 4), min_size=1, max_size=2)
                | st.none()
            ),
            days=draw(st.none() | st.frozensets(st.integers(0, 6), min_size=1, max_size=3)),
        )
        freeze = Freeze(reason, cron=cron.spelt(), duration=int(length.total_seconds()))
        freezes.append((freeze, cron))
    crons = [cron for _, cron in freezes if cron is not None]
    if crons and draw(st.booleans()):
        at = _minute_before_a_begin(at, zone, draw(st.sampled_from(crons)))
    return at, zone, windows, freezes


def _minute_before_a_begin(at: datetime, zone: str, cron: Cron) -> datetime:
    """The minute before this cron's next begin by the wall clock, when within a week."""
    minute = at + MINUTE
    for _ in range(7 * 1440):
        if cron.matches(minute.astimezone(ZoneInfo(zone)).replace(tzinfo=None)):
            return minute - MINUTE
        minute += MINUTE
    return at


@settings(max_examples=50, deadline=None)
@given(
    calendar_strategy(),
    st.just(0) | st.integers(1, 60 * 10**6 - 1) | st.integers(59 * 10**6, 60 * 10**6 - 1),
)
def test_next_allowed_agrees_with_a_minute_by_minute_scan(
    calendar: tuple[datetime, str, list[DeployWindow], list[tuple[Freeze, Cron | None]]],
    microseconds: int,
) -> None:
    """Every boundary is on a whole minute, so the scan is exact; an instant inside a
    minute is allowed when its minute is, and otherwise waits as the minute does."""
    minute, zone, windows, freezes = calendar
    limit = minute + HORIZON
    at = minute + timedelta(microseconds=microseconds)
    found, holding = brute_force(minute, zone, windows, freezes, limit)
    expected = at if found == minute else found
    answer = ask(at, windows, [freeze for freeze, _ in freezes], zone=zone, limit=limit)
    assert answer.at == expected
    event(f"why not now: {answer.why}; {'found' if expected else 'none'} before the limit")
    if expected == at:
        assert answer.why is None and answer.reason is None
    elif holding:
        last = max(holding.values())
        first_last = next(reason for reason, end in holding.items() if end == last)
        assert (answer.why, answer.reason) == (WHY_FREEZE, first_last)
    else:
        assert (answer.why, answer.reason) == (WHY_WINDOW, None)
