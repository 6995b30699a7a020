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
  (America/Recife)`` or ``try again at 2:57 PM`` (local time when no zone is named).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: A delay beyond this is not believed (a misread number, a year in seconds).
MAX_RETRY_AFTER_S = 8 * 24 * 3600.0


@dataclass(frozen=True)
class RateLimit:
    """A recognised refusal: the line that said so and, if readable, when to retry."""

    message: str
    retry_after_s: float | None = None


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
    delay = retry_after(hit, moment)
    if delay is None:
        for text in items:
            delay = retry_after(text, moment)
            if delay is not None:
                break
    return RateLimit(message=_first_line_with(hit, patterns), retry_after_s=delay)


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
_CLOCK = re.compile(
    r"(?:resets?|try again at|reset at|available again at)\s+"
    r"(?:(?:on\s+)?(?P<mon>[A-Z][a-z]{2})[a-z]*\.?\s+(?P<day>\d{1,2})(?:,?\s+at)?\s+|at\s+)?"
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
    """Seconds from `now` until the reset `text` announces, or None if it names none."""
    for reader in (_from_epoch, _from_seconds, _from_duration, _from_clock):
        delay = reader(text, now)
        if delay is not None:
            return _believable(delay)
    return None


def _believable(delay: float) -> float | None:
    if delay > MAX_RETRY_AFTER_S:
        return None
    return max(0.0, delay)


def _from_epoch(text: str, now: datetime) -> float | None:
    match = _EPOCH_PIPE.search(text) or _EPOCH_FIELD.search(text)
    if not match:
        return None
    stamp = float(match.group(1))
    if stamp > 1e12:  # milliseconds
        stamp /= 1000.0
    return stamp - now.timestamp()


def _from_seconds(text: str, now: datetime) -> float | None:
    for pattern in (_SECONDS_FIELD, _RETRY_DELAY, _RETRY_AFTER_HEADER):
        match = pattern.search(text)
        if match:
            return float(match.group(1))
    return None


def _from_duration(text: str, now: datetime) -> float | None:
    match = _DURATION.search(text)
    if not match:
        return None
    total = 0.0
    for number, unit in _PART.findall(match.group(1)):
        total += float(number) * _unit_seconds(unit.lower())
    return total


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


def _from_clock(text: str, now: datetime) -> float | None:
    match = _CLOCK.search(text)
    if not match:
        return None
    zone = _zone(match.group("tz"))
    local_now = now.astimezone(zone) if zone else now.astimezone()
    hour = int(match.group("h")) % 12
    if match.group("ampm").lower().startswith("p"):
        hour += 12
    minute = int(match.group("m") or 0)
    target = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    mon = match.group("mon")
    if mon and mon.lower()[:3] in _MONTHS:
        target = target.replace(month=_MONTHS[mon.lower()[:3]], day=int(match.group("day")))
        if target <= local_now:
            target = target.replace(year=target.year + 1)
    elif target <= local_now:
        # "resets 3pm" said at 4pm means tomorrow. Add a day in the zone's wall time.
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    return (target - local_now).total_seconds()


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
