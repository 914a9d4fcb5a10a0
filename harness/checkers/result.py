"""What a checker returns: data, never an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Validity = Literal["valid", "invalid", "unknown"]


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    checker: str
    validity: Validity
    checked: int  # how many things it looked at
    violations: tuple[Violation, ...] = ()
    error: str | None = None  # the traceback of a checker that crashed (`unknown`)

    @property
    def valid(self) -> bool:
        return self.validity != "invalid"

    @classmethod
    def of(cls, checker: str, checked: int, violations: list[Violation]) -> CheckResult:
        return cls(checker, "invalid" if violations else "valid", checked, tuple(violations))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "violations": [v.to_json() for v in self.violations]}
