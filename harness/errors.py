"""Error classes shared by the harness.

Callers decide by class, never by message text. Every message says what to do
instead, because the person reading it is usually setting tokenproof up.
"""

from __future__ import annotations


class TokenproofError(Exception):
    """Base of every error the harness raises on purpose."""


class UsageError(TokenproofError):
    """The caller asked for something that cannot work (CLI exit code 2)."""


class SetupError(TokenproofError):
    """The world around the run is not as it must be (CLI exit code 2)."""
