"""Recognising an agent's rate-limit or usage-limit refusal, and when to try again.

Pure functions over the text an agent printed (error results, error events, the
tail of its log). Each backend names the phrases its vendor uses; the reset time
is read from whichever of the common shapes the message carries:

- an epoch, as Claude's ``Claude AI usage limit reached|1750708800`` or a JSON
  ``"resets_at": 1777936568`` / ``"resetsAt": ...``;
- a delay, as ``"resets_in_seconds": 13872``, ``Retry-After: 30``,
  ``try again in 2 days 17 hours 14 minutes``, ``Please retry in 38.5s`` or a
  Google ``"retryDelay": "38s"``;
- a wall-clock time, as ``resets 3pm (America/Bogota)``, ``resets Apr 23 at 4pm
  (America/Recife)``, or Codex's ``try again at 2:57 PM`` (a reset later today) and
  ``try again at Nov 30th, 2026 8:05 PM`` (another day); local time when no zone is
  named, as the CLI printed it in the user's own zone.

A reset in the past (beyond a few minutes of clock and rounding slack) or more than
`MAX_RETRY_AFTER_S` away is not believed: the caller falls back to its own backoff.
The words that said when are kept (`RateLimit.reset`) for the person reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: A delay beyond this is not believed (a misread number, a year in seconds).
MAX_RETRY_AFTER_S = 8 * 24 * 3600.0
#: A reset this far in the past still reads as "now": clocks differ a little, and a
#: reset printed to the minute ("8:05 PM" for 8:05:40) is up to a minute early.
PAST_SLACK_S = 300.0


@dataclass(frozen=True)
class RateLimit:
    """A recognised refusal: the line that said so and, if readable, when to retry."""

    message: str
    retry_after_s: float | None = None
    #: When the limit resets, in words for a person: the vendor's own ("try again at
    #: Nov 30th, 2026 8:05 PM") or plait's for a number ("resets at Nov 30 20:05").
    reset: str = ""


def compile_patterns(*patterns: str) -> tuple[re.Pattern[str], ...]:
    """Case-insensitive regexes for a backend's rate-limit phrases."""
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def find_rate_limit(
    texts: Iterable[str],
    patterns: Sequence[re.Pattern[str]],
    now: datetime | None = None,
) -> RateLimit | None:
    """The first text matching one of `patterns`, with the retry delay read from any text.

    The delay is searched in the matching text first, then in all the others,
    because vendors often print the refusal and the reset time on separate lines.
    """
    items = [t for t in texts if t]
    hit: str | None = None
    for text in items:
        if any(p.search(text) for p in patterns):
            hit = text
            break
    if hit is None:
        return None
    moment = now or datetime.now(UTC)
    delay: float | None = None
    words = ""
    for text in (hit, *items):
        reading = _reading(text, moment)
        if reading is None:
            continue
        words = words or reading[1]
        if reading[0] is not None:
            delay, words = reading
            break
    return RateLimit(_first_line_with(hit, patterns), delay, words)


def describe_reset(delay_s: float, now: datetime | None = None) -> str:
    """``resets at 20:05`` (today) or ``resets at Nov 30 20:05``, in local time."""
    moment = (now or datetime.now(UTC)).astimezone()
    at = (moment + timedelta(seconds=delay_s)).astimezone()
    if at.date() == moment.date():
        return f"resets at {at:%H:%M}"
    return f"resets at {at:%b} {at.day} {at:%H:%M}"


def _first_line_with(text: str, patterns: Sequence[re.Pattern[str]]) -> str:
    for line in text.splitlines():
        if any(p.search(line) for p in patterns):
            return line.strip()[:500]
    return text.strip()[:500]


# --- reading the reset time ------------------------------------------------------

_EPOCH_PIPE = re.compile(r"limit reached\|(\d{9,13})")
_EPOCH_FIELD = re.compile(r"[\"']?(?:resets_?at|resetsAt|reset_at)[\"']?\s*[:=]\s*(\d{9,13})")
_SECONDS_FIELD = re.compile(
    r"[\"']?(?:resets_in_seconds|retry_after_seconds|retry_after|retryAfter)[\"']?\s*[:=]\s*"
    r"[\"']?(\d+(?:\.\d+)?)"
)
_RETRY_DELAY = re.compile(r"[\"']?retryDelay[\"']?\s*[:=]\s*[\"'](\d+(?:\.\d+)?)s[\"']")
_RETRY_AFTER_HEADER = re.compile(r"retry-after[\"']?\s*[:=]\s*[\"']?(\d+(?:\.\d+)?)", re.IGNORECASE)
_UNIT = r"(?:days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|ms)"
# Not "retrying in": that is a client announcing its own backoff, not a reset time.
_DURATION = re.compile(
    r"(?:try again|retry|resets?)\s+(?:in|after)\s+"
    rf"((?:\d+(?:\.\d+)?\s*{_UNIT}\b[\s,]*(?:and\s+)?)+)",
    re.IGNORECASE,
)
_PART = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT})\b", re.IGNORECASE)
# A date may have an ordinal and a year: codex prints `%b %-d{st|nd|rd|th}, %Y %-I:%M %p`
# for a reset on another day than today ("Nov 30th, 2026 8:05 PM").
_CLOCK = re.compile(
    r"(?:resets?|try again at|reset at|available again at)\s+"
    r"(?:(?:on\s+)?(?P<mon>[A-Z][a-z]{2})[a-z]*\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    r"(?:,?\s+(?P<year>\d{4}))?(?:,?\s+at)?\s+|at\s+)?"
    r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)"
    r"(?:\s*\((?P<tz>[A-Za-z_]+(?:/[A-Za-z_+-]+)*)\))?",
    re.IGNORECASE,
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def retry_after(text: str, now: datetime) -> float | None:
    """Seconds from `now` until the reset `text` announces, or None if it names none
    (or one in the past, or too far away to believe)."""
    reading = _reading(text, now)
    return None if reading is None else reading[0]


#: A reader's finding: the delay (unchecked), and the vendor's words when the text
#: said it in words ("" for numbers: epochs, fields, headers).
_Found = tuple[float, str]


def _reading(text: str, now: datetime) -> tuple[float | None, str] | None:
    """The first reset `text` names: the believable delay (or None), and its words."""
    for reader in (_from_epoch, _from_seconds, _from_duration, _from_clock):
        found = reader(text, now)
        if found is None:
            continue
        delay, words = found
        believed = _believable(delay)
        if not words and believed is not None:
            words = describe_reset(believed, now)
        return believed, words
    return None


def _believable(delay: float) -> float | None:
    if delay > MAX_RETRY_AFTER_S or delay < -PAST_SLACK_S:
        return None
    return max(0.0, delay)


def _from_epoch(text: str, now: datetime) -> _Found | None:
    match = _EPOCH_PIPE.search(text) or _EPOCH_FIELD.search(text)
    if not match:
        return None
    stamp = float(match.group(1))
    if stamp > 1e12:  # milliseconds
        stamp /= 1000.0
    return stamp - now.timestamp(), ""


def _from_seconds(text: str, now: datetime) -> _Found | None:
    for pattern in (_SECONDS_FIELD, _RETRY_DELAY, _RETRY_AFTER_HEADER):
        match = pattern.search(text)
        if match:
            return float(match.group(1)), ""
    return None


def _from_duration(text: str, now: datetime) -> _Found | None:
    match = _DURATION.search(text)
    if not match:
        return None
    total = 0.0
    for number, unit in _PART.findall(match.group(1)):
        total += float(number) * _unit_seconds(unit.lower())
    return total, _words(match.group(0))


def _unit_seconds(unit: str) -> float:
    if unit == "ms":
        return 0.001
    if unit.startswith("d"):
        return 86400.0
    if unit.startswith("h"):
        return 3600.0
    if unit.startswith("m"):
        return 60.0
    return 1.0


def _from_clock(text: str, now: datetime) -> _Found | None:
    match = _CLOCK.search(text)
    if not match:
        return None
    zone = _zone(match.group("tz"))
    local_now = now.astimezone(zone) if zone else now.astimezone()
    hour = int(match.group("h")) % 12
    if match.group("ampm").lower().startswith("p"):
        hour += 12
    minute = int(match.group("m") or 0)
    slack = timedelta(seconds=PAST_SLACK_S)
    mon = match.group("mon")
    if mon:
        month = _MONTHS.get(mon.lower()[:3])
        if month is None:  # "resets Friday 3 at ...": not a date this reads
            return None
        year = match.group("year")
        day = int(match.group("day"))
        target = _wall(zone, int(year or local_now.year), month, day, hour, minute)
        if target is not None and not year and target < now - slack:
            target = _wall(zone, local_now.year + 1, month, day, hour, minute)
    else:
        today = local_now.date()
        target = _wall(zone, today.year, today.month, today.day, hour, minute)
        if target is not None and target < now - slack:
            # "resets 3pm" said at 4pm means tomorrow (a wall time, whatever DST does).
            tomorrow = today + timedelta(days=1)
            target = _wall(zone, tomorrow.year, tomorrow.month, tomorrow.day, hour, minute)
    if target is None:
        return None
    return (target - now).total_seconds(), _words(match.group(0))


def _wall(
    zone: ZoneInfo | None, year: int, month: int, day: int, hour: int, minute: int
) -> datetime | None:
    """That wall-clock time in `zone` (None: this machine's, DST included), or None
    if there is no such date (Feb 30)."""
    try:
        naive = datetime(year, month, day, hour, minute)
    except ValueError:
        return None
    # astimezone() on a naive time reads it as local time with that date's DST offset.
    return naive.replace(tzinfo=zone) if zone else naive.astimezone()


def _words(text: str) -> str:
    return " ".join(text.split()).rstrip(".,;")


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
