"""Dialects: a service's own words for the contract (docs/dialects.md)."""

from harness.dialect.model import CONTRACT, Auth, Dialect, RequestShape, Route
from harness.dialect.parse import DialectError, load_dialect, parse_dialect

__all__ = [
    "CONTRACT",
    "Auth",
    "Dialect",
    "DialectError",
    "RequestShape",
    "Route",
    "load_dialect",
    "parse_dialect",
]
