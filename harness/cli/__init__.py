"""`tokenproof ...`: a thin layer over the library API, one module per command
(`verify` also holds `config` and `scenarios`; `serve` the servers to try
things by hand), what they share in `common`.

Exit codes: 0 every invariant held, 1 violations found, 2 usage or setup error
(the message says what to fix).
"""

from harness.cli import dialect, load, selftest, serve, verify  # noqa: F401  (they register)
from harness.cli.app import main

__all__ = ["main"]
