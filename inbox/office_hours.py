"""A bot's office hours: when a person can be expected to answer a hand-off.

The setting is one JSON object, `{"timezone": "Europe/Berlin", "days": {"mon": ["09:00", "17:00"],
...}}`: one window per day, local time in the IANA time zone, the end after the start; a day that
is missing is closed. An empty object (the default) means no office hours: a person may answer at
any time, as long as one is online (inbox/presence.py).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from minirag.errors import InvalidInputError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
FIELD = "office_hours"


def _time(value: Any, day: str) -> dt.time:
    match = TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInputError.for_field(f"{FIELD}.days.{day}", 'Times are "HH:MM", 00:00 to 23:59.')
    return dt.time(int(match.group(1)), int(match.group(2)))


def office_hours_clean(value: Any) -> dict[str, Any]:
    """The setting as stored, or a 422 naming what is wrong. None or {} clears it."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict) or set(value) - {"timezone", "days"}:
        raise InvalidInputError.for_field(
            FIELD, 'Must be {"timezone": "Europe/Berlin", "days": {"mon": ["09:00", "17:00"], ...}}, or {} for none.'
        )
    zone = value.get("timezone")
    try:
        if not isinstance(zone, str) or not zone:
            raise ZoneInfoNotFoundError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError.for_field(
            f"{FIELD}.timezone", "Must be an IANA time zone such as Europe/Berlin."
        ) from None
    days = value.get("days")
    if not isinstance(days, dict) or not days:
        raise InvalidInputError.for_field(f"{FIELD}.days", 'Give at least one day, e.g. {"mon": ["09:00", "17:00"]}.')
    cleaned: dict[str, list[str]] = {}
    for day, window in days.items():
        if day not in DAYS:
            raise InvalidInputError.for_field(f"{FIELD}.days", f"Days are {', '.join(DAYS)}; not {str(day)[:20]!r}.")
        if not isinstance(window, list) or len(window) != 2:
            raise InvalidInputError.for_field(f"{FIELD}.days.{day}", 'Must be ["HH:MM", "HH:MM"]: opening, closing.')
        start, end = _time(window[0], day), _time(window[1], day)
        if end <= start:
            raise InvalidInputError.for_field(f"{FIELD}.days.{day}", "The closing time must be after the opening time.")
        cleaned[day] = [window[0], window[1]]
    return {"timezone": zone, "days": {day: cleaned[day] for day in DAYS if day in cleaned}}


def _windows(
    office_hours: dict[str, Any], local_date: dt.date, zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime] | None:
    window = office_hours["days"].get(DAYS[local_date.weekday()])
    if not window:
        return None
    start, end = (dt.time.fromisoformat(part) for part in window)
    return (
        dt.datetime.combine(local_date, start, tzinfo=zone),
        dt.datetime.combine(local_date, end, tzinfo=zone),
    )


def office_hours_open(office_hours: dict[str, Any], now: dt.datetime) -> bool:
    """Whether `now` falls within the office hours (always, when there are none)."""
    if not office_hours:
        return True
    zone = ZoneInfo(office_hours["timezone"])
    local = now.astimezone(zone)
    window = _windows(office_hours, local.date(), zone)
    return window is not None and window[0] <= local < window[1]


def office_hours_next_opening(office_hours: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    """When the office next opens after `now` (in UTC); None with no office hours or when open now."""
    if not office_hours or office_hours_open(office_hours, now):
        return None
    zone = ZoneInfo(office_hours["timezone"])
    local = now.astimezone(zone)
    for offset in range(8):
        window = _windows(office_hours, local.date() + dt.timedelta(days=offset), zone)
        if window is not None and window[0] > local:
            return window[0].astimezone(dt.UTC)
    return None
