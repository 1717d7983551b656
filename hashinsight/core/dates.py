"""Reading the dates people type into query strings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.utils.dateparse import parse_date, parse_datetime


def parse_day_or_moment(raw: str) -> tuple[datetime | None, date | None]:
    """An ISO-8601 date-time (UTC when it names no offset) or a bare date: ``(moment, None)``,
    ``(start of the day in UTC, day)``, or ``(None, None)`` when it is neither — including well-formed
    values naming no such date or time (2026-13-45, 25:00), which Django's parsers raise on."""
    try:
        day = parse_date(raw)  # a bare date first: parse_datetime would read it as midnight
        moment = parse_datetime(raw) if day is None else datetime.combine(day, time.min)
    except ValueError:
        return None, None
    if moment is None:
        return None, None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, day
