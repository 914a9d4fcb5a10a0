"""Durations as Locust users type them: `90` (seconds), `10s`, `5m`, `1h30m`,
`2h`, `1h5m30s` (pure)."""

from __future__ import annotations

import re

from harness.errors import TokenproofError

_FORM = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class BadDuration(TokenproofError, ValueError):
    """A duration in none of Locust's forms."""


def parse_duration(text: str) -> int:
    """Seconds in `text`; BadDuration says which forms are accepted."""
    spelled = text.strip().lower()
    if spelled.isdigit():
        seconds = int(spelled)
    else:
        match = _FORM.fullmatch(spelled)
        if not spelled or match is None or not any(match.groups()):
            raise BadDuration(
                f"{text!r} is not a duration: write seconds (90) or hours, minutes and "
                "seconds in that order (10s, 5m, 1h30m)"
            )
        hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds < 1:
        raise BadDuration(f"{text!r} is no time at all: a load run lasts at least 1 s")
    return seconds


def spell_duration(seconds: int) -> str:
    """The shortest of Locust's forms for `seconds` (`1h30m`, `45s`)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
